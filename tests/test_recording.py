"""The recorder (issue 3, section 2): `RecordingTransport` wraps a live transport.

The live side is an `httpx.MockTransport` whose bodies sleep between chunks, so that the
tests can see when each chunk is produced, when the caller gets it, and what timing the
cassette keeps; where a test asserts times, the live side, the caller and the recorder share
a `VirtualClock` (`provider_time`), so that the times are exact whatever the machine's load.
Covered: no read-ahead (chunk order and time to first chunk, a never-ending stream), what
the cassette holds (chunk sizes and offsets, time to headers, the exact body, metadata),
when it is written (normal end, early close, a failing body, a cancelled async caller, a
stop right after ``[DONE]``, a response left open when the transport closes), gzip and
deflate bodies (a corrupt one kept raw), secret scrubbing (also of URL passwords and
`Location` headers), appending to another tool's cassette, sync and async.
"""

import asyncio
import base64
import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import vcr
import yaml
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from llmx_replay import ChatClient, Clock, InputError, SystemClock, VirtualClock, __version__
from llmx_replay.cassette import load_cassette
from llmx_replay.cassette._model import RecordedResponse
from llmx_replay.models import Completed, ErrorEvent, ProviderSettings, ResponseEvent
from llmx_replay.models.prompt import Prompt
from llmx_replay.transports import CassetteTransport, RecordingTransport, ReplayTransport

JsonObject = dict[str, Any]
Flavour = Literal["sync", "async"]
FLAVOURS: tuple[Flavour, ...] = ("sync", "async")

BASE_URL = "https://llm.example.com/v1"
URL = f"{BASE_URL}/chat/completions"
MODEL = "gpt-test"
BODY: JsonObject = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}
REDACTED = "<redacted>"
SSE_HEADERS: Mapping[str, str] = {"content-type": "text/event-stream"}


# --------------------------------------------------------------------------------------------
# Helpers: SSE bodies
# --------------------------------------------------------------------------------------------


