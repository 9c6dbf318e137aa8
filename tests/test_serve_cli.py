"""`llmx-replay serve` in a subprocess, and clients of other languages and libraries.

The command is run as users run it (`python -m llmx_replay serve ...`), and read from its
standard output (the URL, once it is ready) and standard error (its log). curl and Node's
fetch are used when the machine has them. Subprocess timeouts are hang guards only.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from llmx_replay.cassette import load_cassette
from tests.test_serve import (
    CHAT_PATH,
    HELLO,
    HELLO_BODY,
    HELLO_CHUNKS,
    HELLO_PROMPT,
    interaction,
    request_body,
    save,
)

HANG_GUARD_SECONDS = 60.0
ERROR_PREFIX = "llmx-replay: error: "
LOG_PREFIX = "llmx-replay serve: "
URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)\n")
BUNDLED_TEXT = Path(__file__).resolve().parent.parent / "cassettes" / "examples" / "text.yaml"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmx_replay", "serve", *args]


def environment() -> dict[str, str]:
    """The environment, without what would change the default record mode."""
    return {key: value for key, value in os.environ.items() if key != "CI"}


@dataclass
class Served:
    process: "subprocess.Popen[str]"
    url: str
    stderr: Path

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send `signum`; the exit status, the rest of stdout, and all of stderr."""
        self.process.send_signal(signum)
        rest, _ = self.process.communicate(timeout=HANG_GUARD_SECONDS)
        return self.process.returncode, rest, self.stderr.read_text()


def first_line(process: "subprocess.Popen[str]") -> str:
    """The first line the process prints (empty if it exits first)."""
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(HANG_GUARD_SECONDS)
    assert lines, "the command printed nothing, and did not exit"
    return lines[0]


@contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[Served]:
    """The command running with `args`, once it has printed its URL."""
    stderr = tmp_path / f"stderr-{len(list(tmp_path.glob('stderr-*')))}.txt"
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            command(*args),
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=environment(),
        )
    try:
        line = first_line(process)
        assert URL_LINE.fullmatch(line), (line, stderr.read_text())
        yield Served(process, line.strip(), stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=HANG_GUARD_SECONDS)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit status 2, nothing on stdout, and one `llmx-replay: error: ` line on stderr."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello.yaml (recorded chunks) and a copy of the bundled text.yaml."""
    root = tmp_path_factory.mktemp("served") / "cassettes"
    save(root / "hello.yaml", interaction(HELLO_PROMPT, HELLO))
    shutil.copy(BUNDLED_TEXT, root / "text.yaml")
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Iterator[Served]:
    """One command serving `folder` for the clients' tests (each asks for what it needs)."""
    with serving(tmp_path_factory.mktemp("logs"), str(folder), "--port", "0") as server:
        yield server


# --- the command -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_url_of_the_port_asked_for_is_printed_alone_and_answers_once_printed(
    tmp_path: Path, folder: Path
) -> None:
    port = free_port()
    with serving(tmp_path, str(folder / "hello.yaml"), "--port", str(port)) as server:
        with httpx.Client() as client:  # no retry: the server accepts once the URL is out
            response = client.post(server.url + CHAT_PATH, content=request_body(HELLO_PROMPT))
        status, rest, _ = server.stop()
    assert server.url == f"http://127.0.0.1:{port}"
    assert response.content == HELLO_BODY
    assert (status, rest) == (0, "")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_with_status_0(tmp_path: Path, folder: Path, signum: int) -> None:
    with serving(tmp_path, str(folder), "--port", "0") as server:
        status, _, stderr = server.stop(signum)
    assert status == 0, stderr
    lines = stderr.splitlines()
    assert all(line.startswith(LOG_PREFIX) for line in lines), stderr
    assert lines[-1] == f"{LOG_PREFIX}stopped"


def test_sigterm_stops_the_server_while_a_replay_stalls_forever(
    tmp_path: Path, folder: Path
) -> None:
    args = ("--port", "0", "--stall-after", "1")
    body = request_body(HELLO_PROMPT)
    with (
        serving(tmp_path, str(folder / "hello.yaml"), *args) as server,
        httpx.Client(timeout=None) as client,
        client.stream("POST", server.url + CHAT_PATH, content=body) as response,
    ):
        pieces = response.iter_raw()
        first = next(pieces)
        status, _, stderr = server.stop(signal.SIGTERM)
        with pytest.raises(httpx.RemoteProtocolError):
            b"".join(pieces)
    assert first == HELLO_BODY[: HELLO_BODY.index(b"\n\n") + 2]
    assert status == 0, stderr
    assert stderr.splitlines()[-1] == f"{LOG_PREFIX}stopped"


def test_a_request_with_no_recording_is_logged_on_stderr_and_counted_at_the_end(
    tmp_path: Path, folder: Path
) -> None:
    with serving(tmp_path, str(folder / "hello.yaml"), "--port", "0") as server:
        with httpx.Client() as client:
            response = client.post(server.url + CHAT_PATH, content=request_body("Say hallo"))
        status, _, stderr = server.stop()
    assert status == 0
    message = response.json()["error"]["message"]
    lines = stderr.splitlines()
    assert f"{LOG_PREFIX}{message}" in lines
    assert lines[-2:] == [f"{LOG_PREFIX}1 request(s) had no recording", f"{LOG_PREFIX}stopped"]


