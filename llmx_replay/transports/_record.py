"""Recording: a transport that passes each chunk to the caller as it arrives, and notes it.

Nothing is read ahead of the caller: a chunk is copied into the recording on its way
through. The interaction goes to its sink when the body ends, when reading it fails, or
when the caller closes the response early or is cancelled; a recording cut short says so.
"""

import asyncio
import re
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

import httpx

from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import (
    BROKE_OFF,
    CANCELLED,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    first_header,
    stored_headers,
)
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.cassette._writer import CassetteWriter

Sink = Callable[[Interaction], None]

_CLOSED_EARLY = "the caller closed the response before its end"
_ENDS_WITH_DONE = re.compile(rb"data: ?\[DONE\][ \t]*(\r\n|\r|\n){2}\s*$")
_NEVER_CLOSED = "the caller never closed the response"

SENDING_ON: ContextVar[bool] = ContextVar("llmx_replay_sending_on", default=False)
"""True while a recorder sends a request on to the network: interception lets it through."""


def _decoded(pieces: list[bytes], encoding: str | None) -> list[bytes] | None:
    """The wire pieces without their gzip or deflate encoding, piece by piece, or None.

    Raw deflate is decoded too, as httpx reads it. None means they cannot be decoded and are
    kept as they came.
    """
    encoding = (encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        attempts = [16 + zlib.MAX_WBITS]
    elif encoding == "deflate":
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        return None
    if not pieces:
        return []
    for wbits in attempts:
        decoder = zlib.decompressobj(wbits)
        try:
            decoded = [decoder.decompress(piece) for piece in pieces]
            decoded[-1:] = [(decoded[-1] if decoded else b"") + decoder.flush()]
        except zlib.error:
            continue
        return decoded
    return None


class _Recording:
    """One interaction being recorded: the request, then the response as it arrives.

    A chunk's time offset is the time to the headers plus the time spent waiting for the
    network, not the time the caller took between reads: replayed with recorded pacing, the
    caller's own work is not counted twice.
    """

    def __init__(self, request: RecordedRequest, started: float, sink: Sink) -> None:
        self._request = request
        self._started = started
        self._sink = sink
        self._status = 0
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._headers_ms = 0.0
        self._waited_ms = 0.0
        self._pieces: list[bytes] = []
        self._offsets: list[float] = []
        self.ended = False

    def response(self, response: httpx.Response) -> None:
        self._headers_ms = (time.perf_counter() - self._started) * 1000
        self._status = response.status_code
        self._reason = response.reason_phrase
        self._headers = list(response.headers.multi_items())

    def chunk(self, data: bytes, waited: float) -> None:
        """`data` arrived after `waited` seconds of waiting for it."""
        self._waited_ms += waited * 1000
        if data:
            self._pieces.append(data)
            self._offsets.append(self._headers_ms + self._waited_ms)

    def discard(self) -> None:
        """Leave the interaction out: its caller knows it is no recording to keep."""
        self.ended = True

    def end(self, partial: str | None) -> None:
        """Hand the interaction to the sink; only the first call counts."""
        if self.ended:
            return
        self.ended = True
        encoding = first_header(self._headers, "content-encoding")
        decoded_pieces = _decoded(self._pieces, encoding) if encoding else self._pieces
        # Undecodable, it is kept as it came, with its encoding, so that a replay fails as
        # the live one did.
        pieces = self._pieces if decoded_pieces is None else decoded_pieces
        headers = stored_headers(self._headers, decoded=decoded_pieces is not None)
        body = b"".join(pieces)
        if partial in (_CLOSED_EARLY, CANCELLED) and _ENDS_WITH_DONE.search(body):
            # A caller may stop at [DONE] (close, or be cancelled waiting for the body's
            # end, which a server may send late): nothing is missing after it.
            partial = None
        chunks = [
            (len(piece), offset)
            for piece, offset in zip(pieces, self._offsets, strict=True)
            if piece
        ]
        response = RecordedResponse(
            status=self._status,
            reason=self._reason,
            headers=headers,
            body=body,
            headers_ms=self._headers_ms,
            chunks=tuple(chunks),
            partial=partial,
        )
        self._sink(Interaction(request=self._request, response=response))


def _stopped_by(error: BaseException) -> str:
    return f"{BROKE_OFF}{type(error).__name__}: {error}"


def is_recorded(response: httpx.Response) -> bool:
    """Whether `response` is a recorder's: its body is being recorded as it is read."""
    return isinstance(response.stream, _RecordingStream)


def discard_recording(response: httpx.Response) -> None:
    """Leave the recording of `response` (a recorder's) out of its cassette.

    For a response its caller stopped reading for reasons of its own (a server that stops):
    what arrived is no recording of what the provider sends. A response that is not being
    recorded is left as it is.
    """
    if isinstance(response.stream, _RecordingStream):
        response.stream.recording.discard()


class _RecordingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Copies each chunk into the recording on its way to the caller.

    The recording is handed on when the body ends, or else when the response is closed
    (with why it stopped short): never while a generator is being finalized, where a failure
    to write the cassette would be lost.
    """

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, recording: _Recording
    ) -> None:
        self._stream = stream
        self.recording = recording
        self._stopped_by: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        if not isinstance(self._stream, httpx.SyncByteStream):
            raise TypeError("a sync client read an async response body")
        chunks = iter(self._stream)
        try:
            while True:
                waiting = time.perf_counter()
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                self.recording.chunk(chunk, time.perf_counter() - waiting)
                yield chunk
        except Exception as error:
            self._stopped_by = _stopped_by(error)
            raise
        self.recording.end(None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if not isinstance(self._stream, httpx.AsyncByteStream):
            raise TypeError("an async client read a sync response body")
        chunks = aiter(self._stream)
        try:
            while True:
                waiting = time.perf_counter()
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                self.recording.chunk(chunk, time.perf_counter() - waiting)
                yield chunk
        except asyncio.CancelledError:
            self._stopped_by = CANCELLED
            raise
        except Exception as error:
            self._stopped_by = _stopped_by(error)
            raise
        # Writing the cassette must not hold up the event loop.
        await asyncio.to_thread(self.recording.end, None)

    def close(self) -> None:
        try:
            if isinstance(self._stream, httpx.SyncByteStream):
                self._stream.close()
        finally:
            self.recording.end(self._stopped_by or _CLOSED_EARLY)

    async def aclose(self) -> None:
        try:
            if isinstance(self._stream, httpx.AsyncByteStream):
                await self._stream.aclose()
        finally:
            await asyncio.to_thread(self.recording.end, self._stopped_by or _CLOSED_EARLY)


def _recorded_request(request: httpx.Request, body: bytes) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        uri=str(request.url),
        headers=list(request.headers.multi_items()),
        body=body or None,
    )


class Recorder:
    """Sends requests through `inner` and records each exchange into `sink`.

    Without `inner`, requests go through httpx's own transports, sync or async as the
    client is, sharing one TLS context. `ready`: build that context now (it takes tens of
    milliseconds), not in the first request, whose timing is recorded.
    """

    def __init__(
        self,
        sink: Sink,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        *,
        ready: bool = False,
    ) -> None:
        self._sink = sink
        self._inner = inner
        self._default_sync: httpx.BaseTransport | None = None
        self._default_async: httpx.AsyncBaseTransport | None = None
        self._tls: ssl.SSLContext | None = None
        if inner is None and ready:
            self._tls = httpx.create_ssl_context()
        self._recordings: list[_Recording] = []

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def _sync_inner(self) -> httpx.BaseTransport:
        if isinstance(self._inner, httpx.BaseTransport):
            return self._inner
        if self._inner is not None:
            raise TypeError("this recorder wraps an async transport; use an async client")
        self._default_sync = self._default_sync or httpx.HTTPTransport(verify=self._tls_context())
        return self._default_sync

    def _async_inner(self) -> httpx.AsyncBaseTransport:
        if isinstance(self._inner, httpx.AsyncBaseTransport):
            return self._inner
        if self._inner is not None:
            raise TypeError("this recorder wraps a sync transport; use a sync client")
        self._default_async = self._default_async or httpx.AsyncHTTPTransport(
            verify=self._tls_context()
        )
        return self._default_async

    def handle(
        self, request: httpx.Request, through: httpx.BaseTransport | None = None
    ) -> httpx.Response:
        """Send `request` through `through` (else the recorder's inner) and record it."""
        body = request.read()
        started = time.perf_counter()
        sending_on = SENDING_ON.set(True)
        try:
            response = (through or self._sync_inner()).handle_request(request)
        finally:
            SENDING_ON.reset(sending_on)
        return self._recording_response(request, body, started, response)

    async def ahandle(
        self, request: httpx.Request, through: httpx.AsyncBaseTransport | None = None
    ) -> httpx.Response:
        """Send `request` through `through` (else the recorder's inner) and record it."""
        body = await request.aread()
        started = time.perf_counter()
        sending_on = SENDING_ON.set(True)
        try:
            response = await (through or self._async_inner()).handle_async_request(request)
        finally:
            SENDING_ON.reset(sending_on)
        return self._recording_response(request, body, started, response)

    def _recording_response(
        self, request: httpx.Request, body: bytes, started: float, response: httpx.Response
    ) -> httpx.Response:
        recording = _Recording(_recorded_request(request, body), started, self._sink)
        recording.response(response)
        self._recordings = [open_one for open_one in self._recordings if not open_one.ended]
        self._recordings.append(recording)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_RecordingStream(response.stream, recording),
            extensions=response.extensions,
        )

    def _end_unclosed(self) -> None:
        """Write what responses the caller never closed received, marked as such."""
        for recording in self._recordings:
            recording.end(_NEVER_CLOSED)
        self._recordings = []

    def close(self) -> None:
        self._end_unclosed()
        for transport in (self._inner, self._default_sync):
            if isinstance(transport, httpx.BaseTransport):
                transport.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self._end_unclosed)
        for transport in (self._inner, self._default_async):
            if isinstance(transport, httpx.AsyncBaseTransport):
                await transport.aclose()


class RecordingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Records every exchange through `inner` (the network by default) into a cassette.

    Each interaction is scrubbed of secrets and added to the cassette at `path` as soon as
    its body ends; the caller gets every chunk the moment it arrives.
    """

    def __init__(
        self,
        path: str | Path,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        *,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.writer = CassetteWriter(
            Path(path), scrubber=scrubber or Scrubber(), canonicalizer=BodyCanonicalizer()
        )
        self._recorder = Recorder(self.writer.add, inner, ready=True)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._recorder.handle(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._recorder.ahandle(request)

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
