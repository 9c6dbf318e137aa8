"""The `llmx-replay` command line: `payload`, `record`, `play`, `serve`, `show`, `inspect`, `diff`.

One module per command, each registering itself on the group of `_app`; nothing else in
llmx_replay imports this package. Every error is one line on standard error and exit
status 2, never a traceback.
"""

# Each command module registers its command on `cli` when imported.
from llmx_replay.cli import _diff, _inspect, _payload, _play, _record, _serve, _show  # noqa: F401
from llmx_replay.cli._app import cli

__all__ = ["cli", "main"]


def main() -> None:
    """The console script's entry point."""
    cli()