def event(payload: JsonObject | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


DONE = event("[DONE]")


def content(text: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def finish(reason: str = "stop") -> JsonObject:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


# A turn cut into chunks that do not follow event boundaries.
TURN_BODY = event(content("Hel")) + event(content("lo")) + event(finish()) + DONE
TURN_CHUNKS: tuple[bytes, ...] = (TURN_BODY[:20], TURN_BODY[20:75], TURN_BODY[75:])


# --------------------------------------------------------------------------------------------
# Helpers: the live side
# --------------------------------------------------------------------------------------------


class PacedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sleeps `gaps[i]` seconds on `clock` (really, unless told otherwise)
    before producing chunk `i`.

    `log` gets ``request i`` when chunk `i` is asked for and ``produce i`` when it is
    handed out. An exception among the chunks is raised in its place.
    """

    def __init__(
        self,
        chunks: Sequence[bytes | Exception],
        gaps: Sequence[float],
        log: list[str],
        clock: Clock | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.gaps = list(gaps)
        self.log = log
        self.clock = clock or SystemClock()
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for index, (chunk, gap) in enumerate(zip(self.chunks, self.gaps, strict=True)):
            self.log.append(f"request {index}")
            if gap:
                self.clock.sleep(gap)
            if isinstance(chunk, Exception):
                raise chunk
            self.log.append(f"produce {index}")
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, (chunk, gap) in enumerate(zip(self.chunks, self.gaps, strict=True)):
            self.log.append(f"request {index}")
            if gap:
                await self.clock.asleep(gap)
            if isinstance(chunk, Exception):
                raise chunk
            self.log.append(f"produce {index}")
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class EndlessStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that never ends: a content event every `gap` seconds.

    `limit` only keeps a recorder that reads ahead from hanging the suite: reaching it fails.
    """

    def __init__(self, gap: float = 0.01, limit: int = 200) -> None:
        self.gap = gap
        self.limit = limit
        self.produced = 0

    def _next(self) -> bytes:
        if self.produced >= self.limit:
            raise RuntimeError("the endless body was read far ahead of the caller")
        self.produced += 1
        return event(content(f"t{self.produced}"))

    def __iter__(self) -> Iterator[bytes]:
        while True:
            time.sleep(self.gap)
            yield self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(self.gap)
            yield self._next()


class Upstream:
    """An `httpx.MockTransport` handler: each request gets a fresh `PacedStream` of `chunks`
    after `headers_delay` seconds (slept on `clock`, the real one unless given). Keeps the
    requests, the streams and a shared `log`."""

    def __init__(
        self,
        chunks: Sequence[bytes | Exception] = TURN_CHUNKS,
        gaps: float | Sequence[float] = 0.0,
        *,
        headers_delay: float = 0.0,
        status: int = 200,
        headers: Mapping[str, str] = SSE_HEADERS,
        clock: Clock | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.gaps = [gaps] * len(self.chunks) if isinstance(gaps, int | float) else list(gaps)
        self.headers_delay = headers_delay
        self.status = status
        self.headers = dict(headers)
        self.clock = clock or SystemClock()
        self.requests: list[httpx.Request] = []
        self.streams: list[PacedStream] = []
        self.log: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.headers_delay:
            self.clock.sleep(self.headers_delay)
        stream = PacedStream(self.chunks, self.gaps, self.log, self.clock)
        self.streams.append(stream)
        return httpx.Response(self.status, headers=self.headers, stream=stream)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def endless_transport(stream: EndlessStream) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, stream=stream))


@pytest.fixture
def provider_time(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """Virtual time for the recorder: `time.perf_counter`, which it times the live side
    with, reads this clock, which moves only when the live side (an `Upstream` given it)
    or the caller sleeps on it. Recorded times are then exact, whatever the machine's load."""
    clock = VirtualClock()
    start = clock.now()
    monkeypatch.setattr(time, "perf_counter", lambda: (clock.now() - start).total_seconds())
    return clock


# --------------------------------------------------------------------------------------------
# Helpers: the caller
# --------------------------------------------------------------------------------------------


def read(
    transport: httpx.BaseTransport,
    *,
    limit: int | None = None,
    url: str = URL,
    headers: Mapping[str, str] | None = None,
    body: JsonObject = BODY,
) -> list[bytes]:
    """The chunks a plain httpx caller gets from a streamed POST; it stops after `limit`."""
    chunks: list[bytes] = []
    with (
        httpx.Client(transport=transport) as client,
        client.stream("POST", url, json=body, headers=headers) as response,
    ):
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if limit is not None and len(chunks) >= limit:
                break
    return chunks


async def aread(transport: httpx.AsyncBaseTransport, *, limit: int | None = None) -> list[bytes]:
    chunks: list[bytes] = []
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("POST", URL, json=BODY) as response,
    ):
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            if limit is not None and len(chunks) >= limit:
                break
    return chunks


def record(
    path: Path, inner: httpx.MockTransport, flavour: Flavour, *, limit: int | None = None
) -> list[bytes]:
    """Read a streamed POST through a recorder of `inner` into `path`, sync or async."""
    transport = RecordingTransport(path, inner)
    if flavour == "sync":
        return read(transport, limit=limit)
    return asyncio.run(aread(transport, limit=limit))


def recorded(path: Path, index: int = 0) -> RecordedResponse:
    return load_cassette(path).interactions[index].response


def sizes(response: RecordedResponse) -> list[int]:
    assert response.chunks is not None
    return [size for size, _ in response.chunks]


def offsets(response: RecordedResponse) -> list[float]:
    assert response.chunks is not None
    return [offset for _, offset in response.chunks]


def chat_events(transport: httpx.BaseTransport) -> list[ResponseEvent]:
    provider = ProviderSettings(base_url=BASE_URL)
    with ChatClient(provider, MODEL, transport=transport) as client:
        return list(client.stream(Prompt()))


# --------------------------------------------------------------------------------------------
# Never reading ahead of the caller
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_caller_gets_each_chunk_before_the_next_is_produced(
    tmp_path: Path, flavour: Flavour
) -> None:
    upstream = Upstream(TURN_CHUNKS, gaps=0.01)
    transport = RecordingTransport(tmp_path / "c.yaml", upstream.transport)
    log = upstream.log

    def consume(chunks: Iterator[bytes]) -> None:
        for index, _ in enumerate(chunks):
            log.append(f"receive {index}")

    if flavour == "sync":
        with (
            httpx.Client(transport=transport) as client,
            client.stream("POST", URL, json=BODY) as response,
        ):
            consume(response.iter_bytes())
    else:

        async def main() -> None:
            async with (
                httpx.AsyncClient(transport=transport) as client,
                client.stream("POST", URL, json=BODY) as response,
            ):
                index = 0
                async for _ in response.aiter_bytes():
                    log.append(f"receive {index}")
                    index += 1

        asyncio.run(main())

    assert log == [
        "request 0",
        "produce 0",
        "receive 0",
        "request 1",
        "produce 1",
        "receive 1",
        "request 2",
        "produce 2",
        "receive 2",
    ]
    assert log.index("receive 0") < log.index("produce 1")


def test_time_to_first_chunk_is_not_delayed_by_recording(
    tmp_path: Path, provider_time: VirtualClock
) -> None:
    """Timed on the live side's (virtual) clock, so that no load on the machine counts."""
    gap = 0.03

    def first_chunk_seconds(transport: httpx.BaseTransport) -> float:
        with httpx.Client(transport=transport) as client:
            started = time.perf_counter()
            with client.stream("POST", URL, json=BODY) as response:
                chunks = response.iter_bytes()  # kept: dropping it would end the recording
                next(chunks)
                return time.perf_counter() - started

    plain = first_chunk_seconds(Upstream(TURN_CHUNKS, gap, clock=provider_time).transport)
    inner = Upstream(TURN_CHUNKS, gap, clock=provider_time).transport
    recording = first_chunk_seconds(RecordingTransport(tmp_path / "ttfc.yaml", inner))

    assert plain == pytest.approx(gap)
    # A recorder reading ahead would wait for all three chunks (90 ms).
    assert recording == pytest.approx(gap)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_never_ending_stream_delivers_its_first_chunks(tmp_path: Path, flavour: Flavour) -> None:
    path = tmp_path / "endless.yaml"
    stream = EndlessStream(gap=0.01)
    chunks = record(path, endless_transport(stream), flavour, limit=3)

    assert chunks == [event(content(f"t{n}")) for n in (1, 2, 3)]
    assert stream.produced == 3
    response = recorded(path)
    assert response.body == b"".join(chunks)
    assert sizes(response) == [len(chunk) for chunk in chunks]
    assert response.partial is not None


# --------------------------------------------------------------------------------------------
# What the cassette holds
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_cassette_holds_chunks_timing_body_and_metadata(
    tmp_path: Path, flavour: Flavour, provider_time: VirtualClock
) -> None:
    path = tmp_path / "c.yaml"
    headers_delay, gaps = 0.02, [0.01, 0.03, 0.02]
    upstream = Upstream(TURN_CHUNKS, gaps, headers_delay=headers_delay, clock=provider_time)
    before = datetime.now(UTC)

    chunks = record(path, upstream.transport, flavour)

    assert chunks == list(TURN_CHUNKS)
    cassette = load_cassette(path)
    assert len(cassette.interactions) == 1
    request = cassette.interactions[0].request
    assert (request.method, request.uri) == ("POST", URL)
    assert request.body is not None
    assert json.loads(request.body) == BODY
    response = cassette.interactions[0].response
    assert response.status == 200
    assert response.header("content-type") == "text/event-stream"
    assert response.body == TURN_BODY
    assert response.partial is None

    # Each chunk: its byte size, and its time offset from the start of the request.
    assert sizes(response) == [len(chunk) for chunk in TURN_CHUNKS]
    assert response.headers_ms == pytest.approx(20.0)
    assert offsets(response) == pytest.approx([30.0, 60.0, 80.0])

    assert cassette.metadata is not None
    assert cassette.metadata.toolkit == __version__
    assert cassette.metadata.base_url == BASE_URL
    assert cassette.metadata.model == MODEL
    recorded_at = datetime.fromisoformat(cassette.metadata.recorded_at)
    assert recorded_at.tzinfo is not None
    assert before - timedelta(seconds=2) <= recorded_at <= datetime.now(UTC) + timedelta(seconds=2)


@pytest.mark.parametrize(
    "body",
    [
        event(content("héllo wörld ✓ 🎉")) + event(content("x" * 300)) + DONE,
        (event(content("a")) + event(content("b")) + DONE).replace(b"\n", b"\r\n"),
        b": keep-alive \n\n" + event(content('quote " and \\ backslash')) + DONE,
        b'event: message\ndata: {"a": 1}\nid: 7\n\n' + DONE,
    ],
    ids=["unicode-and-long-line", "crlf", "comment-with-trailing-space", "multi-field-event"],
)
def test_body_is_stored_byte_exact(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "c.yaml"
    chunks = [body[:7], body[7:]]
    assert read(RecordingTransport(path, Upstream(chunks).transport)) == chunks

    response = recorded(path)
    assert response.body == body
    assert sizes(response) == [len(chunk) for chunk in chunks]


def test_recorded_chunk_offsets_do_not_include_the_callers_time(
    tmp_path: Path, provider_time: VirtualClock
) -> None:
    """The live side takes 1 ms per chunk and the caller 50 ms between reads, both on the
    same virtual clock: only the live side's time is recorded."""
    path = tmp_path / "c.yaml"
    pieces = [event(content(f"t{n}")) for n in range(5)]
    upstream = Upstream(pieces, gaps=0.001, clock=provider_time)
    received: list[bytes] = []

    with (
        httpx.Client(transport=RecordingTransport(path, upstream.transport)) as client,
        client.stream("POST", URL, json=BODY) as streamed,
    ):
        for chunk in streamed.iter_bytes():
            received.append(chunk)
            provider_time.sleep(0.05)

    assert received == pieces
    response = recorded(path)
    assert response.headers_ms == 0
    assert offsets(response) == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])


