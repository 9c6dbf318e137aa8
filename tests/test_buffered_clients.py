"""Clients on requests, urllib3 and aiohttp go through the active cassette, buffered.

vcrpy's patching catches them and asks llmx-replay's cassette: they record into the same
file as httpx clients, scrubbed, with bodies stored decoded, and replay from it with the
server gone; a request with no recording fails with the error an httpx client gets. The
server here gzips its stream, as providers behind a CDN do.
"""

import asyncio
import gzip
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import urllib3

from llmx_replay import NoMatchingInteraction, use_cassette
from llmx_replay.cassette import load_cassette

PROMPT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Say hi"}], "stream": True}
KEY = "sk-test-0123456789abcdefghijklmn"
EVENTS = [
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}'
    b"\n\n",
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]
STREAM = b"".join(EVENTS)


class GzipProvider:
    """A Chat Completions server on 127.0.0.1 answering every POST with `STREAM`, gzipped."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                provider.bodies.append(json.loads(self.rfile.read(length)))
                body = gzip.compress(STREAM)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-encoding", "gzip")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[GzipProvider]:
    server = GzipProvider()
    yield server
    server.close()


HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def with_requests(url: str) -> bytes:
    with requests.Session() as session:
        return session.post(url, json=PROMPT, headers=HEADERS).content


def with_urllib3(url: str) -> bytes:
    with urllib3.PoolManager() as pool:
        return pool.request("POST", url, body=json.dumps(PROMPT), headers=HEADERS).data


def with_aiohttp(url: str) -> bytes:
    async def ask() -> bytes:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=PROMPT, headers={"Authorization": f"Bearer {KEY}"}) as response,
        ):
            return await response.read()

    return asyncio.run(ask())


CLIENTS = [with_requests, with_urllib3, with_aiohttp]


@pytest.mark.parametrize("ask", CLIENTS)
def test_a_buffered_client_records_into_the_cassette_and_replays_with_the_server_gone(
    ask: Callable[[str], bytes],
    provider: GzipProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "chat.yaml"
    with use_cassette(path, "once") as recording:
        live = ask(provider.url)
    assert live == STREAM
    assert provider.bodies == [PROMPT]
    assert len(recording.requests) == 1

    (interaction,) = load_cassette(path).interactions
    assert interaction.response.body == STREAM  # stored decoded
    assert interaction.response.header("content-encoding") is None
    assert KEY not in path.read_text()
    assert json.loads(interaction.request.body or b"") == PROMPT

    provider.close()
    monkeypatch.setenv("CI", "1")
    with use_cassette(path) as replaying:
        assert replaying.record_mode == "none"
        replayed = ask(provider.url)
    assert replayed == STREAM
    assert replaying.misses == []
    assert replaying.transport.unplayed == []


def test_a_buffered_recording_replays_to_an_httpx_client_event_by_event(
    provider: GzipProvider, tmp_path: Path
) -> None:
    """One cassette format: what requests recorded, httpx streams back as a provider would."""
    path = tmp_path / "chat.yaml"
    with use_cassette(path, "once"):
        with_requests(provider.url)
    with (
        use_cassette(path, "none"),
        httpx.Client() as client,
        client.stream("POST", provider.url, json=PROMPT) as response,
    ):
        pieces = list(response.iter_raw())
    assert pieces == EVENTS


def test_httpx_and_buffered_clients_share_one_cassette(
    provider: GzipProvider, tmp_path: Path
) -> None:
    path = tmp_path / "chat.yaml"
    with use_cassette(path, "once"):
        with_aiohttp(provider.url)
        httpx.post(provider.url, json=PROMPT).read()
        with_requests(provider.url)
    assert len(load_cassette(path).interactions) == 3
    with use_cassette(path, "none") as replaying:
        assert with_requests(provider.url) == STREAM
        assert httpx.post(provider.url, json=PROMPT).content == STREAM
        assert with_aiohttp(provider.url) == STREAM
    assert replaying.transport.unplayed == []
    assert len(provider.bodies) == 3  # the recordings' only


@pytest.mark.parametrize("ask", CLIENTS)
def test_a_buffered_request_with_no_recording_fails_and_is_kept_as_a_miss(
    ask: Callable[[str], bytes], provider: GzipProvider, tmp_path: Path
) -> None:
    path = tmp_path / "chat.yaml"
    with use_cassette(path, "once"):
        httpx.post(provider.url, json={**PROMPT, "model": "recorded"}).read()
    with use_cassette(path, "none") as replaying, pytest.raises(NoMatchingInteraction) as caught:
        ask(provider.url)
    assert str(path) in str(caught.value)
    assert 'request.body.model: recorded "recorded", requested "gpt-test"' in str(caught.value)
    assert len(replaying.misses) == 1
    assert len(provider.bodies) == 1  # the recording's: the miss never reached the server


def test_buffered_clients_reach_the_server_directly_after_the_cassette(
    provider: GzipProvider, tmp_path: Path
) -> None:
    pool = urllib3.connectionpool.HTTPConnectionPool
    connection, session_request = pool.ConnectionCls, aiohttp.ClientSession._request
    with use_cassette(tmp_path / "chat.yaml", "once"):
        assert pool.ConnectionCls is not connection
        assert aiohttp.ClientSession._request is not session_request
    assert pool.ConnectionCls is connection
    assert aiohttp.ClientSession._request is session_request
    assert with_requests(provider.url) == STREAM
    assert not (tmp_path / "chat.yaml").exists()  # nothing was recorded after it ended


def test_a_buffered_library_is_caught_when_imported_during_the_cassette_and_not_imported_for_it(
    tmp_path: Path,
) -> None:
    """A cassette imports neither vcrpy's patches nor the libraries they import (about 300 ms)
    for an application that never uses them; one imported while it is active is caught."""
    path = tmp_path / "empty.yaml"
    path.write_text("interactions: []\n")
    script = f"""
