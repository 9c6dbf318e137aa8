"""The test harness without pytest.

It holds a test's cassette session, and playback of recorded responses through the protocol.
"""

from llmx_replay.harness._playback import (
    Playback,
    play_attempts,
    play_cassette,
    play_response,
    require_chat_completions,
    turns,
)
from llmx_replay.harness._session import CassetteOptions, CassetteSession, cassette_path

__all__ = [
    "CassetteOptions",
    "CassetteSession",
    "Playback",
    "cassette_path",
    "play_attempts",
    "play_cassette",
    "play_response",
    "require_chat_completions",
    "turns",
]
