"""Every code block of the README works as pasted.

Each block is marked ``<!-- readme-test: NAME -->`` on the line before it, and each name has
a check here that runs it: Python blocks are executed (in order, sharing names, as a reader
pasting them would) or run as test modules under pytest, the cassette example is loaded and
played, commands are run or, for installs and CI's own steps, found in `.ci/run`. A block
without a marker, or a marker without a check, fails the first test. Blocks that would
reach a provider reach a fake one instead: httpx's network transport is replaced by one
that streams a short answer, so nothing leaves the machine.
"""

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from llmx_replay import CassetteServer
from llmx_replay.cassette import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    load_cassette,
    save_cassette,
)
from llmx_replay.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_RUN = (ROOT / ".ci" / "run").read_text()
MARKER = re.compile(r"^<!-- readme-test: ([a-z-]+) -->$")

PIECES = ["Hi", " there", ",", " how", " can", " I", " help?"]
ANSWER = [
    *(
        b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":%s}}]}\n\n'
        % json.dumps(piece).encode()
        for piece in PIECES
    ),
    b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]


def blocks() -> dict[str, str]:
    """The README's code blocks by marker; a block with no marker is named by its line."""
    found: dict[str, str] = {}
    lines = README.read_text().splitlines()
    index = 0
    while index < len(lines):
        if lines[index].startswith("```"):
            marker = MARKER.match(lines[index - 1]) if index else None
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            name = marker.group(1) if marker else f"unmarked block at line {index + 1}"
            found[name] = "\n".join(lines[index + 1 : end]) + "\n"
            index = end
        index += 1
    return found


def fake_provider(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
    """What httpx's network transport does here: answer every chat request with `ANSWER`."""
    request.read()
    assert request.url.path.endswith("/chat/completions"), request.url
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=b"".join(ANSWER)
    )


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A scratch folder as the working directory, and the fake provider for the network."""
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", fake_provider)
    monkeypatch.setenv("LLMX_API_KEY", "test-key")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def printed(code: str, names: dict[str, object]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), names)
    return out.getvalue()


def after_and(command: str) -> str:
    """The part of ``install && command`` that runs after the install."""
    return command.split("&&", 1)[1].strip()


def check_quickstart_play(code: str, _: Path) -> None:
    args = shlex.split(after_and(code.strip()))
    assert args[0] == "llmx-replay"
    with contextlib.chdir(ROOT):
        result = CliRunner().invoke(cli, args[1:])
    assert result.exit_code == 0, result.output
    assert "[tool call] get_weather" in result.stdout


def check_quickstart_tests(code: str, _: Path) -> None:
    """The README's test command is the one CI runs, after installing the test extras."""
    install, test_command = (part.strip() for part in code.strip().split("&&"))
    assert install == "pip install -e '.[test]'"
    assert f"\n{test_command}\n" in CI_RUN


def check_client(code: str, _: Path) -> None:
    lines = printed(code, {}).splitlines()
    events = [json.loads(line.replace("'", '"').replace("None", "null")) for line in lines]
    assert [event["type"] for event in events][-1] == "completed"
    deltas = [event["delta"] for event in events if event["type"] == "output_text_delta"]
    assert deltas == PIECES


def check_record_replay(code: str, folder: Path) -> None:
    names: dict[str, object] = {}
    printed(blocks()["client"], names)  # `provider` and `prompt` come from the block above
    (folder / "cassettes").mkdir()
    printed(code, names)
    (interaction,) = load_cassette(folder / "cassettes" / "hello.yaml").interactions
    assert interaction.response.body == b"".join(ANSWER)
    assert [event.type for event in names["events"]][-1] == "completed"  # type: ignore[attr-defined]


