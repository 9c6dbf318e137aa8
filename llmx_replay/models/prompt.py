"""What a caller asks for: a `Prompt` (the conversation and its tools) and the provider."""

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from llmx_replay.models.items import ResponseItem
from llmx_replay.models.tools import ToolSpec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_TOKENS = 8192
_DEFAULT_REQUEST_MAX_RETRIES = 4
MAX_REQUEST_RETRIES = 100
_DEFAULT_IDLE_TIMEOUT_MS = 300_000


class Prompt(BaseModel):
    """A conversation to send: system instructions, history items and tool specs.

    This is also the shape of a conversation file for `llmx-replay payload`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    instructions: str = ""
    input: list[ResponseItem] = []
    tools: list[ToolSpec] = []
    parallel_tool_calls: bool = Field(default=False, description="Ignored by Chat Completions.")
    output_schema: JsonValue | None = None


NonNegative = Annotated[int, Field(ge=0)]


class ProviderSettings(BaseModel):
    """A provider's settings, with the field names of llmx's `[model_providers.<id>]`."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str = "openai-compatible"
    base_url: str = DEFAULT_BASE_URL
    env_key: str | None = None
    env_key_instructions: str | None = None
    experimental_bearer_token: str | None = None
    query_params: dict[str, str] | None = None
    http_headers: dict[str, str] | None = None
    env_http_headers: dict[str, str] | None = None
    request_max_retries: NonNegative | None = None
    stream_max_retries: NonNegative | None = None
    stream_idle_timeout_ms: Annotated[int, Field(gt=0)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = DEFAULT_MAX_TOKENS
    max_retry_delay_ms: NonNegative = 60_000

    @property
    def effective_request_max_retries(self) -> int:
        """Retries after the first attempt: the configured count (4 if unset), at most 100."""
        configured = self.request_max_retries
        retries = _DEFAULT_REQUEST_MAX_RETRIES if configured is None else configured
        return min(retries, MAX_REQUEST_RETRIES)

    @property
    def idle_timeout(self) -> float:
        """Seconds to wait for the next piece of the stream (300 s if unset)."""
        return (self.stream_idle_timeout_ms or _DEFAULT_IDLE_TIMEOUT_MS) / 1000

    def env_headers(self, environ: Mapping[str, str]) -> list[tuple[str, str]]:
        """The `env_http_headers` whose variable is set and not blank, with untrimmed values."""
        pairs: list[tuple[str, str]] = []
        for header, variable in (self.env_http_headers or {}).items():
            value = environ.get(variable)
            if value is not None and value.strip():
                pairs.append((header, value))
        return pairs
