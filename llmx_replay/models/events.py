"""What a streamed turn yields: the seed's `ResponseEvent` variants, plus errors as values.

Events are slotted dataclasses, as in pydantic-ai: a stream builds one per chunk,
so they must be cheap. Pydantic validates and serializes them at the boundaries
(`model_dump`, `model_dump_json`, `model_validate`, or `TypeAdapter(ResponseEvent)`); each
dumps to one JSON object whose ``type`` names the variant in snake_case.
"""

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from llmx_replay.models._base import without_absent
from llmx_replay.models.items import ResponseItem


class TokenUsage(BaseModel):
    """The token counts of a turn, from the last complete usage the provider sent.

    Cached and reasoning counts it leaves out are 0, and a missing total is the sum (D11).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    total_tokens: int


class RateLimitWindow(BaseModel):
    """One window of `RateLimits`: how much of it is used, and when it resets."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    used_percent: float
    window_minutes: int | None = None
    resets_in_seconds: int | None = None


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


class _Event:
    """The pydantic face of an event dataclass."""

    __slots__ = ()

    def model_dump(self, *, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The event as a dict (``mode="json"``: JSON-compatible values only)."""
        dumped: dict[str, Any] = _adapter(type(self)).dump_python(self, mode=mode)
        return dumped

    def model_dump_json(self) -> str:
        """The event as one line of JSON."""
        return _adapter(type(self)).dump_json(self).decode()

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Validate `data` (a dict, as dumped) as this event; raises `ValidationError`."""
        event: Self = _adapter(cls).validate_python(data)
        return event


@dataclass(slots=True)
class Created(_Event):
    """The response was created; the seed's variant, which Chat Completions never produces."""

    type: Literal["created"] = field(default="created", init=False)


@dataclass(slots=True)
class OutputItemAdded(_Event):
    """An item started streaming; its content arrives as deltas."""

    type: Literal["output_item_added"] = field(default="output_item_added", init=False)
    item: ResponseItem


@dataclass(slots=True)
class OutputItemDone(_Event):
    """An item is complete."""

    type: Literal["output_item_done"] = field(default="output_item_done", init=False)
    item: ResponseItem


@dataclass(slots=True)
class OutputTextDelta(_Event):
    """A piece of the answer's text."""

    type: Literal["output_text_delta"] = field(default="output_text_delta", init=False)
    delta: str


@dataclass(slots=True)
class ReasoningContentDelta(_Event):
    """A piece of the reasoning's text."""

    type: Literal["reasoning_content_delta"] = field(default="reasoning_content_delta", init=False)
    delta: str


@dataclass(slots=True)
class RefusalDelta(_Event):
    """A piece of the model's refusal to answer (D23); it is not answer text."""

    type: Literal["refusal_delta"] = field(default="refusal_delta", init=False)
    delta: str


@dataclass(slots=True)
class ReasoningSummaryDelta(_Event):
    """A piece of a reasoning summary; Chat Completions never produces it."""

    type: Literal["reasoning_summary_delta"] = field(default="reasoning_summary_delta", init=False)
    delta: str


@dataclass(slots=True)
class ReasoningSummaryPartAdded(_Event):
    """A reasoning summary part started; Chat Completions never produces it."""

    type: Literal["reasoning_summary_part_added"] = field(
        default="reasoning_summary_part_added", init=False
    )


@dataclass(slots=True)
class RateLimits(_Event):
    """The provider's rate-limit windows; Chat Completions never produces them."""

    type: Literal["rate_limits"] = field(default="rate_limits", init=False)
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None


@dataclass(slots=True)
class Completed(_Event):
    """The turn ended normally.

    `response_id` is the first id a chunk carried (D17), `token_usage` the last complete
    usage (D6, D11), `finish_reason` the provider's (D7), and `moderation` the last
    moderation report OpenAI sent, as sent, left out of dumps when there was none (D21).
    """

    type: Literal["completed"] = field(default="completed", init=False)
    response_id: str = ""
    token_usage: TokenUsage | None = None
    finish_reason: str | None = None
    moderation: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return without_absent(handler(self), ("moderation",))


ErrorKind = Literal[
    "stream",
    "idle_timeout",
    "unexpected_status",
    "retry_limit",
    "connection_failed",
    "unsupported_operation",
]


_ERROR_DETAILS = ("provider_error", "finish_reason", "token_usage", "moderation")


@dataclass(slots=True)
class ErrorEvent(_Event):
    """The turn failed; nothing follows it.

    `kind` says what failed, `status` is the HTTP status where there is one, and `message`
    quotes the provider's own message where it sent one. What the provider said besides
    is kept, and left out of dumps when absent: its whole error object (`provider_error`,
    D19), and the finish reason, usage and moderation report it sent before failing (D20).
    """

    type: Literal["error"] = field(default="error", init=False)
    kind: ErrorKind
    message: str
    status: int | None = None
    provider_error: Any = None
    finish_reason: str | None = None
    token_usage: TokenUsage | None = None
    moderation: dict[str, Any] | None = None

    @property
    def code(self) -> str | int | None:
        """The provider's error `code` (``"tool_use_failed"``, ``429``...), if it sent one."""
        code = self._provider_field("code")
        return code if isinstance(code, str | int) and not isinstance(code, bool) else None

    @property
    def error_type(self) -> str | None:
        """The provider's error `type` (``"invalid_request_error"``...), if it sent one."""
        error_type = self._provider_field("type")
        return error_type if isinstance(error_type, str) else None

    @property
    def provider_status(self) -> int | None:
        """The HTTP status the provider names inside its error (Groq's `status_code`)."""
        status = self._provider_field("status_code")
        return status if type(status) is int else None

    def _provider_field(self, key: str) -> Any:
        error = self.provider_error
        return error.get(key) if isinstance(error, dict) else None

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return without_absent(handler(self), _ERROR_DETAILS)


ResponseEvent = Annotated[
    Created
    | OutputItemAdded
    | OutputItemDone
    | OutputTextDelta
    | ReasoningContentDelta
    | RefusalDelta
    | ReasoningSummaryDelta
    | ReasoningSummaryPartAdded
    | RateLimits
    | Completed
    | ErrorEvent,
    Field(discriminator="type"),
]