def test_the_serving_options_reach_the_server(tmp_path: Path, folder: Path) -> None:
    args = ("--port", "0", "--cut-after", "1")
    with serving(tmp_path, str(folder / "hello.yaml"), *args) as server:
        with httpx.Client() as client:
            response = client.post(server.url + CHAT_PATH, content=request_body(HELLO_PROMPT))
        server.stop()
    first_event = HELLO_BODY[: HELLO_BODY.index(b"\n\n") + 2]
    assert response.content == first_event


def test_a_record_mode_without_upstream_is_refused_naming_both_options(folder: Path) -> None:
    result = run(str(folder / "hello.yaml"), "--port", "0", "--record-mode", "once")
    assert_one_line_error(result, "--record-mode", "--upstream")


@pytest.mark.parametrize("upstream", ["http://127.0.0.1:9/v1", "127.0.0.1:9"])
def test_an_upstream_that_is_not_an_origin_is_refused_naming_the_option(
    folder: Path, upstream: str
) -> None:
    result = run(str(folder / "hello.yaml"), "--port", "0", "--upstream", upstream)
    assert_one_line_error(result, "--upstream", repr(upstream))


def test_a_missing_cassette_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert_one_line_error(run(str(missing), "--port", "0"), str(missing), "no such cassette")


def test_a_busy_port_is_refused_naming_the_option_and_the_address(folder: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run(str(folder / "hello.yaml"), "--port", str(port))
    assert_one_line_error(result, "'--port'", f"cannot listen on 127.0.0.1:{port}")


def test_a_missing_port_is_refused_naming_the_option(folder: Path) -> None:
    assert_one_line_error(run(str(folder / "hello.yaml")), "--port")


# --- clients of other kinds ------------------------------------------------------------

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def curl(url: str, body: Path, *options: str) -> bytes:
    result = subprocess.run(
        [
            "curl",
            "-sSN",
            "--fail-with-body",
            *options,
            "-H",
            "content-type: application/json",
            "--data-binary",
            f"@{body}",
            url + CHAT_PATH,
        ],
        capture_output=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_curl
def test_curl_gets_the_exact_body(served: Served, tmp_path: Path) -> None:
    body = tmp_path / "request.json"
    body.write_bytes(request_body(HELLO_PROMPT))
    assert curl(served.url, body) == HELLO_BODY


@needs_curl
def test_curl_sees_the_recorded_chunks_as_the_http_chunks(served: Served, tmp_path: Path) -> None:
    body = tmp_path / "request.json"
    body.write_bytes(request_body(HELLO_PROMPT))
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in HELLO_CHUNKS)
    assert curl(served.url, body, "--raw") == framed + b"0\r\n\r\n"


NODE_STREAMING = """
const response = await fetch(process.env.URL, {
  method: "POST",
  headers: {"content-type": "application/json"},
  body: process.env.BODY,
});
const reader = response.body.getReader();
const decoder = new TextDecoder();
let text = "";
for (;;) {
  const {done, value} = await reader.read();
  if (done) break;
  text += decoder.decode(value, {stream: true});
}
text += decoder.decode();
process.stdout.write(`${response.status}\\n` + text);
"""


@needs_node
def test_node_fetch_reads_the_exact_body_from_the_stream(served: Served) -> None:
    result = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_STREAMING],
        capture_output=True,
        env={
            **os.environ,
            "URL": served.url + CHAT_PATH,
            "BODY": request_body(HELLO_PROMPT).decode(),
        },
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"200\n" + HELLO_BODY


@pytest.fixture
def openai_client(served: Served) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served.url + "/v1", api_key="sk-test", max_retries=0) as client:
        yield client


def test_the_openai_sdk_streams_a_bundled_cassette_to_its_recorded_answer(
    openai_client: openai.OpenAI,
) -> None:
    recorded = json.loads(load_cassette(BUNDLED_TEXT).interactions[0].request.body or b"")
    stream = openai_client.chat.completions.create(
        model=recorded["model"],
        messages=recorded["messages"],
        max_tokens=recorded["max_tokens"],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Bonjour ! Comment ça va ?"


def test_the_openai_sdk_gets_a_not_found_error_carrying_the_differences(
    openai_client: openai.OpenAI,
) -> None:
    recorded = json.loads(load_cassette(BUNDLED_TEXT).interactions[0].request.body or b"")
    with pytest.raises(openai.NotFoundError) as raised:
        openai_client.chat.completions.create(
            model="gpt-other",
            messages=recorded["messages"],
            max_tokens=recorded["max_tokens"],
            stream=True,
        )
    error = raised.value
    assert error.status_code == 404
    assert error.code == "no_recording"
    assert error.param == "request.body.model"
    body = error.body
    assert isinstance(body, dict)
    details = body["llmx_replay"]  # the SDK keeps the body's "error" object
    assert details["differences"] == [
        {"field": "request.body.model", "recorded": "gpt-4o-mini", "requested": "gpt-other"}
    ]
    assert details["closest_interaction"] == 0
    assert details["cassette"].endswith("text.yaml")
