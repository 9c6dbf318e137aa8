"""Playback serves recorded responses straight to the protocol, without HTTP; it must give
exactly what the client gives when `ReplayTransport` serves the same responses.

Both sides run on virtual clocks, for every turn of every bundled cassette, in every mode,
with and without faults; the waits they ask for are compared where no jitter decides them.
"""

from pathlib import Path

import pytest

from llmx_replay import (
    ChatClient,
    Faults,
    ProviderSettings,
    ReplayOptions,
    ReplayTransport,
    ResponseEvent,
    StreamMode,
    VirtualClock,
)
from llmx_replay.cassette import Cassette, load_cassette
from llmx_replay.harness._playback import Playback, play_attempts, turns
from llmx_replay.models.request import ChatRequest

CASSETTES = sorted((Path(__file__).resolve().parent.parent / "cassettes").rglob("*.yaml"))
MODES: list[StreamMode] = ["raw", "streaming", "aggregated"]
FAULTS = {
    "none": Faults(),
    "cut": Faults(cut_after=2),
    "no-done": Faults(drop_done=True),
    "error": Faults(error_after=1),
    "stall": Faults(stall_after=1),
    "short-stall": Faults(stall_after=1, stall_seconds=0.5),
    "status-429": Faults(status=429),
    "status-400": Faults(status=400),
}
IDLE_TIMEOUT_MS = 1000


def through_the_client(
    cassette: Cassette, turn: list[int], mode: StreamMode, faults: Faults, clock: VirtualClock
) -> list[ResponseEvent]:
    """The turn's events as the client receives them from `ReplayTransport`."""
    alone = Cassette(
        interactions=[cassette.interactions[index] for index in turn], source_format="llmx-replay"
    )
    request = alone.interactions[0].request
    transport = ReplayTransport(alone, ReplayOptions(faults=faults, clock=clock))
    provider = ProviderSettings(
        request_max_retries=len(turn) - 1, stream_idle_timeout_ms=IDLE_TIMEOUT_MS
    )
    chat = ChatRequest(url=request.uri, headers=[], body=request.body or b"")
    with ChatClient(
        provider, "m", transport=transport, mode=mode, clock=clock, environ={}
    ) as client:
        return list(client.stream_request(chat))


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", CASSETTES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_playback_gives_the_clients_events_over_the_replay_transport(
    path: Path, mode: StreamMode, faults: Faults
) -> None:
    cassette = load_cassette(path)
    assert turns(cassette), "every bundled cassette holds a turn"
    for turn in turns(cassette):
        transport_clock, playback_clock = VirtualClock(), VirtualClock()
        expected = through_the_client(cassette, turn, mode, faults, transport_clock)

        played = list(
            play_attempts(
                [cassette.interactions[index].response for index in turn],
                Playback(
                    mode,
                    ReplayOptions(faults=faults, clock=playback_clock),
                    IDLE_TIMEOUT_MS / 1000,
                ),
            )
        )

        assert played == expected
        retried_on_backoff = len(turn) > 1 or faults.status == 429
        if not retried_on_backoff:
            assert playback_clock.sleeps == transport_clock.sleeps


def test_playback_of_a_recorded_retry_waits_as_the_response_asked() -> None:
    cassette = load_cassette(
        Path(__file__).resolve().parent.parent
        / "cassettes/test_library/test_rate_limited_then_served.yaml"
    )
    [turn] = turns(cassette)
    clock = VirtualClock()

    events = list(
        play_attempts(
            [cassette.interactions[index].response for index in turn],
            Playback(replay=ReplayOptions(clock=clock)),
        )
    )

    assert [cassette.interactions[index].response.status for index in turn] == [429, 200]
    retry_after = dict(cassette.interactions[turn[0]].response.headers)["retry-after"]
    assert clock.sleeps == [float(retry_after)]
    assert events[-1].type == "completed"
