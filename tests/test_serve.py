"""`CassetteServer`: cassettes served over HTTP on uvicorn, in a thread of the test process.

Every client here is httpx on 127.0.0.1. Recordings go through another `CassetteServer` (or
a small ASGI app on uvicorn) as the upstream, so nothing reaches a network. Nothing is
asserted about wall-clock time: pacing is read from a `VirtualClock`'s sleeps, and "not
buffered" or "not blocked" is shown by the order in which things happen. Waits bounded by
`HANG_GUARD_SECONDS` only keep a broken server from hanging the run.
"""

import asyncio
import json
import logging
import os
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from llmx_replay import Faults, InputError, OptionError, ReplayOptions, VirtualClock
from llmx_replay.cassette import (
    REDACTED,
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    load_cassette,
    save_cassette,
)
from llmx_replay.cassette._model import BROKE_OFF, CANCELLED
from llmx_replay.serve import CASSETTE_HEADER, NO_RECORDING_STATUS, CassetteServer

CHAT_PATH = "/v1/chat/completions"
RECORDED_AT = "https://api.openai.com" + CHAT_PATH
HANG_GUARD_SECONDS = 60.0
BUNDLED_EXAMPLES = Path(__file__).resolve().parent.parent / "cassettes" / "examples"
SECRET_KEY = "sk-proj-TESTKEY0123456789abcdefghijklmnopqrstuvwxyz"


# --- cassettes built for the tests -----------------------------------------------------


def request_body(prompt: str, model: str = "gpt-test") -> bytes:
    document = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def delta_event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-serve",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def answer_events(*texts: str) -> list[bytes]:
    """The SSE events of an answer streamed as `texts`, ended by a finish and [DONE]."""
    return [
        delta_event({"role": "assistant", "content": ""}),
        *(delta_event({"content": text}) for text in texts),
        delta_event({}, "stop"),
        b"data: [DONE]\n\n",
    ]


HELLO_PROMPT = "Say hello"
HELLO_EVENTS = answer_events("Bonjour", " à toi", " 😀")
HELLO_BODY = b"".join(HELLO_EVENTS)
# Network-like pieces: the first ends inside an event, one is a single byte, one holds an
# event and a half.
_CUTS = [7, 150, 151, len(HELLO_BODY) - 40, len(HELLO_BODY)]
HELLO_SIZES = [end - start for start, end in zip([0, *_CUTS], _CUTS, strict=False)]
HELLO_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("x-request-id", "req_serve_0001"),
    ("openai-processing-ms", "42"),
]
HELLO = RecordedResponse(
    status=200,
    reason="OK",
    headers=HELLO_HEADERS,
    body=HELLO_BODY,
    headers_ms=100.0,
    chunks=tuple(zip(HELLO_SIZES, [200.0, 250.0, 300.0, 400.0, 450.0], strict=True)),
)
# The waits of a recorded-pace replay of HELLO: to the headers, then between the chunks.
HELLO_GAPS = [0.1, 0.1, 0.05, 0.05, 0.1, 0.05]
HELLO_CHUNKS = [data for data, _ in HELLO.recorded_chunks()]


def sse_response(body: bytes, **fields: Any) -> RecordedResponse:
    return RecordedResponse(
        status=200,
        reason="OK",
        headers=[("content-type", "text/event-stream")],
        body=body,
        **fields,
    )


def interaction(prompt: str, response: RecordedResponse, uri: str = RECORDED_AT) -> Interaction:
    request = RecordedRequest(
        method="POST",
        uri=uri,
        headers=[("content-type", "application/json")],
        body=request_body(prompt),
    )
    return Interaction(request=request, response=response)


def save(path: Path, *interactions: Interaction) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_cassette(path, Cassette(interactions=list(interactions), source_format="llmx-replay"))
    return path


def answer_of(index: int) -> bytes:
    return b"".join(answer_events(f"answer {index}", " é"))


PROMPTS = [f"question {index}" for index in range(8)]
# The upstream every recording test records from: HELLO, and eight other questions.
UPSTREAM_INTERACTIONS = [
    interaction(HELLO_PROMPT, HELLO),
    *(interaction(prompt, sse_response(answer_of(i))) for i, prompt in enumerate(PROMPTS)),
]


# --- clients and servers ---------------------------------------------------------------

# Built once: a context per client costs more than a request.
_TLS = ssl.create_default_context()


def client() -> httpx.Client:
    return httpx.Client(verify=_TLS, timeout=HANG_GUARD_SECONDS)


def async_client(**options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=_TLS, timeout=HANG_GUARD_SECONDS, **options)


def post(url: str, prompt: str = HELLO_PROMPT, **headers: str) -> httpx.Response:
    with client() as http:
        return http.post(url + CHAT_PATH, content=request_body(prompt), headers=headers)