def test_chat_client_through_the_recorder(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    live = chat_events(Upstream(TURN_CHUNKS, gaps=0.005).transport)
    through = chat_events(RecordingTransport(path, Upstream(TURN_CHUNKS, gaps=0.005).transport))

    assert through == live
    assert isinstance(through[-1], Completed)
    response = recorded(path)
    assert response.body == TURN_BODY
    assert response.partial is None
    assert sizes(response) == [len(chunk) for chunk in TURN_CHUNKS]


# --------------------------------------------------------------------------------------------
# When the cassette is written
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_caller_stopping_early_writes_a_partial_recording(tmp_path: Path, flavour: Flavour) -> None:
    path = tmp_path / "c.yaml"
    upstream = Upstream(TURN_CHUNKS, gaps=0.005)

    chunks = record(path, upstream.transport, flavour, limit=1)

    assert chunks == [TURN_CHUNKS[0]]
    assert "produce 1" not in upstream.log
    response = recorded(path)
    assert response.body == TURN_CHUNKS[0]
    assert sizes(response) == [len(TURN_CHUNKS[0])]
    assert response.partial is not None
    assert "closed" in response.partial


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_inner_error_reaches_the_caller_and_is_recorded(tmp_path: Path, flavour: Flavour) -> None:
    path = tmp_path / "c.yaml"
    broken: list[bytes | Exception] = [
        TURN_CHUNKS[0],
        TURN_CHUNKS[1],
        httpx.ReadError("connection reset by peer"),
    ]
    upstream = Upstream(broken, gaps=0.005)

    with pytest.raises(httpx.ReadError, match="connection reset by peer"):
        record(path, upstream.transport, flavour)

    response = recorded(path)
    assert response.body == TURN_CHUNKS[0] + TURN_CHUNKS[1]
    assert sizes(response) == [len(TURN_CHUNKS[0]), len(TURN_CHUNKS[1])]
    assert response.partial is not None
    assert "ReadError" in response.partial
    assert "connection reset by peer" in response.partial


def test_inner_error_through_chat_client_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    broken: list[bytes | Exception] = [
        event(content("Hel")),
        httpx.ReadError("connection reset by peer"),
    ]

    events = chat_events(RecordingTransport(path, Upstream(broken).transport))

    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].kind == "stream"
    response = recorded(path)
    assert response.body == event(content("Hel"))
    assert response.partial is not None
    assert "ReadError" in response.partial


