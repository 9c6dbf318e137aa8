"""The transport most tests use: one cassette file, replayed or recorded by record mode."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from llmx_replay._exceptions import InputError, NoMatchingInteraction, named_request
from llmx_replay._options import RecordMode, RecordPolicy, ReplayOptions
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import Cassette, Interaction, RecordedResponse
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.cassette._writer import CassetteWriter, RunLedger
from llmx_replay.transports._loaded import LOADED
from llmx_replay.transports._record import Recorder
from llmx_replay.transports._replay import Player


class CassetteTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Replays the cassette at `path`, and records new exchanges into it as `record_mode` allows.

    New exchanges go through `inner` (the network by default).

    In mode ``rewrite`` the transport starts the cassette anew, unless `run_ledger` says its
    run already did (another test sharing the cassette): then it adds to it. A cassette
    recorded longer than `max_age` ago (by its metadata's ``recorded_at``) is recorded anew
    in mode ``once``, and refused in mode ``none``. `any_origin` and `repeat` are how a
    server matches and answers its clients (see `Player`); a server answering for days
    does not keep every request (`remembers`).

    Replayed responses keep their recorded chunks and are served as `options` say (pacing,
    speed, faults, clock, what matching ignores); recordings are scrubbed of secrets and
    written as each body ends. `requests` keeps every request sent through it, and `misses`
    every request it could not answer
    (also raised, but a client may swallow what its transport raises).
    """

    def __init__(
        self,
        path: str | Path,
        record_mode: RecordMode | str | None = None,
        options: ReplayOptions | None = None,
        *,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        scrubber: Scrubber | None = None,
        run_ledger: RunLedger | None = None,
        max_age: timedelta | None = None,
        any_origin: bool = False,
        repeat: bool = False,
        remembers: bool = True,
    ) -> None:
        self.path = Path(path)
        existed = self.path.exists()
        on_disk = LOADED.load(self.path) if existed and max_age is not None else None
        recorded_at = _recorded_at(on_disk) if on_disk is not None else None
        too_old = None
        if recorded_at is not None and max_age is not None:
            too_old = _too_old(self.path, recorded_at, max_age)
        self.policy = policy = RecordPolicy.decide(
            record_mode, existed=existed, expired=too_old is not None
        )
        if too_old is not None and not policy.records:
            raise too_old
        options = options or ReplayOptions()
        loaded = (
            (on_disk or LOADED.load(self.path))
            if policy.loads
            else Cassette(interactions=[], source_format="llmx-replay")
        )
        scrubber = scrubber or Scrubber()
        self.player = Player(
            loaded,
            name=str(self.path),
            options=options,
            scrubber=scrubber,
            any_origin=any_origin,
            repeat=repeat,
        )
        self.writer = CassetteWriter(
            self.path,
            scrubber=scrubber,
            canonicalizer=BodyCanonicalizer(options.ignore),
            fresh=policy.fresh,
            ledger=run_ledger,
            replace=policy.renews,
        )
        self._recorder = Recorder(self.writer.add, inner, ready=policy.records)
        self._remembers = remembers
        self.requests: list[httpx.Request] = []
        self.misses: list[NoMatchingInteraction] = []
        self.intercepting = False
        """Whether clients the application built go through it (`intercepting`): a method
        replaced for it passes requests on untouched once it ends."""

    @property
    def record_mode(self) -> RecordMode:
        """The record mode the transport follows."""
        return self.policy.mode

    @property
    def records(self) -> bool:
        """Whether a request may reach `inner` (the network) to be recorded."""
        return self.policy.records

    @property
    def unplayed(self) -> list[int]:
        """Positions of the loaded interactions no request has used."""
        return self.player.index.unplayed() if self.policy.replays else []

    def require_yaml(self, field: str | None = None) -> None:
        """Refuse a .json cassette this transport may record into: recordings are YAML.

        Raises:
            InputError: it may record, and the cassette's name ends in .json (`field`
                names where the name was given).
        """
        if self.policy.records and self.path.suffix == ".json":
            raise InputError(
                str(self.path),
                f"llmx-replay records cassettes as YAML: name it .yaml (record mode "
                f"'{self.policy.mode}' may record; a .json cassette can be replayed with "
                "'none')",
                field,
            )

    def _sent(self, request: httpx.Request) -> None:
        if self._remembers:
            self.requests.append(request)

    def outcome(self, *, played: bool = False) -> str | None:
        """What was done with the cassette, for a test run's summary.

        ``recorded`` (interactions added), ``renewed`` (recorded anew, in record mode
        ``rewrite`` or ``all``), ``expired`` (recorded anew for being older than
        `max_age`), ``replayed`` (by a request, or `played` by other means); None when it
        neither recorded nor replayed.
        """
        if self.writer.added:
            if self.policy.expired:
                return "expired"
            return "renewed" if self.policy.fresh or self.policy.renews else "recorded"
        return "replayed" if played or self.player.index.played else None

    def unplayed_problem(self) -> str | None:
        """The interactions no request played, as a test's failure says it; None if none."""
        unplayed = self.unplayed
        if not unplayed:
            return None
        recorded = self.player.cassette.interactions
        listed = "; ".join(
            f"#{index} {named_request(request.method, request.uri, request.body)}"
            for index, request in ((index, recorded[index].request) for index in unplayed)
        )
        return (
            f"{self.path}: {len(unplayed)} recorded interaction(s) never played: {listed} "
            "(record the cassette anew with record mode 'rewrite', or pass "
            "allow_unplayed=True)"
        )

    def _missed(self, request: httpx.Request) -> NoMatchingInteraction:
        miss = self.player.miss(request, self.policy.why_not_recorded())
        if self._remembers:
            self.misses.append(miss)
        return miss

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request_through(request, None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.handle_async_request_through(request, None)

    def handle_request_through(
        self, request: httpx.Request, through: httpx.BaseTransport | None
    ) -> httpx.Response:
        """Answer `request`; one that is recorded goes through `through` (else `inner`).

        Interception passes the transport the application's own client would have used.
        """
        self._sent(request)
        if self.policy.replays:
            response = self.player.answer(request)
            if response is not None:
                return response
        if self.policy.records:
            return self._recorder.handle(request, through)
        request.read()
        raise self._missed(request)

    async def handle_async_request_through(
        self, request: httpx.Request, through: httpx.AsyncBaseTransport | None
    ) -> httpx.Response:
        """Answer `request`; one that is recorded goes through `through` (else `inner`)."""
        self._sent(request)
        if self.policy.replays:
            response = await self.player.aanswer(request)
            if response is not None:
                return response
        if self.policy.records:
            return await self._recorder.ahandle(request, through)
        await request.aread()
        raise self._missed(request)

    def answers_whole(self, request: httpx.Request) -> bool:
        """Whether a buffered client's request is answered here rather than sent and recorded.

        Buffered clients (requests, aiohttp: see `buffered_through`) send a request whole and
        take its response whole. One the cassette can neither answer nor record counts as
        answered: `answer_whole` refuses it.
        """
        if not self.policy.records:
            return True
        return self.policy.replays and self.player.can_answer(request)

    def answer_whole(self, request: httpx.Request) -> RecordedResponse:
        """The recorded response to a buffered client's request, now played.

        Raises:
            NoMatchingInteraction: no recording answers it, and it may not be recorded.
        """
        self._sent(request)
        response = self.player.find(request) if self.policy.replays else None
        if response is None:
            raise self._missed(request)
        return response

    def record_whole(self, request: httpx.Request, interaction: Interaction) -> None:
        """Add an exchange a buffered client made (its `request`) to the cassette."""
        self._sent(request)
        self.writer.add(interaction)

    def close(self) -> None:
        try:
            self._recorder.close()
        finally:
            self.writer.close()

    async def aclose(self) -> None:
        try:
            await self._recorder.aclose()
        finally:
            await asyncio.to_thread(self.writer.close)


def _recorded_at(cassette: Cassette) -> datetime | None:
    """When the cassette says it was recorded; None when it does not (another tool's)."""
    recorded_at = cassette.metadata.recorded_at if cassette.metadata else ""
    try:
        when = datetime.fromisoformat(recorded_at)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _too_old(path: Path, recorded_at: datetime, max_age: timedelta) -> InputError | None:
    """The error for a cassette older than `max_age`, None when it is not."""
    age = datetime.now(UTC) - recorded_at
    if age <= max_age:
        return None
    return InputError(
        str(path),
        f"recorded {_duration(age)} ago ({recorded_at:%Y-%m-%d %H:%M} UTC), longer ago than "
        f"max_age ({_duration(max_age)}): record it again, with record mode 'once' (which "
        "records an expired cassette anew) where the provider is reachable",
        "metadata.recorded_at",
    )


def _duration(span: timedelta) -> str:
    """``40 days``, or ``2:30:00`` for less than a day."""
    return f"{span.days} days" if span.days else str(span).split(".", 1)[0]
