"""`use_cassette`: a cassette for code outside pytest, every httpx and httpx2 client through it."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmx_replay._options import RecordMode
from llmx_replay.harness._session import CassetteOptions, CassetteSession


@contextmanager
def use_cassette(
    path: str | Path, record_mode: RecordMode | str | None = None, **options: Any
) -> Iterator[CassetteSession]:
    """Replay, or record, every httpx and httpx2 client of the process with the cassette.

    Meanwhile the clients the code builds itself (the openai SDK's, an application's own
    ``httpx.Client()``) go through the cassette at `path`, with no wiring; a cassette that
    only replays also closes the network (see `CassetteOptions.block_network`)::

        with llmx_replay.use_cassette("cassettes/chat.yaml") as cassette:
            answer = my_app.ask("Say hi")
        assert cassette.misses == []

    Args:
        path: The cassette file.
        record_mode: See `RecordMode`; by default ``none`` when the ``CI`` environment
            variable is set, else ``once``.
        **options: The keywords of `CassetteOptions` (``pacing``, ``faults``,
            ``match_ignore``, ``scrubber``...).

    Yields:
        The `CassetteSession`: its requests, misses, clients and `play()`.

    Raises:
        OptionError: an option has a value it cannot take.
        RuntimeError: another cassette is intercepting already.
    """
    with (
        CassetteSession(Path(path), CassetteOptions(**options), record_mode) as session,
        session.intercepting(),
        session.closed_network(str(path)),
    ):
        yield session
