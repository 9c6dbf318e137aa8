"""llmx-replay: record, replay and test streaming Chat Completions sessions offline.

Everything a test author needs is importable from here. Names that read or write
cassettes (the transports, `CassetteSession`, `Scrubber`) load the cassette reader and
PyYAML on first use, so that the streaming core imports without them; `Httpx2Transport`
and `for_httpx2` load httpx2, an optional dependency, on first use.
"""

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from llmx_replay._client import AsyncChatClient, ChatClient
from llmx_replay._clock import Clock, SystemClock, VirtualClock
from llmx_replay._exceptions import (
    Absence,
    FieldDifference,
    InputError,
    LlmxReplayError,
    MissingEnvVarError,
    NoMatchingInteraction,
    OptionError,
    SecretInCassette,
    SSEDecodeError,
    UnsupportedOperation,
    UnsupportedWireFormat,
)
from llmx_replay._options import Faults, Pacing, RecordMode, RecordPolicy, ReplayOptions
from llmx_replay._version import __version__
from llmx_replay.models import Prompt, ProviderSettings, ResponseEvent
from llmx_replay.stream._aggregate import AggregateMode, Aggregator
from llmx_replay.stream._pipeline import EventPipeline, StreamMode
from llmx_replay.stream._process import ChatStreamProcessor
from llmx_replay.stream._request import (
    OrphanCallPolicy,
    build_body,
    build_messages,
    build_request,
    chat_completions_url,
    normalize_history,
)
from llmx_replay.stream._sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from llmx_replay.cassette import Scrubber
    from llmx_replay.harness._session import CassetteOptions, CassetteSession
    from llmx_replay.transports import (
        CassetteTransport,
        Httpx2Transport,
        RecordingTransport,
        ReplayTransport,
        for_httpx2,
    )

__all__ = [
    "Absence",
    "AggregateMode",
    "Aggregator",
    "AsyncChatClient",
    "CassetteOptions",
    "CassetteSession",
    "CassetteTransport",
    "ChatClient",
    "ChatStreamProcessor",
    "Clock",
    "EventPipeline",
    "Faults",
    "FieldDifference",
    "Httpx2Transport",
    "InputError",
    "LlmxReplayError",
    "MissingEnvVarError",
    "NoMatchingInteraction",
    "OptionError",
    "OrphanCallPolicy",
    "Pacing",
    "Prompt",
    "ProviderSettings",
    "RecordMode",
    "RecordPolicy",
    "RecordingTransport",
    "ReplayOptions",
    "ReplayTransport",
    "ResponseEvent",
    "SSEDecodeError",
    "SSEDecoder",
    "Scrubber",
    "SecretInCassette",
    "ServerSentEvent",
    "StreamMode",
    "SystemClock",
    "UnsupportedOperation",
    "UnsupportedWireFormat",
    "VirtualClock",
    "__version__",
    "build_body",
    "build_messages",
    "build_request",
    "chat_completions_url",
    "for_httpx2",
    "normalize_history",
]

# Where the names loaded on first use live.
_LAZY = {
    "CassetteOptions": "llmx_replay.harness._session",
    "CassetteSession": "llmx_replay.harness._session",
    "CassetteTransport": "llmx_replay.transports",
    "Httpx2Transport": "llmx_replay.transports",
    "RecordingTransport": "llmx_replay.transports",
    "ReplayTransport": "llmx_replay.transports",
    "Scrubber": "llmx_replay.cassette",
    "for_httpx2": "llmx_replay.transports",
}


def _publish(value: Any) -> Any:
    """Show a class or function as ``llmx_replay.Name``, the way it is imported."""
    if inspect.isclass(value) or inspect.isfunction(value):
        value.__module__ = "llmx_replay"
    return value


for _name in __all__:
    if _name not in _LAZY and not _name.startswith("__"):
        _publish(globals()[_name])
del _name


def __dir__() -> list[str]:
    """The module's names, with those loaded on first use."""
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    """Load the names of `_LAZY` on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _publish(getattr(importlib.import_module(module), name))
    globals()[name] = value
    return value
