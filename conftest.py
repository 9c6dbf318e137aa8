"""Shared test configuration: hypothesis profiles and the bundled cassettes' location."""

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# CI runs on a shared, noisy machine: no per-example deadline, and a fixed seed so that a
# failure there can be replayed here.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# The pytest plugin is tested by running pytest on generated test files.
pytest_plugins = ["pytester"]

CASSETTES = Path(__file__).parent / "cassettes"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--llmx-corpus",
        dest="llmx_corpus",
        metavar="PATH",
        default=None,
        help="folder of real recorded cassettes played by tests/corpus "
        "(default: the LLMX_REPLAY_CORPUS environment variable)",
    )


@pytest.fixture
def cassettes_dir() -> Path:
    """The folder of cassettes bundled with the project."""
    return CASSETTES


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Nothing the suite runs may reach a network, only servers on 127.0.0.1 (the live
    group's): a connection elsewhere is refused, and fails the test that tried even if its
    client swallowed the error. Yields the refused addresses."""
    refused: list[Any] = []
    connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> None:
        family_is_ip = sock.family in (socket.AF_INET, socket.AF_INET6)
        if family_is_ip and address[0] not in _LOOPBACK:
            refused.append(address)
            raise ConnectionRefusedError(f"the tests may not reach a network: {address!r}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield refused
    if refused:
        pytest.fail(f"tried to reach a network: {refused}", pytrace=False)
