"""The `llmx-replay` command group, how its errors are shown, and the options its commands share.

click formats every error; each is shown on one line of standard error with exit status 2:
click's usage errors and bad parameters, and the `LlmxReplayError`s and unreadable or
unwritable files that a command meets, mapped here to click exceptions.
"""

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from llmx_replay._clock import Clock
from llmx_replay._exceptions import LlmxReplayError, OptionError
from llmx_replay._options import Faults, ReplayOptions
from llmx_replay._version import __version__

USAGE_ERROR = 2
"""The exit status of every error (1 is `diff`'s "the recordings differ")."""

_Command = TypeVar("_Command", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A command could not do its work: a file or value it was given is wrong."""

    exit_code = USAGE_ERROR


def _show(error: click.ClickException) -> None:
    click.echo(f"llmx-replay: error: {error.format_message()}", err=True)


class _OneLineErrors(click.Group):
    """Shows each error click raises on one line.

    What a command meets (a bad input file, a file it cannot read or write) is turned into a
    click exception first, so that it is shown the same way.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LlmxReplayError as error:
            raise CommandError(str(error)) from error
        except BrokenPipeError:
            raise  # the reader left (`| head`): click ends quietly, with status 1
        except OSError as error:
            # A cassette that cannot be written (no permission, disk full).
            where = f"{error.filename}: {error.strerror}" if error.filename else str(error)
            raise CommandError(where) from error

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
            sys.exit(USAGE_ERROR)
        except click.ClickException as error:
            _show(error)
            sys.exit(USAGE_ERROR)
        except click.exceptions.Abort:
            _show(click.ClickException("aborted"))
            sys.exit(USAGE_ERROR)


@click.group(cls=_OneLineErrors)
@click.version_option(__version__, prog_name="llmx-replay")
def cli() -> None:
    """Record, replay and inspect streaming Chat Completions sessions."""


def bad_option(ctx: click.Context, error: OptionError) -> click.BadParameter:
    """`error` as click's error for the command's option of the same name.

    The options it mentions are named by their flags.
    """
    params = {param.name: param for param in ctx.command.params}

    def flag(name: str) -> str:
        param = params.get(name)
        return param.opts[0] if param is not None and param.opts else name

    param = params.get(error.option)
    return click.BadParameter(
        error.problem_naming(flag),
        ctx=ctx,
        param=param,
        param_hint=None if param is not None else error.option,
    )


class FiniteFloat(click.FloatRange):
    """A `FloatRange` that also refuses nan and infinity (which FloatRange lets through)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number, if it is finite and in range."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {number}", param, ctx)
        return number


def max_tokens_options(command: _Command) -> _Command:
    """`--max-tokens N` and `--no-max-tokens`, which exclude each other."""
    command = click.option("--no-max-tokens", is_flag=True, help="Send no max_tokens at all.")(
        command
    )
    return click.option(
        "--max-tokens",
        type=click.IntRange(min=1),
        default=None,
        help="max_tokens to send (default 8192, as the seed).",
    )(command)


def max_tokens_setting(max_tokens: int | None, no_max_tokens: bool) -> dict[str, Any]:
    """The provider setting the two max-tokens options ask for."""
    if max_tokens is not None and no_max_tokens:
        raise click.UsageError("--max-tokens and --no-max-tokens exclude each other")
    return {"max_tokens": max_tokens} if no_max_tokens or max_tokens is not None else {}


format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for one JSON object.",
)


A_DAY = 86_400.0
"""Waits longer than this are mistakes, and would overflow the clocks' arithmetic."""

_REPLAY_OPTIONS = (
    click.option(
        "--pacing",
        type=click.Choice(["instant", "recorded"]),
        default="instant",
        show_default=True,
        help="instant: every chunk at once; recorded: with the recorded waits, in real time.",
    ),
    click.option(
        "--speed",
        type=FiniteFloat(min=0.001, max=1000),
        default=None,
        metavar="FACTOR",
        help="With --pacing recorded: play this many times faster (2: half the waits).",
    ),
    click.option(
        "--cut-after",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Fault: the body ends after N SSE events, as if the connection dropped.",
    ),
    click.option("--drop-done", is_flag=True, help="Fault: leave out the data: [DONE] event."),
    click.option(
        "--stall-after",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Fault: the stream stalls after N events, for --stall-seconds, else for good "
        "(play: until the idle timeout).",
    ),
    click.option(
        "--stall-seconds",
        type=FiniteFloat(min=0, max=A_DAY),
        default=None,
        metavar="S",
        help="How long --stall-after stalls.",
    ),
    click.option(
        "--error-after",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Fault: an error chunk is sent after N events.",
    ),
    click.option(
        "--error-message",
        default=None,
        metavar="TEXT",
        help="The message of --error-after's chunk.",
    ),
    click.option(
        "--status",
        type=click.IntRange(min=400, max=599),
        default=None,
        metavar="CODE",
        help="Fault: answer with this HTTP error status and a JSON error instead of the stream.",
    ),
)


def replay_options(command: _Command) -> _Command:
    """The options of how recorded responses are served: pacing, speed and faults.

    The command takes them as ``**replay`` and passes them on to `replay_options_from`.
    """
    for option in reversed(_REPLAY_OPTIONS):
        command = option(command)
    return command


def replay_options_from(
    ctx: click.Context,
    clock: Clock,
    *,
    pacing: str,
    speed: float | None,
    cut_after: int | None,
    drop_done: bool,
    stall_after: int | None,
    stall_seconds: float | None,
    error_after: int | None,
    error_message: str | None,
    status: int | None,
) -> ReplayOptions:
    """The `ReplayOptions` that `replay_options` ask for; a contradiction is a usage error."""
    if speed is not None and pacing != "recorded":
        raise bad_option(ctx, OptionError("speed", "applies to {} recorded only", ["pacing"]))
    if error_message is not None and error_after is None:
        raise bad_option(ctx, OptionError("error_message", "applies to {} only", ["error_after"]))
    try:
        faults = Faults(
            cut_after=cut_after,
            drop_done=drop_done,
            stall_after=stall_after,
            stall_seconds=stall_seconds,
            error_after=error_after,
            status=status,
            **({} if error_message is None else {"error_message": error_message}),
        )
        return ReplayOptions(
            pacing="recorded" if pacing == "recorded" else "instant",
            speed=speed or 1.0,
            faults=faults,
            clock=clock,
        )
    except OptionError as error:
        raise bad_option(ctx, error) from None
