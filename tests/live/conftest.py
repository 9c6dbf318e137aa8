"""Live servers for the `live` marker group: aimock and the LiteLLM proxy on 127.0.0.1.

Each server is started once per session on a free loopback port, waited for (with a bound),
and stopped by its PID at the end: SIGTERM, then SIGKILL after a grace period. A server
that is already running can be reused instead, by setting its URL (see `AIMOCK_URL_VAR`
and `LITELLM_URL_VAR`); it must serve this folder's fixtures (`fixtures/`).

Every test here is marked `live`. They run when a marker expression selects them
(`python -m pytest -m live`); a run without `-m` deselects them, and so starts no server.
The servers are installed by `.ci/live-servers.sh install` into `.live/` at the top of the
repository (or `$LLMX_REPLAY_LIVE_DIR`). When they are missing, every live test fails and
says how to install them: selecting the group asks for the servers.
"""

import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest
from live_support import LiveServer, Timing

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = HERE / "fixtures"
AIMOCK_FIXTURES = FIXTURES / "aimock.json"
# What tests/test_library.py's cassettes were recorded from (see test_library_aimock_live.py).
LIBRARY_FIXTURES = FIXTURES / "library.json"
LITELLM_CONFIG = FIXTURES / "litellm.yaml"

LIVE_DIR_VAR = "LLMX_REPLAY_LIVE_DIR"
AIMOCK_URL_VAR = "LLMX_REPLAY_AIMOCK_URL"
LITELLM_URL_VAR = "LLMX_REPLAY_LITELLM_URL"
LITELLM_KEY_VAR = "LLMX_REPLAY_LITELLM_KEY"
INSTALL_HINT = (
    "install the live servers with `.ci/live-servers.sh install` (aimock 1.43.0 from npm "
    "into .live/aimock, litellm[proxy]==1.108.0 into the virtualenv .live/litellm-venv; "
    "needs Node.js >= 20.15 and npm)"
)
AIMOCK_READY_SECONDS = 20.0
LITELLM_READY_SECONDS = 120.0  # 6 s on an idle 2-core machine, 25 s under load
STOP_GRACE_SECONDS = 5.0
MIN_NODE = (20, 15)
AIMOCK_VERSION = "1.43.0"
LITELLM_VERSION = "1.108.0"
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>

TIMINGS = pytest.StashKey[list[Timing]]()
STARTS = pytest.StashKey[list[str]]()


