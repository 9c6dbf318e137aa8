"""Playback serves recorded responses straight to the protocol, without HTTP; it must give
exactly what the client gives when `ReplayTransport` serves the same responses.

Both sides run on virtual clocks, for every turn of every bundled cassette, in every mode,
with and without faults; the waits they ask for are compared where no jitter decides them.
"""

import gzip
from pathlib import Path
from typing import Any

import pytest

from llmx_replay import (
    ChatClient,
    Faults,
    Pacing,
    ProviderSettings,
    ReplayOptions,
    ReplayTransport,
    ResponseEvent,
    StreamMode,
    VirtualClock,
)
from llmx_replay.cassette import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    load_cassette,
)
from llmx_replay.harness import Playback, play_attempts, play_response, turns
from llmx_replay.models import ErrorEvent
from llmx_replay.models.request import ChatRequest

BUNDLED = Path(__file__).resolve().parent.parent / "cassettes"
# D24's cassette holds other APIs' streams, to show that they are refused, not played.
OTHER_APIS_DECISION = BUNDLED / "decisions" / "d24-other-wire-apis.yaml"
CASSETTES = sorted(path for path in BUNDLED.rglob("*.yaml") if path != OTHER_APIS_DECISION)
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
    cassette: Cassette,
    turn: list[int],
    mode: StreamMode,
    faults: Faults,
    clock: VirtualClock,
    pacing: Pacing = "instant",
) -> list[ResponseEvent]:
    """The turn's events as the client receives them from `ReplayTransport`."""
    alone = Cassette(
        interactions=[cassette.interactions[index] for index in turn], source_format="llmx-replay"
    )
    request = alone.interactions[0].request
    transport = ReplayTransport(alone, ReplayOptions(pacing, faults=faults, clock=clock))
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


SSE = (
    b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def answer(status: int = 200, body: bytes = SSE, **fields: Any) -> RecordedResponse:
    return RecordedResponse(status=status, reason=fields.pop("reason", "OK"), body=body, **fields)


def cassette_of(*responses: RecordedResponse) -> Cassette:
    request = RecordedRequest(method="POST", uri="http://llm.test/v1/chat/completions", body=b"{}")
    return Cassette(
        interactions=[Interaction(request=request, response=response) for response in responses],
        source_format="llmx-replay",
    )


EDGES = {
    "cut by a read timeout": [
        answer(body=SSE[:60], partial="the body broke off: ReadTimeout: timed out")
    ],
    "cut by a protocol error": [
        answer(body=SSE[:60], partial="the body broke off: RemoteProtocolError: peer closed")
    ],
    "an encoding that could not be decoded": [
        answer(headers=[("content-encoding", "gzip")], body=b"\x1f\x8b not gzip")
    ],
    "an encoded error body": [
        answer(
            400,
            gzip.compress(b'{"error":{"message":"boom"}}'),
            reason="Bad Request",
            headers=[("content-encoding", "gzip")],
        )
    ],
    "a reason that is not ASCII": [answer(400, b'{"error":"x"}', reason="Schlecht \u00fc")],
    "an informational status": [answer(101, b"", reason="Switching Protocols")],
    "the headers after the idle timeout": [answer(headers_ms=5000.0, chunks=((len(SSE), 5000.0),))],
    "an error body that stalls": [
        answer(503, b'{"error":{"message":"slow"}}', chunks=((5, 0.0), (23, 3000.0))),
        answer(),
    ],
}


@pytest.mark.parametrize("pacing", ["instant", "recorded"])
@pytest.mark.parametrize("responses", EDGES.values(), ids=EDGES.keys())
def test_playback_gives_the_clients_events_on_edge_cases(
    responses: list[RecordedResponse], pacing: Pacing
) -> None:
    cassette = cassette_of(*responses)
    turn = list(range(len(responses)))
    transport_clock, playback_clock = VirtualClock(), VirtualClock()
    expected = through_the_client(
        cassette, turn, "streaming", Faults(), transport_clock, pacing=pacing
    )

    played = list(
        play_attempts(
            responses,
            Playback(
                "streaming",
                ReplayOptions(pacing=pacing, clock=playback_clock),
                IDLE_TIMEOUT_MS / 1000,
            ),
        )
    )

    assert played == expected
    if len(responses) == 1:
        assert playback_clock.sleeps == transport_clock.sleeps


def test_a_recorded_timeout_plays_back_as_the_idle_timeout() -> None:
    [event] = [
        event
        for event in play_response(EDGES["cut by a read timeout"][0], Playback())
        if isinstance(event, ErrorEvent)
    ]

    assert (event.kind, event.message) == ("idle_timeout", "idle timeout waiting for SSE")


def test_a_recorded_redirect_is_a_failed_status_since_playback_sends_no_request() -> None:
    redirect = answer(302, b"", reason="Found", headers=[("location", "http://elsewhere.test/")])

    events = list(play_response(redirect, Playback()))

    assert events == [
        ErrorEvent(kind="unexpected_status", message="unexpected status 302 Found", status=302)
    ]
