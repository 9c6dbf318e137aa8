"""The `llmx-replay` command line: `payload` and `play`.

Every error is one line on standard error and exit status 2, never a traceback.
"""

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol

import click
import orjson

from llmx_replay._conversation import load_prompt
from llmx_replay._exceptions import InputError, UnsupportedOperation
from llmx_replay._files import read_file
from llmx_replay._pipeline import StreamMode
from llmx_replay._play import play_interaction, play_sse_body
from llmx_replay._render import TextRenderer
from llmx_replay._request import build_body, chat_completions_url
from llmx_replay._version import __version__
from llmx_replay.cassette import looks_like_sse, parse_cassette
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings

_USAGE_ERROR = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"llmx-replay: error: {message}", err=True)
    sys.exit(_USAGE_ERROR)


class _OneLineErrors(click.Group):
    """Reports click's own usage errors in one line, like every other error."""

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
        except InputError as error:
            _fail(str(error))


@click.group(cls=_OneLineErrors)
@click.version_option(__version__, prog_name="llmx-replay")
def cli() -> None:
    """Record, replay and inspect streaming Chat Completions sessions."""


@cli.command()
@click.argument("conversation", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", required=True, help="The model name sent in the body.")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="max_tokens to send (default 8192, as the seed).",
)
@click.option("--no-max-tokens", is_flag=True, help="Send no max_tokens at all.")
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
    if max_tokens is not None and no_max_tokens:
        _fail("--max-tokens and --no-max-tokens exclude each other")
    settings: dict[str, Any] = {}
    if base_url is not None:
        settings["base_url"] = base_url
    if no_max_tokens or max_tokens is not None:
        settings["max_tokens"] = max_tokens
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
def play(source: Path, mode: str, output_format: str) -> None:
    """Play a recorded session through the client and print its events.

    SOURCE is a raw SSE body, or a vcrpy / pytest-recording cassette (YAML or JSON, one
    or more interactions). Every recorded Chat Completions response is played.
    """
    stream_mode: StreamMode = (
        "raw" if mode == "raw" else ("aggregated" if mode == "aggregated" else "streaming")
    )
    data = read_file(source)
    emit: _Writer = _JsonlWriter() if output_format == "jsonl" else _TextWriter()
    if looks_like_sse(data):
        emit.events(play_sse_body(data, mode=stream_mode))
        return
    cassette = parse_cassette(data, str(source))
    played = 0
    for index, interaction in enumerate(cassette.interactions):
        if not interaction.request.is_chat_completions:
            continue
        played += 1
        emit.interaction(
            index, interaction.request.method, interaction.request.uri, interaction.response.status
        )
        emit.events(play_interaction(interaction, mode=stream_mode))
    if not played:
        _fail(f"{source}: holds no Chat Completions interaction (a POST to .../chat/completions)")


class _Writer(Protocol):
    def interaction(self, index: int, method: str, uri: str, status: int) -> None: ...

    def events(self, events: Iterable[ResponseEvent]) -> None: ...


class _JsonlWriter:
    def interaction(self, index: int, method: str, uri: str, status: int) -> None:
        click.echo(orjson.dumps({"type": "interaction", "index": index, "status": status}))

    def events(self, events: Iterable[ResponseEvent]) -> None:
        for event in events:
            click.echo(orjson.dumps(event.model_dump(mode="json")))


class _TextWriter:
    def __init__(self) -> None:
        self._renderer = TextRenderer(sys.stdout)

    def interaction(self, index: int, method: str, uri: str, status: int) -> None:
        self._renderer.line(f"== interaction {index}: {method} {uri} -> {status}")

    def events(self, events: Iterable[ResponseEvent]) -> None:
        for event in events:
            self._renderer.render(event)


def main() -> None:
    """The console script's entry point."""
    cli()
