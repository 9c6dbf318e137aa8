"""Interception: clients the code builds itself go through the active cassette, unwired.

`use_cassette` (and the pytest fixture, and a marked test: tests/plugin/test_own_clients.py)
routes every httpx and httpx2 HTTP transport of the process through the cassette, sync and
async, for clients built before it too. Recording goes on through the client's own
transport, to a real server on 127.0.0.1 here, and the stream reaches the caller as it
arrives: the server below holds its second event until the caller has read the first.
"""

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from llmx_replay import NoMatchingInteraction, use_cassette
from llmx_replay.cassette import load_cassette

PROMPT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Say hi"}], "stream": True}


def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-i1",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


EVENTS = [
    event({"role": "assistant", "content": "Hi"}),
    event({"content": " there"}),
    event({}, "stop"),
    b"data: [DONE]\n\n",
]


class Provider:
    """A Chat Completions server on 127.0.0.1 that streams `EVENTS`, one write each.

    After the first event it waits for `go_on` (set by a caller that has read it), so that a
    recorder that held the stream back would never see the rest.
    """

    def __init__(self) -> None:
        self.go_on = threading.Event()
        self.requests: list[bytes] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                provider.requests.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for number, piece in enumerate(EVENTS):
                    if number == 1 and not provider.go_on.wait(timeout=10):
                        return  # never told to go on: the body ends cut, and the test fails
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.go_on.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.close()


@pytest.fixture
def recorded(tmp_path: Path, provider: Provider) -> Path:
    """A cassette recorded through an unwired `httpx.Client`."""
    path = tmp_path / "chat.yaml"
    with use_cassette(path, "once"), httpx.Client() as client:
        provider.go_on.set()
        client.post(f"{provider.url}/chat/completions", json=PROMPT).read()
    return path


def test_recording_through_an_unwired_client_streams_as_it_arrives(
    tmp_path: Path, provider: Provider
) -> None:
    path = tmp_path / "chat.yaml"
    with use_cassette(path, "once") as cassette, httpx.Client() as client:
        url = f"{provider.url}/chat/completions"
        with client.stream("POST", url, json=PROMPT) as response:
            pieces = response.iter_raw()
            first = next(pieces)  # the server holds the rest until this arrived
            provider.go_on.set()
            rest = list(pieces)
    assert first == EVENTS[0]
    assert b"".join([first, *rest]) == b"".join(EVENTS)
    assert len(provider.requests) == 1
    assert [request.url.path for request in cassette.requests] == ["/v1/chat/completions"]
    (interaction,) = load_cassette(path).interactions
    assert interaction.response.body == b"".join(EVENTS)
    assert [size for size, _ in interaction.response.chunks or ()] == [len(e) for e in EVENTS]


def test_replay_serves_an_unwired_client_the_recorded_chunks(
    recorded: Path, provider: Provider
) -> None:
    url = f"{provider.url}/chat/completions"
    with (
        use_cassette(recorded, "none") as cassette,
        httpx.Client() as client,
        client.stream("POST", url, json=PROMPT) as response,
    ):
        pieces = list(response.iter_raw())
    assert pieces == EVENTS
    assert len(provider.requests) == 1  # the recording's, none more
    assert cassette.misses == []


def test_a_client_built_before_the_cassette_is_intercepted_too(
    recorded: Path, provider: Provider
) -> None:
    with httpx.Client() as client:
        with use_cassette(recorded, "none"):
            body = client.post(f"{provider.url}/chat/completions", json=PROMPT).content
        assert body == b"".join(EVENTS)
    assert len(provider.requests) == 1


def test_an_async_client_is_intercepted(recorded: Path, provider: Provider) -> None:
    async def ask() -> bytes:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{provider.url}/chat/completions", json=PROMPT)
            return response.content

    with use_cassette(recorded, "none"):
        body = asyncio.run(ask())
    assert body == b"".join(EVENTS)
    assert len(provider.requests) == 1


def answer_of(stream: Any) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def test_the_openai_sdks_own_client_records_and_replays(tmp_path: Path, provider: Provider) -> None:
    """The SDK builds its own httpx2 client: nothing is passed to it."""
    path = tmp_path / "sdk.yaml"
    provider.go_on.set()
    with use_cassette(path, "once"):
        client = openai.OpenAI(base_url=provider.url, api_key="sk-test-0123456789abcdefghij")
        recorded = answer_of(client.chat.completions.create(**PROMPT))
    with use_cassette(path, "none") as cassette:
        client = openai.OpenAI(base_url=provider.url, api_key="sk-test-0123456789abcdefghij")
        replayed = answer_of(client.chat.completions.create(**PROMPT))
    assert recorded == replayed == "Hi there"
    assert len(provider.requests) == 1
    assert cassette.misses == []