def check_cassette_format(code: str, folder: Path) -> None:
    path = folder / "hello.yaml"
    path.write_text(code)
    (interaction,) = load_cassette(path).interactions
    assert [size for size, _ in interaction.response.chunks or ()] == [78, 81, 14]
    result = CliRunner().invoke(cli, ["play", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == ["Hello", "[completed] finish_reason: stop"]


def run_as_tests(pytester: pytest.Pytester, code: str, *runs: tuple[str, ...], passed: int) -> None:
    """The block as the module `tests/test_weather.py` the README's workflow names."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_weather=code)
    for args in runs:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=passed)


def check_pytest_example(
    code: str, folder: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded from the fake provider, then replayed as CI replays it, with no key set."""
    monkeypatch.setenv("LITELLM_KEY", "test-key")
    run_as_tests(pytester, code, ("--snapshot-update", "--llmx-record-mode=once"), passed=1)
    assert (pytester.path / "cassettes" / "test_weather" / "test_weather.yaml").is_file()
    monkeypatch.delenv("LITELLM_KEY")
    monkeypatch.setenv("CI", "1")
    run_as_tests(pytester, code, (), passed=1)


def check_record_your_own(code: str, folder: Path) -> None:
    """The server line names the aimock CI installs and a fixture file that exists; the
    commands record from the stand-in provider, show the answer and play it back."""
    server, *commands = code.replace("\\\n", "").strip().splitlines()
    live_servers = (ROOT / ".ci" / "live-servers.sh").read_text()
    version = re.search(r"-p @copilotkit/aimock@([\d.]+) llmock .* -f (\S+) &$", server)
    assert version is not None, server
    assert f"AIMOCK_VERSION={version.group(1)}\n" in live_servers
    assert (ROOT / version.group(2)).is_file()
    conversation = folder / "cassettes" / "examples" / "say-hi.json"
    conversation.parent.mkdir(parents=True)
    conversation.write_bytes((ROOT / "cassettes" / "examples" / "say-hi.json").read_bytes())
    outputs = []
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "llmx-replay"
        result = CliRunner().invoke(cli, args[1:])
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.stdout)
    recorded, shown, played = outputs
    assert "".join(PIECES) in recorded
    assert "user: Say hi\n" in shown
    assert played == recorded


def check_conversation_file(code: str, _: Path) -> None:
    example = ROOT / "cassettes" / "examples" / "say-hi.json"
    assert json.loads(code) == json.loads(example.read_text())


def check_cli_synopsis(code: str, _: Path) -> None:
    """Every option the synopsis shows is one its command takes."""
    synopses: dict[str, str] = {}
    for line in code.splitlines():
        if line.startswith("llmx-replay "):
            command = line.split()[1]
            synopses[command] = line
        else:
            synopses[command] += line
    assert set(synopses) == {"payload", "record", "play", "serve", "show", "inspect", "diff"}
    for command, synopsis in synopses.items():
        help_text = CliRunner().invoke(cli, [command, "--help"]).stdout
        shown = set(re.findall(r"--[a-z-]+", synopsis))
        assert shown <= set(re.findall(r"--[a-z-]+", help_text)), command


def check_development(code: str, _: Path) -> None:
    """Each step is one CI takes, or a benchmark script that exists."""
    for line in code.strip().splitlines():
        command = line.split("#", 1)[0].strip()
        for step in (part.strip() for part in command.split("&&")):
            script = re.fullmatch(r"python (benchmarks/\w+\.py)", step)
            if script:
                assert (ROOT / script.group(1)).is_file(), step
            elif step == "pip install -e '.[bench]'":
                assert "bench = [" in (ROOT / "pyproject.toml").read_text()
            elif step.startswith("LLMX_REPLAY_CORPUS="):
                assert "LLMX_REPLAY_CORPUS" in CI_RUN and step.endswith("tests/corpus")
            elif step.startswith("pip install -e '.[test]'"):
                assert "-e '.[test" in CI_RUN
            else:
                assert step in CI_RUN, step


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def check_serve(code: str, folder: Path) -> None:
    """Run as pasted, on free ports, with a stand-in for aimock (a server replaying `ANSWER`
    to the block's request): the first server records it, the second replays it."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    (body,) = set(re.findall(r"-d '(.*)'", code))
    upstream_port, port = free_port(), free_port()
    code = code.replace("4010", str(upstream_port)).replace("8000", str(port))
    aimock = folder / "aimock.yaml"
    request = RecordedRequest(
        method="POST", uri="http://127.0.0.1/v1/chat/completions", body=body.encode()
    )
    offsets = [(len(chunk), 10.0 * (index + 1)) for index, chunk in enumerate(ANSWER)]
    response = RecordedResponse(
        status=200,
        reason="OK",
        headers=[("content-type", "text/event-stream")],
        body=b"".join(ANSWER),
        headers_ms=5.0,
        chunks=tuple(offsets),
    )
    interaction = Interaction(request=request, response=response)
    save_cassette(aimock, Cassette(interactions=[interaction], source_format="llmx-replay"))
    scripts = str(Path(sys.executable).parent)
    environ = {**os.environ, "PATH": scripts + os.pathsep + os.environ["PATH"]}
    environ.pop("CI", None)
    with CassetteServer(aimock, port=upstream_port):
        # The timeout only keeps a hung server from hanging the run.
        done = subprocess.run(
            ["bash", "-c", code],
            cwd=folder,
            env=environ,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    # Each server prints its URL once it is ready, before it answers.
    served = f"http://127.0.0.1:{port}\n".encode() + b"".join(ANSWER)
    assert done.stdout == served * 2
    (recorded,) = load_cassette(folder / "hello.yaml").interactions
    assert recorded.request.uri == f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
    assert [data for data, _ in recorded.response.recorded_chunks()] == ANSWER


CHECKS: dict[str, Callable[..., None]] = {
    "quickstart-play": check_quickstart_play,
    "quickstart-tests": check_quickstart_tests,
    "client": check_client,
    "pytest-example": check_pytest_example,
    "record-replay": check_record_replay,
    "cassette-format": check_cassette_format,
    "record-your-own": check_record_your_own,
    "conversation-file": check_conversation_file,
    "cli-synopsis": check_cli_synopsis,
    "serve": check_serve,
    "development": check_development,
}
NEEDS_PYTEST = {"pytest-example"}


def test_every_block_has_a_check_and_every_check_a_block() -> None:
    assert sorted(blocks()) == sorted(CHECKS)


@pytest.fixture(params=sorted(CHECKS))
def block(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_the_block_works_as_pasted(
    block: str, offline: Path, request: pytest.FixtureRequest
) -> None:
    code = blocks()[block]
    if block in NEEDS_PYTEST:
        pytester = request.getfixturevalue("pytester")
        CHECKS[block](code, offline, pytester, request.getfixturevalue("monkeypatch"))
    else:
        CHECKS[block](code, offline)
