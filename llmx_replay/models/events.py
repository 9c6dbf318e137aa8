"""What a streamed turn yields: the seed's `ResponseEvent` variants, plus errors as values.

Each event dumps to one JSON object whose ``type`` names the variant in snake_case.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmx_replay.models.items import ResponseItem


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TokenUsage(_Event):
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    total_tokens: int


class Created(_Event):
    type: Literal["created"] = "created"


class OutputItemAdded(_Event):
    """An item started streaming; its content arrives as deltas."""

    type: Literal["output_item_added"] = "output_item_added"
    item: ResponseItem


class OutputItemDone(_Event):
    """An item is complete."""

    type: Literal["output_item_done"] = "output_item_done"
    item: ResponseItem


class OutputTextDelta(_Event):
    type: Literal["output_text_delta"] = "output_text_delta"
    delta: str


class ReasoningContentDelta(_Event):
    type: Literal["reasoning_content_delta"] = "reasoning_content_delta"
    delta: str


class ReasoningSummaryDelta(_Event):
    type: Literal["reasoning_summary_delta"] = "reasoning_summary_delta"
    delta: str


class ReasoningSummaryPartAdded(_Event):
    type: Literal["reasoning_summary_part_added"] = "reasoning_summary_part_added"


class RateLimitWindow(_Event):
    used_percent: float
    window_minutes: int | None = None
    resets_in_seconds: int | None = None


class RateLimits(_Event):
    type: Literal["rate_limits"] = "rate_limits"
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None


class Completed(_Event):
    """The turn ended normally. Chat Completions has no response id, so it is always ``""``."""

    type: Literal["completed"] = "completed"
    response_id: str = ""
    token_usage: TokenUsage | None = None
    finish_reason: str | None = None


ErrorKind = Literal[
    "stream",
    "idle_timeout",
    "unexpected_status",
    "retry_limit",
    "connection_failed",
    "unsupported_operation",
]


class ErrorEvent(_Event):
    """The turn failed; nothing follows it.

    `kind` says what failed, `status` is the HTTP status where there is one, and `message`
    quotes the provider's own message where it sent one.
    """

    type: Literal["error"] = "error"
    kind: ErrorKind
    message: str
    status: int | None = None


ResponseEvent = Annotated[
    Created
    | OutputItemAdded
    | OutputItemDone
    | OutputTextDelta
    | ReasoningContentDelta
    | ReasoningSummaryDelta
    | ReasoningSummaryPartAdded
    | RateLimits
    | Completed
    | ErrorEvent,
    Field(discriminator="type"),
]
