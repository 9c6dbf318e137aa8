"""The Chat Completions request: its JSON body, and the whole HTTP request to send."""

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmx_replay.models._base import OmitNone
from llmx_replay.models.items import ExecAction, LocalShellStatus
from llmx_replay.models.tools import JsonSchema


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TextPart(_Body):
    """A text part of a message's content."""

    type: Literal["text"] = "text"
    text: str


class ImageUrl(_Body):
    """The URL of an image part."""

    url: str


class ImagePart(_Body):
    """An image part of a message's content."""

    type: Literal["image_url"] = "image_url"
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCallBody(_Body):
    """The function a tool call calls, and its arguments as JSON text."""

    name: str
    arguments: str


class FunctionToolCall(_Body):
    """An assistant's call of a function tool, as a `tool_calls` entry."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCallBody


class LocalShellToolCall(_Body):
    """An assistant's local shell call, as a `tool_calls` entry."""

    id: str
    type: Literal["local_shell_call"] = "local_shell_call"
    status: LocalShellStatus
    action: ExecAction


class CustomCallBody(_Body):
    """The custom tool a tool call calls, and the text it gives it."""

    name: str
    input: str


class CustomChatToolCall(_Body):
    """An assistant's call of a custom tool, as a `tool_calls` entry."""

    id: str | None
    type: Literal["custom"] = "custom"
    custom: CustomCallBody


ToolCall = Annotated[
    FunctionToolCall | LocalShellToolCall | CustomChatToolCall, Field(discriminator="type")
]


class ChatMessage(OmitNone):
    """One entry of `messages`. `content` is always written, as `null` for tool calls."""

    _always_written: ClassVar[frozenset[str]] = frozenset({"content"})

    role: str
    tool_call_id: str | None = None
    content: str | list[ContentPart] | None
    tool_calls: list[ToolCall] | None = None
    reasoning: str | None = None


class FunctionDefinition(_Body):
    """A function tool as the model sees it: name, description, strictness and parameters."""

    name: str
    description: str
    strict: bool
    parameters: JsonSchema


class CacheControl(_Body):
    """Anthropic's prompt-cache marker, set on the last tool (seed §5)."""

    type: Literal["ephemeral"] = "ephemeral"


class ChatTool(OmitNone):
    """One entry of `tools`: a function tool, the last one carrying Anthropic's cache marker."""

    type: Literal["function"] = "function"
    function: FunctionDefinition
    cache_control: CacheControl | None = None


class ChatCompletionsBody(OmitNone):
    """The JSON body of a streaming `POST /chat/completions`."""

    model: str
    messages: list[ChatMessage]
    stream: bool = True
    tools: list[ChatTool] | None = None
    max_tokens: int | None = None


class ChatRequest(_Body):
    """Everything the client sends: URL, headers in order (repeats allowed) and body bytes."""

    url: str
    headers: list[tuple[str, str]]
    body: bytes
