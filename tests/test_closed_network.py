"""The closed network: connections beyond loopback and the allowed hosts fail at once.

The suite's own guard (conftest.py's `network_guard`) sits under ours: a connection our
block lets through to a host that is not loopback reaches that guard, which refuses it too;
those tests clear its list, having checked it.
"""

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmx_replay import NetworkBlocked, use_cassette
from llmx_replay.harness._network import NetworkBlock

ELSEWHERE = ("192.0.2.1", 443)  # TEST-NET-1: never routed


def test_a_connection_beyond_loopback_is_refused_naming_the_host_and_what_closed_it() -> None:
    with NetworkBlock("tests/test_x.py::test_y") as block, socket.socket() as sock:
        with pytest.raises(
            NetworkBlocked, match=r"test_y may not reach the network.*192\.0\.2\.1:443"
        ):
            sock.connect(ELSEWHERE)
        with pytest.raises(NetworkBlocked):
            sock.connect_ex(ELSEWHERE)
    assert block.refused == ["192.0.2.1:443", "192.0.2.1:443"]
    assert issubclass(NetworkBlocked, ConnectionRefusedError)


def test_loopback_goes_through() -> None:
    with socket.socket() as server, NetworkBlock("t") as block:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert block.refused == []


def test_an_allowed_host_goes_through(network_guard: list[Any]) -> None:
    with (
        NetworkBlock("t", ["192.0.2.1"]) as block,
        socket.socket() as sock,
        pytest.raises(ConnectionRefusedError, match="the tests may not reach a network"),
    ):
        sock.connect(ELSEWHERE)  # let through by ours, refused by the suite's guard
    assert block.refused == []
    assert network_guard == [ELSEWHERE]
    network_guard.clear()


def test_the_socket_methods_are_restored() -> None:
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    with NetworkBlock("t"):
        assert socket.socket.connect is not connect
    assert (socket.socket.connect, socket.socket.connect_ex) == (connect, connect_ex)


def test_an_http_client_sees_a_refused_connection() -> None:
    with (
        NetworkBlock("t") as block,
        httpx.Client() as client,
        pytest.raises(httpx.ConnectError, match="may not reach the network"),
    ):
        client.get("http://192.0.2.1/v1/models")
    assert block.refused == ["192.0.2.1:80"]


def test_a_cassette_that_only_replays_closes_the_network(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("interactions: []\nversion: 1\n")
    with (
        use_cassette(tmp_path / "empty.yaml", "none") as session,
        socket.socket() as sock,
        pytest.raises(NetworkBlocked, match=r"empty\.yaml may not reach the network"),
    ):
        sock.connect(ELSEWHERE)
    assert session.problems() == [
        f"{tmp_path / 'empty.yaml'}: {tmp_path / 'empty.yaml'} may not reach the network; "
        "refused: 192.0.2.1:443"
    ]


def test_a_recording_cassette_leaves_the_network_open(
    tmp_path: Path, network_guard: list[Any]
) -> None:
    with (
        use_cassette(tmp_path / "new.yaml", "once"),
        socket.socket() as sock,
        pytest.raises(ConnectionRefusedError, match="the tests may not reach a network"),
    ):
        sock.connect(ELSEWHERE)
    assert network_guard == [ELSEWHERE]
    network_guard.clear()


def test_block_network_true_closes_it_while_recording_too(tmp_path: Path) -> None:
    with (
        use_cassette(tmp_path / "new.yaml", "once", block_network=True),
        socket.socket() as sock,
        pytest.raises(NetworkBlocked),
    ):
        sock.connect(ELSEWHERE)
