"""Which cassette answers a request: the one served, or in a folder, the one a header names.

Each cassette is served by one `CassetteTransport`, made when a request first asks for it
and kept for the server's life, so that what it played and what it records are shared by
every client. Cassettes match requests as the transports do (method, URL, JSON body by
meaning), with two differences a server needs: the origin does not count (clients send to
the server, not to the provider the cassette was recorded from), and once every recording
of a request is played they are played again from the first (many clients ask the same).
"""

import asyncio
import logging
from pathlib import Path

import httpx

from llmx_replay._exceptions import InputError, NoMatchingInteraction
from llmx_replay._files import CASSETTE_SUFFIXES, cassette_path
from llmx_replay._options import RecordMode, ReplayOptions
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.transports._cassette import CassetteTransport

LOGGER = logging.getLogger("llmx_replay.serve")

CASSETTE_HEADER = "x-llmx-cassette"
"""The request header that names the cassette of a served folder to answer from."""


class ServedCassettes:
    """The cassette at `source`, or every cassette in the folder `source`.

    Recordings go through `upstream` (an origin's transport), in `record_mode`.
    """

    def __init__(
        self,
        source: Path,
        *,
        record_mode: RecordMode,
        options: ReplayOptions,
        scrubber: Scrubber,
        upstream: httpx.AsyncBaseTransport | None,
    ) -> None:
        if not source.exists() and (record_mode is RecordMode.NONE or source.suffix == ""):
            raise InputError(str(source), "no such cassette or folder")
        self.source = source
        self.folder = source.is_dir()
        self.record_mode = record_mode
        if not self.folder:
            self._recordable(source)
        self._options = options
        self._scrubber = scrubber
        self._upstream = upstream
        self._transports: dict[Path, CassetteTransport] = {}
        self._opening: dict[Path, asyncio.Task[CassetteTransport]] = {}
        self._unreadable: set[Path] = set()

    @property
    def transports(self) -> dict[Path, CassetteTransport]:
        """The cassettes opened so far, by path."""
        return self._transports

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
        path = cassette_path(self.source, name)
        folder = self.source.resolve()
        if not name or Path(name).is_absolute() or not path.resolve().is_relative_to(folder):
            raise InputError(
                CASSETTE_HEADER, f"{name!r} is not the name of a cassette in {self.source}"
            )
        self._recordable(path)
        return path

    def _recordable(self, path: Path) -> None:
        """Refuse to record into a cassette that is not YAML."""
        if path.suffix == ".json" and self.record_mode is not RecordMode.NONE:
            raise InputError(
                str(path),
                f"llmx-replay records cassettes as YAML: name it .yaml (record mode "
                f"'{self.record_mode}' may record; a .json cassette is served in 'none')",
            )

    def in_folder(self) -> list[Path]:
        """The cassette files in the served folder, by name."""
        return sorted(
            path
            for path in self.source.rglob("*")
            if path.suffix in CASSETTE_SUFFIXES and path.is_file()
        )

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
        return CassetteTransport(
            path,
            self.record_mode,
            self._options,
            inner=self._upstream,
            scrubber=self._scrubber,
            any_origin=True,
            repeat=True,
        )

    async def answering(self, request: httpx.Request, name: str | None) -> CassetteTransport:
        """The cassette that answers `request` (or records it), by its header's `name`.

        Without a name, a folder's cassettes are asked in order of their names.

        Raises:
            InputError: the header names no cassette this server may serve.
            NoMatchingInteraction: no cassette answers it, and none may record it.
        """
        if not self.folder or name is not None:
            return await self.transport(self.path_named(name))
        misses: list[NoMatchingInteraction] = []
        for path in self.in_folder():
            if path in self._unreadable:
                continue
            try:
                transport = await self.transport(path)
            except InputError as error:
                # A folder may hold other files (conversations, fixtures): each is said once.
                self._unreadable.add(path)
                LOGGER.warning("left out: %s", error)
                continue
            if transport.policy.replays and transport.player.can_answer(request):
                return transport
            misses.append(transport.player.miss(request))
        raise _closest(self.source, request, misses, self.record_mode)

    async def aclose(self) -> None:
        """End what is being recorded and sync the cassettes written to the disk."""
        for transport in self._transports.values():
            await transport.aclose()


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
