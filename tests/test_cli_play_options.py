"""`llmx-replay play` with pacing and faults, over llmx-replay cassettes that keep their
recorded chunks and timing, and over raw SSE bodies."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmx_replay import ReplayOptions
from llmx_replay._clock import VirtualClock
from llmx_replay.cassette import (
    Cassette,
    CassetteMetadata,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    save_cassette,
)
from llmx_replay.harness import Playback, play_response
from tests.test_cli import (
    CHAT_URI,
    COMPLETED,
    HELLO_DONE,
    HELLO_SSE,
    HELLO_STREAMING,
    MESSAGE_ADDED,
    REQUEST_BODY,
    STREAM_ERROR,
    assert_one_line_error,
    content,
    jsonl,
    run,
    sse,
)

INTERACTION_0 = {"type": "interaction", "index": 0, "status": 200}
HEL_DELTA = {"type": "output_text_delta", "delta": "Hel"}
LO_DELTA = {"type": "output_text_delta", "delta": "lo"}
HEL_DONE = {
    "type": "output_item_done",
    "item": {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hel"}],
    },
}


def timed_response(
    body: str, *, headers_ms: float, sizes: list[int], offsets: list[float]
) -> RecordedResponse:
    encoded = body.encode()
    assert sum(sizes) == len(encoded)
    return RecordedResponse(
        status=200,
        reason="OK",
        headers=[("content-type", "text/event-stream")],
        body=encoded,
        headers_ms=headers_ms,
        chunks=tuple(zip(sizes, offsets, strict=True)),
    )


def save(path: Path, *responses: RecordedResponse) -> Path:
    request = RecordedRequest(method="POST", uri=CHAT_URI, body=REQUEST_BODY.encode())
    cassette = Cassette(
        interactions=[Interaction(request=request, response=response) for response in responses],
        source_format="llmx-replay",
        metadata=CassetteMetadata(toolkit="0.1.0", recorded_at="2026-01-01T00:00:00+00:00"),
    )
    save_cassette(path, cassette)
    return path


def split_unevenly(body: str) -> list[int]:
    """Chunk sizes that cut events in the middle, as a network does."""
    size = len(body.encode())
    return [7, 30, 1, size - 38]


# Four chunks after headers at 100 ms, the last at 400 ms: in real time, 0.4 s in all.
PACED = timed_response(
    HELLO_SSE,
    headers_ms=100,
    sizes=split_unevenly(HELLO_SSE),
    offsets=[200, 250, 300, 400],
)


@pytest.fixture
def paced(tmp_path: Path) -> Path:
    return save(tmp_path / "paced.yaml", PACED)


@pytest.fixture
def hello_sse(tmp_path: Path) -> Path:
    path = tmp_path / "body.sse"
    path.write_text(HELLO_SSE)
    return path


@pytest.fixture
def real_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every real wait (`time.sleep`) the command asks for, kept here instead of waited: the
    waits are then exact, and no load on the machine can stretch them."""
    asked: list[float] = []
    monkeypatch.setattr(time, "sleep", asked.append)
    return asked


# --- recorded chunks and pacing --------------------------------------------------------


def test_recorded_chunks_that_cut_events_play_the_same_events(paced: Path) -> None:
    assert jsonl(run("play", str(paced), "--format", "jsonl")) == [INTERACTION_0, *HELLO_STREAMING]


def test_recorded_pacing_waits_the_recorded_gaps_on_the_given_clock() -> None:
    clock = VirtualClock()
    events = list(
        play_response(PACED, Playback(replay=ReplayOptions(pacing="recorded", clock=clock)))
    )
    assert [event.model_dump(mode="json") for event in events] == HELLO_STREAMING
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.1])


def test_recorded_pacing_scaled_by_speed() -> None:
    clock = VirtualClock()
    list(
        play_response(
            PACED, Playback(replay=ReplayOptions(pacing="recorded", speed=4, clock=clock))
        )
    )
    assert clock.sleeps == pytest.approx([0.025, 0.025, 0.0125, 0.0125, 0.025])


def elapsed(*args: str) -> float:
    started = time.perf_counter()
    result = run(*args)
    took = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    return took


@pytest.mark.timing
def test_play_pacing_recorded_takes_the_recorded_time(paced: Path) -> None:
    """Real time: the command really waits the recorded 0.4 s. The upper bound only keeps a
    loaded machine from failing it; the exact waits are checked with `real_sleeps` below."""
    assert 0.39 <= elapsed("play", str(paced), "--pacing", "recorded") < 10.0


def test_play_speed_10_takes_a_tenth(paced: Path, real_sleeps: list[float]) -> None:
    """The real clock is asked for a tenth of each recorded gap (100, 100, 50, 50, 100 ms)."""
    assert run("play", str(paced), "--pacing", "recorded", "--speed", "10").exit_code == 0
    assert real_sleeps == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.01])


