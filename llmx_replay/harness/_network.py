"""A closed network: connections beyond loopback (and the allowed hosts) are refused.

While a `NetworkBlock` is active, a socket of the process that connects to another host
fails at once with `NetworkBlocked`, whatever opened it: an HTTP client of any library, a
raw socket. The refusals are kept, so that a test fails even when the code under test
swallowed the error.
"""

import ipaddress
import socket
from collections.abc import Iterable
from contextlib import suppress
from types import TracebackType
from typing import Any, Self

from llmx_replay._exceptions import LlmxReplayError


class NetworkBlocked(LlmxReplayError, ConnectionRefusedError):
    """A connection the closed network refused; clients see it as a refused connection."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _addresses_of(hosts: Iterable[str]) -> frozenset[str]:
    """The hosts, and the addresses their names resolve to (when they resolve)."""
    found = set(hosts)
    for host in hosts:
        # A name that does not resolve here can be reached by none of its addresses.
        with suppress(OSError):
            found.update(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    return frozenset(found)


class NetworkBlock:
    """Refuses, while active, every connection but to loopback and `allowed_hosts`.

    `label` names what closed the network (a test's id) in each refusal.
    """

    def __init__(self, label: str, allowed_hosts: Iterable[str] = ()) -> None:
        self.label = label
        self.allowed_hosts = tuple(allowed_hosts)
        self.refused: list[str] = []
        """``host:port`` of each refused connection."""
        self._originals: tuple[Any, Any] | None = None

    def problem(self) -> str | None:
        """The line that fails a test for what was refused, None when nothing was."""
        if not self.refused:
            return None
        return f"{self.label} may not reach the network; refused: {', '.join(self.refused)}"

    def _allows(self, address: Any, allowed: frozenset[str]) -> bool:
        if not (isinstance(address, tuple) and address and isinstance(address[0], str)):
            return True  # a Unix socket, or an address of no host
        return _is_loopback(address[0]) or address[0] in allowed

    def _refusal(self, address: tuple[Any, ...]) -> NetworkBlocked:
        where = f"{address[0]}:{address[1]}" if len(address) > 1 else str(address[0])
        self.refused.append(where)
        allowed = ", ".join(("loopback", *self.allowed_hosts))
        return NetworkBlocked(
            f"{self.label} may not reach the network: a connection to {where} was refused "
            f"(allowed: {allowed})"
        )

    def __enter__(self) -> Self:
        if self._originals is not None:
            raise RuntimeError("this network block is active already")
        allowed = _addresses_of(self.allowed_hosts)
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
        block = self

        def check(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not block._allows(
                address, allowed
            ):
                raise block._refusal(address)

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            check(sock, address)
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            check(sock, address)
            return connect_ex(sock, address)

        self._originals = (connect, connect_ex)
        socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._originals is not None:
            socket.socket.connect, socket.socket.connect_ex = self._originals  # type: ignore[method-assign]
            self._originals = None
