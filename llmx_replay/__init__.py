"""llmx-replay: record, replay and test streaming Chat Completions sessions offline.

Everything a test author needs is importable from here. Each name loads its module on first
use, as pydantic's do: importing the package costs next to nothing, so the pytest plugin
adds no start-up time to a run whose tests do not use it, and a name costs only what it
needs (the streaming core loads no cassette reader or PyYAML; `Httpx2Transport` and
`for_httpx2` load httpx2, an optional dependency).
"""

import importlib
from types import FunctionType
from typing import TYPE_CHECKING, Any

from llmx_replay._version import __version__

if TYPE_CHECKING:
    from llmx_replay._client import (
        AsyncChatClient,
        ChatClient,
    )
    from llmx_replay._clock import (
        Clock,
        SystemClock,
        VirtualClock,
    )
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
        TornCassetteWarning,
        UnsupportedOperation,
        UnsupportedWireFormat,
    )
    from llmx_replay._options import (
        Faults,
        Pacing,
        RecordMode,
        RecordPolicy,
        ReplayOptions,
    )
    from llmx_replay.cassette import Scrubber
    from llmx_replay.harness._network import NetworkBlocked
    from llmx_replay.harness._session import (
        CassetteOptions,
        CassetteSession,
    )
    from llmx_replay.harness._use import use_cassette
    from llmx_replay.models import (
        Prompt,
        ProviderSettings,
        ResponseEvent,
    )
    from llmx_replay.serve import CassetteServer
    from llmx_replay.stream._aggregate import (
        AggregateMode,
        Aggregator,
    )
    from llmx_replay.stream._pipeline import (
        EventPipeline,
        StreamMode,
    )
    from llmx_replay.stream._process import ChatStreamProcessor
    from llmx_replay.stream._request import (
        OrphanCallPolicy,
        build_body,
        build_messages,
        build_request,
        chat_completions_url,
        normalize_history,
    )
    from llmx_replay.stream._sse import (
        ServerSentEvent,
        SSEDecoder,
    )
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
    "CassetteServer",
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
    "NetworkBlocked",
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
    "TornCassetteWarning",
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
    "use_cassette",
]

# Where each name lives, loaded on first use.
_LAZY = {
    "Absence": "llmx_replay._exceptions",
    "AggregateMode": "llmx_replay.stream._aggregate",
    "Aggregator": "llmx_replay.stream._aggregate",
    "AsyncChatClient": "llmx_replay._client",
    "CassetteOptions": "llmx_replay.harness._session",
    "CassetteServer": "llmx_replay.serve",
    "CassetteSession": "llmx_replay.harness._session",
    "CassetteTransport": "llmx_replay.transports",
    "ChatClient": "llmx_replay._client",
    "ChatStreamProcessor": "llmx_replay.stream._process",
    "Clock": "llmx_replay._clock",
    "EventPipeline": "llmx_replay.stream._pipeline",
    "Faults": "llmx_replay._options",
    "FieldDifference": "llmx_replay._exceptions",
    "Httpx2Transport": "llmx_replay.transports",
    "InputError": "llmx_replay._exceptions",
    "LlmxReplayError": "llmx_replay._exceptions",
    "MissingEnvVarError": "llmx_replay._exceptions",
    "NetworkBlocked": "llmx_replay.harness._network",
    "NoMatchingInteraction": "llmx_replay._exceptions",
    "OptionError": "llmx_replay._exceptions",
    "OrphanCallPolicy": "llmx_replay.stream._request",
    "Pacing": "llmx_replay._options",
    "Prompt": "llmx_replay.models",
    "ProviderSettings": "llmx_replay.models",
    "RecordMode": "llmx_replay._options",
    "RecordPolicy": "llmx_replay._options",
    "RecordingTransport": "llmx_replay.transports",
    "ReplayOptions": "llmx_replay._options",
    "ReplayTransport": "llmx_replay.transports",
    "ResponseEvent": "llmx_replay.models",
    "SSEDecodeError": "llmx_replay._exceptions",
    "SSEDecoder": "llmx_replay.stream._sse",
    "Scrubber": "llmx_replay.cassette",
    "SecretInCassette": "llmx_replay._exceptions",
    "TornCassetteWarning": "llmx_replay._exceptions",
    "ServerSentEvent": "llmx_replay.stream._sse",
    "StreamMode": "llmx_replay.stream._pipeline",
    "SystemClock": "llmx_replay._clock",
    "UnsupportedOperation": "llmx_replay._exceptions",
    "UnsupportedWireFormat": "llmx_replay._exceptions",
    "VirtualClock": "llmx_replay._clock",
    "build_body": "llmx_replay.stream._request",
    "build_messages": "llmx_replay.stream._request",
    "build_request": "llmx_replay.stream._request",
    "chat_completions_url": "llmx_replay.stream._request",
    "for_httpx2": "llmx_replay.transports",
    "normalize_history": "llmx_replay.stream._request",
    "use_cassette": "llmx_replay.harness._use",
}


def _publish(value: Any) -> Any:
    """Show a class or function as ``llmx_replay.Name``, the way it is imported."""
    if isinstance(value, type | FunctionType):
        value.__module__ = "llmx_replay"
    return value


def __dir__() -> list[str]:
    """The module's names, with those loaded on first use."""
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    """Load a name of `_LAZY` on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _publish(getattr(importlib.import_module(module), name))
    globals()[name] = value
    return value