def live_dir() -> Path:
    return Path(os.environ.get(LIVE_DIR_VAR) or REPO / ".live")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: records from real servers on 127.0.0.1 (aimock, LiteLLM proxy)"
    )
    config.stash[TIMINGS] = []
    config.stash[STARTS] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Live tests run only when a marker expression asks for them (`-m live`); without one
    they are deselected, so a plain `python -m pytest` starts no server. LiteLLM's tests go
    last, so that its slow boot overlaps the aimock tests."""
    if not config.option.markexpr:
        live = [item for item in items if item.get_closest_marker("live") is not None]
        if live:
            config.hook.pytest_deselected(items=live)
            items[:] = [item for item in items if item.get_closest_marker("live") is None]
    items.sort(key=lambda item: item.path.parent == HERE and "litellm" in item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    starts = terminalreporter.config.stash.get(STARTS, [])
    timings = terminalreporter.config.stash.get(TIMINGS, [])
    if starts:
        terminalreporter.section("live: servers")
        for line in starts:
            terminalreporter.write_line(line)
    if timings:
        terminalreporter.section("live: time to first chunk, direct vs through the recorder")
        for timing in timings:
            terminalreporter.write_line(timing.summary())


class ServerUnavailable(Exception):
    """A live server is not installed or did not start; the message says what to do."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGTERM when pytest dies, so a server
    never outlives a pytest that was killed before its finalizers could run."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ServerProcess:
    """One server process: launched without waiting, then waited for, then stopped by PID."""

    name: str
    argv: list[str]
    ready_path: str
    log_path: Path
    timeout: float
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: "subprocess.Popen[bytes] | None" = None
    port: int = 0
    started_at: float = 0.0
    ready_after: float | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        if self.process is not None:
            return
        self.port = _free_port()
        self._log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [arg.replace("{port}", str(self.port)) for arg in self.argv],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self) -> None:
        if self.ready_after is not None:
            return
        assert self.process is not None
        deadline = self.started_at + self.timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise ServerUnavailable(
                        f"{self.name} exited with status {code} before it was ready "
                        f"(log {self.log_path}):\n{_tail(self.log_path)}"
                    )
                try:
                    if client.get(self.url + self.ready_path).status_code == 200:
                        self.ready_after = time.monotonic() - self.started_at
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerUnavailable(
                        f"{self.name} was not ready on {self.url}{self.ready_path} after "
                        f"{self.timeout:.0f} s (log {self.log_path}):\n{_tail(self.log_path)}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _reachable(url: str, path: str) -> None:
    try:
        status = httpx.get(url.rstrip("/") + path, timeout=5.0).status_code
    except httpx.TransportError as error:
        raise ServerUnavailable(f"{url}{path} is not reachable: {error!r}") from None
    if status != 200:
        raise ServerUnavailable(f"{url}{path} answered {status}")


@dataclass
class Launcher:
    """Starts one server on demand (at most once) and remembers why it could not."""

    name: str
    build: Callable[[], "ServerProcess | LiveServer"]
    api_key: str
    server: LiveServer | None = None
    process: ServerProcess | None = None
    error: str | None = None

    def launch(self) -> None:
        if self.server is not None or self.process is not None or self.error is not None:
            return
        try:
            built = self.build()
        except ServerUnavailable as error:
            self.error = str(error)
            return
        if isinstance(built, LiveServer):
            self.server = built
            return
        self.process = built
        try:
            built.launch()
        except OSError as error:
            self.error = f"{self.name} could not be started: {error!r}; {INSTALL_HINT}"

    def ready(self) -> LiveServer:
        self.launch()
        if self.error is None and self.server is None and self.process is not None:
            try:
                self.process.wait_ready()
            except ServerUnavailable as error:
                self.error = str(error)
            else:
                self.server = LiveServer(
                    self.name, self.process.url, self.api_key, self.process.ready_after
                )
        if self.error is not None:
            pytest.fail(self.error, pytrace=False)
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def describe(self) -> str:
        assert self.server is not None
        if self.process is None:
            return f"{self.name}: reused the server at {self.server.url}"
        return (
            f"{self.name}: started on {self.server.url}, ready after "
            f"{self.server.ready_after or 0:.1f} s, stopped (log {self.process.log_path})"
        )


def _node_version(node: str) -> tuple[int, ...]:
    output = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    return tuple(int(part) for part in re.findall(r"\d+", output)[:3])


def _aimock(logs: Path, api_key: str) -> ServerProcess | LiveServer:
    url = os.environ.get(AIMOCK_URL_VAR)
    if url:
        _reachable(url, "/health")
        return LiveServer("aimock", url.rstrip("/"), api_key)
    package = live_dir() / "aimock" / "node_modules" / "@copilotkit" / "aimock"
    cli = package / "dist" / "cli.js"
    if not cli.is_file():
        raise ServerUnavailable(f"aimock is not installed ({cli} is missing): {INSTALL_HINT}")
    version = json.loads((package / "package.json").read_text())["version"]
    if version != AIMOCK_VERSION:
        raise ServerUnavailable(
            f"aimock {version} is installed, not {AIMOCK_VERSION}: {INSTALL_HINT}"
        )
    node = shutil.which("node")
    if node is None:
        raise ServerUnavailable("aimock needs Node.js >= 20.15, and `node` is not on PATH")
    node_version = _node_version(node)
    if node_version < MIN_NODE:
        found = ".".join(map(str, node_version)) or "unknown"
        raise ServerUnavailable(f"aimock needs Node.js >= 20.15; {node} is {found}")
    return ServerProcess(
        name="aimock",
        argv=[
            *(node, str(cli), "-h", "127.0.0.1", "-p", "{port}"),
            *("-f", str(AIMOCK_FIXTURES), "-f", str(LIBRARY_FIXTURES)),
            *("--validate-on-load", "--log-level", "warn"),
        ],
        ready_path="/health",
        log_path=logs / "aimock.log",
        timeout=AIMOCK_READY_SECONDS,
        cwd=logs,
    )


def _litellm(logs: Path, api_key: str) -> ServerProcess | LiveServer:
    url = os.environ.get(LITELLM_URL_VAR)
    if url:
        if not os.environ.get(LITELLM_KEY_VAR):
            raise ServerUnavailable(f"{LITELLM_URL_VAR} is set, so {LITELLM_KEY_VAR} must be too")
        _reachable(url, "/health/liveliness")
        return LiveServer("litellm", url.rstrip("/"), os.environ[LITELLM_KEY_VAR])
    litellm = live_dir() / "litellm-venv" / "bin" / "litellm"
    if not litellm.is_file():
        raise ServerUnavailable(
            f"the LiteLLM proxy is not installed ({litellm} is missing): {INSTALL_HINT}"
        )
    venv = litellm.parent.parent
    if not any(venv.glob(f"lib/python3*/site-packages/litellm-{LITELLM_VERSION}.dist-info")):
        raise ServerUnavailable(f"{venv} does not hold litellm {LITELLM_VERSION}: {INSTALL_HINT}")
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no cost-map fetch from GitHub at boot
        "LITELLM_MASTER_KEY": api_key,
        "PYTHONPATH": "",
        "VIRTUAL_ENV": str(venv),
    }
    return ServerProcess(
        name="litellm",
        argv=[
            *(str(litellm), "--config", str(LITELLM_CONFIG)),
            *("--host", "127.0.0.1", "--port", "{port}"),
        ],
        ready_path="/health/liveliness",
        log_path=logs / "litellm.log",
        timeout=LITELLM_READY_SECONDS,
        env=env,
        cwd=logs,
    )


