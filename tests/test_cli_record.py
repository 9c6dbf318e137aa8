"""`llmx-replay record` against a real HTTP server on 127.0.0.1, started and stopped by the
tests: it streams scripted SSE bodies in chunked pieces, flushing each one."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from llmx_replay._clock import VirtualClock
from llmx_replay.cassette import load_cassette
from llmx_replay.cli import cli
from llmx_replay.cli._record import LiveSession
from llmx_replay.models import ProviderSettings
from llmx_replay.models.request import ChatRequest
from tests.test_cli import (
    HELLO_SSE,
    HELLO_STREAMING,
    HELLO_TEXT,
    assert_one_line_error,
    content,
    finish,
    jsonl,
    sse,
    write_json,
)

CONVERSATION = {
    "instructions": "Be brief.",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    ],
}


@dataclass
class Reply:
    """One scripted answer: the status, the headers, and the body in pieces, each sent
    `gap` seconds after the one before; with `gate`, the pieces after the first wait for it;
    with `break_off`, the connection drops after the pieces, mid-body."""

    pieces: list[bytes]
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    gap: float = 0.0
    gate: threading.Event | None = None
    break_off: bool = False


def pieces_of(body: str) -> list[bytes]:
    """The body cut after each SSE event."""
    return [(event + "\n\n").encode() for event in body.split("\n\n") if event]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _QuietServer(ThreadingHTTPServer):
    """A client that closes its kept-alive connection is no error; printing it would land in
    the output the tests read (CliRunner captures standard error process-wide)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ScriptedServer:
    """An OpenAI-compatible endpoint answering each POST with the next scripted reply."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                server.received.append(
                    Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                reply = server.replies.pop(0)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for number, piece in enumerate(reply.pieces):
                    if number and reply.gate is not None:
                        reply.gate.wait(timeout=10)
                    time.sleep(reply.gap)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                if reply.break_off:
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")

        self._http = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def conversation(tmp_path: Path) -> Path:
    return write_json(tmp_path / "conversation.json", CONVERSATION)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, list(args))


def record(
    server: ScriptedServer, conversation: Path, output: Path, *options: str, **kwargs: Any
) -> Result:
    return run(
        "record",
        str(conversation),
        "--base-url",
        server.base_url,
        "--model",
        "m",
        "-o",
        str(output),
        *options,
        **kwargs,
    )


def chat_url(server: ScriptedServer) -> str:
    return f"{server.base_url}/chat/completions"


def test_record_shows_the_session_and_writes_a_cassette_that_plays_the_same(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    server.replies.append(Reply(pieces_of(HELLO_SSE)))
    output = tmp_path / "hello.yaml"
    result = record(server, conversation, output)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"llmx-replay: {output}: recorded 1 interaction (HTTP 200)\n"
    assert result.stdout == f"== interaction 0: POST {chat_url(server)} -> 200\n{HELLO_TEXT}"

    sent = server.received[0]
    assert sent.path == "/v1/chat/completions"
    expected_body = run("payload", str(conversation), "--model", "m", "--compact").stdout
    assert sent.body.decode() + "\n" == expected_body

    cassette = load_cassette(output)
    assert cassette.metadata is not None
    assert (cassette.metadata.base_url, cassette.metadata.model) == (server.base_url, "m")
    (interaction,) = cassette.interactions
    assert interaction.response.body == HELLO_SSE.encode()
    assert interaction.response.chunks is not None
    assert interaction.response.partial is None

    replayed = run("play", str(output))
    assert replayed.stdout == result.stdout
    played = jsonl(run("play", str(output), "--format", "jsonl"))
    assert played == [{"type": "interaction", "index": 0, "status": 200}, *HELLO_STREAMING]


def test_record_prints_text_as_it_arrives(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    """The server holds back the rest of the body until the first delta is on the
    terminal; a recorder that read ahead, or buffered output, would never show it."""
    gate = threading.Event()
    server.replies.append(Reply(pieces_of(HELLO_SSE), gate=gate))
    output = tmp_path / "hello.yaml"
    command = [sys.executable, "-m", "llmx_replay", "record", str(conversation)]
    command += ["--base-url", server.base_url, "--model", "m", "-o", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 20
    while b"Hel" not in seen and time.monotonic() < deadline:
        piece = os.read(process.stdout.fileno(), 4096)
        if not piece:
            break
        seen += piece
    assert seen.endswith(b"Hel"), seen
    assert not output.exists()
    gate.set()
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert (
        seen + stdout
    ).decode() == f"== interaction 0: POST {chat_url(server)} -> 200\n{HELLO_TEXT}"
    assert output.exists()


def test_record_refuses_an_existing_cassette(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    output = tmp_path / "taken.yaml"
    output.write_text("precious\n")
    result = record(server, conversation, output)
    assert_one_line_error(result, f"{output}: ", "--overwrite", "--append")
    assert output.read_text() == "precious\n"
    assert server.received == []


def test_record_overwrite_replaces_the_cassette(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    output = tmp_path / "hello.yaml"
    server.replies += [Reply(pieces_of(HELLO_SSE)), Reply(pieces_of(sse(content("Bye"), finish())))]
    assert record(server, conversation, output).exit_code == 0
    result = record(server, conversation, output, "--overwrite")
    assert result.exit_code == 0, result.stderr
    (interaction,) = load_cassette(output).interactions
    assert b"Bye" in interaction.response.body


def test_record_append_adds_an_interaction(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    output = tmp_path / "hello.yaml"
    server.replies += [Reply(pieces_of(HELLO_SSE)), Reply(pieces_of(sse(content("Bye"), finish())))]
    assert record(server, conversation, output).exit_code == 0
    result = record(server, conversation, output, "--append")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"== interaction 1: POST {chat_url(server)} -> 200\nBye\n[completed] finish_reason: stop\n"
    )
    assert result.stderr == f"llmx-replay: {output}: added 1 interaction (HTTP 200)\n"
    first, second = load_cassette(output).interactions
    assert first.response.body == HELLO_SSE.encode()
    assert b"Bye" in second.response.body


def test_record_append_refuses_a_file_that_is_not_a_cassette(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    output = tmp_path / "notes.yaml"
    output.write_text("foo: bar\n")
    assert_one_line_error(record(server, conversation, output, "--append"), f"{output}: ")
    assert output.read_text() == "foo: bar\n"
    assert server.received == []


def test_record_sends_the_key_and_keeps_it_off_disk(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    server.replies.append(Reply(pieces_of(HELLO_SSE)))
    output = tmp_path / "hello.yaml"
    key = "sk-test-0123456789abcdefghijklmnop"
    result = record(server, conversation, output, "--api-key-env", "MY_KEY", env={"MY_KEY": key})
    assert result.exit_code == 0, result.stderr
    assert server.received[0].headers["authorization"] == f"Bearer {key}"
    text = output.read_text()
    assert key not in text
    assert "<redacted>" in text


@pytest.mark.parametrize("value", [None, "  "])
def test_record_error_api_key_variable_missing_or_blank(
    server: ScriptedServer, conversation: Path, tmp_path: Path, value: str | None
) -> None:
    output = tmp_path / "hello.yaml"
    result = record(
        server, conversation, output, "--api-key-env", "NO_SUCH_KEY", env={"NO_SUCH_KEY": value}
    )
    assert_one_line_error(result, "--api-key-env", "NO_SUCH_KEY")
    assert server.received == []
    assert not output.exists()


def test_record_error_bad_conversation(server: ScriptedServer, tmp_path: Path) -> None:
    conversation = write_json(tmp_path / "conversation.json", {"input": [{"type": "message"}]})
    output = tmp_path / "hello.yaml"
    result = record(server, conversation, output)
    assert_one_line_error(result, f"{conversation}: input[0].role: ")
    assert server.received == []
    assert not output.exists()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("existing", [False, True])
def test_record_unreachable_server_writes_nothing(
    conversation: Path, tmp_path: Path, existing: bool
) -> None:
    """A request that never got a response has nothing to replay: no cassette is written,
    and one that exists is left as it was. The retry is shown, with its reason."""
    output = tmp_path / "hello.yaml"
    if existing:
        output.write_text("precious\n")
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    options = ["--max-retries", "1", *(["--overwrite"] if existing else [])]
    result = run(
        "record",
        str(conversation),
        "--base-url",
        base_url,
        "--model",
        "m",
        "-o",
        str(output),
        *options,
    )
    assert result.exit_code == 2
    retry, error = result.stdout.splitlines()
    assert retry.startswith("[retry in 0.")
    assert retry.endswith(" s after ConnectError: [Errno 111] Connection refused]")
    assert error.startswith("[error: connection_failed] Connection failed: ConnectError(")
    assert result.stderr == (
        f"llmx-replay: error: {output}: not written: no response came from "
        f"{base_url}/chat/completions\n"
    )
    if existing:
        assert output.read_text() == "precious\n"
    else:
        assert not output.exists()


def test_record_retries_and_records_every_response(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    rate_limited = json.dumps({"error": {"message": "slow down"}}).encode()
    server.replies += [
        Reply(
            [rate_limited],
            status=429,
            headers={"content-type": "application/json", "retry-after": "0"},
        ),
        Reply(pieces_of(HELLO_SSE)),
    ]
    output = tmp_path / "retry.yaml"
    result = record(server, conversation, output)
    assert result.exit_code == 0, result.stderr
    url = chat_url(server)
    assert result.stdout == (
        f"== interaction 0: POST {url} -> 429\n"
        "[retry in 0 s after status 429]\n"
        f"== interaction 1: POST {url} -> 200\n"
        f"{HELLO_TEXT}"
    )
    assert result.stderr == f"llmx-replay: {output}: recorded 2 interactions (HTTP 429, 200)\n"
    assert [i.response.status for i in load_cassette(output).interactions] == [429, 200]


def test_record_keeps_an_error_status_as_recorded_and_exits_1_saying_so(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    body = json.dumps({"error": {"message": "bad model"}}).encode()
    server.replies.append(Reply([body], status=400, headers={"content-type": "application/json"}))
    output = tmp_path / "bad.yaml"
    result = record(server, conversation, output)
    assert result.exit_code == 1
    assert result.stderr == (
        f"llmx-replay: {output}: recorded 1 interaction (HTTP 400); the provider's last answer "
        "is an error, and the cassette replays it: check the conversation, the model and the "
        "key, then record again\n"
    )
    assert result.stdout.splitlines()[1] == (
        "[error: unexpected_status, status 400] unexpected status 400 Bad Request: bad model"
    )
    assert run("play", str(output)).stdout == result.stdout


def test_record_exits_1_when_every_retry_failed_and_keeps_them_all(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    overloaded = json.dumps({"error": {"message": "overloaded"}}).encode()
    server.replies += [
        Reply(
            [overloaded],
            status=503,
            headers={"content-type": "application/json", "retry-after": "0"},
        )
        for _ in range(3)
    ]
    output = tmp_path / "down.yaml"
    result = record(server, conversation, output, "--max-retries", "2")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"llmx-replay: {output}: recorded 3 interactions (HTTP 503, 503, 503); the provider's "
        "last answer is an error"
    )
    assert [i.response.status for i in load_cassette(output).interactions] == [503, 503, 503]


def test_record_marks_a_stream_that_broke_off_as_partial(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    server.replies.append(Reply(pieces_of(sse(content("Hel"), done=False)), break_off=True))
    output = tmp_path / "cut.yaml"
    result = record(server, conversation, output)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("[error: stream] ")
    (interaction,) = load_cassette(output).interactions
    assert interaction.response.partial is not None
    assert interaction.response.body == sse(content("Hel"), done=False).encode()


def test_record_error_overwrite_and_append(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    result = record(server, conversation, tmp_path / "x.yaml", "--overwrite", "--append")
    assert_one_line_error(result, "--overwrite", "--append")


def test_record_error_base_url_not_http(conversation: Path, tmp_path: Path) -> None:
    result = run(
        "record",
        str(conversation),
        "--base-url",
        "ftp://x",
        "--model",
        "m",
        "-o",
        str(tmp_path / "x.yaml"),
    )
    assert_one_line_error(result, "--base-url", "ftp://x")


def test_record_error_missing_output(server: ScriptedServer, conversation: Path) -> None:
    result = run("record", str(conversation), "--base-url", server.base_url, "--model", "m")
    assert_one_line_error(result, "--output")


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def interaction(self, index: int, method: str, uri: str, status: int) -> None:
        self.lines.append(f"{index} {method} {uri} {status}")

    def retry(self, seconds: float, after: str) -> None:
        self.lines.append(f"retry {seconds} after {after}")


def test_live_session_reports_each_response_and_backoff(tmp_path: Path) -> None:
    """Over a mock network and virtual time: two failures without Retry-After are retried
    after the provider's backoff, and every response is recorded."""
    statuses = iter([500, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "busy"}})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=HELLO_SSE)

    report = Report()
    clock = VirtualClock()
    output = tmp_path / "retried.yaml"
    session = LiveSession(
        output,
        append=False,
        first_index=0,
        report=report,
        inner=httpx.MockTransport(handler),
        clock=clock,
    )
    url = "http://provider.test/v1/chat/completions"
    request = ChatRequest(url=url, headers=[], body=b'{"model":"m"}')
    events = list(session.stream(ProviderSettings(), "m", request))
    assert [event.model_dump(mode="json") for event in events] == HELLO_STREAMING
    first_wait, second_wait = clock.sleeps
    assert 0.18 <= first_wait <= 0.22 and 0.36 <= second_wait <= 0.44  # 200 ms, doubled
    assert report.lines == [
        f"0 POST {url} 500",
        f"retry {first_wait} after status 500",
        f"1 POST {url} 503",
        f"retry {second_wait} after status 503",
        f"2 POST {url} 200",
    ]
    assert session.statuses == [500, 503, 200]
    assert [i.response.status for i in load_cassette(output).interactions] == [500, 503, 200]


def test_record_refuses_to_write_a_response_holding_a_key(
    server: ScriptedServer, conversation: Path, tmp_path: Path
) -> None:
    leaked = "sk-live-0123456789abcdefghijklmnop"
    server.replies.append(Reply(pieces_of(sse(content(f"your key is {leaked}"), finish()))))
    output = tmp_path / "leak.yaml"
    result = record(server, conversation, output)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"llmx-replay: error: {output}: not written, it would hold ")
    assert "interactions[0].response.body" in result.stderr
    assert not output.exists()
