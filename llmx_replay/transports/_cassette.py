"""The transport most tests use: one cassette file, replayed or recorded by record mode."""

import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import httpx

from llmx_replay._clock import Clock
from llmx_replay._exceptions import InputError, NoMatchingInteraction
from llmx_replay.cassette._load import load_cassette
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import Cassette
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.cassette._writer import CassetteWriter, RunLedger
from llmx_replay.transports._record import Recorder
from llmx_replay.transports._replay import Faults, Pacing, Player


class RecordMode(StrEnum):
    """When to use the network, as in vcrpy and pytest-recording.

    * ``none``: replay only; never touch the network (the default when `CI` is set).
    * ``once``: replay an existing cassette; record one that does not exist yet (the default).
    * ``new_episodes``: replay what is recorded; record what is not.
    * ``all``: always use the network; each recording renews the one made for its request.
    * ``rewrite``: start the cassette anew and record everything.
    """

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    REWRITE = "rewrite"

    @classmethod
    def parse(cls, value: "str | RecordMode") -> "RecordMode":
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            raise InputError("record mode", f"{value!r} is not one of {choices}") from None

    @classmethod
    def default(cls) -> "RecordMode":
        """``none`` when the `CI` variable says so (set, and not empty, 0, false or no)."""
        ci = os.environ.get("CI", "").strip().lower()
        return cls.ONCE if ci in ("", "0", "false", "no") else cls.NONE


class CassetteTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Replays the cassette at `path` and, as `record_mode` allows, records new exchanges
    into it through `inner` (the network by default).

    In mode ``rewrite`` the transport starts the cassette anew, unless `run_ledger` says its
    run already did (another test sharing the cassette): then it adds to it.

    Replayed responses keep their recorded chunks and follow `pacing`, `speed` and
    `faults`; recordings are scrubbed of secrets and written as each body ends. `requests`
    keeps every request sent through it, and `misses` every request it could not answer
    (also raised, but a client may swallow what its transport raises).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        record_mode: RecordMode | str | None = None,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        pacing: Pacing = "instant",
        speed: float = 1.0,
        faults: Faults | None = None,
        ignore: Sequence[str] = (),
        scrubber: Scrubber | None = None,
        clock: Clock | None = None,
        run_ledger: RunLedger | None = None,
    ) -> None:
        self.path = Path(path)
        self.record_mode = (
            RecordMode.default() if record_mode is None else RecordMode.parse(record_mode)
        )
        existed = self._existed = self.path.exists()
        mode = self.record_mode
        loaded = (
            load_cassette(self.path)
            if existed and mode is not RecordMode.REWRITE
            else Cassette(interactions=[], source_format="llmx-replay")
        )
        scrubber = scrubber or Scrubber()
        self.player = Player(
            loaded,
            name=str(self.path),
            pacing=pacing,
            speed=speed,
            faults=faults,
            ignore=ignore,
            scrubber=scrubber,
            clock=clock,
        )
        self._replays = mode in (RecordMode.NONE, RecordMode.NEW_EPISODES) or (
            mode is RecordMode.ONCE and existed
        )
        self._records = mode in (RecordMode.NEW_EPISODES, RecordMode.ALL, RecordMode.REWRITE) or (
            mode is RecordMode.ONCE and not existed
        )
        self.writer = CassetteWriter(
            self.path,
            scrubber=scrubber,
            canonicalizer=BodyCanonicalizer(ignore),
            fresh=mode is RecordMode.REWRITE,
            ledger=run_ledger,
            replace=mode is RecordMode.ALL,
        )
        self._recorder = Recorder(self.writer.add, inner)
        self.requests: list[httpx.Request] = []
        self.misses: list[NoMatchingInteraction] = []

    @property
    def records(self) -> bool:
        """Whether a request may reach `inner` (the network) to be recorded."""
        return self._records

    @property
    def unplayed(self) -> list[int]:
        """Positions of the loaded interactions no request has used."""
        return self.player.index.unplayed() if self._replays else []

    def _why_not_recorded(self) -> str:
        if self.record_mode is RecordMode.NONE:
            missing = "" if self._existed else ", and the cassette does not exist"
            return f" (record mode 'none' never records{missing})"
        return f" (record mode '{self.record_mode}' does not record into an existing cassette)"

    def _missed(self, request: httpx.Request) -> NoMatchingInteraction:
        miss = self.player.miss(request, self._why_not_recorded())
        self.misses.append(miss)
        return miss

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._replays:
            response = self.player.answer(request)
            if response is not None:
                return response
        if self._records:
            return self._recorder.handle(request)
        request.read()
        raise self._missed(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._replays:
            response = await self.player.aanswer(request)
            if response is not None:
                return response
        if self._records:
            return await self._recorder.ahandle(request)
        await request.aread()
        raise self._missed(request)

    def close(self) -> None:
        self._recorder.close()

    async def aclose(self) -> None:
        await self._recorder.aclose()
