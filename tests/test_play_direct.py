"""`play` without the HTTP detour: a body served unchanged (instant pacing, no faults) goes
straight to the pipeline in large pieces, and the output is written in large pieces.

What is printed must not change: every bundled cassette, and every cassette of the corpus when
there is one (see ``tests/corpus/conftest.py``), is played both ways in each mode and format,
and the bytes compared. The slices a body without recorded chunks is cut into are checked to
give the pipeline's events for one-event chunks, as `ReplayTransport` serves it.
"""

import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmx_replay import EventPipeline, Faults, ReplayOptions, StreamMode, VirtualClock
from llmx_replay.cassette import RecordedResponse
from llmx_replay.cassette._model import CANCELLED, split_events
from llmx_replay.cli import cli
from llmx_replay.cli._render import jsonl_line
from llmx_replay.harness import _playback
from llmx_replay.models import FunctionCall, Message, OutputText, Reasoning, ReasoningText
from llmx_replay.models.events import (
    Completed,
    Created,
    ErrorEvent,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RateLimits,
    RateLimitWindow,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    RefusalDelta,
    ResponseEvent,
    TokenUsage,
)
from llmx_replay.stream._sse import MAX_EVENT_VARIABLE
from tests.corpus.conftest import cassette_names, corpus_root

BUNDLED = Path(__file__).resolve().parent.parent / "cassettes"
MODES: tuple[StreamMode, ...] = get_args(StreamMode)
FORMATS = ("text", "jsonl")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`cassette` is each bundled cassette, then each of the corpus's when there is one."""
    if "cassette" not in metafunc.fixturenames:
        return
    bundled = sorted(path for path in BUNDLED.rglob("*") if path.suffix in (".yaml", ".json"))
    cassettes = {f"bundled/{path.relative_to(BUNDLED).as_posix()}": path for path in bundled}
    corpus = corpus_root(metafunc.config)
    if corpus is not None and corpus.is_dir():
        cassettes.update({f"corpus/{name}": corpus / name for name in cassette_names(corpus)})
    metafunc.parametrize("cassette", cassettes.values(), ids=cassettes.keys())


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def through_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, every body is served through `ReplayTransport`'s response, as before."""
    monkeypatch.setattr(_playback, "served_unchanged", lambda *_: False)


