"""The `llmx-replay` command line: `payload`, `record`, `play`, `inspect` and `diff`.

Every error is one line on standard error and exit status 2, never a traceback.
"""

import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import click
import httpx
import orjson

from llmx_replay._clock import Clock, SystemClock, VirtualClock
from llmx_replay._conversation import load_prompt
from llmx_replay._diff import CATEGORIES, DEFAULT_TIMING_TOLERANCE, diff_recordings
from llmx_replay._exceptions import LlmxReplayError, UnsupportedOperation
from llmx_replay._inspect import inspect_json, inspect_text
from llmx_replay._live import LiveSession
from llmx_replay._play import (
    SSE_FORMAT,
    Playback,
    load_recording,
    play_attempts,
    play_response,
    turns,
)
from llmx_replay._render import TextRenderer
from llmx_replay._request import build_body, build_request, chat_completions_url
from llmx_replay._version import __version__
from llmx_replay.cassette import load_cassette
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.transports import Faults

_USAGE_ERROR = 2
_DIFFERENT = 1

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _fail(message: str) -> NoReturn:
    click.echo(f"llmx-replay: error: {message}", err=True)
    sys.exit(_USAGE_ERROR)


class _OneLineErrors(click.Group):
    """Reports every error in one line: click's usage errors, wrong input (`InputError`
    and the other `LlmxReplayError`s) and files that cannot be read or written."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            return super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help() if error.ctx else str(error))
            sys.exit(_USAGE_ERROR)
        except click.ClickException as error:
            _fail(error.format_message())
        except click.exceptions.Abort:
            _fail("aborted")
        except LlmxReplayError as error:
            _fail(str(error))
        except OSError as error:
            # A cassette that cannot be written (no permission, disk full), said in one line.
            _fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))


@click.group(cls=_OneLineErrors)
@click.version_option(__version__, prog_name="llmx-replay")
def cli() -> None:
    """Record, replay and inspect streaming Chat Completions sessions."""


def _max_tokens_setting(max_tokens: int | None, no_max_tokens: bool) -> dict[str, Any]:
    if max_tokens is not None and no_max_tokens:
        _fail("--max-tokens and --no-max-tokens exclude each other")
    return {"max_tokens": max_tokens} if no_max_tokens or max_tokens is not None else {}


def _max_tokens_options(command: _Command) -> _Command:
    command = click.option("--no-max-tokens", is_flag=True, help="Send no max_tokens at all.")(
        command
    )
    return click.option(
        "--max-tokens",
        type=click.IntRange(min=1),
        default=None,
        help="max_tokens to send (default 8192, as the seed).",
    )(command)


# Waits longer than this are mistakes, and would overflow the clocks' arithmetic.
_A_DAY = 86_400.0


def _finite(option: str, value: float | None) -> None:
    # click's FloatRange lets nan through (no comparison with it holds) and takes inf.
    if value is not None and not math.isfinite(value):
        _fail(f"{option}: expected a finite number, got {value}")


@cli.command()
@click.argument("conversation", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", required=True, help="The model name sent in the body.")
@_max_tokens_options
@click.option(
    "--base-url",
    default=None,
    help="The provider's base URL; the request line goes to standard error.",
)
@click.option(
    "--orphan-calls",
    type=click.Choice(["abort", "truncate"]),
    default="abort",
    show_default=True,
    help="Answer unanswered tool calls with 'aborted', or cut the history there "
    "as the Rust client does.",
)
@click.option("--compact", is_flag=True, help="Print the exact bytes sent, not indented JSON.")
def payload(
    conversation: Path,
    model: str,
    max_tokens: int | None,
    no_max_tokens: bool,
    base_url: str | None,
    orphan_calls: str,
    compact: bool,
) -> None:
    """Print the JSON body the client would send for CONVERSATION.json, without any network.

    CONVERSATION.json is {"instructions": "...", "input": [items], "tools": [tool specs]},
    items and tools in llmx's JSON shapes.
    """
    settings = _max_tokens_setting(max_tokens, no_max_tokens)
    if base_url is not None:
        settings["base_url"] = base_url
    provider = ProviderSettings(**settings)
    prompt = load_prompt(conversation)
    try:
        body = build_body(
            prompt,
            model,
            provider,
            orphan_calls="truncate" if orphan_calls == "truncate" else "abort",
        )
    except UnsupportedOperation as error:
        _fail(f"{conversation}: output_schema: {error}")
    option = 0 if compact else orjson.OPT_INDENT_2
    click.echo(orjson.dumps(body.model_dump(mode="json"), option=option).decode())
    if base_url is not None:
        click.echo(f"POST {chat_completions_url(provider)}", err=True)


@cli.command()
@click.argument("conversation", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--base-url", required=True, help="The provider's base URL (http or https).")
@click.option("--model", required=True, help="The model name sent in the body.")
@click.option(
    "--api-key-env",
    metavar="VAR",
    default=None,
    help="The environment variable holding the API key, sent as a bearer token.",
)
@_max_tokens_options
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=None,
    help="Retries after a failed attempt (default: the provider's 4); each retry waits "
    "as the server's Retry-After asks, else backs off.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The cassette to write.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing cassette.")
@click.option("--append", is_flag=True, help="Add to an existing cassette.")
def record(
    conversation: Path,
    base_url: str,
    model: str,
    api_key_env: str | None,
    max_tokens: int | None,
    no_max_tokens: bool,
    max_retries: int | None,
    output: Path,
    overwrite: bool,
    append: bool,
) -> None:
    """Send CONVERSATION.json to a live provider, show the session as it streams, and
    record it into a cassette.

    Every response is recorded, a retried failure too, so the cassette replays as the
    session went. Nothing is written when no response arrives.
    """
    settings = _max_tokens_setting(max_tokens, no_max_tokens)
    if overwrite and append:
        _fail("--overwrite and --append exclude each other")
    first_index = 0
    if output.exists():
        if append:
            first_index = len(load_cassette(output).interactions)
        elif not overwrite:
            _fail(
                f"{output}: already exists; pass --overwrite to replace it or --append to add to it"
            )
    if not _is_http_url(base_url):
        _fail(f"--base-url: expected an http:// or https:// URL, got {base_url!r}")
    if api_key_env is not None:
        key = os.environ.get(api_key_env)
        if key is None or not key.strip():
            _fail(f"--api-key-env: the environment variable {api_key_env} is not set or blank")
    provider = ProviderSettings(
        name="record",
        base_url=base_url,
        env_key=api_key_env,
        request_max_retries=max_retries,
        **settings,
    )
    prompt = load_prompt(conversation)
    try:
        request = build_request(prompt, model, provider, environ=os.environ)
    except UnsupportedOperation as error:
        _fail(f"{conversation}: output_schema: {error}")
    renderer = TextRenderer(sys.stdout)
    session = LiveSession(output, append=append, first_index=first_index, report=renderer)
    for event in session.stream(provider, model, request):
        renderer.render(event)
    if not session.recorded:
        _fail(f"{output}: not written: no response came from {request.url}")


def _is_http_url(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


@cli.command()
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--mode",
    type=click.Choice(["raw", "streaming", "aggregated"]),
    default="streaming",
    show_default=True,
    help="raw: the processor's events; streaming: deltas and whole items; "
    "aggregated: whole items only.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="text for people, jsonl for one JSON event per line.",
)
@click.option(
    "--pacing",
    type=click.Choice(["instant", "recorded"]),
    default="instant",
    show_default=True,
    help="instant: every chunk at once; recorded: with the recorded waits, in real time.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001, max=1000),
    default=None,
    metavar="FACTOR",
    help="With --pacing recorded: play this many times faster (2: half the waits).",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True, max=_A_DAY),
    default=None,
    metavar="SECONDS",
    help="The client's idle timeout (default 300), for --stall-after.",
)
@click.option(
    "--cut-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Fault: the body ends after N SSE events, as if the connection dropped.",
)
@click.option("--drop-done", is_flag=True, help="Fault: leave out the data: [DONE] event.")
@click.option(
    "--stall-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Fault: the stream stalls after N events, past the idle timeout unless "
    "--stall-seconds says how long.",
)
@click.option(
    "--stall-seconds",
    type=click.FloatRange(min=0, max=_A_DAY),
    default=None,
    metavar="S",
    help="How long --stall-after stalls.",
)
@click.option(
    "--error-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Fault: an error chunk is sent after N events.",
)
@click.option(
    "--error-message", default=None, metavar="TEXT", help="The message of --error-after's chunk."
)
@click.option(
    "--status",
    type=click.IntRange(min=400, max=599),
    default=None,
    metavar="CODE",
    help="Fault: answer with this HTTP error status and a JSON error instead of the stream.",
)
def play(
    source: Path,
    mode: str,
    output_format: str,
    pacing: str,
    speed: float | None,
    idle_timeout: float | None,
    cut_after: int | None,
    drop_done: bool,
    stall_after: int | None,
    stall_seconds: float | None,
    error_after: int | None,
    error_message: str | None,
    status: int | None,
) -> None:
    """Play a recorded session through the client and print its events.

    SOURCE is a raw SSE body, or a cassette: llmx-replay's, or vcrpy / pytest-recording
    (YAML or JSON, one or more interactions) and the other formats `play` reads. Every
    recorded Chat Completions turn is played (a request answered with 429 or 5xx and sent
    again is one turn, retried as recorded), with its recorded chunks if it has them
    (else one SSE event per chunk). Faults count SSE events and apply to every response.
    """
    faults = _faults(
        cut_after, drop_done, stall_after, stall_seconds, error_after, error_message, status
    )
    if speed is not None and pacing != "recorded":
        _fail("--speed: applies to --pacing recorded only")
    _finite("--speed", speed)
    _finite("--idle-timeout", idle_timeout)
    # Instant replays run on virtual time, so a stall fails at once instead of waiting.
    clock: Clock = SystemClock() if pacing == "recorded" else VirtualClock()
    playback = Playback(
        mode="raw" if mode == "raw" else ("aggregated" if mode == "aggregated" else "streaming"),
        pacing="recorded" if pacing == "recorded" else "instant",
        speed=speed or 1.0,
        faults=faults,
        clock=clock,
        idle_timeout_ms=None if idle_timeout is None else max(round(idle_timeout * 1000), 1),
    )
    recording = load_recording(source)
    emit: _Writer = _JsonlWriter() if output_format == "jsonl" else _TextWriter()
    if recording.source_format == SSE_FORMAT:
        emit.events(play_response(recording.interactions[0].response, playback))
        return
    played = turns(recording)
    if not played:
        _fail(f"{source}: holds no Chat Completions interaction (a POST to .../chat/completions)")
    for turn in played:
        attempts = [recording.interactions[index] for index in turn]
        final = attempts[-1]
        emit.interaction(
            turn[-1],
            final.request.method,
            final.request.uri,
            final.response.status,
            [(index, recording.interactions[index].response.status) for index in turn[:-1]],
        )
        emit.events(play_attempts([attempt.response for attempt in attempts], playback))


_FAULT_FIELD = re.compile(r"\b(cut_after|drop_done|stall_after|stall_seconds|error_after|status)\b")


def _faults(
    cut_after: int | None,
    drop_done: bool,
    stall_after: int | None,
    stall_seconds: float | None,
    error_after: int | None,
    error_message: str | None,
    status: int | None,
) -> Faults:
    if error_message is not None and error_after is None:
        _fail("--error-message: applies to --error-after only")
    try:
        return Faults(
            cut_after=cut_after,
            drop_done=drop_done,
            stall_after=stall_after,
            stall_seconds=stall_seconds,
            error_after=error_after,
            status=status,
            **({} if error_message is None else {"error_message": error_message}),
        )
    except ValueError as error:
        # Faults names its fields; here they are options.
        _fail(_FAULT_FIELD.sub(lambda field: "--" + field[0].replace("_", "-"), str(error)))


_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for one JSON object.",
)


@cli.command("inspect")
@click.argument("cassette", type=click.Path(path_type=Path, dir_okay=False))
@_format_option
def inspect_command(cassette: Path, output_format: str) -> None:
    """Summarize a cassette (or a raw SSE body): per interaction the request, status,
    provider, model, chunks, timing, finish reason, usage and whether it is partial."""
    recording = load_recording(cassette)
    if output_format == "json":
        click.echo(orjson.dumps(inspect_json(recording, str(cassette)), option=orjson.OPT_INDENT_2))
    else:
        click.echo(inspect_text(recording, str(cassette)), nl=False)


@cli.command("diff")
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False))
@_format_option
@click.option(
    "--ignore",
    type=click.Choice(CATEGORIES),
    multiple=True,
    help="Leave out one kind of difference (repeatable).",
)
@click.option(
    "--timing-tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_TIMING_TOLERANCE,
    show_default=True,
    metavar="PERCENT",
    help="Timings within this percentage of the longer one count as equal.",
)
def diff_command(
    a: Path, b: Path, output_format: str, ignore: tuple[str, ...], timing_tolerance: float
) -> None:
    """Compare two recordings of the same conversation, interaction by interaction: text,
    reasoning, tool calls (not their ids), finish reason, usage, chunking and timing.

    Exit status 0 when they are alike, 1 when they differ.
    """
    _finite("--timing-tolerance", timing_tolerance)
    differences = diff_recordings(
        load_recording(a), load_recording(b), timing_tolerance=timing_tolerance, ignore=ignore
    )
    if output_format == "json":
        document = {
            "a": str(a),
            "b": str(b),
            "equal": not differences,
            "differences": [difference.as_json() for difference in differences],
        }
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    else:
        for difference in differences:
            click.echo(difference.line())
        if not differences:
            click.echo("no differences")
    if differences:
        sys.exit(_DIFFERENT)


class _Writer(Protocol):
    def interaction(
        self, index: int, method: str, uri: str, status: int, retried: list[tuple[int, int]]
    ) -> None: ...

    def events(self, events: Iterable[ResponseEvent]) -> None: ...


class _JsonlWriter:
    def interaction(
        self, index: int, method: str, uri: str, status: int, retried: list[tuple[int, int]]
    ) -> None:
        line: dict[str, Any] = {"type": "interaction", "index": index, "status": status}
        if retried:
            line["retried"] = [{"index": earlier, "status": code} for earlier, code in retried]
        click.echo(orjson.dumps(line))

    def events(self, events: Iterable[ResponseEvent]) -> None:
        for event in events:
            click.echo(orjson.dumps(event.model_dump(mode="json")))


class _TextWriter:
    def __init__(self) -> None:
        self._renderer = TextRenderer(sys.stdout)

    def interaction(
        self, index: int, method: str, uri: str, status: int, retried: list[tuple[int, int]]
    ) -> None:
        self._renderer.interaction(index, method, uri, status, retried)

    def events(self, events: Iterable[ResponseEvent]) -> None:
        for event in events:
            self._renderer.render(event)


def main() -> None:
    """The console script's entry point."""
    cli()
