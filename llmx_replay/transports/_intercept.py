"""Every httpx and httpx2 client through one cassette, with no wiring: interception.

While `intercepting(cassette)` is active, the HTTP transports of httpx and httpx2, sync and
async, hand their requests to the cassette: those the process creates then and those it
already holds, since the methods are replaced on the classes. The cassette replays a request
or, recording, sends it on through the very transport the client would have used (its
proxies, TLS settings and pool), recording the stream as it arrives. Other transports (a
`MockTransport`, our own) are left alone, and so is what a recorder sends on.
"""

import importlib.util
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import httpx

from llmx_replay.transports._cassette import CassetteTransport
from llmx_replay.transports._record import SENDING_ON

_SyncHandle = Callable[[Any, Any], Any]
_AsyncHandle = Callable[[Any, Any], Awaitable[Any]]

_LOCK = threading.Lock()
_active: CassetteTransport | None = None


class _Through(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The transport a client would have used, called with its original method."""

    def __init__(self, transport: Any, sync: _SyncHandle | None, async_: _AsyncHandle | None):
        self._transport = transport
        self._sync = sync
        self._async = async_

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self._sync is not None
        response: httpx.Response = self._sync(self._transport, request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self._async is not None
        response: httpx.Response = await self._async(self._transport, request)
        return response


def _patch_httpx(cassette: CassetteTransport) -> list[tuple[type, str, Any]]:
    sync = httpx.HTTPTransport.handle_request
    async_ = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if SENDING_ON.get():
            return sync(self, request)
        return cassette.handle_request_through(request, _Through(self, sync, None))

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        if SENDING_ON.get():
            return await async_(self, request)
        return await cassette.handle_async_request_through(request, _Through(self, None, async_))

    return [
        (httpx.HTTPTransport, "handle_request", handle_request),
        (httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request),
    ]


@cache
def _httpx2_installed() -> bool:
    # Looked up once: a lookup reads the file system, and a test may start many cassettes.
    return importlib.util.find_spec("httpx2") is not None


def _patches(cassette: CassetteTransport) -> list[tuple[type, str, Any]]:
    patches = _patch_httpx(cassette)
    # httpx2 (the openai SDK's) is patched when it is installed, even if not imported yet:
    # the application may import it while the cassette is active.
    if _httpx2_installed():
        from llmx_replay.transports._httpx2 import intercepted_httpx2

        patches += intercepted_httpx2(cassette)
    return patches


@contextmanager
def intercepting(cassette: CassetteTransport) -> Iterator[CassetteTransport]:
    """Route every httpx and httpx2 HTTP transport through `cassette` while active.

    One cassette intercepts at a time: the methods are replaced process-wide, for every
    thread, as the application's own threads must be caught too.

    Raises:
        RuntimeError: another cassette is intercepting already.
    """
    global _active
    with _LOCK:
        if _active is not None:
            raise RuntimeError(
                f"{_active.path} is intercepting already; one cassette intercepts at a time"
            )
        patches = _patches(cassette)
        originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        _active = cassette
    try:
        yield cassette
    finally:
        with _LOCK:
            for owner, name, original in originals:
                setattr(owner, name, original)
            _active = None
