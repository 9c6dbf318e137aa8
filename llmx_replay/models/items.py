"""Conversation items in llmx's JSON shapes (the seed's `ResponseItem` and its parts).

Every enum is internally tagged by ``type``. Ids that the seed never serializes are read
when present and excluded from dumps; an item of unknown ``type`` loads as `Other`.
"""

from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    model_serializer,
    model_validator,
)

from llmx_replay.models._base import OmitNone, without_absent


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class InputText(_Model):
    """A text part of a message or of a tool result."""

    type: Literal["input_text"] = "input_text"
    text: str


class InputImage(_Model):
    """An image part of a message or of a tool result, given by its URL."""

    type: Literal["input_image"] = "input_image"
    image_url: str


class OutputText(_Model):
    """A text part of what the model answered."""

    type: Literal["output_text"] = "output_text"
    text: str


class Refusal(_Model):
    """The model's refusal to answer, kept apart from its text (D23), as the Responses API does."""

    type: Literal["refusal"] = "refusal"
    refusal: str


ContentItem = Annotated[InputText | InputImage | OutputText | Refusal, Field(discriminator="type")]
FunctionCallOutputContentItem = Annotated[InputText | InputImage, Field(discriminator="type")]


class SummaryText(_Model):
    """A part of a reasoning item's summary."""

    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningText(_Model):
    """A part of a reasoning item's text."""

    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class Text(_Model):
    """Plain reasoning text; the seed counts it as reasoning text everywhere."""

    type: Literal["text"] = "text"
    text: str


ReasoningContent = Annotated[ReasoningText | Text, Field(discriminator="type")]

_TextPart = TypeVar("_TextPart", OutputText, ReasoningText, SummaryText)
_Part = TypeVar("_Part", OutputText, ReasoningText, SummaryText, Refusal)


def text_parts(kind: type[_TextPart], texts: Iterable[str]) -> list[_TextPart]:
    """``[kind(text=text) for text in texts]``, built without validating each part.

    For a stream's parts, one per delta in its raw and streaming modes (see `_parts_like`).
    """
    return _parts_like(kind(text=""), "text", texts)


def refusal_parts(refusals: Iterable[str]) -> list[Refusal]:
    """``[Refusal(refusal=refusal) for refusal in refusals]``, built as `text_parts` does."""
    return _parts_like(Refusal(refusal=""), "refusal", refusals)


def _parts_like(prototype: _Part, field: str, values: Iterable[str]) -> list[_Part]:
    """Parts equal to `prototype` with `field` set to each of `values`, each a `str`.

    A stream can have 100,000 deltas. Validating a part for each cost more than parsing its
    chunk, half of it in the GC, which walks each part and its own fields set. A `str` is
    all validation would check here, so each part gets a copy of the prototype's state with
    its own value instead, and shares the prototype's fields set: pydantic never changes a
    frozen model's in place (`model_copy` copies it). A value sent again reuses its part,
    as frozen models allow: a long stream repeats its common tokens thousands of times.
    """
    kind = type(prototype)
    copy_state = prototype.__dict__.copy
    fields_set = prototype.__pydantic_fields_set__
    extra = prototype.__pydantic_extra__
    private = prototype.__pydantic_private__
    set_slot = object.__setattr__  # a frozen model refuses its own `__setattr__`
    built: dict[str, _Part] = {}
    parts: list[_Part] = []
    for value in values:
        part = built.get(value)
        if part is None:
            part = built[value] = kind.__new__(kind)
            state = copy_state()
            state[field] = value
            set_slot(part, "__dict__", state)
            set_slot(part, "__pydantic_fields_set__", fields_set)
            set_slot(part, "__pydantic_extra__", extra)
            set_slot(part, "__pydantic_private__", private)
        parts.append(part)
    return parts


_OUTPUT_ITEMS_ADAPTER: TypeAdapter[list[InputText | InputImage]] = TypeAdapter(
    list[FunctionCallOutputContentItem], config=ConfigDict(defer_build=True)
)


class FunctionCallOutputPayload(_Model):
    """A tool result: a plain string, or content items (text and images).

    It serializes as the items array when there are items, else as the string; `success`
    is never serialized, as in the seed.
    """

    content: str
    content_items: list[FunctionCallOutputContentItem] | None = None
    success: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"content": value}
        if isinstance(value, list):
            items = _OUTPUT_ITEMS_ADAPTER.validate_python(value)
            compact = orjson.dumps(_OUTPUT_ITEMS_ADAPTER.dump_python(items, mode="json"))
            return {"content": compact.decode(), "content_items": items}
        return value

    @model_serializer(mode="plain")
    def _to_wire(self) -> Any:
        if self.content_items is not None:
            return [item.model_dump(mode="json") for item in self.content_items]
        return self.content


class ExecAction(_Model):
    """What a local shell call runs: a command, with its timeout, folder, environment and user."""

    type: Literal["exec"] = "exec"
    command: list[str]
    timeout_ms: int | None = None
    working_directory: str | None = None
    env: dict[str, str] | None = None
    user: str | None = None


LocalShellStatus = Literal["completed", "in_progress", "incomplete"]


class SearchAction(_Model):
    """A web search call's action: searching for `query`."""

    type: Literal["search"] = "search"
    query: str


class OtherAction(_Model):
    """A web search call's action other than a search; what it held is not kept."""

    type: Literal["other"] = "other"

    @model_validator(mode="before")
    @classmethod
    def _forget(cls, value: Any) -> Any:
        return {}


def _web_search_action_tag(value: Any) -> str:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "search" if tag == "search" else "other"


