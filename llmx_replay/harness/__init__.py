"""The test harness without pytest.

It holds a test's cassette session, `use_cassette` for code outside pytest, and playback of
recorded responses through the protocol.
"""

from llmx_replay._files import cassette_path
from llmx_replay.harness._playback import (
    Playback,
    play_attempts,
    play_cassette,
    play_response,
    require_chat_completions,
    turns,
)
from llmx_replay.harness._session import CassetteOptions, CassetteSession
from llmx_replay.harness._use import use_cassette

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
    "use_cassette",
]