def test_the_async_openai_sdk_replays(recorded: Path, provider: Provider) -> None:
    async def ask() -> str:
        client = openai.AsyncOpenAI(base_url=provider.url, api_key="sk-test")
        stream = await client.chat.completions.create(**PROMPT)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])

    with use_cassette(recorded, "none"):
        assert asyncio.run(ask()) == "Hi there"
    assert len(provider.requests) == 1


def test_a_request_with_no_recording_fails_through_the_apps_client(
    recorded: Path, provider: Provider
) -> None:
    """The miss is raised where the application sends, and kept where a test can see it."""
    with (
        use_cassette(recorded, "none") as cassette,
        httpx.Client() as client,
        pytest.raises(NoMatchingInteraction, match="differs at"),
    ):
        client.post(f"{provider.url}/chat/completions", json={**PROMPT, "model": "other"})
    assert len(cassette.misses) == 1
    assert len(provider.requests) == 1


def test_an_httpx2_miss_reaches_the_app_as_our_error(recorded: Path, provider: Provider) -> None:
    with (
        use_cassette(recorded, "none"),
        httpx2.Client() as client,
        pytest.raises(NoMatchingInteraction),
    ):
        client.post(f"{provider.url}/elsewhere", json=PROMPT)


def test_mock_transports_are_left_alone(recorded: Path) -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(200, text="mocked"))
    with use_cassette(recorded, "none") as cassette, httpx.Client(transport=mock) as client:
        assert client.get("http://llm.test/anything").text == "mocked"
    assert cassette.requests == []


def test_intercept_false_leaves_every_client_alone(recorded: Path, provider: Provider) -> None:
    provider.go_on.set()
    with use_cassette(recorded, "none", intercept=False) as cassette, httpx.Client() as client:
        client.post(f"{provider.url}/chat/completions", json=PROMPT).read()
    assert cassette.requests == []
    assert len(provider.requests) == 2


def test_the_classes_are_restored_when_the_cassette_ends(recorded: Path) -> None:
    originals = (
        httpx.HTTPTransport.handle_request,
        httpx.AsyncHTTPTransport.handle_async_request,
        httpx2.HTTPTransport.handle_request,
        httpx2.AsyncHTTPTransport.handle_async_request,
    )
    with use_cassette(recorded, "none"):
        assert httpx.HTTPTransport.handle_request is not originals[0]
        assert httpx2.HTTPTransport.handle_request is not originals[2]
    assert (
        httpx.HTTPTransport.handle_request,
        httpx.AsyncHTTPTransport.handle_async_request,
        httpx2.HTTPTransport.handle_request,
        httpx2.AsyncHTTPTransport.handle_async_request,
    ) == originals


def test_one_cassette_intercepts_at_a_time(recorded: Path, tmp_path: Path) -> None:
    with (
        use_cassette(recorded, "none"),
        pytest.raises(RuntimeError, match="intercepting already"),
        use_cassette(tmp_path / "other.yaml", "none"),
    ):
        pass
    with use_cassette(recorded, "none"):  # the first one's end freed it
        pass


def test_the_wired_client_of_a_recording_session_is_recorded_once(
    tmp_path: Path, provider: Provider
) -> None:
    """A recorder sends on through an HTTP transport of its own: that is not intercepted
    back into the cassette."""
    from llmx_replay.models import InputText, Message, Prompt, ProviderSettings

    provider.go_on.set()
    path = tmp_path / "wired.yaml"
    prompt = Prompt(input=[Message(role="user", content=[InputText(text="Say hi")])])
    provider_settings = ProviderSettings(base_url=provider.url)
    with (
        use_cassette(path, "once", provider=provider_settings) as session,
        session.client(model="gpt-test") as client,
    ):
        events = list(client.stream(prompt))
    assert events[-1].type == "completed"
    assert len(provider.requests) == 1
    assert len(load_cassette(path).interactions) == 1


LATE_IMPORT = """
import sys
from pathlib import Path

import pytest

from llmx_replay import NoMatchingInteraction, use_cassette

cassette = Path(sys.argv[1])
cassette.write_text("interactions: []\\nversion: 1\\n")
with use_cassette(cassette, "none"):
    assert "httpx2" not in sys.modules  # not imported for the application
    import httpx2  # the application imports it late

    original = httpx2.HTTPTransport.__dict__["handle_request"].__module__
    with httpx2.Client() as client, pytest.raises(NoMatchingInteraction):
        client.get("http://127.0.0.1:9/late")
assert httpx2.HTTPTransport.handle_request.__module__ == "httpx2._transports.default", (
    httpx2.HTTPTransport.handle_request.__module__
)
print("ok", original)
"""


def test_httpx2_imported_during_the_cassette_is_intercepted_and_restored(tmp_path: Path) -> None:
    """httpx2 is not imported for nothing (about 50 ms); imported late, it is patched then."""
    result = subprocess.run(
        [sys.executable, "-c", LATE_IMPORT, str(tmp_path / "empty.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok llmx_replay.transports._httpx2"
