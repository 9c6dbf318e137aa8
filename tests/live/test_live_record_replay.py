"""Record live sessions from aimock and the LiteLLM proxy, then replay them.

Each test records a real streamed exchange on 127.0.0.1 through the recorder, replays the
cassette, and checks that the replay gives exactly the live events (and chunks, and
waits), that nothing secret reached the file, and that recording did not slow the stream.
"""

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from live_support import (
    MODES,
    LiveServer,
    Timing,
    arun_turn,
    assert_no_secrets,
    atime_first_chunk,
    record,
    replay,
    run_turn,
    stream_chunks,
    time_first_chunk,
)

from llmx_replay import ReplayOptions, StreamMode, VirtualClock
from llmx_replay.cassette import load_cassette
from llmx_replay.models import ChatRequest, Completed, ErrorEvent, ResponseEvent
from llmx_replay.transports import CassetteTransport, RecordingTransport, ReplayTransport

pytestmark = pytest.mark.live

# How long each server makes the first token wait ("slow" scenario), in milliseconds.
SLOW_FIRST_TOKEN_MS = {"aimock": 250.0, "litellm": 300.0}
# The recorder may add at most this much to the time to first chunk: the median, over
# interleaved pairs of the same request, of (through the recorder - direct). A paired median
# shrugs off the server's own jitter (LiteLLM's first chunk varies by 10-30 ms between
# requests); the recorder's own work per chunk is microseconds.
MAX_ADDED_MS = 5.0
PAIRS = 21


@pytest.mark.parametrize("mode", MODES)
def test_text_stream(server: LiveServer, mode: StreamMode, tmp_path: Path) -> None:
    provider, turn, cassette = server.provider(), server.turn("text"), tmp_path / "text.yaml"

    live = record(provider, turn, cassette, mode=mode)
    replayed = replay(provider, turn, cassette, mode=mode)

    assert replayed.events == live.events
    last = live.events[-1]
    assert isinstance(last, Completed)
    assert last.finish_reason == "stop"
    [interaction] = assert_no_secrets(cassette, server).interactions
    response = interaction.response
    assert response.status == 200
    assert response.partial is None
    assert response.chunks is not None
    assert sum(size for size, _ in response.chunks) == len(response.body)
    assert response.body.rstrip().endswith(b"data: [DONE]")


@pytest.mark.parametrize("mode", MODES)
def test_text_stream_async(server: LiveServer, mode: StreamMode, tmp_path: Path) -> None:
    """`AsyncChatClient` records through `CassetteTransport(record_mode="all")` and replays
    through `ReplayTransport`; a sync client replays the same cassette identically."""
    provider, turn, cassette = server.provider(), server.turn("text"), tmp_path / "text.yaml"

    recorder = CassetteTransport(cassette, record_mode="all", inner=httpx.AsyncHTTPTransport())
    live = arun_turn(provider, turn, recorder, mode=mode)
    replayer = ReplayTransport(cassette)
    replayed = arun_turn(provider, turn, replayer, mode=mode)
    replayed_sync = run_turn(provider, turn, ReplayTransport(cassette), mode=mode)

    assert replayed.events == live.events
    assert replayed_sync.events == live.events
    assert replayer.unplayed == []
    assert isinstance(live.events[-1], Completed)
    assert len(assert_no_secrets(cassette, server).interactions) == 1


@pytest.mark.parametrize("mode", MODES)
def test_include_usage(server: LiveServer, mode: StreamMode, tmp_path: Path) -> None:
    provider, cassette = server.provider(), tmp_path / "usage.yaml"
    turn = server.turn("usage", include_usage=True)

    live = record(provider, turn, cassette, mode=mode)
    replayed = replay(provider, turn, cassette, mode=mode)

    assert replayed.events == live.events
    last = live.events[-1]
    assert isinstance(last, Completed)
    assert last.token_usage is not None
    assert last.token_usage.total_tokens > 0
    [interaction] = assert_no_secrets(cassette, server).interactions
    assert b'"usage"' in interaction.response.body


@pytest.mark.parametrize(
    ("scenario", "status"), [("rate_limit", 429), ("server_error", 500)], ids=["429", "500"]
)
def test_error_status(server: LiveServer, scenario: str, status: int, tmp_path: Path) -> None:
    """A retryable status, retried once: two identical requests, replayed in recorded order,
    ending in the same error after the same waits."""
    provider = server.provider(request_max_retries=1)
    turn, cassette = server.turn(scenario), tmp_path / f"{status}.yaml"

    live = record(provider, turn, cassette, seed=7)
    replayed = replay(provider, turn, cassette, seed=7)

    assert replayed.events == live.events
    assert replayed.sleeps == live.sleeps
    assert len(live.sleeps) == 1
    [error] = live.events
    assert isinstance(error, ErrorEvent)
    assert (error.kind, error.status) == ("retry_limit", status)
    loaded = assert_no_secrets(cassette, server)
    assert [i.response.status for i in loaded.interactions] == [status, status]
    if server.name == "aimock" and status == 429:
        assert [i.response.header("retry-after") for i in loaded.interactions] == ["2", "2"]
        assert live.sleeps == [2.0]