import sys
from llmx_replay import NoMatchingInteraction, use_cassette
with use_cassette({str(path)!r}, "none") as cassette:
    unused = [name for name in ("requests", "aiohttp", "vcr.patch") if name in sys.modules]
    import requests
    try:
        requests.get("http://127.0.0.1:9/v1/models")
    except NoMatchingInteraction:
        print("refused", unused, len(cassette.misses))
    import httpx
    # What vcrpy keeps to put back while its clients send on: this cassette's method.
    kept = httpx.HTTPTransport.handle_request
try:
    kept(httpx.HTTPTransport(), httpx.Request("GET", "http://127.0.0.1:9/v1/models"))
except Exception as error:  # an ended cassette's method passes the request on
    print(type(error).__name__)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n")[:2] == ["refused [] 1", "ConnectError"]


@pytest.mark.parametrize(
    ("partial", "failure", "says"),
    [
        (
            "the body broke off: ReadError: peer closed the connection",
            requests.ConnectionError,
            "the recorded response broke off",
        ),
        ("the caller was cancelled before the end", requests.ReadTimeout, "timed out"),
    ],
    ids=["broke off", "cancelled"],
)
def test_a_recording_cut_short_fails_a_buffered_client_as_the_live_one_failed(
    tmp_path: Path, partial: str, failure: type[Exception], says: str
) -> None:
    path = tmp_path / "cut.yaml"
    path.write_text(
        "interactions:\n"
        "- request: {method: GET, uri: 'http://127.0.0.1:9/v1/models'}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    body: {string: 'data: {}'}\n"
        f"    llmx_replay: {{partial: '{partial}'}}\n"
    )
    with use_cassette(path, "none"), pytest.raises(failure) as caught:
        requests.get("http://127.0.0.1:9/v1/models")
    assert says in str(caught.value)