def test_play_instant_pacing_is_the_default(paced: Path, real_sleeps: list[float]) -> None:
    assert run("play", str(paced)).exit_code == 0
    assert real_sleeps == []


def test_play_pacing_recorded_output_is_unchanged(paced: Path) -> None:
    result = run("play", str(paced), "--pacing", "recorded", "--speed", "100", "--format", "jsonl")
    assert jsonl(result) == [INTERACTION_0, *HELLO_STREAMING]


# --- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["cassette", "sse"])
def test_play_cut_after(source: str, paced: Path, hello_sse: Path) -> None:
    path = paced if source == "cassette" else hello_sse
    events = jsonl(run("play", str(path), "--format", "jsonl", "--cut-after", "2"))
    assert events[-4:] == [HEL_DELTA, LO_DELTA, HELLO_DONE, STREAM_ERROR]


def test_play_drop_done_without_a_finish_reason_is_a_cut_stream(tmp_path: Path) -> None:
    path = tmp_path / "no-finish.sse"
    path.write_text(sse(content("Hel"), content("lo")))
    complete = jsonl(run("play", str(path), "--format", "jsonl", "--mode", "aggregated"))
    assert complete[-1] == {**COMPLETED, "token_usage": None, "finish_reason": None}
    dropped = jsonl(
        run("play", str(path), "--format", "jsonl", "--mode", "aggregated", "--drop-done")
    )
    assert dropped == [HELLO_DONE, STREAM_ERROR]


IDLE_TIMEOUT = {
    "type": "error",
    "kind": "idle_timeout",
    "message": "idle timeout waiting for SSE",
    "status": None,
}


def test_play_stall_after_times_out_at_once_when_instant(
    paced: Path, real_sleeps: list[float]
) -> None:
    events = jsonl(run("play", str(paced), "--format", "jsonl", "--stall-after", "1"))
    assert real_sleeps == []  # not the 300 s idle timeout
    assert events == [INTERACTION_0, MESSAGE_ADDED, HEL_DELTA, HEL_DONE, IDLE_TIMEOUT]


def test_play_stall_shorter_than_the_idle_timeout_is_survived(paced: Path) -> None:
    events = jsonl(
        run("play", str(paced), "--format", "jsonl", "--stall-after", "1", "--stall-seconds", "5")
    )
    assert events == [INTERACTION_0, *HELLO_STREAMING]


def test_play_stall_in_real_time_waits_the_idle_timeout(
    paced: Path, real_sleeps: list[float]
) -> None:
    args = ["play", str(paced), "--format", "jsonl", "--pacing", "recorded", "--speed", "100"]
    args += ["--stall-after", "1", "--stall-seconds", "5", "--idle-timeout", "0.2"]
    events = jsonl(run(*args))
    # The headers (100 ms), the first event (whole at 400 ms), then the idle timeout, not
    # the 5 s stall.
    assert real_sleeps == pytest.approx([0.001, 0.003, 0.2])
    assert events == [INTERACTION_0, MESSAGE_ADDED, HEL_DELTA, HEL_DONE, IDLE_TIMEOUT]


def test_play_error_after(paced: Path) -> None:
    args = ["play", str(paced), "--format", "jsonl", "--error-after", "1"]
    events = jsonl(run(*args, "--error-message", "boom"))
    assert events == [
        INTERACTION_0,
        MESSAGE_ADDED,
        HEL_DELTA,
        HEL_DONE,
        {
            "type": "error",
            "kind": "unexpected_status",
            "message": "boom",
            "status": 200,
            "provider_error": {"message": "boom", "type": "server_error"},
        },
    ]
    default = jsonl(run(*args))
    assert default[-1]["message"] == "llmx-replay injected this error"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (
            503,
            {
                "type": "error",
                "kind": "retry_limit",
                "message": "exceeded retry limit, last status: 503 Service Unavailable: "
                "llmx-replay injected status 503",
                "status": 503,
                "provider_error": {"message": "llmx-replay injected status 503"},
            },
        ),
        (
            400,
            {
                "type": "error",
                "kind": "unexpected_status",
                "message": "unexpected status 400 Bad Request: llmx-replay injected status 400",
                "status": 400,
                "provider_error": {"message": "llmx-replay injected status 400"},
            },
        ),
    ],
)
def test_play_status(paced: Path, status: int, error: dict[str, object]) -> None:
    """The header says the status the client got, and the recorded one it replaced."""
    events = jsonl(run("play", str(paced), "--format", "jsonl", "--status", str(status)))
    assert events == [{**INTERACTION_0, "status": status, "recorded_status": 200}, error]


