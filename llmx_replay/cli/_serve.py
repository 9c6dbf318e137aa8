"""`llmx-replay serve`: cassettes over HTTP, for clients in any language."""

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

from llmx_replay._clock import SystemClock
from llmx_replay._exceptions import OptionError
from llmx_replay._options import RecordMode
from llmx_replay.cli._app import CommandError, bad_option, cli, replay_options, replay_options_from
from llmx_replay.serve import CassetteServer


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    required=True,
    help="The port to listen on (0: a free one, shown in the URL printed).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; another than loopback opens the cassettes to the network.",
)
@click.option(
    "--record-mode",
    type=click.Choice([mode.value for mode in RecordMode]),
    default=None,
    help="When to record through --upstream (default: once with --upstream, 'none' under CI "
    "or without it).",
)
@click.option(
    "--upstream",
    metavar="ORIGIN",
    default=None,
    help="Where a request with no recording is sent and recorded from, with the same path "
    "(http://127.0.0.1:4000).",
)
@replay_options
@click.pass_context
def serve(
    ctx: click.Context,
    /,
    source: Path,
    port: int,
    host: str,
    record_mode: str | None,
    upstream: str | None,
    **replay: Any,
) -> None:
    """Serve a cassette, or a folder of them, over HTTP until Ctrl-C or SIGTERM.

    Point any client at the URL printed on standard output (it is printed once the server
    accepts requests), as you would at the provider: each request is answered from the
    recordings, matched as the pytest fixture matches (method, path and query, JSON body by
    meaning), in the recorded chunks, at once or at the recorded pace, with the faults asked
    for. A folder serves every cassette in it; a request picks one with the header
    X-Llmx-Cassette: NAME (its path in the folder, .yaml optional), else the first that
    answers is used. With --upstream and a recording --record-mode, a request with no
    recording is sent on to the upstream, streamed back as it arrives, and recorded
    (scrubbed) into the cassette. A request nothing answers gets a 404 whose JSON error
    names the closest recording and the fields that differ; the same line is logged on
    standard error.
    """
    options = replay_options_from(ctx, SystemClock(), **replay)
    try:
        server = CassetteServer(
            source,
            host=host,
            port=port,
            record_mode=record_mode,
            upstream=upstream,
            options=options,
        )
    except OptionError as error:
        raise bad_option(ctx, error) from None
    _log_to_stderr()
    mode = server.cassettes.record_mode

    def ready(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()
        through = f" through {upstream}" if upstream and mode is not RecordMode.NONE else ""
        click.echo(
            f"llmx-replay serve: {source}, record mode '{mode}'{through}; Ctrl-C stops", err=True
        )

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever(ready)
    except OptionError as error:  # the port cannot be listened on
        raise bad_option(ctx, error) from None
    except KeyboardInterrupt:
        pass  # uvicorn has stopped, and raised again the signal that stopped it
    finally:
        signal.signal(signal.SIGTERM, previous)
    if server.app.close_error is not None:
        raise CommandError(f"the cassettes could not all be closed: {server.app.close_error}")
    unanswered = server.miss_count
    if unanswered:
        click.echo(f"llmx-replay serve: {unanswered} request(s) had no recording", err=True)
    click.echo("llmx-replay serve: stopped", err=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the command as Ctrl-C does, once uvicorn has stopped."""
    raise KeyboardInterrupt


_LOG_HANDLER = "llmx-replay serve"


def _log_to_stderr() -> None:
    """The server's log lines (a request with no recording, an unreachable upstream).

    Once per process: a command run again in it (a test's) does not print each line twice.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_LOG_HANDLER)
    handler.setFormatter(logging.Formatter("llmx-replay serve: %(message)s"))
    for name, level in (("llmx_replay.serve", logging.INFO), ("uvicorn.error", logging.WARNING)):
        logger = logging.getLogger(name)
        for previous in [h for h in logger.handlers if h.get_name() == _LOG_HANDLER]:
            logger.removeHandler(previous)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