def _first_chunk_offset(cassette: Path) -> tuple[float, list[tuple[int, float]]]:
    [interaction] = load_cassette(cassette).interactions
    response = interaction.response
    assert response.headers_ms is not None
    assert response.chunks
    return response.headers_ms, list(response.chunks)


@pytest.mark.parametrize("mode", MODES)
def test_slow_first_token(server: LiveServer, mode: StreamMode, tmp_path: Path) -> None:
    """The recording keeps the wait for the first token, and a replay paced as recorded
    makes a `VirtualClock` wait just as long, without really waiting."""
    slow_ms = SLOW_FIRST_TOKEN_MS[server.name]
    provider, turn, cassette = server.provider(), server.turn("slow"), tmp_path / "slow.yaml"

    live = record(provider, turn, cassette, mode=mode)
    headers_ms, chunks = _first_chunk_offset(cassette)
    first_chunk_ms, last_chunk_ms = chunks[0][1], chunks[-1][1]
    assert first_chunk_ms >= slow_ms * 0.95
    # Both servers send their headers with the first chunk.
    assert headers_ms >= slow_ms * 0.95

    clock = VirtualClock()
    start = clock.now()
    seen_at: list[float] = []

    def note(event: ResponseEvent) -> None:
        seen_at.append((clock.now() - start).total_seconds() * 1000)

    replayer = ReplayTransport(cassette, ReplayOptions(pacing="recorded", clock=clock))
    replayed = run_turn(provider, turn, replayer, mode=mode, on_event=note)

    assert replayed.events == live.events
    assert clock.sleeps[0] == pytest.approx(headers_ms / 1000)
    assert sum(clock.sleeps) == pytest.approx(last_chunk_ms / 1000)
    assert seen_at[0] >= first_chunk_ms - 1e-6
    assert seen_at[-1] == pytest.approx(last_chunk_ms)


def test_chunk_boundaries(server: LiveServer, tmp_path: Path) -> None:
    """A plain httpx stream replays in exactly the chunks `iter_bytes()` gave live."""
    request = server.turn("paced").request(server.provider())
    cassette = tmp_path / "paced.yaml"

    status, live = stream_chunks(RecordingTransport(cassette, inner=httpx.HTTPTransport()), request)
    replayer = ReplayTransport(cassette)
    replayed_status, replayed = stream_chunks(replayer, request)

    assert (replayed_status, replayed) == (status, live)
    assert replayer.unplayed == []
    [interaction] = assert_no_secrets(cassette, server).interactions
    assert interaction.response.chunks is not None
    assert [size for size, _ in interaction.response.chunks] == [len(chunk) for chunk in live]
    if server.name == "aimock":  # 11 events paced 15 ms apart: most arrive on their own
        assert len(live) >= 5


def _measure(
    measure: Callable[[str, ChatRequest, Path, int], Timing],
    label: str,
    server: LiveServer,
    tmp_path: Path,
    timings: list[Timing],
) -> Timing:
    """One measurement, and a second one if the first is over the limit: a burst of load on
    a shared machine can spoil a run, but not two in a row. Both are reported."""
    request = server.turn("paced").request(server.provider())
    timing = measure(f"{server.name}, {label}", request, tmp_path / "first.yaml", PAIRS)
    timings.append(timing)
    if timing.added_median >= MAX_ADDED_MS:
        timing = measure(f"{server.name}, {label} (again)", request, tmp_path / "again.yaml", PAIRS)
        timings.append(timing)
    return timing


def test_recording_does_not_delay_the_first_chunk(
    server: LiveServer, tmp_path: Path, timings: list[Timing]
) -> None:
    timing = _measure(time_first_chunk, "sync httpx", server, tmp_path, timings)

    assert timing.added_median < MAX_ADDED_MS, timing.summary()
    assert len(load_cassette(tmp_path / "first.yaml").interactions) == PAIRS + 1


def test_recording_does_not_delay_the_first_chunk_async(
    server: LiveServer, tmp_path: Path, timings: list[Timing]
) -> None:
    timing = _measure(atime_first_chunk, "async httpx", server, tmp_path, timings)

    assert timing.added_median < MAX_ADDED_MS, timing.summary()
