"""`llmx-replay play`: a recorded session through the protocol, its events printed."""

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self

import click
import orjson

from llmx_replay._clock import Clock, SystemClock, VirtualClock
from llmx_replay.cassette import SSE_FORMAT, Cassette, load_recording
from llmx_replay.cli._app import (
    A_DAY,
    CommandError,
    FiniteFloat,
    cli,
    replay_options,
    replay_options_from,
)
from llmx_replay.cli._render import TextRenderer, jsonl_line, raw_event_line
from llmx_replay.harness import (
    Playback,
    play_attempts,
    play_response,
    require_chat_completions,
    turns,
)
from llmx_replay.models.events import Completed, ErrorEvent, ResponseEvent

ENDED_IN_AN_ERROR = 1
"""The exit status of `play --check` when a turn ends in an error (errors exit with 2)."""

_WRITE_BYTES = 64 * 1024
"""How much output is gathered before it is written, when standard output is not a terminal."""


@cli.command()
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--mode",
    type=click.Choice(["raw", "streaming", "aggregated"]),
    default="streaming",
    show_default=True,
    help="raw: the processor's events; streaming: deltas and whole items; "
    "aggregated: whole items only. Seen in --format jsonl; text prints the same in each.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="text for people, jsonl for one JSON event per line.",
)
@replay_options
@click.option(
    "--idle-timeout",
    type=FiniteFloat(min=0, min_open=True, max=A_DAY),
    default=None,
    metavar="SECONDS",
    help="The client's idle timeout (default 300), for --stall-after.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit with status 1 when a turn ends in an error event, saying which.",
)
@click.pass_context
def play(
    ctx: click.Context,
    /,
    source: Path,
    mode: str,
    output_format: str,
    idle_timeout: float | None,
    check: bool,
    **replay: Any,
) -> None:
    """Play a recorded session through the client and print its events.

    SOURCE is a raw SSE body, or a cassette: llmx-replay's, or vcrpy / pytest-recording
    (YAML or JSON, one or more interactions) and the other formats `play` reads. Every
    recorded Chat Completions turn is played (a request answered with 429 or 5xx and sent
    again is one turn, retried as recorded), with its recorded chunks if it has them
    (else one SSE event per chunk). Faults count SSE events and apply to every response.
    A response in another API's wire format (Anthropic Messages, OpenAI Responses, Gemini)
    is refused. In the text format, --mode raw prints each of the processor's events on a
    line of its own; streaming and aggregated print the answer.
    """
    # Instant replays run on virtual time, so a stall fails at once instead of waiting.
    clock: Clock = SystemClock() if replay["pacing"] == "recorded" else VirtualClock()
    options = replay_options_from(ctx, clock, **replay)
    playback = Playback(
        "raw" if mode == "raw" else ("aggregated" if mode == "aggregated" else "streaming"),
        options,
        idle_timeout,
    )
    recording = load_recording(source)
    require_chat_completions(recording, str(source))
    # Played in real time, each event is written as it comes, whoever reads it.
    with _Stdout(live=sys.stdout.isatty() or options.pacing == "recorded") as stdout:
        emit: _Writer = (
            _JsonlWriter(stdout) if output_format == "jsonl" else _TextWriter(stdout, mode == "raw")
        )
        endings = _play_all(recording, source, options.faults.status, playback, emit)
    _check(check, source, endings)