def raw_pieces(url: str, prompt: str = HELLO_PROMPT, **headers: str) -> list[bytes]:
    """The body as its HTTP chunks arrived."""
    with (
        client() as http,
        http.stream("POST", url + CHAT_PATH, content=request_body(prompt), headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        return list(r.iter_raw())


def cut_pieces(url: str, prompt: str = HELLO_PROMPT) -> list[bytes]:
    """The body as its HTTP chunks arrived, up to the cut that the client must see."""
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client() as http,
        http.stream("POST", url + CHAT_PATH, content=request_body(prompt)) as response,
    ):
        assert response.status_code == 200
        received.extend(response.iter_raw())
    return received


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert list(document) == ["error"]
    error: dict[str, Any] = document["error"]
    return error


DATED_HEADERS = [
    ("content-type", "text/event-stream"),
    ("server", "cloudflare"),
    ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
]
BROKEN_BODY = HELLO_BODY[:90]
BROKEN = sse_response(
    BROKEN_BODY,
    chunks=((30, 10.0), (60, 20.0)),
    partial=f"{BROKE_OFF}ReadError: connection reset by peer",
)
FAULTED_BODIES = {
    "cut": (Faults(cut_after=2), b"".join(HELLO_EVENTS[:2])),
    "drop-done": (Faults(drop_done=True), b"".join(HELLO_EVENTS[:-1])),
    "error-chunk": (
        Faults(error_after=1, error_message="injected by the test"),
        HELLO_EVENTS[0]
        + b'data: {"error":{"message":"injected by the test","type":"server_error"}}\n\n'
        + b"".join(HELLO_EVENTS[1:]),
    ),
}


@dataclass
class Replays:
    """Servers that replay one cassette each, with their own options; each test uses its
    own server (and clock), so that what one asks does not change what another sees."""

    servers: dict[str, CassetteServer]
    clocks: dict[str, VirtualClock]


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replays]:
    """The servers of `Replays`, by name."""
    root = tmp_path_factory.mktemp("replays")
    clocks = {name: VirtualClock() for name in ("paced", "instant", "stall")}
    cassettes: dict[str, tuple[list[Interaction], ReplayOptions]] = {
        "paced": (
            [interaction(HELLO_PROMPT, HELLO)],
            ReplayOptions(pacing="recorded", speed=4, clock=clocks["paced"]),
        ),
        "instant": ([interaction(HELLO_PROMPT, HELLO)], ReplayOptions(clock=clocks["instant"])),
        "stall": (
            [interaction(HELLO_PROMPT, HELLO)],
            ReplayOptions(faults=Faults(stall_after=2, stall_seconds=7.5), clock=clocks["stall"]),
        ),
        **{
            name: ([interaction(HELLO_PROMPT, HELLO)], ReplayOptions(faults=faults))
            for name, (faults, _) in FAULTED_BODIES.items()
        },
        "status": ([interaction(HELLO_PROMPT, HELLO)], ReplayOptions(faults=Faults(status=429))),
        "dated": (
            [
                interaction(
                    HELLO_PROMPT,
                    RecordedResponse(
                        status=200, reason="OK", headers=DATED_HEADERS, body=HELLO_BODY
                    ),
                )
            ],
            ReplayOptions(),
        ),
        "query": ([interaction(HELLO_PROMPT, HELLO, RECORDED_AT + "?v=1")], ReplayOptions()),
        "twice": (
            [
                interaction(HELLO_PROMPT, sse_response(answer_of(1))),
                interaction(HELLO_PROMPT, sse_response(answer_of(2))),
            ],
            ReplayOptions(),
        ),
        "broken": ([interaction(HELLO_PROMPT, BROKEN)], ReplayOptions()),
    }
    servers = {
        name: CassetteServer(
            save(root / f"{name}.yaml", *interactions), record_mode="none", options=options
        )
        for name, (interactions, options) in cassettes.items()
    }
    # The bundled examples: besides cassettes, say-hi.json (a conversation, no cassette).
    bundled = shutil.copytree(BUNDLED_EXAMPLES, root / "bundled")
    servers["bundled"] = CassetteServer(bundled, record_mode="none")
    try:
        for server in servers.values():
            server.__enter__()
        yield Replays(servers, clocks)
    finally:
        # Each stop waits for uvicorn's shutdown; together they wait once.
        stopping = [threading.Thread(target=server.stop) for server in servers.values()]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()


@pytest.fixture(scope="module")
def hello_cassette(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(tmp_path_factory.mktemp("hello") / "hello.yaml", interaction(HELLO_PROMPT, HELLO))


@pytest.fixture(scope="module")
def hello_server(hello_cassette: Path) -> Iterator[CassetteServer]:
    """HELLO, replayed at once (a request may be answered any number of times)."""
    with CassetteServer(hello_cassette, record_mode="none") as server:
        yield server


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CassetteServer]:
    """The provider recordings are made from: a server replaying UPSTREAM_INTERACTIONS."""
    path = save(tmp_path_factory.mktemp("upstream") / "provider.yaml", *UPSTREAM_INTERACTIONS)
    with CassetteServer(path, record_mode="none") as server:
        yield server


def make_folder(root: Path) -> Path:
    """a.yaml and sub/b.yaml answer HELLO_PROMPT differently; c.yaml answers "other".

    Beside the folder, outside.yaml answers HELLO_PROMPT too.
    """
    # Written out of name order: the first by name answers, not the first written.
    save(root / "sub" / "b.yaml", interaction(HELLO_PROMPT, sse_response(answer_of(2))))
    save(root / "a.yaml", interaction(HELLO_PROMPT, sse_response(answer_of(1))))
    save(root / "c.yaml", interaction("other", sse_response(answer_of(3))))
    save(root.parent / "outside.yaml", interaction(HELLO_PROMPT, HELLO))
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("folder") / "cassettes")


@pytest.fixture(scope="module")
def folder_server(folder: Path) -> Iterator[CassetteServer]:
    with CassetteServer(folder, record_mode="none") as server:
        yield server


STALLED_PROMPT = "stall forever"


