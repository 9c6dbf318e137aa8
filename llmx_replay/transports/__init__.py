"""Record and replay as httpx transports: plug them into any httpx (or httpx2) client."""

from typing import TYPE_CHECKING, Any

from llmx_replay._options import Faults, Pacing, RecordMode, ReplayOptions
from llmx_replay.transports._cassette import CassetteTransport
from llmx_replay.transports._record import RecordingTransport
from llmx_replay.transports._replay import ReplayTransport

__all__ = [
    "CassetteTransport",
    "Faults",
    "Pacing",
    "RecordMode",
    "RecordingTransport",
    "ReplayOptions",
    "ReplayTransport",
]

if TYPE_CHECKING:
    from llmx_replay.transports._httpx2 import Httpx2Transport as Httpx2Transport
    from llmx_replay.transports._httpx2 import for_httpx2 as for_httpx2


def __getattr__(name: str) -> Any:
    """`for_httpx2` and `Httpx2Transport` import httpx2, an optional dependency, on first use."""
    if name in ("Httpx2Transport", "for_httpx2"):
        from llmx_replay.transports import _httpx2

        return getattr(_httpx2, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