def cancel_reading(path: Path, upstream: Upstream, until: Callable[[bytes], bool]) -> list[bytes]:
    """Record `upstream` into `path` for an async caller that reads each chunk until one
    meets `until`, then is cancelled awaiting the next. The chunks it read."""
    received: list[bytes] = []

    async def main() -> None:
        enough = asyncio.Event()
        transport = RecordingTransport(path, upstream.transport)
        async with httpx.AsyncClient(transport=transport) as client:

            async def consume() -> None:
                async with client.stream("POST", URL, json=BODY) as response:
                    async for chunk in response.aiter_raw():
                        received.append(chunk)
                        if until(chunk):
                            enough.set()

            task = asyncio.create_task(consume())
            await enough.wait()
            await asyncio.sleep(0.01)  # now it awaits the next chunk
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    return received


@pytest.mark.timing
def test_cancelled_async_caller_writes_a_partial_recording(tmp_path: Path) -> None:
    """Real time: cancelling must not wait for the live side's next chunk (30 s away)."""
    path = tmp_path / "c.yaml"
    # The second chunk takes long: the caller is cancelled while it waits for it.
    upstream = Upstream(TURN_CHUNKS, gaps=[0.0, 30.0, 0.0])

    started = time.perf_counter()
    received = cancel_reading(path, upstream, until=lambda chunk: True)

    assert time.perf_counter() - started < 15.0
    assert received == [TURN_CHUNKS[0]]
    response = recorded(path)
    assert response.body == TURN_CHUNKS[0]
    assert sizes(response) == [len(TURN_CHUNKS[0])]
    assert response.partial == "the caller was cancelled before the end"