def assert_played_alike(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    direct = run(*args)
    with monkeypatch.context() as patched:
        through_http(patched)
        served = run(*args)
    assert (direct.exit_code, direct.stderr) == (served.exit_code, served.stderr)
    assert direct.stdout_bytes == served.stdout_bytes


# --- the same output ---------------------------------------------------------------------


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_play_prints_the_same_bytes_straight_to_the_pipeline_as_over_http(
    cassette: Path, mode: str, output_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_played_alike(
        monkeypatch, "play", str(cassette), "--mode", mode, "--format", output_format, "--check"
    )


def long_body(events: int, separator: bytes, ending: bytes) -> bytes:
    """`events` text deltas with keep-alive comments, cut by `separator`, then `ending`."""
    blocks = []
    for index in range(events):
        delta = orjson.dumps({"choices": [{"delta": {"content": f"wörd {index} "}}]})
        blocks.append(b": keep-alive" + separator if index % 97 == 0 else b"")
        blocks.append(b"data: " + delta + separator)
    return b"".join(blocks) + ending


STOP = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
LONG_BODIES = {
    # 4,000 events of ~55 bytes: a few 64 KiB slices, then the last events one by one.
    "lf": long_body(4000, b"\n\n", STOP + b"data: [DONE]\n\n"),
    "crlf": long_body(4000, b"\r\n\r\n", b"data: [DONE]\r\n\r\n"),
    "cr": long_body(4000, b"\r\r", b"data: [DONE]\r\r"),
    "lf-crlf-mixed": long_body(4000, b"\n\r\n", b"data: [DONE]\n\n"),
    "cut-short": long_body(4000, b"\n\n", b'data: {"choices":[{"delta":{"content":"unfinis'),
    "invalid-utf8": long_body(2500, b"\n\n", b"data: \xff\n\n") + long_body(2500, b"\n\n", b""),
    "invalid-utf8-after-done": long_body(4000, b"\n\n", b"data: [DONE]\n\ndata: \xff\n\n"),
}


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body", LONG_BODIES.values(), ids=LONG_BODIES.keys())
def test_play_prints_the_same_bytes_for_a_raw_sse_body_of_several_slices(
    body: bytes, mode: str, output_format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(body) > 2 * _playback.SLICE_BYTES
    path = tmp_path / "long.sse"
    path.write_bytes(body)
    assert_played_alike(
        monkeypatch, "play", str(path), "--mode", mode, "--format", output_format, "--check"
    )


def test_instant_play_without_faults_sends_no_body_through_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("served through ReplayTransport's response")

    monkeypatch.setattr(_playback, "replayed_response", refuse)
    assert run("play", str(BUNDLED / "examples" / "tool-call.yaml")).exit_code == 0


PLAIN = RecordedResponse(status=200, body=b"data: [DONE]\n\n")
INSTANT = ReplayOptions(clock=VirtualClock())


def test_a_whole_success_served_instantly_without_faults_goes_straight_to_the_pipeline() -> None:
    assert _playback.served_unchanged(PLAIN, INSTANT)


@pytest.mark.parametrize(
    ("response", "options"),
    [
        (PLAIN, ReplayOptions(pacing="recorded", clock=VirtualClock())),
        (PLAIN, ReplayOptions(faults=Faults(cut_after=1), clock=VirtualClock())),
        (PLAIN, ReplayOptions(faults=Faults(status=503), clock=VirtualClock())),
        (PLAIN.model_copy(update={"partial": "the body broke off: ReadError: reset"}), INSTANT),
        (PLAIN.model_copy(update={"partial": CANCELLED}), INSTANT),
        (PLAIN.model_copy(update={"headers": [("Content-Encoding", "br")]}), INSTANT),
        (PLAIN.model_copy(update={"status": 429}), INSTANT),
    ],
    ids=["recorded-pacing", "fault", "status-fault", "broke-off", "cancelled", "encoded", "429"],
)
def test_paced_faulty_cut_encoded_or_failed_responses_are_still_served_over_http(
    response: RecordedResponse, options: ReplayOptions
) -> None:
    assert not _playback.served_unchanged(response, options)


# --- slices ------------------------------------------------------------------------------


def pipeline_events(pieces: Iterable[bytes], mode: StreamMode) -> list[ResponseEvent]:
    """What `response_events` gives for a body arriving in `pieces`."""
    pipeline = EventPipeline(mode)
    events: list[ResponseEvent] = []
    for piece in pieces:
        events += pipeline.feed(piece)
        if pipeline.done:
            return events
    return events + pipeline.end()


FRAGMENTS = [
    b'data: {"choices":[{"delta":{"content":"a"}}]}',
    b'data: {"choices":[{"delta":{"reasoning_content":"\xc3\xa9"}}]}',
    b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}',
    b"data: [DONE]",
    b": keep-alive",
    b"event: message",
    b"data: " + b"x" * 60,
    b"data: \xff",
    b"\xef\xbb\xbf",
    b"  ",
    b"{",
]
SEPARATORS = [b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n", b""]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(SEPARATORS))),
    size=st.integers(1, 200),
    max_event_bytes=st.sampled_from(["", "40", "100"]),
    mode=st.sampled_from(MODES),
)
def test_property_slices_give_the_events_of_one_event_chunks(
    pieces: list[tuple[bytes, bytes]], size: int, max_event_bytes: str, mode: StreamMode
) -> None:
    """For any body, slice size and limit on one event's size (the decoder checks it on a
    chunk that completes no event, so where chunks end could change the outcome)."""
    body = b"".join(fragment + separator for fragment, separator in pieces)
    with pytest.MonkeyPatch.context() as patched:
        patched.setenv(MAX_EVENT_VARIABLE, max_event_bytes)
        slices = list(_playback.event_slices(body, size))
        assert b"".join(slices) == body
        assert pipeline_events(slices, mode) == pipeline_events(split_events(body), mode)


def test_slices_end_where_an_event_ends_past_the_slice_size() -> None:
    event = b"data: 1234\n\n"
    body = event * 10 + b"data: unfinished"
    assert list(_playback.event_slices(body, 25)) == [
        *[event * 3] * 3,
        event,
        b"data: unfinished",
    ]


# --- jsonl ------------------------------------------------------------------------------

USAGE = TokenUsage(
    input_tokens=5,
    cached_input_tokens=1,
    output_tokens=2,
    reasoning_output_tokens=1,
    total_tokens=7,
)
MESSAGE = Message(role="assistant", content=[OutputText(text='Hé "quoted" 😀')])
REASONING = Reasoning(summary=[], content=[ReasoningText(text="think")])
SAMPLES: dict[type[Any], list[ResponseEvent]] = {
    Created: [Created()],
    OutputItemAdded: [OutputItemAdded(item=Message(role="assistant", content=[]))],
    OutputItemDone: [
        OutputItemDone(item=MESSAGE),
        OutputItemDone(item=REASONING),
        OutputItemDone(item=FunctionCall(name="f", arguments='{"a":1}', call_id="c")),
    ],
    OutputTextDelta: [OutputTextDelta(delta='Hé "x"\n\t\u0000 😀 </script>')],
    ReasoningContentDelta: [ReasoningContentDelta(delta="")],
    RefusalDelta: [RefusalDelta(delta="no")],
    ReasoningSummaryDelta: [ReasoningSummaryDelta(delta="sum")],
    ReasoningSummaryPartAdded: [ReasoningSummaryPartAdded()],
    RateLimits: [RateLimits(primary=RateLimitWindow(used_percent=12.5, window_minutes=60))],
    Completed: [
        Completed(),
        Completed(response_id="r", token_usage=USAGE, finish_reason="stop", moderation={"a": 1}),
    ],
    ErrorEvent: [
        ErrorEvent(kind="stream", message="m"),
        ErrorEvent(
            kind="unexpected_status",
            message="m",
            status=400,
            provider_error={"code": "x"},
            finish_reason="length",
            token_usage=USAGE,
            moderation={"flagged": True},
        ),
    ],
}


def test_every_event_type_has_a_jsonl_sample() -> None:
    assert set(SAMPLES) == set(get_args(get_args(ResponseEvent)[0]))


@pytest.mark.parametrize(
    "event",
    [event for events in SAMPLES.values() for event in events],
    ids=lambda event: type(event).__name__,
)
def test_jsonl_line_is_the_pydantic_dump_of_the_event(event: ResponseEvent) -> None:
    assert jsonl_line(event) == orjson.dumps(event.model_dump(mode="json")) + b"\n"


# --- writes ------------------------------------------------------------------------------


class CountingBuffer(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, data: Any, /) -> int:
        self.writes += 1
        return super().write(data)

    def flush(self) -> None:
        self.flushes += 1


class Stdout(io.TextIOWrapper):
    """Standard output that says whether it is a terminal, over a `CountingBuffer`."""

    def __init__(self, terminal: bool) -> None:
        super().__init__(CountingBuffer(), encoding="utf-8")
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal

    @property
    def counts(self) -> CountingBuffer:
        assert isinstance(self.buffer, CountingBuffer)
        return self.buffer


LONG = long_body(20_000, b"\n\n", b"data: [DONE]\n\n")


def play_to(stdout: Stdout, path: Path, *options: str) -> bytes:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(sys, "stdout", stdout)
        cli.main(["play", str(path), *options], standalone_mode=False)
    return stdout.counts.getvalue()


@pytest.mark.parametrize("output_format", FORMATS)
def test_play_writes_in_large_pieces_when_not_on_a_terminal(
    output_format: str, tmp_path: Path
) -> None:
    path = tmp_path / "long.sse"
    path.write_bytes(LONG)
    stdout = Stdout(terminal=False)
    output = play_to(stdout, path, "--format", output_format, "--mode", "raw")
    most = len(output) // (64 * 1024) + 1
    assert stdout.counts.writes <= most
    assert stdout.counts.flushes <= most
    assert output == run("play", str(path), "--format", output_format, "--mode", "raw").stdout_bytes


@pytest.mark.parametrize("output_format", FORMATS)
def test_play_flushes_each_event_on_a_terminal(output_format: str, tmp_path: Path) -> None:
    path = tmp_path / "long.sse"
    path.write_bytes(LONG)
    stdout = Stdout(terminal=True)
    play_to(stdout, path, "--format", output_format)
    assert stdout.counts.flushes >= 20_000


@pytest.mark.parametrize("output_format", FORMATS)
def test_play_in_real_time_flushes_each_event_wherever_it_writes(
    output_format: str, tmp_path: Path
) -> None:
    path = tmp_path / "long.sse"
    path.write_bytes(LONG)  # no recorded timing: real time here waits for nothing
    stdout = Stdout(terminal=False)
    play_to(stdout, path, "--format", output_format, "--pacing", "recorded")
    assert stdout.counts.flushes >= 20_000
