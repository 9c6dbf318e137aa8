"""Which cassette answers a request: the one served, or in a folder, the one a header names.

Each cassette is served by one `CassetteTransport`, made when a request first asks for it
(a single cassette: when the server is made, so that a broken one stops it from starting)
and kept for the server's life, so that what it played and what it records are shared by
every client. Cassettes match requests as the transports do (method, URL, JSON body by
meaning), with two differences a server needs: the origin does not count (clients send to
the server, not to the provider the cassette was recorded from), and once every recording
of a request is played they are played again from the first (many clients ask the same).

A folder's cassettes are known by their resolved paths, so that two names of one file
(``a``, ``sub/../a``, a symbolic link) share its transport and its writer; a file whose
resolved path is outside the folder is not served.
"""

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import httpx

from llmx_replay._exceptions import InputError, NoMatchingInteraction
from llmx_replay._files import CASSETTE_SUFFIXES, cassette_path
from llmx_replay._options import RecordMode, ReplayOptions
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.cassette._writer import RunLedger
from llmx_replay.transports._cassette import CassetteTransport

LOGGER = logging.getLogger("llmx_replay.serve")

CASSETTE_HEADER = "x-llmx-cassette"
"""The request header that names the cassette of a served folder to answer from."""


class ServedCassettes:
    """The cassette at `source`, or every cassette in the folder `source`.

    Recordings go through `upstream` (an origin's transport), in `record_mode`; `run_ledger`
    and `max_age` are the transports' (see `CassetteTransport`).

    Raises:
        InputError: `source` cannot be served (missing, broken, too old, a .json to record).
    """

    def __init__(
        self,
        source: Path,
        *,
        record_mode: RecordMode,
        options: ReplayOptions,
        scrubber: Scrubber,
        upstream: httpx.AsyncBaseTransport | None,
        run_ledger: RunLedger | None = None,
        max_age: timedelta | None = None,
    ) -> None:
        if not source.exists() and (record_mode is RecordMode.NONE or source.suffix == ""):
            raise InputError(str(source), "no such cassette or folder")
        self.source = source
        self.folder = source.is_dir()
        self.record_mode = record_mode
        self._options = options
        self._scrubber = scrubber
        self._upstream = upstream
        self._run_ledger = run_ledger
        self._max_age = max_age
        self._resolved_folder = source.resolve()
        self._transports: dict[Path, CassetteTransport] = {}
        self._opening: dict[Path, asyncio.Task[CassetteTransport]] = {}
        self._unreadable: set[Path] = set()
        self._listing: list[Path] | None = None
        if not self.folder:
            self._transports[source] = self._open(source)

    @property
    def transports(self) -> dict[Path, CassetteTransport]:
        """The cassettes opened so far, by path (resolved, in a folder)."""
        return self._transports

    def _inside(self, path: Path) -> Path | None:
        """`path` resolved, if that is inside the served folder."""
        resolved = path.resolve()
        return resolved if resolved.is_relative_to(self._resolved_folder) else None

    def path_named(self, name: str | None) -> Path:
        """The cassette a request's header names (None: no header).

        Raises:
            InputError: the header names no cassette this server may serve.
        """
        if not self.folder:
            if name is not None and name not in (self.source.name, self.source.stem):
                raise InputError(
                    CASSETTE_HEADER,
                    f"names {name!r}, but this server serves one cassette, {self.source}",
                )
            return self.source
        if name is None:
            raise InputError(CASSETTE_HEADER, "names no cassette")
        inside = (
            None
            if not name or Path(name).is_absolute()
            else self._inside(cassette_path(self.source, name))
        )
        if inside is None:
            raise InputError(
                CASSETTE_HEADER, f"{name!r} is not the name of a cassette in {self.source}"
            )
        return inside

    def _scan(self) -> list[Path]:
        """The cassette files under the served folder, by name, each resolved once."""
        found: dict[Path, None] = {}
        for path in sorted(self.source.rglob("*")):
            if path.suffix in CASSETTE_SUFFIXES and path.is_file():
                inside = self._inside(path)
                if inside is not None:
                    found.setdefault(inside)
        return list(found)

    async def transport(self, path: Path) -> CassetteTransport:
        """The transport of the cassette at `path`, opened once.

        A cassette is read in a worker thread, so that a large one does not hold up the
        streams being served.
        """
        transport = self._transports.get(path)
        if transport is not None:
            return transport
        opening = self._opening.get(path)
        if opening is None:
            opening = self._opening[path] = asyncio.create_task(asyncio.to_thread(self._open, path))
        try:
            transport = await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(path, None)
        self._transports[path] = transport
        return transport

    def _open(self, path: Path) -> CassetteTransport:
        transport = CassetteTransport(
            path,
            self.record_mode,
            self._options,
            inner=self._upstream,
            scrubber=self._scrubber,
            run_ledger=self._run_ledger,
            max_age=self._max_age,
            any_origin=True,
            repeat=True,
            remembers=False,
        )
        transport.require_yaml()
        return transport

    async def answering(self, request: httpx.Request, name: str | None) -> CassetteTransport:
        """The cassette that answers `request` (or records it), by its header's `name`.

        Without a name, a folder's cassettes are asked in order of their names.

        Raises:
            InputError: the header names no cassette this server may serve.
            NoMatchingInteraction: no cassette answers it, and none may record it.
        """
        if not self.folder:
            self.path_named(name)
            return self._transports[self.source]
        if name is None:
            return await self._first_answering(request)
        path = self.path_named(name)
        known = path in self._transports
        if not known and self.record_mode is RecordMode.NONE and not path.is_file():
            # Not opened: a wrong name must not cost a transport kept for the server's life.
            raise NoMatchingInteraction(
                str(path),
                request.method,
                str(request.url),
                request.content,
                None,
                reason="there is no such cassette, and record mode 'none' never records",
            )
        return await self.transport(path)

    async def _first_answering(self, request: httpx.Request) -> CassetteTransport:
        """The first cassette of the folder that answers `request`.

        The folder is listed once, and again when none answers (a cassette may have been
        added since).
        """
        unanswering: list[CassetteTransport] = []
        asked: set[Path] = set()
        listings = [self._listing] if self._listing is not None else []
        for listing in [*listings, None]:
            if listing is None:
                listing = self._listing = await asyncio.to_thread(self._scan)
            for path in listing:
                if path in asked or path in self._unreadable:
                    continue
                asked.add(path)
                try:
                    transport = await self.transport(path)
                except InputError as error:
                    # A folder may hold other files (conversations, fixtures): each is said
                    # once.
                    self._unreadable.add(path)
                    LOGGER.warning("left out: %s", error)
                    continue
                if transport.policy.replays and transport.player.can_answer(request):
                    return transport
                unanswering.append(transport)
        misses = [transport.player.miss(request) for transport in unanswering]
        raise _closest(self.source, request, misses, self.record_mode)

    async def aclose(self) -> None:
        """End what is being recorded and sync the cassettes written to the disk.

        Every cassette is closed, whatever closing another raised; the first error is
        raised after.
        """
        errors: list[Exception] = []
        for transport in self._transports.values():
            try:
                await transport.aclose()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]


def _closest(
    folder: Path,
    request: httpx.Request,
    misses: list[NoMatchingInteraction],
    record_mode: RecordMode,
) -> NoMatchingInteraction:
    """The miss of the cassette whose closest recording differs least from `request`."""
    recording = "; to record it, name a cassette with the header X-Llmx-Cassette"
    why = "no cassette of the folder records it" + (
        recording if record_mode is not RecordMode.NONE else ""
    )
    candidates = [miss for miss in misses if miss.closest is not None]
    if not candidates:
        return NoMatchingInteraction(
            str(folder), request.method, str(request.url), request.content, None, reason=why
        )
    best = min(candidates, key=lambda miss: (len(miss.differences), miss.more_differences))
    return NoMatchingInteraction(
        best.cassette,
        best.method,
        best.url,
        best.body,
        best.closest,
        best.differences,
        best.more_differences,
        why,
    )
