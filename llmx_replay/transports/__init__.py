"""Record and replay as httpx transports: plug them into any httpx (or httpx2) client."""

from llmx_replay.transports._cassette import CassetteTransport, RecordMode
from llmx_replay.transports._record import RecordingTransport
from llmx_replay.transports._replay import Faults, Pacing, ReplayTransport

__all__ = [
    "CassetteTransport",
    "Faults",
    "Pacing",
    "RecordMode",
    "RecordingTransport",
    "ReplayTransport",
]
