"""Every httpx and httpx2 client through one cassette, with no wiring: interception.

While `intercepting(cassette)` is active, the HTTP transports of httpx and httpx2, sync and
async, hand their requests to the cassette: those the process creates then and those it
already holds, since the methods are replaced on the classes. The cassette replays a request
or, recording, sends it on through the very transport the client would have used (its
proxies, TLS settings and pool), recording the stream as it arrives. Other transports (a
`MockTransport`, our own) are left alone, and so is what a recorder sends on.
"""

import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.machinery import ModuleSpec
from types import ModuleType
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


class _Patching:
    """The methods replaced for one cassette, restored together when it ends."""

    def __init__(self) -> None:
        self.active = True
        self._originals: list[tuple[type, str, Any]] = []

    def apply(self, patches: list[tuple[type, str, Any]]) -> None:
        with _LOCK:
            if not self.active:
                return  # an import that finished after the cassette ended
            for owner, name, replacement in patches:
                self._originals.append((owner, name, owner.__dict__[name]))
                setattr(owner, name, replacement)

    def restore(self) -> None:
        """Put every replaced method back (the caller holds `_LOCK`)."""
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals.clear()
        self.active = False


class _Httpx2OnImport(importlib.abc.MetaPathFinder):
    """Patches httpx2 the moment the application first imports it, while a cassette is active.

    httpx2 (the openai and anthropic SDKs' client) is patched at once when it is imported
    already; otherwise importing it, about 50 ms, is left to the application, if it ever
    does.
    """

    def __init__(self, cassette: CassetteTransport, patching: _Patching) -> None:
        self._cassette = cassette
        self._patching = patching

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != "httpx2":
            return None
        _leave_meta_path(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, cassette, patching = spec.loader, self._cassette, self._patching
        execute = loader.exec_module

        def execute_then_patch(module: ModuleType) -> None:
            execute(module)
            from llmx_replay.transports._httpx2 import intercepted_httpx2

            patching.apply(intercepted_httpx2(cassette))

        loader.exec_module = execute_then_patch  # type: ignore[method-assign]
        return spec


def _leave_meta_path(finder: importlib.abc.MetaPathFinder) -> None:
    with suppress(ValueError):
        sys.meta_path.remove(finder)


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
        _active = cassette
    patching = _Patching()
    late = None
    try:
        patching.apply(_patch_httpx(cassette))
        if "httpx2" in sys.modules:
            from llmx_replay.transports._httpx2 import intercepted_httpx2

            patching.apply(intercepted_httpx2(cassette))
        else:
            late = _Httpx2OnImport(cassette, patching)
            sys.meta_path.insert(0, late)
        yield cassette
    finally:
        if late is not None:
            _leave_meta_path(late)
        with _LOCK:
            patching.restore()
            _active = None