def test_an_async_caller_cancelled_after_done_leaves_a_whole_recording(tmp_path: Path) -> None:
    """The server ends the body long after [DONE]; the caller is cancelled waiting for it."""
    path = tmp_path / "c.yaml"
    late_end = b": the body ends later\n\n"
    upstream = Upstream([*TURN_CHUNKS, late_end], gaps=[0.0] * len(TURN_CHUNKS) + [30.0])

    received = cancel_reading(path, upstream, until=lambda chunk: chunk.endswith(DONE))

    assert b"".join(received) == TURN_BODY
    response = recorded(path)
    assert response.body == TURN_BODY
    assert response.partial is None


@pytest.mark.parametrize("caller", ["httpx", "chat-client"])
def test_stopping_right_after_done_is_not_partial(tmp_path: Path, caller: str) -> None:
    path = tmp_path / "c.yaml"
    # The server would go on (a trailing comment) after [DONE]; the caller stops at [DONE].
    chunks = [event(content("Hel")), event(finish()), DONE, b": trailing\n\n"]
    upstream = Upstream(chunks, gaps=0.005)
    transport = RecordingTransport(path, upstream.transport)

    if caller == "httpx":
        assert read(transport, limit=3)[-1] == DONE
    else:
        assert isinstance(chat_events(transport)[-1], Completed)

    assert "produce 3" not in upstream.log
    response = recorded(path)
    assert response.body == b"".join(chunks[:3])
    assert response.partial is None


@pytest.mark.parametrize("kind", ["recording", "cassette"])
def test_unclosed_response_is_written_as_partial_when_the_transport_closes(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "c.yaml"
    inner = Upstream().transport
    transport: RecordingTransport | CassetteTransport = (
        RecordingTransport(path, inner=inner)
        if kind == "recording"
        else CassetteTransport(path, record_mode="once", inner=inner)
    )
    client = httpx.Client(transport=transport)
    response = client.send(client.build_request("POST", URL, json=BODY), stream=True)
    chunks = response.iter_bytes()  # kept: the response stays open, never closed by the caller
    try:
        assert next(chunks) == TURN_CHUNKS[0]

        transport.close()

        assert path.exists()
        response_recorded = recorded(path)
        assert response_recorded.body == TURN_CHUNKS[0]
        assert response_recorded.partial == "the caller never closed the response"
    finally:
        response.close()
        client.close()


# --------------------------------------------------------------------------------------------
# Compressed bodies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_gzip_body_is_decoded_for_the_caller_and_stored_decoded(
    tmp_path: Path, flavour: Flavour
) -> None:
    path = tmp_path / "c.yaml"
    compressed = gzip.compress(TURN_BODY)
    pieces = [compressed[:15], compressed[15:40], compressed[40:]]
    assert all(pieces)
    headers = {
        "content-type": "text/event-stream",
        "content-encoding": "gzip",
        "content-length": str(len(compressed)),
    }
    upstream = Upstream(pieces, gaps=0.005, headers=headers)

    chunks = record(path, upstream.transport, flavour)

    assert b"".join(chunks) == TURN_BODY
    response = recorded(path)
    assert response.body == TURN_BODY
    assert sum(sizes(response)) == len(TURN_BODY)
    assert response.header("content-type") == "text/event-stream"
    # The file itself (read as plain YAML, as vcrpy would) has no wire-form headers.
    document = yaml.safe_load(path.read_text())
    stored = document["interactions"][0]["response"]
    assert {name.lower() for name in stored["headers"]} == {"content-type"}
    assert stored["body"]["string"] == TURN_BODY.decode()
    # And it replays decoded.
    assert b"".join(read(ReplayTransport(path))) == TURN_BODY