WebSearchAction = Annotated[
    Annotated[SearchAction, Tag("search")] | Annotated[OtherAction, Tag("other")],
    Discriminator(_web_search_action_tag),
]


class GhostCommit(_Model):
    """The commit a `GhostSnapshot` records, with the untracked files and folders already there."""

    id: str
    parent: str | None = None
    preexisting_untracked_files: list[str] = []
    preexisting_untracked_dirs: list[str] = []


_MESSAGE_SOURCES = ("annotations", "citations", "search_results")


class Message(_Model):
    """A message of the conversation: who sent it (`role`) and its content parts.

    An answer can carry the sources it was written from (D22), each as the provider sent
    it and left out of dumps when absent: `annotations` (``delta.annotations``, e.g.
    ``url_citation`` objects), and Perplexity's `citations` (URLs) and `search_results`.
    """

    type: Literal["message"] = "message"
    id: str | None = Field(default=None, exclude=True)
    role: str
    content: list[ContentItem]
    annotations: list[dict[str, Any]] | None = None
    citations: list[str] | None = None
    search_results: list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The concatenated text parts (a refusal is not text: see `refusal`)."""
        return "".join(c.text for c in self.content if not isinstance(c, InputImage | Refusal))

    @property
    def refusal(self) -> str | None:
        """The concatenated refusal parts, or None when the model did not refuse."""
        parts = [c.refusal for c in self.content if isinstance(c, Refusal)]
        return "".join(parts) if parts else None

    @model_serializer(mode="wrap")
    def _omit_absent_sources(self, handler: SerializerFunctionWrapHandler) -> Any:
        return without_absent(handler(self), _MESSAGE_SOURCES)


class Reasoning(_Model):
    """The model's reasoning: its summary, its text (`content`) and any encrypted content."""

    type: Literal["reasoning"] = "reasoning"
    id: str = Field(default="", exclude=True)
    summary: list[SummaryText]
    content: list[ReasoningContent] | None = None
    encrypted_content: str | None = None

    @property
    def text(self) -> str:
        """The concatenated reasoning text."""
        return "".join(part.text for part in self.content or ())

    @model_serializer(mode="wrap")
    def _omit_content(self, handler: SerializerFunctionWrapHandler) -> Any:
        # The seed's serializer skips `content` when it holds no `reasoning_text` entry,
        # yet writes `null` when it is absent; kept for byte-compatible item JSON.
        data = handler(self)
        if self.content is not None and not any(
            isinstance(part, ReasoningText) for part in self.content
        ):
            del data["content"]
        return data


class LocalShellCall(_Model):
    """A call of the local shell tool: the action to run, and its status."""

    type: Literal["local_shell_call"] = "local_shell_call"
    id: str | None = Field(default=None, exclude=True)
    call_id: str | None = None
    status: LocalShellStatus
    action: ExecAction


class FunctionCall(_Model):
    """A call of a function tool; `arguments` is the text the model wrote, meant to be JSON."""

    type: Literal["function_call"] = "function_call"
    id: str | None = Field(default=None, exclude=True)
    name: str
    arguments: str
    call_id: str


class FunctionCallOutput(_Model):
    """A function call's result, answering the call with the same `call_id`."""

    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: FunctionCallOutputPayload


class CustomToolCall(OmitNone):
    """A call of a custom (freeform) tool, with the text `input` the model wrote for it."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    type: Literal["custom_tool_call"] = "custom_tool_call"
    id: str | None = Field(default=None, exclude=True)
    status: str | None = None
    call_id: str
    name: str
    input: str


class CustomToolCallOutput(_Model):
    """A custom tool call's result, answering the call with the same `call_id`."""

    type: Literal["custom_tool_call_output"] = "custom_tool_call_output"
    call_id: str
    output: str


class WebSearchCall(OmitNone):
    """A web search the provider ran for the model; it has no Chat form and is never sent."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    type: Literal["web_search_call"] = "web_search_call"
    id: str | None = Field(default=None, exclude=True)
    status: str | None = None
    action: WebSearchAction


class GhostSnapshot(_Model):
    """A snapshot of the working tree kept in the history as a commit; never sent to a model."""

    type: Literal["ghost_snapshot"] = "ghost_snapshot"
    ghost_commit: GhostCommit


class Other(_Model):
    """Any item whose ``type`` llmx does not know; never sent to a model."""

    type: Literal["other"] = "other"

    @model_validator(mode="before")
    @classmethod
    def _forget(cls, value: Any) -> Any:
        return {}


_ITEM_TYPES = frozenset(
    {
        "message",
        "reasoning",
        "local_shell_call",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "web_search_call",
        "ghost_snapshot",
    }
)


def _item_tag(value: Any) -> str | None:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(tag, str):
        return None
    return tag if tag in _ITEM_TYPES else "other"


ResponseItem = Annotated[
    Annotated[Message, Tag("message")]
    | Annotated[Reasoning, Tag("reasoning")]
    | Annotated[LocalShellCall, Tag("local_shell_call")]
    | Annotated[FunctionCall, Tag("function_call")]
    | Annotated[FunctionCallOutput, Tag("function_call_output")]
    | Annotated[CustomToolCall, Tag("custom_tool_call")]
    | Annotated[CustomToolCallOutput, Tag("custom_tool_call_output")]
    | Annotated[WebSearchCall, Tag("web_search_call")]
    | Annotated[GhostSnapshot, Tag("ghost_snapshot")]
    | Annotated[Other, Tag("other")],
    Discriminator(
        _item_tag,
        custom_error_type="invalid_item",
        custom_error_message="an item needs a string 'type'",
    ),
]
