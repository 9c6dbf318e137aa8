"""Record and replay costs: llmx_replay vs vcrpy and cassetter, every ratio from one run.

1. Time to first chunk while recording. A local SSE server on 127.0.0.1 (stdlib
   ``ThreadingHTTPServer``, ``Transfer-Encoding: chunked``, 20 events 20 ms apart, one write
   and flush per event); ``httpx.Client`` (and ``AsyncClient``) on the default transport vs
   on ``RecordingTransport`` wrapping the same kind of transport. Requests go in pairs, the
   order alternating; figures are medians, and the difference is the median of the per-pair
   differences. Target: within 1 ms.
2. Cassette load time. One 10k-event response (replay_throughput's generator, served in its
   1-4 KB pieces by ``httpx.MockTransport``) recorded once through each tool by the same
   ``ChatClient`` request. Two rows per tool: parsing the file, and what a user pays before
   the first replayed request (ours: ``ReplayTransport(path)``; vcrpy and cassetter:
   ``use_cassette`` enter + exit). Target: ours faster than both.
3. Per-request replay cost at 10, 100 and 1,000 interactions: distinct ~5 KB JSON prompts to
   one URL, each answered with a ~5 KB SSE stream, replayed in recorded order through
   ``httpx.Client.stream``. Ours (``ReplayTransport``), vcrpy (``match_on`` method, uri,
   body), cassetter (method, uri, json_body), and ``httpx.MockTransport`` handing out the same
   answers with no lookup (the baseline). Lookup = a tool's time per request minus the
   baseline's, per round. Cassettes are loaded before the timing. Target: ours ≤ 0.1 ms of
   lookup at 1,000.
4. Replay throughput of the 10k-event cassette: ``ChatClient`` over ``ReplayTransport``
   (instant pacing) vs over ``MockTransport`` serving the same pieces (the overhead ratio);
   vcrpy's and cassetter's replays of their cassettes for contrast; and the openai SDK
   through ``for_httpx2(ReplayTransport)`` vs over ``httpx2.MockTransport``.

The method of ``benchmarks/_harness.py``: each round times every row once, in an order
rotated by one each round; ``gc.collect()`` runs before each timed call, outside the timing;
figures are medians over rounds and ratios are medians of per-round ratios. What each tool
replays is checked once, outside the timing.

Run from the repository root, with the ``bench`` extra and vcrpy and cassetter installed::

    python benchmarks/record_replay.py [--quick]
"""

import argparse
import asyncio
import contextlib
import gc
import importlib
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import orjson
import vcr  # type: ignore[import-untyped]
from vcr.serialize import deserialize as vcr_deserialize  # type: ignore[import-untyped]
from vcr.serializers import yamlserializer  # type: ignore[import-untyped]

# The shared harness and replay_throughput's body generator, from beside this script; the
# working tree's llmx_replay (replay_throughput puts the repository root first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import median_difference, median_ratio, print_versions, rotations, timed
from replay_throughput import Body, Server, check_events, generate_body

from llmx_replay import ChatClient
from llmx_replay.cassette import (
    load_cassette,
)
from llmx_replay.models import Prompt, ProviderSettings, ResponseEvent
from llmx_replay.transports import RecordingTransport, ReplayTransport
from llmx_replay.transports._httpx2 import for_httpx2


def _optional(name: str) -> Any:
    """The module, or None when it is not installed (its rows are then left out)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


cassetter = _optional("cassetter")

SEED = 20250101
TTFC_EVENTS = 20
TTFC_GAP = 0.020
LOAD_EVENTS = 10_000
LOOKUP_SIZES = (10, 100, 1_000)
VCRPY_SAMPLE = 50  # vcrpy is timed on this many evenly spaced requests when N is larger
URL = "http://llm.test/v1/chat/completions"
JSON_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-0000"}
_USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
PROMPT = Prompt.model_validate({"input": [_USER_HI]})
_SDK_MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


# --------------------------------------------------------------------------- timing


@dataclass
class Row:
    """One timed row: `run(setup())` is timed, then `teardown(state)` runs untimed."""

    name: str
    run: Callable[[Any], object]
    setup: Callable[[], Any] = lambda: None
    teardown: Callable[[Any], None] = lambda state: None
    times: list[float] = field(default_factory=list)


def _timed(row: Row) -> float:
    state = row.setup()
    try:
        return timed(partial(row.run, state))
    finally:
        row.teardown(state)


def run_rounds(rows: Sequence[Row], rounds: int) -> None:
    """Every row once a round, in the harness's rotated order; times kept in each row."""
    for order in rotations(rows, rounds):
        for row in order:
            row.times.append(_timed(row))