def stored_response(path: Path, index: int = 0) -> JsonObject:
    """The response as the file holds it, read as plain YAML (as vcrpy would)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    response: JsonObject = document["interactions"][index]["response"]
    return response


def _deflate(body: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(body) + compressor.flush()


@pytest.mark.parametrize("wbits", [-15, 15], ids=["raw-deflate", "zlib-deflate"])
def test_deflate_body_reaches_the_caller_as_without_the_recorder_and_is_stored_decoded(
    tmp_path: Path, wbits: int
) -> None:
    path = tmp_path / "c.yaml"
    compressed = _deflate(TURN_BODY, wbits)
    pieces = [compressed[:10], compressed[10:30], compressed[30:]]
    assert all(pieces)
    headers = {**SSE_HEADERS, "content-encoding": "deflate"}

    without = b"".join(read(Upstream(pieces, headers=headers).transport))
    through = b"".join(read(RecordingTransport(path, Upstream(pieces, headers=headers).transport)))

    assert without == TURN_BODY
    assert through == without
    stored = stored_response(path)
    assert "content-encoding" not in {name.lower() for name in stored["headers"]}
    assert stored["body"]["string"] == TURN_BODY.decode()


def _corrupt_gzip(body: bytes) -> bytes:
    compressed = gzip.compress(body * 20)
    corrupt = compressed[:10] + bytes(byte ^ 0xFF for byte in compressed[10:30]) + compressed[30:]
    try:
        zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(corrupt)
    except zlib.error:
        return corrupt
    raise AssertionError("the corrupted gzip body decompresses")


CORRUPT_GZIP = _corrupt_gzip(TURN_BODY)
GZIP_HEADERS = {**SSE_HEADERS, "content-encoding": "gzip"}


def test_corrupt_gzip_body_gives_chat_client_the_same_events_as_without_the_recorder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"

    without = chat_events(Upstream([CORRUPT_GZIP], headers=GZIP_HEADERS).transport)
    inner = Upstream([CORRUPT_GZIP], headers=GZIP_HEADERS).transport
    through = chat_events(RecordingTransport(path, inner))

    assert isinstance(without[-1], ErrorEvent)
    assert through == without


def test_corrupt_gzip_body_is_stored_raw_and_replays_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    without = chat_events(Upstream([CORRUPT_GZIP], headers=GZIP_HEADERS).transport)
    chat_events(RecordingTransport(path, Upstream([CORRUPT_GZIP], headers=GZIP_HEADERS).transport))

    response = recorded(path)
    assert response.header("content-encoding") == "gzip"
    assert response.body == CORRUPT_GZIP
    assert chat_events(ReplayTransport(path)) == without


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 4
ANTHROPIC_KEY = "sk-ant-api03-" + "Xy9" * 10
GOOGLE_KEY = "AIza" + "B7c" * 11 + "DE"
SESSION_COOKIE = "session=s3cr3t-request-cookie"
SET_COOKIE = "session=s3cr3t-response-cookie; Path=/; HttpOnly"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_secrets_are_redacted_on_disk_but_sent_live(tmp_path: Path, flavour: Flavour) -> None:
    path = tmp_path / "c.yaml"
    upstream = Upstream(TURN_CHUNKS, headers={**SSE_HEADERS, "set-cookie": SET_COOKIE})
    headers = {
        "authorization": f"Bearer {OPENAI_KEY}",
        "x-api-key": ANTHROPIC_KEY,
        "cookie": SESSION_COOKIE,
    }
    url = f"{URL}?api-version=2024-10-01&key={GOOGLE_KEY}"
    transport = RecordingTransport(path, upstream.transport)

    async def aread_with_secrets() -> None:
        async with (
            httpx.AsyncClient(transport=transport) as client,
            client.stream("POST", url, json=BODY, headers=headers) as response,
        ):
            await response.aread()

    if flavour == "sync":
        read(transport, url=url, headers=headers)
    else:
        asyncio.run(aread_with_secrets())

    # The live request carried the real values.
    (live,) = upstream.requests
    assert live.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert live.headers["x-api-key"] == ANTHROPIC_KEY
    assert live.headers["cookie"] == SESSION_COOKIE
    assert live.url.params["key"] == GOOGLE_KEY

    text = path.read_text()
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, "s3cr3t-request", "s3cr3t-response"):
        assert secret not in text
    interaction = load_cassette(path).interactions[0]
    request_headers = {name.lower(): value for name, value in interaction.request.headers}
    assert request_headers["authorization"] == REDACTED
    assert request_headers["x-api-key"] == REDACTED
    assert request_headers["cookie"] == REDACTED
    assert interaction.response.header("set-cookie") == REDACTED
    query = parse_qs(urlsplit(interaction.request.uri).query)
    assert query == {"api-version": ["2024-10-01"], "key": [REDACTED]}
    assert interaction.response.body == TURN_BODY


def test_chat_client_bearer_token_is_redacted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    upstream = Upstream(TURN_CHUNKS)
    provider = ProviderSettings(base_url=BASE_URL, experimental_bearer_token=OPENAI_KEY)
    with ChatClient(provider, MODEL, transport=RecordingTransport(path, upstream.transport)) as c:
        events = list(c.stream(Prompt()))

    assert isinstance(events[-1], Completed)
    assert upstream.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert OPENAI_KEY not in path.read_text()
    request = load_cassette(path).interactions[0].request
    assert dict(request.headers)["authorization"] == REDACTED


def test_organisation_project_and_api_key_headers_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    response_headers = {
        **SSE_HEADERS,
        "openai-organization": "org-s3cr3tOrgName",
        "openai-project": "proj_s3cr3tProject",
        "anthropic-organization-id": "s3cr3t-anthropic-org",
    }
    upstream = Upstream(TURN_CHUNKS, headers=response_headers)
    request_headers = {
        "api-key": "s3cr3t-azure-key",
        "openai-organization": "org-s3cr3tOrgName",
        "openai-project": "proj_s3cr3tProject",
    }
    url = f"{URL}?api_key=s3cr3t-query-key"

    read(RecordingTransport(path, upstream.transport), url=url, headers=request_headers)

    assert upstream.requests[0].headers["api-key"] == "s3cr3t-azure-key"
    assert "s3cr3t" not in path.read_text()
    interaction = load_cassette(path).interactions[0]
    request = dict(interaction.request.headers)
    for name in request_headers:
        assert request[name] == REDACTED
    for name in ("openai-organization", "openai-project", "anthropic-organization-id"):
        assert interaction.response.header(name) == REDACTED
    assert parse_qs(urlsplit(interaction.request.uri).query) == {"api_key": [REDACTED]}


def test_recording_through_a_url_with_a_password_keeps_it_off_disk(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    password = "s3cr3t-pass"
    url = f"https://user:{password}@llm.example.com/v1/chat/completions"

    assert b"".join(read(RecordingTransport(path, Upstream().transport), url=url)) == TURN_BODY

    text = path.read_text(encoding="utf-8")
    assert password not in text
    assert base64.b64encode(f"user:{password}".encode()).decode() not in text
    cassette = load_cassette(path)
    assert cassette.interactions[0].request.uri == (
        "https://<redacted>@llm.example.com/v1/chat/completions"
    )
    assert cassette.metadata is not None
    assert cassette.metadata.base_url == "https://<redacted>@llm.example.com/v1"


@pytest.mark.parametrize("name", ["location", "content-location"])
def test_secret_query_parameter_in_a_response_location_header_is_redacted(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "c.yaml"
    headers = {**SSE_HEADERS, name: "https://h/next?token=SECRET123&page=2"}

    read(RecordingTransport(path, Upstream(headers=headers).transport))

    assert "SECRET123" not in path.read_text(encoding="utf-8")
    value = recorded(path).header(name)
    assert value == "https://h/next?token=%3Credacted%3E&page=2"
    assert parse_qs(urlsplit(value).query) == {"token": [REDACTED], "page": ["2"]}


# --------------------------------------------------------------------------------------------
# Recording into a cassette of another tool's format
# --------------------------------------------------------------------------------------------

Via = Literal["new-episodes", "recording"]
VIAS: tuple[Via, ...] = ("new-episodes", "recording")


def vcrpy_record(path: Path, *, serializer: str = "yaml") -> None:
    """Record one streamed POST with vcrpy itself into `path`."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, content=TURN_BODY)

    with (
        vcr.use_cassette(str(path), record_mode="once", serializer=serializer),
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
    ):
        assert client.post(URL, json=BODY).content == TURN_BODY


