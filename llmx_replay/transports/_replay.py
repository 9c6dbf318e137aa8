"""Replaying: a transport that answers requests from a cassette, never from the network.

Each response is served with its recorded chunk boundaries, either at once (``instant``)
or with the recorded gaps scaled by `speed` (``recorded``). Sleeping goes through a clock,
so a `VirtualClock` replays recorded timing without waiting. A gap longer than the
request's read timeout ends the body with `httpx.ReadTimeout`, as a stalled network would.
Faults can be injected to test error paths.
"""

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from llmx_replay._clock import Clock
from llmx_replay._exceptions import NoMatchingInteraction
from llmx_replay._options import Faults, Pacing, ReplayOptions
from llmx_replay.cassette._match import (
    BodyCanonicalizer,
    InteractionIndex,
    RequestKey,
    path_and_query,
    recorded_keys,
)
from llmx_replay.cassette._model import (
    BROKE_OFF,
    CANCELLED,
    Cassette,
    RecordedRequest,
    RecordedResponse,
    split_events,
)
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.transports._loaded import LOADED

_DONE_EVENT = re.compile(rb"^data: ?\[DONE\][ \t]*\r?$", re.MULTILINE)
_HAS_DATA = re.compile(rb"^data(:|\r?$)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Piece:
    """A piece of a replayed body, and the seconds to wait before it."""

    data: bytes
    delay: float


def _paced(response: RecordedResponse, pacing: Pacing, speed: float) -> list[_Piece]:
    """The body's pieces with the wait before each: none, or the recorded gap / `speed`."""
    chunks = response.recorded_chunks()
    if pacing == "instant":
        return [_Piece(data, 0.0) for data, _ in chunks]
    previous = response.headers_ms or 0.0
    pieces = []
    for data, offset in chunks:
        pieces.append(_Piece(data, max(offset - previous, 0.0) / 1000 / speed))
        previous = offset
    return pieces


def _event_pieces(pieces: list[_Piece]) -> list[_Piece]:
    """The same bytes cut after each SSE event.

    An event waits for the chunks up to the one that completes it, each chunk's wait counted
    once.
    """
    body = b"".join(piece.data for piece in pieces)
    chunk_ends: list[int] = []
    position = 0
    for piece in pieces:
        position += len(piece.data)
        chunk_ends.append(position)
    events: list[_Piece] = []
    event_end = 0
    waited = 0  # chunks whose wait is already given to an earlier event
    comments = b""  # blocks without data (keep-alive comments) go with the next event
    for block in split_events(body):
        event_end += len(block)
        delay = 0.0
        while waited < len(pieces) and (waited == 0 or chunk_ends[waited - 1] < event_end):
            delay += pieces[waited].delay
            waited += 1
        if not _HAS_DATA.search(block):
            comments += block
            if events:
                events[-1] = _Piece(events[-1].data, events[-1].delay + delay)
            continue
        events.append(_Piece(comments + block, delay))
        comments = b""
    if comments:
        events.append(_Piece(comments, 0.0))
    return events


def _with_faults(pieces: list[_Piece], faults: Faults) -> list[_Piece]:
    events = _event_pieces(pieces)
    if faults.drop_done:
        events = [event for event in events if not _DONE_EVENT.search(event.data)]
    if faults.error_after is not None:
        error = orjson.dumps({"error": {"message": faults.error_message, "type": "server_error"}})
        events.insert(faults.error_after, _Piece(b"data: " + error + b"\n\n", 0.0))
    if faults.stall_after is not None:
        stall = float("inf") if faults.stall_seconds is None else faults.stall_seconds
        if faults.stall_after < len(events):
            stalled = events[faults.stall_after]
            events[faults.stall_after] = _Piece(stalled.data, stalled.delay + stall)
        else:  # after the last event: the body just never ends
            events.append(_Piece(b"", stall))
    if faults.cut_after is not None:
        events = events[: faults.cut_after]
    return events


def recorded_break(partial: str | None) -> httpx.TransportError | None:
    """The network error that cut a recording short, rebuilt to end its replay the same way."""
    if partial is None or not partial.startswith(BROKE_OFF):
        return None
    name, _, message = partial.removeprefix(BROKE_OFF).partition(": ")
    kind = getattr(httpx, name, None)
    if isinstance(kind, type) and issubclass(kind, httpx.TransportError):
        return kind(message)
    return httpx.ReadError(message)


class _ReplayStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(
        self,
        pieces: Sequence[_Piece],
        read_timeout: float | None,
        clock: Clock,
        ending: httpx.TransportError | None = None,
    ) -> None:
        self._pieces = pieces
        self._read_timeout = read_timeout
        self._clock = clock
        self._ending = ending

    def _stall(self, delay: float) -> float | None:
        """The wait before giving up, when `delay` is longer than the read timeout."""
        if self._read_timeout is not None and delay > self._read_timeout:
            return self._read_timeout
        if delay == float("inf"):
            return 0.0
        return None

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if piece.delay:
                give_up = self._stall(piece.delay)
                if give_up is not None:
                    self._clock.sleep(give_up)
                    raise httpx.ReadTimeout("the replayed stream stalled past the read timeout")
                self._clock.sleep(piece.delay)
            yield piece.data
        if self._ending is not None:
            raise self._ending

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            if piece.delay:
                give_up = self._stall(piece.delay)
                if give_up is not None:
                    await self._clock.asleep(give_up)
                    raise httpx.ReadTimeout("the replayed stream stalled past the read timeout")
                await self._clock.asleep(piece.delay)
            yield piece.data
        if self._ending is not None:
            raise self._ending


def _replayed_pieces(response: RecordedResponse, options: ReplayOptions) -> list[_Piece]:
    """The body of `response` as it is replayed.

    Its recorded chunks are paced and broken as `options` ask.
    """
    pieces = _paced(response, options.pacing, options.speed)
    if options.faults.touches_events:
        pieces = _with_faults(pieces, options.faults)
    if response.partial == CANCELLED and options.faults.cut_after is None:
        # The caller gave up waiting for the next chunk: the replay never sends it either.
        pieces = [*pieces, _Piece(b"", float("inf"))]
    return pieces


def headers_delay(response: RecordedResponse, options: ReplayOptions) -> float:
    """The seconds to wait before the response's headers arrive."""
    if options.pacing == "instant" or not response.headers_ms:
        return 0.0
    return response.headers_ms / 1000 / options.speed


def replayed_response(
    response: RecordedResponse, options: ReplayOptions, read_timeout: float | None
) -> httpx.Response:
    """`response` as httpx would receive it from the network.

    Its body replays the recorded chunks, paced and broken as `options` ask; a gap longer
    than `read_timeout` raises `ReadTimeout`, as a stalled network would.
    """
    faults = options.faults
    if faults.status is not None:
        error = {"error": {"message": f"llmx-replay injected status {faults.status}"}}
        return httpx.Response(faults.status, json=error)
    return httpx.Response(
        response.status,
        # As bytes: a recorded value need not be ASCII, which str headers must be.
        headers=[(name.encode(), value.encode()) for name, value in response.headers],
        stream=_ReplayStream(
            _replayed_pieces(response, options),
            read_timeout,
            options.clock,
            None if faults.cut_after is not None else recorded_break(response.partial),
        ),
        extensions={"reason_phrase": response.reason.encode()},
    )


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        read = timeout.get("read")
        if isinstance(read, int | float):
            return float(read)
    return None


class Player:
    """Finds the recorded answer to a request and serves it as an httpx response.

    `any_origin`: a request matches by its path and query, whatever scheme and host it was
    sent to (a server's clients send theirs to the server). `repeat`: once every recording
    of a request is played, they are played again from the first.
    """

    def __init__(
        self,
        cassette: Cassette,
        *,
        name: str,
        options: ReplayOptions,
        scrubber: Scrubber,
        any_origin: bool = False,
        repeat: bool = False,
    ) -> None:
        self.cassette = cassette
        self.name = name
        self.options = options
        self._scrubber = scrubber
        self._clock: Clock = options.clock
        self._canonicalizer = BodyCanonicalizer(options.ignore)
        # Recorded URLs are scrubbed (or filtered by other tools), so credentials and secret
        # parameters are left out of what is compared, on both sides.
        self._url_form = (
            (lambda url: path_and_query(scrubber.matchable_url(url)))
            if any_origin
            else scrubber.matchable_url
        )
        self._kept_form_decides = scrubber.changes_requests
        # A cassette read from a file by `LOADED` shares its keys with the other players
        # of that file that match the same way: the ignored paths and the URL form.
        keys = LOADED.keys(
            cassette,
            (options.ignore, scrubber, any_origin),
            lambda: recorded_keys(cassette.interactions, self._canonicalizer, self._url_form),
        )
        self.index = InteractionIndex(
            cassette.interactions, self._canonicalizer, self._url_form, keys=keys, repeat=repeat
        )

    def _key(self, request: httpx.Request) -> RequestKey | None:
        """What matching compares of `request`; None when a hook keeps it out of cassettes."""
        method, url, body = request.method, str(request.url), request.content
        if self._kept_form_decides:
            # Compared as a cassette would keep it: body fields redacted, the hook applied.
            kept = self._scrubber.request(
                RecordedRequest(
                    method=method, uri=url, headers=list(request.headers.multi_items()), body=body
                )
            )
            if kept is None:
                return None
            method, url, body = kept.method, kept.uri, kept.body or b""
        return self._canonicalizer.key(method, self._url_form(url), body)

    def can_answer(self, request: httpx.Request) -> bool:
        """Whether an unplayed recording answers `request` (a read body), leaving it unplayed."""
        key = self._key(request)
        return key is not None and self.index.has(key)

    def find(self, request: httpx.Request) -> RecordedResponse | None:
        """The next unplayed response recorded for this request, if there is one."""
        key = self._key(request)
        position = None if key is None else self.index.take(key)
        return None if position is None else self.cassette.interactions[position].response

    def miss(self, request: httpx.Request, reason: str | None = None) -> NoMatchingInteraction:
        """The error for a request that no recording answers, naming the closest one."""
        # The error shows the request as a cassette would keep it: scrubbed.
        method, url, body = request.method, self._scrubber.url(str(request.url)), request.content
        return self.index.miss(self.name, method, url, body, reason)

    def serve(self, request: httpx.Request, response: RecordedResponse) -> httpx.Response:
        """`response` as an httpx response whose body replays the recorded chunks."""
        return replayed_response(response, self.options, _read_timeout(request))

    def answer(self, request: httpx.Request) -> httpx.Response | None:
        """The recorded answer to `request`, after its recorded wait; None if there is none."""
        request.read()
        response = self.find(request)
        if response is None:
            return None
        delay = headers_delay(response, self.options)
        if delay:  # even a zero sleep costs the scheduler's time
            self._clock.sleep(delay)
        return self.serve(request, response)

    async def aanswer(self, request: httpx.Request) -> httpx.Response | None:
        """The async `answer`."""
        await request.aread()
        response = self.find(request)
        if response is None:
            return None
        delay = headers_delay(response, self.options)
        if delay:
            await self._clock.asleep(delay)
        return self.serve(request, response)


class ReplayTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers every request from a cassette (a path or a loaded `Cassette`), sync or async.

    Requests match by method, URL and JSON body by meaning, leaving out the paths that
    `options` ignore; a request that matches nothing raises `NoMatchingInteraction` showing
    the closest recorded request and where it differs. `unplayed` lists what was never
    asked for. Responses are served as `options` say (pacing, speed, faults, clock).
    """

    def __init__(
        self,
        cassette: Cassette | str | Path,
        options: ReplayOptions | None = None,
        *,
        scrubber: Scrubber | None = None,
    ) -> None:
        name = "cassette"
        if not isinstance(cassette, Cassette):
            name = str(cassette)
            cassette = LOADED.load(Path(cassette))
        self.player = Player(
            cassette, name=name, options=options or ReplayOptions(), scrubber=scrubber or Scrubber()
        )

    @property
    def unplayed(self) -> list[int]:
        """Positions of the recorded interactions no request has used."""
        return self.player.index.unplayed()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer `request` from the cassette."""
        response = self.player.answer(request)
        if response is None:
            raise self.player.miss(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer `request` from the cassette."""
        response = await self.player.aanswer(request)
        if response is None:
            raise self.player.miss(request)
        return response