@pytest.fixture(scope="module")
def stalling_cassette(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STALLED_PROMPT: a first event, then nothing, ever; HELLO_PROMPT: HELLO."""
    cancelled = sse_response(HELLO_EVENTS[0], partial=CANCELLED)
    return save(
        tmp_path_factory.mktemp("stalling") / "stalling.yaml",
        interaction(STALLED_PROMPT, cancelled),
        interaction(HELLO_PROMPT, HELLO),
    )


@pytest.fixture(scope="module")
def stalling_server(stalling_cassette: Path) -> Iterator[CassetteServer]:
    with CassetteServer(stalling_cassette, record_mode="none") as server:
        yield server


Scope = MutableMapping[str, Any]


@contextmanager
def on_uvicorn(app: Any) -> Iterator[str]:
    """`app` (ASGI) served on 127.0.0.1 in a thread; yields its origin."""
    listening = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()  # the socket listens already: connections wait in its backlog
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        listening.close()


class HeldUpstream:
    """An upstream that sends the headers and a first chunk, then holds the rest of the body
    until `release` is set (or the hang guard passes). `order` says what happened when."""

    FIRST = HELLO_EVENTS[0]
    REST = b"".join(HELLO_EVENTS[1:])

    def __init__(self) -> None:
        self.release = threading.Event()
        self.order: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        while (await receive()).get("more_body", False):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.FIRST, "more_body": True})
        released = await asyncio.to_thread(self.release.wait, HANG_GUARD_SECONDS)
        self.order.append("upstream sent the rest" if released else "upstream gave up waiting")
        await send({"type": "http.response.body", "body": self.REST, "more_body": False})


# --- replaying: bytes, chunks, headers -------------------------------------------------


def test_replay_serves_the_recorded_body_in_its_recorded_chunks(
    hello_server: CassetteServer,
) -> None:
    assert len(HELLO_CHUNKS) == 5  # the recording cuts events apart: its chunks are kept
    assert raw_pieces(hello_server.url) == HELLO_CHUNKS


def test_replay_serves_the_recorded_status_and_headers_and_adds_no_server_or_date(
    hello_server: CassetteServer,
) -> None:
    response = post(hello_server.url)
    assert (response.status_code, response.reason_phrase) == (200, "OK")
    served = [(name.decode().lower(), value.decode()) for name, value in response.headers.raw]
    assert served == [*HELLO_HEADERS, ("transfer-encoding", "chunked")]
    assert response.content == HELLO_BODY


def test_recorded_server_and_date_headers_are_served_once_as_recorded(replays: Replays) -> None:
    served = post(replays.servers["dated"].url).headers
    assert served.get_list("server") == ["cloudflare"]
    assert served.get_list("date") == ["Thu, 01 Jan 2026 00:00:00 GMT"]


def accepted_sockets_of(client_address: tuple[str, int]) -> list[socket.socket]:
    """The sockets of this process whose peer is `client_address`: the server's side of a
    connection whose client is in this process too (dups, for the caller to close)."""
    found = []
    duplicates: set[int] = set()  # listed fd numbers may be ours by now (the listing's own)
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) in duplicates:
            continue
        try:
            duplicate = os.dup(int(fd))
        except OSError:  # closed meanwhile
            continue
        duplicates.add(duplicate)
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:  # not a socket
            os.close(duplicate)
            continue
        try:
            peer = sock.getpeername() if sock.type == socket.SOCK_STREAM else None
        except OSError:
            peer = None
        if peer == client_address:
            found.append(sock)
        else:
            sock.close()
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_served_connections_send_small_chunks_at_once(stalling_server: CassetteServer) -> None:
    """Nagle's algorithm is off (TCP_NODELAY) on the connections the server accepts.

    With it on, a chunk written while the previous one is unacknowledged waits for the
    client's delayed ACK (40 ms on Linux): on a keep-alive connection every response after
    the first arrives late and in lumps, unlike its recording.
    """
    body = request_body(STALLED_PROMPT)
    with (
        client() as http,
        http.stream("POST", stalling_server.url + CHAT_PATH, content=body) as response,
    ):
        pieces = response.iter_raw()  # kept: a generator let go closes the response
        next(pieces)  # the connection stays open: the replay stalls
        client_address = response.extensions["network_stream"].get_extra_info("client_addr")
        accepted = accepted_sockets_of(client_address)
        nodelay = [sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for sock in accepted]
        for sock in accepted:
            sock.close()
    assert len(nodelay) == 1
    assert nodelay[0] != 0


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_host_is_served_at_a_bracketed_url(hello_cassette: Path) -> None:
    with CassetteServer(hello_cassette, host="::1", record_mode="none") as server:
        assert server.url.startswith("http://[::1]:")
        assert post(server.url).content == HELLO_BODY


def test_a_bundled_cassette_recorded_at_the_provider_answers_at_the_server_origin(
    replays: Replays,
) -> None:
    recorded = load_cassette(BUNDLED_EXAMPLES / "text.yaml").interactions[0]
    assert recorded.request.uri.startswith("https://api.openai.com/")
    with client() as http:
        url = replays.servers["bundled"].url + CHAT_PATH
        response = http.post(url, content=recorded.request.body)
    assert response.status_code == 200
    assert response.content == recorded.response.body


def test_the_query_string_counts_in_matching(replays: Replays) -> None:
    url = replays.servers["query"].url + CHAT_PATH
    body = request_body(HELLO_PROMPT)
    with client() as http:
        answered = http.post(url + "?v=1", content=body)
        missed = http.post(url + "?v=2", content=body)
    assert answered.content == HELLO_BODY
    assert missed.status_code == NO_RECORDING_STATUS


def test_a_request_body_matches_by_meaning_not_by_bytes(hello_server: CassetteServer) -> None:
    reordered = {
        "stream": True,
        "messages": [{"content": HELLO_PROMPT, "role": "user"}],
        "model": "gpt-test",
    }
    with client() as http:
        response = http.post(hello_server.url + CHAT_PATH, content=json.dumps(reordered, indent=2))
    assert response.content == HELLO_BODY


def test_once_every_recording_is_played_they_are_played_again_from_the_first(
    replays: Replays,
) -> None:
    bodies = [post(replays.servers["twice"].url).content for _ in range(5)]
    first, second = answer_of(1), answer_of(2)
    assert bodies == [first, second, first, second, first]


def test_a_header_naming_the_served_cassette_is_accepted_and_another_is_a_400(
    hello_server: CassetteServer,
) -> None:
    assert post(hello_server.url, **{CASSETTE_HEADER: "hello"}).content == HELLO_BODY
    assert post(hello_server.url, **{CASSETTE_HEADER: "hello.yaml"}).content == HELLO_BODY
    refused = post(hello_server.url, **{CASSETTE_HEADER: "other"})
    assert refused.status_code == 400
    assert error_of(refused)["type"] == "invalid_request_error"


# --- pacing and faults -----------------------------------------------------------------


def test_recorded_pacing_sleeps_the_recorded_gaps_divided_by_speed(replays: Replays) -> None:
    assert raw_pieces(replays.servers["paced"].url) == HELLO_CHUNKS
    assert replays.clocks["paced"].sleeps == pytest.approx([gap / 4 for gap in HELLO_GAPS])


def test_instant_pacing_sleeps_never(replays: Replays) -> None:
    assert raw_pieces(replays.servers["instant"].url) == HELLO_CHUNKS
    assert replays.clocks["instant"].sleeps == []


def test_a_timed_stall_waits_on_the_clock_then_sends_the_rest(replays: Replays) -> None:
    assert post(replays.servers["stall"].url).content == HELLO_BODY
    assert replays.clocks["stall"].sleeps == [7.5]


@pytest.mark.parametrize("fault", list(FAULTED_BODIES))
def test_a_fault_changes_the_served_body(replays: Replays, fault: str) -> None:
    response = post(replays.servers[fault].url)
    assert response.status_code == 200
    assert response.content == FAULTED_BODIES[fault][1]


def test_a_status_fault_answers_with_that_status_and_a_json_error(replays: Replays) -> None:
    response = post(replays.servers["status"].url)
    assert response.status_code == 429
    assert response.json() == {"error": {"message": "llmx-replay injected status 429"}}


# --- requests no recording answers -----------------------------------------------------


def test_a_request_with_no_recording_gets_a_404_naming_the_closest_and_the_differences(
    hello_server: CassetteServer, hello_cassette: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = request_body(HELLO_PROMPT, model="gpt-other")
    with caplog.at_level(logging.WARNING, logger="llmx_replay.serve"), client() as http:
        response = http.post(hello_server.url + CHAT_PATH, content=body)
    assert response.status_code == NO_RECORDING_STATUS
    error = error_of(response)
    message = error.pop("message")
    assert error == {
        "type": "invalid_request_error",
        "param": "request.body.model",
        "code": "no_recording",
        "llmx_replay": {
            "cassette": str(hello_cassette),
            "closest_interaction": 0,
            "differences": [
                {"field": "request.body.model", "recorded": "gpt-test", "requested": "gpt-other"}
            ],
            "more_differences": False,
            "reason": "record mode 'none' never records",
        },
    }
    assert "\n" not in message
    assert message.startswith(f"{hello_cassette}: no recorded interaction matches POST ")
    logged = [
        record
        for record in caplog.records
        if record.name == "llmx_replay.serve" and record.levelno == logging.WARNING
    ]
    assert [record.getMessage() for record in logged] == [message]


def test_a_field_only_one_side_has_is_listed_without_the_other_side(
    hello_server: CassetteServer,
) -> None:
    document = json.loads(request_body(HELLO_PROMPT))
    document["temperature"] = 0.5
    with client() as http:
        response = http.post(hello_server.url + CHAT_PATH, json=document)
    details = error_of(response)["llmx_replay"]
    assert details["differences"] == [{"field": "request.body.temperature", "requested": 0.5}]


def test_the_server_keeps_serving_after_a_miss_and_keeps_the_miss(
    hello_server: CassetteServer,
) -> None:
    before = len(hello_server.misses)
    assert post(hello_server.url, "no such prompt").status_code == NO_RECORDING_STATUS
    assert post(hello_server.url).content == HELLO_BODY
    assert len(hello_server.misses) == before + 1
    assert hello_server.misses[-1].closest == 0


# --- a folder of cassettes -------------------------------------------------------------


def test_a_folder_answers_from_the_first_cassette_by_name_that_answers(
    folder_server: CassetteServer,
) -> None:
    assert post(folder_server.url).content == answer_of(1)
    assert post(folder_server.url, "other").content == answer_of(3)


@pytest.mark.parametrize("name", ["sub/b", "sub/b.yaml"])
def test_the_cassette_header_picks_a_cassette_of_the_folder(
    folder_server: CassetteServer, folder: Path, name: str
) -> None:
    assert post(folder_server.url, **{CASSETTE_HEADER: name}).content == answer_of(2)
    assert folder / "sub" / "b.yaml" in folder_server.cassettes.transports


def test_a_cassette_named_by_the_header_answers_only_its_own_requests(
    folder_server: CassetteServer, folder: Path
) -> None:
    response = post(folder_server.url, "other", **{CASSETTE_HEADER: "a"})
    assert response.status_code == NO_RECORDING_STATUS
    assert error_of(response)["llmx_replay"]["cassette"] == str(folder / "a.yaml")


@pytest.mark.parametrize("name", ["../outside", "sub/../../outside.yaml", "/etc/passwd"])
def test_a_header_naming_a_path_outside_the_folder_is_a_400(
    folder_server: CassetteServer, folder: Path, name: str
) -> None:
    response = post(folder_server.url, **{CASSETTE_HEADER: name})
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{CASSETTE_HEADER}: {name!r} is not the name of")
    opened = {path.resolve() for path in folder_server.cassettes.transports}
    assert (folder.parent / "outside.yaml").resolve() not in opened


def test_a_request_no_cassette_of_the_folder_answers_names_the_closest(
    folder_server: CassetteServer, folder: Path
) -> None:
    response = post(folder_server.url, "Say hallo")
    assert response.status_code == NO_RECORDING_STATUS
    details = error_of(response)["llmx_replay"]
    assert details["cassette"] in (str(folder / "a.yaml"), str(folder / "sub" / "b.yaml"))
    assert details["differences"][0]["field"].startswith("request.body.messages")
    assert details["reason"] == "no cassette of the folder records it"


def test_an_unreadable_file_in_the_folder_is_left_out_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = make_folder(tmp_path / "cassettes")
    broken = folder / "0-broken.yaml"  # first by name
    broken.write_text("interactions: [this is not: a cassette\n")
    with (
        caplog.at_level(logging.WARNING, logger="llmx_replay.serve"),
        CassetteServer(folder, record_mode="none") as server,
    ):
        first = post(server.url).content
        second = post(server.url).content
    assert first == second == answer_of(1)
    warnings = [record.getMessage() for record in caplog.records if "left out" in record.message]
    assert len(warnings) == 1  # said once, not at each request
    assert str(broken) in warnings[0]


def test_the_bundled_folder_serves_its_cassettes_past_a_file_that_is_no_cassette(
    replays: Replays,
) -> None:
    # reasoning.yaml, say-hi.json, text.yaml are asked first: then tool-call.yaml answers.
    recorded = load_cassette(BUNDLED_EXAMPLES / "tool-call.yaml").interactions[0]
    with client() as http:
        url = replays.servers["bundled"].url + CHAT_PATH
        response = http.post(url, content=recorded.request.body)
    assert response.content == recorded.response.body


# --- recording through an upstream -----------------------------------------------------


def test_recording_passes_the_upstream_answer_on_and_writes_it_to_the_cassette(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.yaml"
    with CassetteServer(path, record_mode="once", upstream=upstream.url) as front:
        response = post(front.url)
    assert response.content == HELLO_BODY
    served = [(name.lower(), value) for name, value in response.headers.multi_items()]
    assert served[: len(HELLO_HEADERS)] == HELLO_HEADERS
    recorded = load_cassette(path).interactions
    assert len(recorded) == 1
    assert recorded[0].request.uri == upstream.url + CHAT_PATH
    assert recorded[0].response.body == HELLO_BODY
    assert recorded[0].response.partial is None


def test_a_recording_replayed_by_a_fresh_server_gives_the_same_bytes(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.yaml"
    with CassetteServer(path, record_mode="once", upstream=upstream.url) as front:
        live = post(front.url).content
    with CassetteServer(path, record_mode="none") as replay:
        replayed = post(replay.url).content
    assert live == replayed == HELLO_BODY


def test_recording_scrubs_the_authorization_header(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.yaml"
    with CassetteServer(path, record_mode="once", upstream=upstream.url) as front:
        assert post(front.url, authorization=f"Bearer {SECRET_KEY}").content == HELLO_BODY
    assert SECRET_KEY not in path.read_text()
    headers = load_cassette(path).interactions[0].request.headers
    assert [value for name, value in headers if name.lower() == "authorization"] == [REDACTED]


def test_new_episodes_replays_what_is_recorded_and_records_the_rest(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = save(tmp_path / "half.yaml", interaction(HELLO_PROMPT, sse_response(answer_of(99))))
    with CassetteServer(path, record_mode="new_episodes", upstream=upstream.url) as front:
        replayed = post(front.url).content
        recorded = post(front.url, PROMPTS[0]).content
    assert (replayed, recorded) == (answer_of(99), answer_of(0))
    kept = load_cassette(path).interactions
    assert [item.response.body for item in kept] == [answer_of(99), answer_of(0)]


def test_a_folder_records_into_the_cassette_the_header_names_without_the_header(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "cassettes")
    with CassetteServer(folder, record_mode="once", upstream=upstream.url) as front:
        unnamed = post(front.url, PROMPTS[1])
        named = post(front.url, PROMPTS[1], **{CASSETTE_HEADER: "new/recorded"})
    assert unnamed.status_code == NO_RECORDING_STATUS
    assert "name a cassette with the header X-Llmx-Cassette" in error_of(unnamed)["message"]
    assert named.content == answer_of(1)
    recorded = load_cassette(folder / "new" / "recorded.yaml").interactions
    assert [item.response.body for item in recorded] == [answer_of(1)]
    names = {name.lower() for name, _ in recorded[0].request.headers}
    assert CASSETTE_HEADER not in names


def test_concurrent_recordings_into_one_cassette_are_all_written(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = tmp_path / "many.yaml"

    async def ask_all(url: str) -> list[bytes]:
        async with async_client() as http:

            async def ask(prompt: str) -> bytes:
                response = await http.post(url + CHAT_PATH, content=request_body(prompt))
                return response.content

            return list(await asyncio.gather(*(ask(prompt) for prompt in PROMPTS)))

    with CassetteServer(path, record_mode="once", upstream=upstream.url) as front:
        answers = asyncio.run(ask_all(front.url))
    assert answers == [answer_of(i) for i in range(len(PROMPTS))]
    kept = {
        json.loads(item.request.body or b"")["messages"][0]["content"]: item.response.body
        for item in load_cassette(path).interactions
    }
    assert kept == {prompt: answer_of(i) for i, prompt in enumerate(PROMPTS)}


def test_a_recorded_stream_is_passed_on_before_the_upstream_ends_it(tmp_path: Path) -> None:
    held = HeldUpstream()
    path = tmp_path / "held.yaml"
    with (
        on_uvicorn(held) as origin,
        CassetteServer(path, record_mode="once", upstream=origin) as front,
        client() as http,
        http.stream("POST", front.url + CHAT_PATH, content=request_body(HELLO_PROMPT)) as r,
    ):
        pieces = r.iter_raw()
        first = next(pieces)
        held.order.append("client got the first chunk")
        held.release.set()
        rest = b"".join(pieces)
    assert held.order == ["client got the first chunk", "upstream sent the rest"]
    assert first == HeldUpstream.FIRST
    assert first + rest == HELLO_BODY
    assert load_cassette(path).interactions[0].response.body == HELLO_BODY


def test_stopping_the_server_lets_a_recording_in_progress_finish(tmp_path: Path) -> None:
    held = HeldUpstream()
    path = tmp_path / "held.yaml"
    with (
        on_uvicorn(held) as origin,
        CassetteServer(path, record_mode="once", upstream=origin) as front,
    ):
        stop_asked = threading.Event()
        begin_stopping = front.app.begin_stopping

        def begin_stopping_and_say_so() -> None:
            begin_stopping()
            stop_asked.set()

        front.app.begin_stopping = begin_stopping_and_say_so  # type: ignore[method-assign]
        with (
            client() as http,
            http.stream("POST", front.url + CHAT_PATH, content=request_body(HELLO_PROMPT)) as r,
        ):
            pieces = r.iter_raw()
            first = next(pieces)
            stopping = threading.Thread(target=front.stop, daemon=True)
            stopping.start()
            assert stop_asked.wait(HANG_GUARD_SECONDS)
            held.release.set()
            rest = b"".join(pieces)
        stopping.join(HANG_GUARD_SECONDS)
        assert not stopping.is_alive()
    assert first + rest == HELLO_BODY
    kept = load_cassette(path).interactions[0].response
    assert (kept.body, kept.partial) == (HELLO_BODY, None)


def test_an_upstream_that_cannot_be_reached_is_a_502(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Bound, never listening: a connection to it is refused.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        origin = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with (
            caplog.at_level(logging.WARNING, logger="llmx_replay.serve"),
            CassetteServer(tmp_path / "new.yaml", record_mode="once", upstream=origin) as front,
        ):
            response = post(front.url)
            again = post(front.url)
    assert response.status_code == again.status_code == 502
    assert not (tmp_path / "new.yaml").exists()  # nothing was recorded
    error = error_of(response)
    assert error["type"] == "upstream_error"
    assert error["message"].startswith(f"upstream {origin}: ConnectError")
    assert any(f"upstream {origin}" in record.getMessage() for record in caplog.records)


def test_an_upstream_that_breaks_off_is_cut_and_recorded_as_broken_off(tmp_path: Path) -> None:
    broken = sse_response(
        HELLO_BODY[:60], partial=f"{BROKE_OFF}RemoteProtocolError: peer closed connection"
    )
    source = save(tmp_path / "broken.yaml", interaction(HELLO_PROMPT, broken))
    path = tmp_path / "recorded.yaml"
    with (
        CassetteServer(source, record_mode="none") as provider,
        CassetteServer(path, record_mode="once", upstream=provider.url) as front,
    ):
        received = b"".join(cut_pieces(front.url))
    assert received == HELLO_BODY[:60]
    kept = load_cassette(path).interactions[0].response
    assert kept.body == HELLO_BODY[:60]
    assert kept.partial is not None and kept.partial.startswith(BROKE_OFF)


# --- options refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        ({"record_mode": "once"}, "record_mode"),
        ({"record_mode": "new_episodes"}, "record_mode"),
        ({"record_mode": "all"}, "record_mode"),
        ({"record_mode": "sometimes"}, "record_mode"),
        ({"upstream": "http://127.0.0.1:9/v1"}, "upstream"),
        ({"upstream": "http://127.0.0.1:9/?key=1"}, "upstream"),
        ({"upstream": "ftp://127.0.0.1:9"}, "upstream"),
        ({"upstream": "127.0.0.1:9"}, "upstream"),
    ],
)
def test_options_a_server_cannot_take_raise_option_error(
    hello_cassette: Path, arguments: dict[str, Any], option: str
) -> None:
    with pytest.raises(OptionError) as raised:
        CassetteServer(hello_cassette, **arguments)
    assert raised.value.option == option


def test_recording_without_upstream_names_the_upstream_option(hello_cassette: Path) -> None:
    with pytest.raises(OptionError, match="upstream"):
        CassetteServer(hello_cassette, record_mode="once")


def test_a_missing_cassette_to_replay_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such cassette or folder"):
        CassetteServer(tmp_path / "missing.yaml", record_mode="none")


def test_a_busy_port_is_an_option_error_naming_the_port_and_the_address(
    hello_cassette: Path,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        server = CassetteServer(hello_cassette, record_mode="none", port=port)
        with pytest.raises(
            OptionError, match=f"^port: cannot listen on 127.0.0.1:{port}: "
        ) as error:
            server.start()
    assert error.value.option == "port"


# --- broken and stalled replays --------------------------------------------------------


def test_a_recorded_break_off_is_replayed_as_a_cut_connection_each_time(
    replays: Replays,
) -> None:
    url = replays.servers["broken"].url
    assert cut_pieces(url) == cut_pieces(url) == [BROKEN_BODY[:30], BROKEN_BODY[30:]]


def test_64_streams_complete_while_another_stalls_forever(
    stalling_server: CassetteServer,
) -> None:
    async def run(url: str) -> tuple[bytes, list[list[bytes]]]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with async_client(limits=limits) as http:

            async def hello() -> list[bytes]:
                body = request_body(HELLO_PROMPT)
                async with http.stream("POST", url + CHAT_PATH, content=body) as response:
                    return [piece async for piece in response.aiter_raw()]

            stalled_request = request_body(STALLED_PROMPT)
            async with http.stream("POST", url + CHAT_PATH, content=stalled_request) as stalled:
                first = await anext(stalled.aiter_raw())
                # The stalled stream is open, and stays so while the others run.
                others = await asyncio.gather(*(hello() for _ in range(64)))
            return first, list(others)

    first, others = asyncio.run(run(stalling_server.url))
    assert first == HELLO_EVENTS[0]
    assert others == [HELLO_CHUNKS] * 64


def test_a_client_leaving_a_stalled_replay_ends_its_handler(
    stalling_cassette: Path,
) -> None:
    with CassetteServer(stalling_cassette, record_mode="none") as server:
        uvicorn_state = server._server.server_state  # type: ignore[union-attr]
        with (
            client() as http,
            http.stream(
                "POST", server.url + CHAT_PATH, content=request_body(STALLED_PROMPT)
            ) as response,
        ):
            pieces = response.iter_raw()  # kept: a generator let go closes the response
            assert next(pieces) == HELLO_EVENTS[0]
            assert len(uvicorn_state.tasks) == 1
        # The stall never ends: only the client's leaving can end the request's task.
        left = threading.Event()
        for _ in range(int(HANG_GUARD_SECONDS / 0.01)):
            if not uvicorn_state.tasks:
                left.set()
                break
            left.wait(0.01)
        assert left.is_set()
        assert post(server.url).content == HELLO_BODY


def test_stopping_the_server_ends_a_replay_stalled_forever(stalling_cassette: Path) -> None:
    got_first = threading.Event()
    seen: list[object] = []

    def stalled_client(url: str) -> None:
        with (
            httpx.Client(verify=_TLS, timeout=None) as http,
            http.stream("POST", url + CHAT_PATH, content=request_body(STALLED_PROMPT)) as r,
        ):
            pieces = r.iter_raw()
            seen.append(next(pieces))
            got_first.set()
            try:
                seen.extend(pieces)
            except httpx.TransportError as error:
                seen.append(type(error))

    # Were the replay not ended, stop() would wait for it through this whole grace period
    # (uvicorn's own timeout is longer still), past the hang guard.
    server = CassetteServer(stalling_cassette, record_mode="none", recording_grace=1e6).start()
    reader = threading.Thread(target=stalled_client, args=(server.url,), daemon=True)
    reader.start()
    assert got_first.wait(HANG_GUARD_SECONDS)
    stopping = threading.Thread(target=server.stop, daemon=True)
    stopping.start()
    stopping.join(HANG_GUARD_SECONDS)
    assert not stopping.is_alive(), "stop() waits for the stalled replay"
    reader.join(HANG_GUARD_SECONDS)
    assert seen == [HELLO_EVENTS[0], httpx.RemoteProtocolError]


# --- what a recording cannot keep ------------------------------------------------------


async def answers_with_a_key(scope: Scope, receive: Any, send: Any) -> None:
    """An upstream whose answer holds something shaped like an API key."""
    assert scope["type"] == "http"
    while (await receive()).get("more_body", False):
        pass
    body = b"".join(answer_events(f"your key is {SECRET_KEY}"))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def test_an_answer_holding_a_key_reaches_the_client_whole_and_is_not_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "refused.yaml"
    with (
        on_uvicorn(answers_with_a_key) as origin,
        CassetteServer(path, record_mode="once", upstream=origin) as front,
    ):
        response = post(front.url)
    assert response.content == b"".join(answer_events(f"your key is {SECRET_KEY}"))
    assert not path.exists()
    refusals = [record for record in caplog.records if record.name == "llmx_replay.serve"]
    assert [record.levelno for record in refusals if "not recorded" in record.message] == [
        logging.ERROR
    ]
    assert SECRET_KEY not in caplog.text


def test_a_json_cassette_is_served_but_never_recorded_into(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=r"\.json: llmx-replay records cassettes as YAML"):
        CassetteServer(tmp_path / "new.json", record_mode="once", upstream=upstream.url)
    folder = make_folder(tmp_path / "cassettes")
    with CassetteServer(folder, record_mode="once", upstream=upstream.url) as front:
        refused = post(front.url, PROMPTS[1], **{CASSETTE_HEADER: "new.json"})
    assert refused.status_code == 400
    assert "records cassettes as YAML" in error_of(refused)["message"]
    assert not (folder / "new.json").exists()


def test_a_client_leaving_a_recording_leaves_the_whole_answer_recorded(tmp_path: Path) -> None:
    """The rest of the body reaches the cassette, not the client: every later client
    replays the whole answer."""
    upstream = HeldUpstream()
    path = tmp_path / "late.yaml"
    with on_uvicorn(upstream) as origin:
        with CassetteServer(path, record_mode="once", upstream=origin) as front:
            with (
                client() as http,
                http.stream("POST", front.url + CHAT_PATH, content=request_body(HELLO_PROMPT)) as r,
            ):
                first = next(r.iter_raw())
            upstream.release.set()  # the upstream sends the rest after the client left
        assert first == HeldUpstream.FIRST
    (recorded,) = load_cassette(path).interactions
    assert recorded.response.body == HELLO_BODY
    assert recorded.response.partial is None
    with CassetteServer(path, record_mode="none") as replay:
        assert post(replay.url).content == HELLO_BODY


def test_a_recording_unended_past_the_grace_is_left_out_and_its_connection_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server stops while the upstream holds the rest of the body (for good, here)."""
    upstream = HeldUpstream()
    path = tmp_path / "unended.yaml"
    with on_uvicorn(upstream) as origin:
        front = CassetteServer(path, record_mode="once", upstream=origin, recording_grace=0.0)
        front.start()
        try:
            with (
                client() as http,
                http.stream("POST", front.url + CHAT_PATH, content=request_body(HELLO_PROMPT)) as r,
            ):
                pieces = r.iter_raw()
                assert HELLO_BODY.startswith(next(pieces))
                front.stop()
                with pytest.raises(httpx.RemoteProtocolError):
                    list(pieces)
        finally:
            front.stop()
            upstream.release.set()
    assert not path.exists()
    assert "left out, the upstream had not ended it" in caplog.text


def test_a_client_leaving_a_long_replay_is_noticed_without_writes_to_a_lost_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An instant replay sends without waiting; it must still see the client go."""
    events = answer_events(*(f"piece {index}" for index in range(20_000)))
    long_answer = sse_response(
        b"".join(events), chunks=tuple((len(event), 1.0) for event in events)
    )
    path = save(tmp_path / "long.yaml", interaction(HELLO_PROMPT, long_answer))
    with CassetteServer(path, record_mode="none") as server:
        with (
            client() as http,
            http.stream("POST", server.url + CHAT_PATH, content=request_body(HELLO_PROMPT)) as r,
        ):
            assert next(r.iter_raw()).startswith(b"data: ")
        # The server goes on serving: the leaving client did not hold it up.
        assert post(server.url).content == b"".join(events)
    lost_writes = [record for record in caplog.records if "socket.send() raised" in record.message]
    assert lost_writes == []


# --- names, targets and headers a client sends -----------------------------------------


def test_two_names_of_one_cassette_share_its_transport_and_its_file(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "cassettes")
    with CassetteServer(folder, record_mode="new_episodes", upstream=upstream.url) as front:
        first = post(front.url, PROMPTS[0], **{CASSETTE_HEADER: "a"})
        second = post(front.url, PROMPTS[1], **{CASSETTE_HEADER: "sub/../a"})
        assert len(front.cassettes.transports) == 1
    assert (first.content, second.content) == (answer_of(0), answer_of(1))
    kept = [item.response.body for item in load_cassette(folder / "a.yaml").interactions]
    # a.yaml's own recording (make_folder's), then the two recorded through its two names.
    assert kept == [answer_of(1), answer_of(0), answer_of(1)]


def test_a_link_out_of_the_folder_is_served_by_no_name_and_one_inside_by_both(
    tmp_path: Path,
) -> None:
    folder = make_folder(tmp_path / "cassettes")
    (folder / "out.yaml").symlink_to(folder.parent / "outside.yaml")
    (folder / "alias.yaml").symlink_to(folder / "c.yaml")
    with CassetteServer(folder, record_mode="none") as server:
        assert post(server.url, **{CASSETTE_HEADER: "out"}).status_code == 400
        # Unnamed, HELLO_PROMPT is answered by a.yaml, first by name of those inside.
        assert post(server.url).content == answer_of(1)
        assert post(server.url, "other", **{CASSETTE_HEADER: "alias"}).content == answer_of(3)
        assert post(server.url, "other", **{CASSETTE_HEADER: "c"}).content == answer_of(3)
        opened = set(server.cassettes.transports)
    assert (folder.parent / "outside.yaml").resolve() not in opened
    assert (folder / "c.yaml").resolve() in opened
    assert (folder / "alias.yaml") not in opened


def test_a_missing_cassette_named_in_mode_none_is_a_404_and_opens_nothing(
    folder_server: CassetteServer,
) -> None:
    opened = set(folder_server.cassettes.transports)
    response = post(folder_server.url, **{CASSETTE_HEADER: "no/such/cassette"})
    assert response.status_code == NO_RECORDING_STATUS
    assert "there is no such cassette" in error_of(response)["message"]
    assert set(folder_server.cassettes.transports) == opened


def raw_exchange(url: str, head: bytes, body: bytes) -> bytes:
    """What the server answers a request written by hand, up to its end (Connection: close)."""
    parts = httpx.URL(url)
    with socket.create_connection((parts.host, parts.port), timeout=HANG_GUARD_SECONDS) as sock:
        sock.sendall(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: [::1\r\n",
        b"POST http://example.invalid/v1/chat/completions HTTP/1.1\r\nHost: example.invalid\r\n",
    ],
    ids=["malformed-host", "absolute-target"],
)
def test_a_request_is_answered_whatever_host_it_names(
    hello_server: CassetteServer, head: bytes
) -> None:
    answer = raw_exchange(hello_server.url, head, request_body(HELLO_PROMPT))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert all(chunk in answer for chunk in HELLO_CHUNKS)  # each an HTTP chunk of its own


def test_headers_meant_for_one_hop_are_not_sent_on_nor_recorded(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = tmp_path / "hops.yaml"
    with CassetteServer(path, record_mode="once", upstream=upstream.url) as front:
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Connection: x-hop\r\nX-Hop: private\r\nX-Kept: yes\r\n"
        )
        assert raw_exchange(front.url, head, request_body(HELLO_PROMPT)).startswith(
            b"HTTP/1.1 200 "
        )
    (recorded,) = load_cassette(path).interactions
    names = {name.lower() for name, _ in recorded.request.headers}
    assert "x-kept" in names
    assert not names & {"x-hop", "connection"}


@pytest.mark.parametrize(
    ("host", "problem"), [("", "not empty"), ("no-such-host.invalid", "cannot be resolved")]
)
def test_a_host_that_cannot_be_listened_on_is_an_option_error_naming_host(
    hello_cassette: Path, host: str, problem: str
) -> None:
    server = CassetteServer(hello_cassette, host=host, record_mode="none")
    with pytest.raises(OptionError, match=problem) as raised:
        server.start()
    assert raised.value.option == "host"


def test_an_existing_json_cassette_is_served_in_a_mode_that_only_replays_it(
    upstream: CassetteServer, tmp_path: Path
) -> None:
    path = tmp_path / "recorded.json"
    path.write_text(
        json.dumps(
            {
                "interactions": [
                    {
                        "request": {
                            "method": "POST",
                            "uri": RECORDED_AT,
                            "body": request_body(HELLO_PROMPT).decode(),
                            "headers": {},
                        },
                        "response": {
                            "status": {"code": 200, "message": "OK"},
                            "headers": {"content-type": ["text/event-stream"]},
                            "body": {"string": HELLO_BODY.decode()},
                        },
                    }
                ],
                "version": 1,
            }
        )
    )
    with CassetteServer(path, record_mode="once", upstream=upstream.url) as server:
        assert post(server.url).content == HELLO_BODY
    with pytest.raises(InputError, match="records cassettes as YAML"):
        CassetteServer(path, record_mode="new_episodes", upstream=upstream.url)


def test_a_server_keeps_no_request_it_answered(hello_server: CassetteServer) -> None:
    post(hello_server.url)
    post(hello_server.url, "not recorded")
    (transport,) = hello_server.cassettes.transports.values()
    assert transport.requests == []
    assert transport.misses == []


def test_a_server_keeps_the_last_misses_and_counts_them_all(
    hello_cassette: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmx_replay.serve._app.KEPT_MISSES", 2)
    with CassetteServer(hello_cassette, record_mode="none") as server:
        for prompt in ("first miss", "second miss", "third miss"):
            assert post(server.url, prompt).status_code == NO_RECORDING_STATUS
        kept = [json.loads(miss.body)["messages"][0]["content"] for miss in server.misses]
        assert (kept, server.miss_count) == (["second miss", "third miss"], 3)