def _play_all(
    recording: Cassette, source: Path, status: int | None, playback: Playback, emit: "_Writer"
) -> dict[str, ResponseEvent | None]:
    """Write the events of every turn; returns how each turn (or the raw stream) ended."""
    if recording.source_format == SSE_FORMAT:
        response = recording.interactions[0].response
        return {"the stream": emit.events(play_response(response, playback))}
    played = turns(recording)
    if not played:
        raise CommandError(
            f"{source}: holds no Chat Completions interaction (a POST to .../chat/completions)"
        )
    endings: dict[str, ResponseEvent | None] = {}
    for turn in played:
        attempts = [recording.interactions[index] for index in turn]
        final = attempts[-1]
        emit.interaction(
            _Header(
                turn[-1],
                final.request.method,
                final.request.uri,
                # What the client got: the injected status, when --status injects one.
                final.response.status if status is None else status,
                [(index, recording.interactions[index].response.status) for index in turn[:-1]],
                None if status is None else final.response.status,
            )
        )
        responses = [attempt.response for attempt in attempts]
        endings[f"interaction {turn[-1]}"] = emit.events(play_attempts(responses, playback))
    return endings


def _check(check: bool, source: Path, endings: dict[str, ResponseEvent | None]) -> None:
    """With --check, exit with status 1 naming the turns that ended in an error."""
    failed = [
        f"{turn} ({event.kind})" for turn, event in endings.items() if isinstance(event, ErrorEvent)
    ]
    if check and failed:
        click.echo(f"llmx-replay: {source}: ended in an error: {', '.join(failed)}", err=True)
        sys.exit(ENDED_IN_AN_ERROR)


class _Header(NamedTuple):
    """What opens a turn's events.

    Its last interaction, the status the client got, the attempts retried before it (index,
    status), and the recorded status a fault replaced.
    """

    interaction: int
    method: str
    uri: str
    status: int
    retried: list[tuple[int, int]]
    recorded_status: int | None


class _Stdout:
    """Standard output as bytes, gathered into large writes.

    Its writers flush it after each event when `live` (on a terminal, where a person
    watches the answer arrive, or played in real time); otherwise a flush per event would
    cost more than playing it. What is pending is written when the command ends, unless
    the reader has left (`| head`), where writing again would only fail again.
    """

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self._stream = sys.stdout.buffer
        self._encoding = sys.stdout.encoding
        self._errors = sys.stdout.errors or "strict"
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None or not issubclass(kind, BrokenPipeError):
            self.flush()

    def write(self, text: str) -> None:
        """Write `text` as standard output encodes it."""
        self.write_bytes(text.encode(self._encoding, self._errors))

    def write_bytes(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= _WRITE_BYTES:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._stream.write(data)
        self._stream.flush()


class _Writer(Protocol):
    def interaction(self, header: _Header) -> None: ...

    def events(self, events: Iterable[ResponseEvent]) -> ResponseEvent | None:
        """Write `events`; returns the last."""


class _JsonlWriter:
    def __init__(self, stdout: _Stdout) -> None:
        self._stdout = stdout

    def interaction(self, header: _Header) -> None:
        line: dict[str, Any] = {
            "type": "interaction",
            "index": header.interaction,
            "status": header.status,
        }
        if header.recorded_status is not None:
            line["recorded_status"] = header.recorded_status
        if header.retried:
            line["retried"] = [
                {"index": earlier, "status": code} for earlier, code in header.retried
            ]
        self._stdout.write_bytes(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if self._stdout.live:
            self._stdout.flush()

    def events(self, events: Iterable[ResponseEvent]) -> ResponseEvent | None:
        stdout = self._stdout
        last = None
        for last in events:
            stdout.write_bytes(jsonl_line(last))
            if stdout.live:
                stdout.flush()
        return last


class _TextWriter:
    """Text for people: the answer as it streams.

    With `each_event` (``--mode raw``), each of the processor's events on a line of its own.
    """

    def __init__(self, stdout: _Stdout, each_event: bool) -> None:
        self._renderer = TextRenderer(stdout, live=stdout.live)
        self._each_event = each_event

    def interaction(self, header: _Header) -> None:
        self._renderer.interaction(*header)

    def events(self, events: Iterable[ResponseEvent]) -> ResponseEvent | None:
        last = None
        for last in events:
            if self._each_event and not isinstance(last, Completed | ErrorEvent):
                self._renderer.line(raw_event_line(last))
            else:
                self._renderer.render(last)
        return last