@pytest.fixture(scope="session")
def _launchers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Launcher]]:
    logs = tmp_path_factory.mktemp("live-servers")
    # Key-shaped on purpose: the recorder must scrub them, and its last scan would catch them.
    aimock_key = "sk-llmx-live-aimock-" + secrets.token_hex(16)
    litellm_key = "sk-llmx-live-litellm-" + secrets.token_hex(16)
    launchers = {
        "aimock": Launcher("aimock", lambda: _aimock(logs, aimock_key), aimock_key),
        "litellm": Launcher("litellm", lambda: _litellm(logs, litellm_key), litellm_key),
    }
    try:
        yield launchers
    finally:
        for launcher in launchers.values():
            launcher.stop()
            if launcher.server is not None:
                request.config.stash[STARTS].append(launcher.describe())


@pytest.fixture(scope="session", autouse=True)
def _boot_early(request: pytest.FixtureRequest, _launchers: dict[str, Launcher]) -> None:
    """Launch every server some selected test needs, without waiting: they boot in parallel."""
    for name, launcher in _launchers.items():
        if any(name in item.nodeid for item in request.session.items):
            launcher.launch()


@pytest.fixture(scope="session")
def aimock(_launchers: dict[str, Launcher]) -> LiveServer:
    """aimock 1.43.0 serving `fixtures/aimock.json` and `fixtures/library.json`."""
    return _launchers["aimock"].ready()


@pytest.fixture(scope="session")
def litellm(_launchers: dict[str, Launcher]) -> LiveServer:
    """The LiteLLM proxy 1.108.0 serving `fixtures/litellm.yaml` (mock responses)."""
    return _launchers["litellm"].ready()


@pytest.fixture(params=["aimock", "litellm"])
def server(request: pytest.FixtureRequest) -> LiveServer:
    """Each live server in turn, for the tests both can serve."""
    live: LiveServer = request.getfixturevalue(request.param)
    return live


@pytest.fixture
def timings(request: pytest.FixtureRequest) -> list[Timing]:
    """Where a test leaves its time-to-first-chunk measurements for the terminal summary."""
    return request.config.stash[TIMINGS]
