"""llmx-replay: record, replay and test streaming Chat Completions sessions offline."""

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

__all__ = [
    "AggregateMode",
    "Aggregator",
    "AsyncChatClient",
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