def test_play_status_text_header_says_the_status_was_injected(paced: Path) -> None:
    header = run("play", str(paced), "--status", "503").stdout.splitlines()[0]
    assert header.endswith(" -> 503 (injected by --status; recorded 200)")


def test_play_check_exits_1_naming_the_turns_that_ended_in_an_error(tmp_path: Path) -> None:
    path = save(tmp_path / "two.yaml", PACED, PACED)
    assert run("play", str(path), "--check").exit_code == 0
    cut = run("play", str(path), "--check", "--cut-after", "1")
    assert cut.exit_code == 1
    assert cut.stderr == (
        f"llmx-replay: {path}: ended in an error: interaction 0 (stream), interaction 1 (stream)\n"
    )
    assert run("play", str(path), "--cut-after", "1").exit_code == 0  # without --check


def test_play_check_judges_a_raw_sse_body_too(tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n')
    result = run("play", str(path), "--check")
    assert result.exit_code == 1
    assert result.stderr == f"llmx-replay: {path}: ended in an error: the stream (stream)\n"


def test_play_faults_apply_to_every_interaction(tmp_path: Path) -> None:
    path = save(tmp_path / "two.yaml", PACED, PACED)
    events = jsonl(run("play", str(path), "--format", "jsonl", "--cut-after", "0"))
    assert events == [
        INTERACTION_0,
        STREAM_ERROR,
        {**INTERACTION_0, "index": 1},
        STREAM_ERROR,
    ]


def test_play_faults_in_text_format(paced: Path) -> None:
    result = run("play", str(paced), "--stall-after", "1")
    assert result.stdout.splitlines() == [
        f"== interaction 0: POST {CHAT_URI} -> 200",
        "Hel",
        "[error: idle_timeout] idle timeout waiting for SSE",
    ]


# --- invalid values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--speed", "0", "--pacing", "recorded"], ["--speed", "0"]),
        (["--speed", "-2", "--pacing", "recorded"], ["--speed"]),
        (["--speed", "nan", "--pacing", "recorded"], ["--speed", "nan"]),
        (["--speed", "inf", "--pacing", "recorded"], ["--speed", "inf"]),
        (["--speed", "2"], ["--speed", "--pacing recorded"]),
        (["--pacing", "slow"], ["--pacing", "slow"]),
        (["--cut-after", "-1"], ["--cut-after", "-1"]),
        (["--stall-after", "-1"], ["--stall-after"]),
        (["--error-after", "x"], ["--error-after"]),
        (["--status", "99"], ["--status", "99"]),
        (["--status", "600"], ["--status", "600"]),
        (["--status", "200"], ["--status", "200"]),
        (["--stall-seconds", "1"], ["--stall-seconds", "--stall-after"]),
        (["--stall-after", "1", "--stall-seconds", "-1"], ["--stall-seconds"]),
        (["--error-message", "boom"], ["--error-message", "--error-after"]),
        (["--status", "500", "--cut-after", "1"], ["--status"]),
        (["--idle-timeout", "0"], ["--idle-timeout"]),
    ],
)
def test_play_error_invalid_option(paced: Path, options: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run("play", str(paced), *options), *fragments)


def test_play_with_a_vanishingly_small_speed_is_a_one_line_error(hello_sse: Path) -> None:
    assert run("play", str(hello_sse)).exit_code == 0
    result = run("play", str(hello_sse), "--pacing", "recorded", "--speed", "1e-300")
    assert_one_line_error(result, "--speed", "1e-300")


def test_play_with_a_huge_idle_timeout_is_a_one_line_error(hello_sse: Path) -> None:
    assert run("play", str(hello_sse)).exit_code == 0
    result = run("play", str(hello_sse), "--idle-timeout", "1e300", "--stall-after", "0")
    assert_one_line_error(result, "--idle-timeout")


@pytest.mark.parametrize(
    ("output_format", "first"),
    [("text", b"output_item_added"), ("jsonl", b'{"type":"output_item_added"')],
)
def test_play_ends_quietly_when_its_reader_leaves(
    output_format: str, first: bytes, tmp_path: Path
) -> None:
    """`llmx-replay play big.yaml | head -1`: no error line for a pipe the reader closed."""
    path = tmp_path / "long.sse"
    path.write_bytes(
        b"".join(
            b'data: {"choices":[{"index":0,"delta":{"content":"word %d "}}]}\n\n' % n
            for n in range(20_000)
        )
    )
    command = [sys.executable, "-m", "llmx_replay", "play", str(path), "--mode", "raw"]
    process = subprocess.Popen(
        [*command, "--format", output_format],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(first)
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read()
    assert process.wait(timeout=60) == 1
    assert stderr == b""