RUBY_VCR_CASSETTE = f"""\
---
http_interactions:
- request:
    method: post
    uri: {URL}
    body:
      encoding: UTF-8
      string: '{json.dumps(BODY)}'
    headers:
      Content-Type:
      - application/json
  response:
    status:
      code: 200
      message: OK
    headers:
      Content-Type:
      - text/event-stream
    body:
      encoding: UTF-8
      string: "data: [DONE]\\n\\n"
  recorded_at: Thu, 01 Jan 2026 00:00:00 GMT
recorded_with: VCR 6.2.0
"""


def foreign_cassette(tmp_path: Path, kind: str) -> Path:
    if kind == "vcrpy-json":
        path = tmp_path / "vcrpy.json"
        vcrpy_record(path, serializer="json")
    else:
        path = tmp_path / "ruby.yml"
        path.write_text(RUBY_VCR_CASSETTE, encoding="utf-8")
    assert len(load_cassette(path).interactions) == 1
    return path


def appending_transport(path: Path, via: Via, inner: httpx.BaseTransport) -> httpx.BaseTransport:
    if via == "new-episodes":
        return CassetteTransport(path, record_mode="new_episodes", inner=inner)
    return RecordingTransport(path, inner=inner)


def chat_body(text: str) -> JsonObject:
    return {**BODY, "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("kind", ["vcrpy-json", "ruby-vcr"])
def test_recording_into_a_foreign_format_cassette_is_refused_and_leaves_it_untouched(
    tmp_path: Path, kind: str, via: Via
) -> None:
    path = foreign_cassette(tmp_path, kind)
    before = path.read_bytes()

    with pytest.raises(InputError) as caught:
        read(appending_transport(path, via, Upstream().transport), body=chat_body("a new question"))

    assert path.name in str(caught.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("via", VIAS)
def test_recording_appends_to_a_vcrpy_yaml_cassette_that_vcrpy_still_reads(
    tmp_path: Path, via: Via
) -> None:
    path = tmp_path / "vcrpy.yaml"
    vcrpy_record(path)
    new_body = chat_body("a new question")

    read(appending_transport(path, via, Upstream().transport), body=new_body)

    cassette = load_cassette(path)
    assert len(cassette.interactions) == 2
    assert [json.loads(i.request.body or b"") for i in cassette.interactions] == [BODY, new_body]
    requests, responses = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
    assert len(requests) == len(responses) == 2
    assert [json.loads(request.body) for request in requests] == [BODY, new_body]


# --------------------------------------------------------------------------------------------
# The network transport: its TLS context is built before the first request
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recording_over_the_network_builds_its_tls_context_before_the_first_request(
    tmp_path: Path, flavour: Flavour, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = httpx.create_ssl_context

    def counted() -> Any:
        built.append("context")
        return real()

    monkeypatch.setattr(httpx, "create_ssl_context", counted)
    transport = RecordingTransport(tmp_path / "c.yaml")
    assert built == ["context"]
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b"data: [DONE]\n\n", headers=SSE_HEADERS)

    # httpx's default transports, as the recorder builds them, answered without a network.
    if flavour == "sync":
        monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda self, r: answer(r))
        with httpx.Client(transport=transport) as client:
            client.post(URL, json=BODY)
    else:

        async def handle(self: Any, request: httpx.Request) -> httpx.Response:
            return answer(request)

        monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle)

        async def ask() -> None:
            async with httpx.AsyncClient(transport=transport) as client:
                await client.post(URL, json=BODY)

        asyncio.run(ask())
    assert len(sent) == 1
    assert built == ["context"]  # none in the request: its timing is the provider's


def test_a_cassette_that_only_replays_builds_no_tls_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    monkeypatch.setattr(httpx, "create_ssl_context", lambda: built.append("context"))
    path = tmp_path / "c.yaml"
    path.write_text("interactions: []\nversion: 1\n")
    CassetteTransport(path, record_mode="none")
    assert built == []
