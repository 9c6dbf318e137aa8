"""llmx-replay: record, replay and test streaming Chat Completions sessions offline."""

from typing import TYPE_CHECKING, Any

from llmx_replay._aggregate import AggregateMode, Aggregator
from llmx_replay._client import AsyncChatClient, ChatClient
from llmx_replay._clock import Clock, SystemClock, VirtualClock
from llmx_replay._exceptions import (
    InputError,
    LlmxReplayError,
    MissingEnvVarError,
    NoMatchingInteraction,
    SecretInCassette,
    SSEDecodeError,
    UnsupportedOperation,
)
from llmx_replay._pipeline import EventPipeline, StreamMode
from llmx_replay._process import ChatStreamProcessor
from llmx_replay._request import (
    OrphanCallPolicy,
    build_body,
    build_messages,
    build_request,
    chat_completions_url,
    normalize_history,
)
from llmx_replay._sse import ServerSentEvent, SSEDecoder
from llmx_replay._version import __version__

if TYPE_CHECKING:
    from llmx_replay._session import CassetteOptions as CassetteOptions
    from llmx_replay._session import CassetteSession as CassetteSession

__all__ = [
    "AggregateMode",
    "Aggregator",
    "AsyncChatClient",
    "CassetteOptions",
    "CassetteSession",
    "ChatClient",
    "ChatStreamProcessor",
    "Clock",
    "EventPipeline",
    "InputError",
    "LlmxReplayError",
    "MissingEnvVarError",
    "NoMatchingInteraction",
    "OrphanCallPolicy",
    "SSEDecodeError",
    "SSEDecoder",
    "SecretInCassette",
    "ServerSentEvent",
    "StreamMode",
    "SystemClock",
    "UnsupportedOperation",
    "VirtualClock",
    "__version__",
    "build_body",
    "build_messages",
    "build_request",
    "chat_completions_url",
    "normalize_history",
]


def __getattr__(name: str) -> Any:
    """`CassetteSession` and `CassetteOptions` load the cassette reader (and PyYAML) on
    first use, so that the streaming core imports without it."""
    if name in ("CassetteOptions", "CassetteSession"):
        from llmx_replay import _session

        return getattr(_session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