def _drain(response: httpx.Response) -> bytes:
    # iter_bytes, not iter_raw: vcrpy hands back a response it has already read.
    return b"".join(response.iter_bytes())


# --------------------------------------------------------------------------- 1. first chunk


class _SSEHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    events: Sequence[bytes] = ()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index, event in enumerate(self.events):
            if index:
                time.sleep(TTFC_GAP)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def sse_server(events: Sequence[bytes]) -> Iterator[str]:
    handler = type("Handler", (_SSEHandler,), {"events": tuple(events)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def ttfc_events() -> list[bytes]:
    body = generate_body(TTFC_EVENTS)
    events = [b"data: " + payload + b"\n\n" for payload in body.payloads]
    events[-1] += b"data: [DONE]\n\n"
    return events


@dataclass
class Stream:
    first: float
    last: float
    done: float
    chunks: int


def _stream_sync(client: httpx.Client, url: str) -> Stream:
    gc.collect()
    start = time.perf_counter()
    arrivals: list[float] = []
    with client.stream("POST", url, content=b'{"model":"m"}', headers=JSON_HEADERS) as response:
        for _chunk in response.iter_raw():
            arrivals.append(time.perf_counter())
        done = time.perf_counter()
    return Stream(arrivals[0] - start, arrivals[-1] - start, done - start, len(arrivals))


async def _stream_async(client: httpx.AsyncClient, url: str) -> Stream:
    gc.collect()
    start = time.perf_counter()
    arrivals: list[float] = []
    async with client.stream(
        "POST", url, content=b'{"model":"m"}', headers=JSON_HEADERS
    ) as response:
        async for _chunk in response.aiter_raw():
            arrivals.append(time.perf_counter())
        done = time.perf_counter()
    return Stream(arrivals[0] - start, arrivals[-1] - start, done - start, len(arrivals))


def measure_ttfc_sync(url: str, folder: Path, runs: int) -> tuple[list[Stream], list[Stream]]:
    """Pairs of (default transport, recording): one connection pool each, reused."""
    plain_client = httpx.Client()
    inner = httpx.HTTPTransport()
    recording_clients = [
        httpx.Client(transport=RecordingTransport(folder / f"sync-{i}.yaml", inner=inner))
        for i in range(runs + 1)
    ]
    _stream_sync(plain_client, url)  # warm both pools
    _stream_sync(recording_clients[-1], url)
    plain: list[Stream] = []
    recording: list[Stream] = []
    for index in range(runs):
        if index % 2:
            recording.append(_stream_sync(recording_clients[index], url))
            plain.append(_stream_sync(plain_client, url))
        else:
            plain.append(_stream_sync(plain_client, url))
            recording.append(_stream_sync(recording_clients[index], url))
    plain_client.close()
    inner.close()
    return plain, recording


async def measure_ttfc_async(
    url: str, folder: Path, runs: int
) -> tuple[list[Stream], list[Stream]]:
    plain_client = httpx.AsyncClient()
    inner = httpx.AsyncHTTPTransport()
    recording_clients = [
        httpx.AsyncClient(transport=RecordingTransport(folder / f"async-{i}.yaml", inner=inner))
        for i in range(runs + 1)
    ]
    await _stream_async(plain_client, url)
    await _stream_async(recording_clients[-1], url)
    plain: list[Stream] = []
    recording: list[Stream] = []
    for index in range(runs):
        if index % 2:
            recording.append(await _stream_async(recording_clients[index], url))
            plain.append(await _stream_async(plain_client, url))
        else:
            plain.append(await _stream_async(plain_client, url))
            recording.append(await _stream_async(recording_clients[index], url))
    await plain_client.aclose()
    await inner.aclose()
    return plain, recording


def section_ttfc(folder: Path, runs: int) -> list[str]:
    events = ttfc_events()
    size = sum(len(event) for event in events)
    print(
        f"\n## 1. Time to first chunk: recording vs not ({TTFC_EVENTS} events, "
        f"{TTFC_GAP * 1000:.0f} ms apart, {size:,} B, chunked, 127.0.0.1; {runs} pairs)\n"
    )
    with sse_server(events) as url:
        results = {
            "sync": measure_ttfc_sync(url, folder, runs),
            "async": asyncio.run(measure_ttfc_async(url, folder, runs)),
        }
    for kind, (_plain, recording) in results.items():
        cassette = load_cassette(folder / f"{kind}-0.yaml").interactions[0].response
        if len(cassette.chunks or ()) != recording[0].chunks or cassette.partial is not None:
            raise AssertionError(f"{kind}: the recording does not hold the chunks served")
    print("| client | transport | first chunk ms | last chunk ms | stream closed ms | chunks |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, (plain, recording) in results.items():
        for name, streams in (("default", plain), ("RecordingTransport", recording)):
            print(
                f"| {kind} | {name} "
                f"| {statistics.median(s.first for s in streams) * 1e3:.2f} "
                f"| {statistics.median(s.last for s in streams) * 1e3:.1f} "
                f"| {statistics.median(s.done for s in streams) * 1e3:.1f} "
                f"| {statistics.median(s.chunks for s in streams):.0f} |"
            )
    print(
        "\nRecording minus default, median of the per-pair differences (the stream's end "
        "includes writing the cassette):\n"
    )
    print("| client | first chunk ms | last chunk ms | stream closed ms | first chunk target |")
    print("|---|---:|---:|---:|---|")
    lines = []
    for kind, (plain, recording) in results.items():
        first = median_difference([s.first for s in recording], [s.first for s in plain])
        last = median_difference([s.last for s in recording], [s.last for s in plain])
        done = median_difference([s.done for s in recording], [s.done for s in plain])
        ok = first <= 0.001
        verdict = "PASS" if ok else "FAIL"
        print(
            f"| {kind} | {first * 1e3:+.2f} | {last * 1e3:+.2f} | {done * 1e3:+.2f} "
            f"| ≤ 1 ms: {verdict} |"
        )
        lines.append(f"{kind} first chunk {first * 1e3:+.2f} ms while recording: {verdict}")
    return lines


# --------------------------------------------------------------------------- 2. load


def pieces_handler(pieces: Sequence[bytes]) -> Callable[[httpx.Request], httpx.Response]:
    server = Server()
    server.pieces = list(pieces)
    return server.httpx_handler


def _refusing(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the replay reached the network: {request.method} {request.url}")


def _chat(transport: httpx.BaseTransport) -> list[ResponseEvent]:
    with ChatClient(ProviderSettings(), "m", transport=transport) as client:
        return list(client.stream(PROMPT))


@dataclass
class LoadRig:
    body: Body
    ours: Path
    vcrpy: Path
    cassetter: Path | None
    sdk: Path
    seconds: dict[str, float]


def _vcr(**options: Any) -> Any:
    return vcr.VCR(serializer="yaml", decode_compressed_response=True, **options)


def record_load_cassettes(folder: Path) -> LoadRig:
    """The 10k-event response, recorded once through each tool by the same request."""
    body = generate_body(LOAD_EVENTS)
    handler = pieces_handler(body.pieces)
    seconds: dict[str, float] = {}
    ours = folder / "10k-ours.yaml"
    start = time.perf_counter()
    check_events(
        "streaming", _chat(RecordingTransport(ours, inner=httpx.MockTransport(handler))), body
    )
    seconds["ours"] = time.perf_counter() - start
    response = load_cassette(ours).interactions[0].response
    if response.body != body.data or response.partial is not None:
        raise AssertionError("ours: the recording is not the whole body")

    vcrpy = folder / "10k-vcrpy.yaml"
    start = time.perf_counter()
    with _vcr(record_mode="once", match_on=["method", "uri", "body"]).use_cassette(str(vcrpy)):
        check_events("streaming", _chat(httpx.MockTransport(handler)), body)
    seconds["vcrpy"] = time.perf_counter() - start

    cassetter_path = None
    if cassetter is not None:
        cassetter_path = folder / "10k-cassetter.yaml"
        start = time.perf_counter()
        with cassetter.use_cassette(
            cassetter_path, record_mode="once", match_on=["method", "uri", "json_body"]
        ):
            check_events("streaming", _chat(httpx.MockTransport(handler)), body)
        seconds["cassetter"] = time.perf_counter() - start

    sdk = folder / "10k-sdk.yaml"
    recording = RecordingTransport(sdk, inner=httpx.MockTransport(handler))
    http = httpx2.Client(transport=for_httpx2(recording))
    with openai.OpenAI(base_url="http://llm.test/v1", api_key="x", http_client=http) as client:
        chunks = sum(1 for _ in _sdk_stream(client))
    if chunks != body.events:
        raise AssertionError(f"SDK recording: {chunks} chunks for {body.events} events")
    return LoadRig(body, ours, vcrpy, cassetter_path, sdk, seconds)


def _vcrpy_parse(path: Path) -> object:
    return vcr_deserialize(path.read_text(), yamlserializer)


def _vcrpy_enter_exit(path: Path) -> object:
    with _vcr(record_mode="none", match_on=["method", "uri", "body"]).use_cassette(str(path)):
        pass
    return None


def _cassetter_parse(path: Path) -> object:
    assert cassetter is not None
    loaded = cassetter.Cassette(
        path,
        record_mode=cassetter.RecordMode.NONE,
        match_config=cassetter.MatchConfig(match_on=["method", "uri", "json_body"]),
    )
    loaded.load()
    return loaded


def _cassetter_enter_exit(path: Path) -> object:
    assert cassetter is not None
    with cassetter.use_cassette(
        path, record_mode="none", match_on=["method", "uri", "json_body"]
    ) as loaded:
        return len(loaded)


def section_load(rig: LoadRig, rounds: int) -> list[str]:
    files = {"ours": rig.ours, "vcrpy": rig.vcrpy}
    if rig.cassetter is not None:
        files["cassetter"] = rig.cassetter
    print(
        f"\n## 2. Cassette load: one {LOAD_EVENTS:,}-event response "
        f"({len(rig.body.data) / 1e6:.2f} MB body, recorded in {len(rig.body.pieces):,} "
        f"pieces of 1-4 KB); {rounds} rounds\n"
    )
    print("| tool | file bytes | record s (one request, incl. save) |")
    print("|---|---:|---:|")
    for tool, path in files.items():
        print(f"| {tool} | {path.stat().st_size:,} | {rig.seconds[tool]:.3f} |")

    parse = {
        "ours": Row("ours: load_cassette(path)", lambda _: load_cassette(rig.ours)),
        "vcrpy": Row(
            "vcrpy: deserialize(read_text(), yamlserializer)", lambda _: _vcrpy_parse(rig.vcrpy)
        ),
    }
    ready = {
        "ours": Row(
            "ours: ReplayTransport(path) (load + index)", lambda _: ReplayTransport(rig.ours)
        ),
        "vcrpy": Row(
            "vcrpy: use_cassette(path) enter + exit", lambda _: _vcrpy_enter_exit(rig.vcrpy)
        ),
    }
    if rig.cassetter is not None:
        path = rig.cassetter
        parse["cassetter"] = Row(
            "cassetter: Cassette(path).load()", lambda _: _cassetter_parse(path)
        )
        ready["cassetter"] = Row(
            "cassetter: use_cassette(path) enter + exit", lambda _: _cassetter_enter_exit(path)
        )
    rows = [*parse.values(), *ready.values()]
    for row in rows:  # warm-up, untimed
        row.run(None)
    run_rounds(rows, rounds)
    print("\n| what | median ms | time / ours (same kind) |")
    print("|---|---:|---:|")
    lines = []
    for kind in (parse, ready):
        ours = kind["ours"]
        for row in kind.values():
            ratio = median_ratio(row.times, ours.times)
            median = statistics.median(row.times) * 1e3
            print(f"| {row.name} | {median:.1f} | {ratio:.2f} |")
    for label, kind in (("parse", parse), ("ready to replay", ready)):
        for tool, row in kind.items():
            if tool == "ours":
                continue
            ratio = median_ratio(row.times, kind["ours"].times)
            verdict = "PASS" if ratio > 1 else "FAIL"
            lines.append(f"load, {label}: {tool} takes {ratio:.2f}x ours' time: {verdict}")
    return lines


# --------------------------------------------------------------------------- 3. lookup


_WORDS = ("alpha", "beta", "gamma", "delta", "stream", "replay", "token", "cassette", "naïve")
_SYSTEM = "You are a careful assistant. " * 40  # ~1.2 KB, the same in every prompt


@dataclass(frozen=True)
class Exchange:
    tag: str
    body: bytes
    answer: list[bytes]


def make_exchanges(count: int) -> list[Exchange]:
    rng = random.Random(SEED + count)
    exchanges = []
    for index in range(count):
        tag = f"tag-{count}-{index:04d}"
        words = " ".join(rng.choice(_WORDS) for _ in range(560))  # ~3.8 KB
        request = {
            "model": "gpt-4o-mini",
            "stream": True,
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": f"{tag}: {words}"},
            ],
        }
        events = [
            b"data: "
            + orjson.dumps(
                {
                    "id": f"chatcmpl-{tag}",
                    "object": "chat.completion.chunk",
                    "created": 1767225600,
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": {"content": f"{tag} {n} " + words[:120]}}],
                }
            )
            + b"\n\n"
            for n in range(20)
        ]
        data = b"".join(events) + b"data: [DONE]\n\n"
        answer = [data[start : start + 1400] for start in range(0, len(data), 1400)]
        exchanges.append(Exchange(tag, orjson.dumps(request), answer))
    return exchanges


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def _sse_response(chunks: Sequence[bytes]) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=_Chunks(chunks)
    )


class Answers:
    """A mock provider: by request body while recording, or in order with no lookup."""

    def __init__(self, exchanges: Sequence[Exchange]) -> None:
        self._by_body = {exchange.body: exchange.answer for exchange in exchanges}
        self._answers = [exchange.answer for exchange in exchanges]
        self._next = iter(self._answers)

    def reset(self) -> None:
        self._next = iter(self._answers)

    def by_body(self, request: httpx.Request) -> httpx.Response:
        return _sse_response(self._by_body[request.read()])

    def in_order(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return _sse_response(next(self._next))


def send_all(client: httpx.Client, exchanges: Sequence[Exchange]) -> list[bytes]:
    bodies = []
    for exchange in exchanges:
        with client.stream("POST", URL, content=exchange.body, headers=JSON_HEADERS) as response:
            bodies.append(_drain(response))
    return bodies


def check_answers(tool: str, bodies: Sequence[bytes], exchanges: Sequence[Exchange]) -> None:
    for body, exchange in zip(bodies, exchanges, strict=True):
        if body != b"".join(exchange.answer):
            raise AssertionError(f"{tool}: {exchange.tag} got another answer")


@dataclass
class LookupCassettes:
    ours: Path
    vcrpy: Path
    cassetter: Path | None
    record_seconds: dict[str, float]


def record_lookup_cassettes(folder: Path, exchanges: Sequence[Exchange]) -> LookupCassettes:
    count = len(exchanges)
    answers = Answers(exchanges)
    seconds: dict[str, float] = {}
    ours = folder / f"lookup-{count}-ours.yaml"
    start = time.perf_counter()
    transport = RecordingTransport(ours, inner=httpx.MockTransport(answers.by_body))
    with httpx.Client(transport=transport) as client:
        send_all(client, exchanges)
    seconds["ours"] = time.perf_counter() - start

    vcrpy = folder / f"lookup-{count}-vcrpy.yaml"
    start = time.perf_counter()
    # Recorded with method+uri matching, which spares vcrpy a body-matching scan per request
    # while recording; the file is the same, and replay matches on the body.
    with _vcr(record_mode="all").use_cassette(str(vcrpy)):
        send_all(httpx.Client(transport=httpx.MockTransport(answers.by_body)), exchanges)
    seconds["vcrpy"] = time.perf_counter() - start

    cassetter_path = None
    if cassetter is not None:
        cassetter_path = folder / f"lookup-{count}-cassetter.yaml"
        start = time.perf_counter()
        with cassetter.use_cassette(
            cassetter_path, record_mode="all", match_on=["method", "uri", "json_body"]
        ):
            send_all(httpx.Client(transport=httpx.MockTransport(answers.by_body)), exchanges)
        seconds["cassetter"] = time.perf_counter() - start
    return LookupCassettes(ours, vcrpy, cassetter_path, seconds)


@dataclass
class LookupResult:
    count: int
    rows: dict[str, Row]
    requests: dict[str, int]
    files: dict[str, int]
    record_seconds: dict[str, float]


Replaying = tuple[httpx.Client, contextlib.ExitStack]


def _under_vcrpy(path: Path) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    options = {"record_mode": "none", "match_on": ["method", "uri", "body"]}
    stack.enter_context(_vcr(**options).use_cassette(str(path)))
    return stack


def _under_cassetter(path: Path) -> contextlib.ExitStack:
    assert cassetter is not None
    stack = contextlib.ExitStack()
    stack.enter_context(
        cassetter.use_cassette(path, record_mode="none", match_on=["method", "uri", "json_body"])
    )
    return stack


def _send_replaying(requests: Sequence[Exchange], replaying: Replaying) -> list[bytes]:
    return send_all(replaying[0], requests)


def _close_replaying(replaying: Replaying) -> None:
    replaying[1].close()


def lookup_rows(
    exchanges: Sequence[Exchange], cassettes: LookupCassettes
) -> tuple[dict[str, Row], dict[str, Sequence[Exchange]]]:
    answers = Answers(exchanges)
    loaded = load_cassette(cassettes.ours)
    step = max(1, len(exchanges) // VCRPY_SAMPLE)
    mock_client = httpx.Client(transport=httpx.MockTransport(answers.in_order))

    def mock() -> Replaying:
        answers.reset()
        return mock_client, contextlib.ExitStack()

    def ours() -> Replaying:
        return httpx.Client(transport=ReplayTransport(loaded)), contextlib.ExitStack()

    def vcrpy() -> Replaying:
        stack = _under_vcrpy(cassettes.vcrpy)
        return httpx.Client(transport=httpx.MockTransport(_refusing)), stack

    def under_cassetter() -> Replaying:
        assert cassettes.cassetter is not None
        stack = _under_cassetter(cassettes.cassetter)
        # cassetter intercepts the clients built while its cassette is in use.
        return httpx.Client(transport=httpx.MockTransport(_refusing)), stack

    setups: dict[str, tuple[str, Callable[[], Replaying]]] = {
        "mock": ("httpx.MockTransport, no lookup (baseline)", mock),
        "ours": ("ours: ReplayTransport", ours),
        "vcrpy": ("vcrpy: match_on method, uri, body", vcrpy),
    }
    if cassettes.cassetter is not None:
        setups["cassetter"] = ("cassetter: match_on method, uri, json_body", under_cassetter)
    sent = {tool: exchanges[::step] if tool == "vcrpy" else exchanges for tool in setups}
    rows: dict[str, Row] = {}
    for tool, (name, setup) in setups.items():
        requests = sent[tool]
        state = setup()  # what each replays, once, outside the timing
        try:
            check_answers(tool, send_all(state[0], requests), requests)
        finally:
            state[1].close()
        rows[tool] = Row(name, partial(_send_replaying, requests), setup, _close_replaying)
    return rows, sent


def section_lookup(folder: Path, sizes: Sequence[int], rounds: dict[int, int]) -> list[str]:
    print(
        "\n## 3. Per-request replay cost: N interactions, distinct ~5 KB JSON prompts, one URL, "
        "~5 KB SSE answers, replayed in recorded order\n"
    )
    results = []
    for count in sizes:
        exchanges = make_exchanges(count)
        cassettes = record_lookup_cassettes(folder, exchanges)
        rows, sent = lookup_rows(exchanges, cassettes)
        requests = {tool: len(exchanges_sent) for tool, exchanges_sent in sent.items()}
        run_rounds(list(rows.values()), rounds[count])
        files = {"ours": cassettes.ours.stat().st_size, "vcrpy": cassettes.vcrpy.stat().st_size}
        if cassettes.cassetter is not None:
            files["cassetter"] = cassettes.cassetter.stat().st_size
        results.append(LookupResult(count, rows, requests, files, cassettes.record_seconds))
    prompt = len(make_exchanges(1)[0].body)
    per_size = ", ".join(f"{n:,}: {rounds[n]}" for n in sizes)
    print(f"Prompt body {prompt:,} B. Rounds per N: {per_size}.\n")
    print(
        "| N | row | requests timed | ms per request | lookup ms (minus baseline) "
        "| lookup / ours lookup | record s | file KB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    lines = []
    for result in results:
        mock = result.rows["mock"]
        per_mock = [t / result.requests["mock"] for t in mock.times]
        lookups: dict[str, list[float]] = {}
        for tool, row in result.rows.items():
            per = [t / result.requests[tool] for t in row.times]
            lookups[tool] = [a - b for a, b in zip(per, per_mock, strict=True)]
        for tool, row in result.rows.items():
            per = [t / result.requests[tool] for t in row.times]
            lookup = "" if tool == "mock" else f"{statistics.median(lookups[tool]) * 1e3:.3f}"
            times_ours = ""
            if tool not in ("mock", "ours"):
                ours_lookup = statistics.median(lookups["ours"])
                times_ours = f"{statistics.median(lookups[tool]) / ours_lookup:.1f}x"
            record = f"{result.record_seconds[tool]:.2f}" if tool in result.record_seconds else ""
            size = f"{result.files[tool] / 1024:,.0f}" if tool in result.files else ""
            per_request = statistics.median(per) * 1e3
            print(
                f"| {result.count:,} | {row.name} | {result.requests[tool]:,} "
                f"| {per_request:.3f} | {lookup} | {times_ours} | {record} | {size} |"
            )
        if result.count == max(sizes):
            ours_lookup = statistics.median(lookups["ours"]) * 1e3
            verdict = "PASS" if ours_lookup <= 0.1 else "FAIL"
            lines.append(
                f"lookup at {result.count:,}: ours {ours_lookup:.3f} ms per request: {verdict}"
            )
    notes = [
        f"vcrpy is timed on 1 request in {max(1, n // VCRPY_SAMPLE)} at N={n:,} "
        f"({VCRPY_SAMPLE} evenly spaced, in order)"
        for n in sizes
        if n > VCRPY_SAMPLE
    ]
    print("\n" + "\n".join(f"- {note}" for note in notes))
    return lines


# --------------------------------------------------------------------------- 4. throughput


def _sdk_stream(client: openai.OpenAI) -> Iterator[Any]:
    return iter(client.chat.completions.create(model="m", messages=_SDK_MESSAGES, stream=True))


def _count_sdk(client: openai.OpenAI) -> int:
    return sum(1 for _ in _sdk_stream(client))


def _chat_client(transport: httpx.BaseTransport) -> ChatClient:
    return ChatClient(ProviderSettings(), "m", transport=transport, mode="streaming")


def _events(client: ChatClient) -> list[ResponseEvent]:
    return list(client.stream(PROMPT))


Chatting = tuple[ChatClient, contextlib.ExitStack]
Asking = tuple[openai.OpenAI, contextlib.ExitStack]


def section_throughput(rig: LoadRig, rounds: int, sdk_rounds: int) -> list[str]:
    body = rig.body
    loaded = load_cassette(rig.ours)
    sdk_loaded = load_cassette(rig.sdk)
    chunks = len(loaded.interactions[0].response.chunks or ())
    mock_client = _chat_client(httpx.MockTransport(pieces_handler(body.pieces)))
    sdk_server = Server()
    sdk_server.pieces = body.pieces
    sdk_http = httpx2.Client(transport=httpx2.MockTransport(sdk_server.httpx2_handler))
    sdk_mock = openai.OpenAI(base_url="http://llm.test/v1", api_key="x", http_client=sdk_http)

    def mock() -> Chatting:
        return mock_client, contextlib.ExitStack()

    def ours() -> Chatting:
        return _chat_client(ReplayTransport(loaded)), contextlib.ExitStack()

    def vcrpy() -> Chatting:
        stack = _under_vcrpy(rig.vcrpy)
        return _chat_client(httpx.MockTransport(_refusing)), stack

    def under_cassetter() -> Chatting:
        assert rig.cassetter is not None
        stack = _under_cassetter(rig.cassetter)
        return _chat_client(httpx.MockTransport(_refusing)), stack

    def sdk_mocked() -> Asking:
        return sdk_mock, contextlib.ExitStack()

    def sdk_ours() -> Asking:
        http = httpx2.Client(transport=for_httpx2(ReplayTransport(sdk_loaded)))
        client = openai.OpenAI(base_url="http://llm.test/v1", api_key="x", http_client=http)
        return client, contextlib.ExitStack()

    chats: dict[str, tuple[str, Callable[[], Chatting]]] = {
        "mock": ("ChatClient over httpx.MockTransport, same pieces", mock),
        "ours": (f"ChatClient over ReplayTransport, instant ({chunks:,} chunks)", ours),
        "vcrpy": ("ChatClient under vcrpy replay (1 chunk)", vcrpy),
    }
    if rig.cassetter is not None:
        chats["cassetter"] = ("ChatClient under cassetter replay (1 chunk)", under_cassetter)
    asks: dict[str, tuple[str, Callable[[], Asking]]] = {
        "sdk mock": ("openai SDK over httpx2.MockTransport, same pieces", sdk_mocked),
        "sdk ours": ("openai SDK over for_httpx2(ReplayTransport)", sdk_ours),
    }
    rows: dict[str, Row] = {}
    for tool, (name, setup) in chats.items():
        chatting = setup()  # checked once, outside the timing
        try:
            check_events("streaming", _events(chatting[0]), body)
        finally:
            chatting[1].close()
        rows[tool] = Row(name, lambda state: _events(state[0]), setup, lambda s: s[1].close())
    sdk_rows: dict[str, Row] = {}
    for tool, (name, ask) in asks.items():
        asking = ask()
        count = _count_sdk(asking[0])
        if count != body.events:
            raise AssertionError(f"{tool}: {count} chunks for {body.events} events")
        sdk_rows[tool] = Row(name, lambda state: _count_sdk(state[0]), ask, lambda s: s[1].close())
    run_rounds(list(rows.values()), rounds)
    run_rounds(list(sdk_rows.values()), sdk_rounds)
    print(
        f"\n## 4. Replay throughput: the {body.events:,}-event cassette, loaded once; "
        f"{rounds} rounds ({sdk_rounds} for the SDK rows)\n"
    )
    print("| row | median ms | events/s | time x its MockTransport baseline |")
    print("|---|---:|---:|---:|")
    lines = []
    for group, baseline in ((rows, rows["mock"]), (sdk_rows, sdk_rows["sdk mock"])):
        for tool, row in group.items():
            median = statistics.median(row.times)
            ratio = median_ratio(row.times, baseline.times)
            print(
                f"| {row.name} | {median * 1e3:.1f} | {body.events / median:,.0f} | {ratio:.3f} |"
            )
            if tool in ("ours", "sdk ours"):
                lines.append(f"replay overhead, {row.name}: {ratio:.3f}x its baseline")
    return lines


# --------------------------------------------------------------------------- main


VERSIONS = (
    *("httpx", "httpcore", "httpx2", "openai", "vcrpy", "PyYAML", "cassetter"),
    *("pydantic", "orjson"),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few runs and rounds, a smoke test")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print_versions(VERSIONS, libyaml=True)
    if cassetter is None:
        print("cassetter is not installed: its rows are left out")
    quick = args.quick
    with tempfile.TemporaryDirectory(prefix="llmx-replay-bench-") as folder_name:
        folder = Path(folder_name)
        lines = section_ttfc(folder, 6 if quick else 30)
        rig = record_load_cassettes(folder)
        lines += section_load(rig, 3 if quick else 9)
        lookup_rounds = {10: 3, 100: 3, 1_000: 1} if quick else {10: 9, 100: 7, 1_000: 5}
        lines += section_lookup(folder, LOOKUP_SIZES, lookup_rounds)
        lines += section_throughput(rig, 3 if quick else 7, 2 if quick else 5)
    print("\n## Targets\n")
    for line in lines:
        print(f"- {line}")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
