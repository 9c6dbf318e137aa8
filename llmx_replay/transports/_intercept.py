"""Every HTTP client through one cassette, with no wiring: interception.

While `intercepting(cassette)` is active, the HTTP transports of httpx and httpx2, sync and
async, hand their requests to the cassette: those the process creates then and those it
already holds, since the methods are replaced on the classes. The cassette replays a request
or, recording, sends it on through the very transport the client would have used (its
proxies, TLS settings and pool), recording the stream as it arrives. Other transports (a
`MockTransport`, our own) are left alone, and so is what a recorder sends on.

Clients on requests, urllib3, aiohttp, httplib2, tornado and botocore go through the same
cassette buffered, by vcrpy's patching (`_buffered`). Code on `http.client` alone
(`urllib.request`) is not caught: patching it would mean patching on every cassette, as every
process imports it.
"""

import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

import httpx

from llmx_replay.transports._cassette import CassetteTransport
from llmx_replay.transports._record import SENDING_ON

_SyncHandle = Callable[[Any, Any], Any]
_AsyncHandle = Callable[[Any, Any], Awaitable[Any]]

BUFFERED_LIBRARIES = {
    # requests' clients are caught in urllib3; waiting for requests to be imported whole
    # matters too, as vcrpy's patchers import it.
    "requests": "urllib3",
    "urllib3": "urllib3",
    "aiohttp": "aiohttp",
    "httplib2": "httplib2",
    "tornado": "tornado",
    "botocore": "boto3",
}
"""Libraries whose clients go through the cassette buffered, with vcrpy's patcher for each.

Each is patched once the application has imported it, not before: building vcrpy's
patchers costs about 70 µs a library per cassette, and importing them all 300 ms.
"""

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
        if SENDING_ON.get() or not cassette.intercepting:
            return sync(self, request)
        return cassette.handle_request_through(request, _Through(self, sync, None))

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        if SENDING_ON.get() or not cassette.intercepting:
            return await async_(self, request)
        return await cassette.handle_async_request_through(request, _Through(self, None, async_))

    return [
        (httpx.HTTPTransport, "handle_request", handle_request),
        (httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request),
    ]


class _Patching:
    """What one cassette replaced, restored together when it ends."""

    def __init__(self) -> None:
        self.active = True
        self._restores = ExitStack()

    def apply(self, patches: list[tuple[type, str, Any]]) -> None:
        """Replace each method (an owner, a name, the replacement)."""
        with _LOCK:
            if not self.active:
                return  # an import that finished after the cassette ended
            for owner, name, replacement in patches:
                self._restores.callback(setattr, owner, name, owner.__dict__[name])
                setattr(owner, name, replacement)

    def enter(self, patched: AbstractContextManager[Any]) -> None:
        """Enter a context that patches, to be left when the cassette ends."""
        with _LOCK:
            if self.active:
                self._restores.enter_context(patched)

    def restore(self) -> None:
        """Put back everything replaced (the caller holds `_LOCK`)."""
        self.active = False
        self._restores.close()


class _WhenImported(importlib.abc.MetaPathFinder):
    """Calls back once a watched module is imported, while a cassette is active.

    Libraries the application may never use are not imported for it: httpx2 (about 50 ms)
    and those vcrpy patches (requests, aiohttp, botocore: about 300 ms together) are patched
    the moment the application imports them. A callback waits for the outermost watched
    import of its thread to finish (`requests` imports `urllib3`), so that it never meets a
    half-imported module.
    """

    def __init__(self, callbacks: dict[str, Callable[[], None]]) -> None:
        self._callbacks = dict(callbacks)
        self._called: set[Callable[[], None]] = set()  # one may watch several modules
        self._claiming = threading.Lock()  # threads importing at once call each back once
        self._busy = threading.local()  # importing a watched module, or calling back

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname not in self._callbacks:
            return None
        spec = self._spec_from_the_others(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def execute_then_call_back(module: ModuleType) -> None:
            try:
                with self._busy_here() as outermost:
                    execute(module)
            finally:
                del spec.loader.exec_module  # type: ignore[union-attr]  # the loader's own again
            if outermost:
                self.call_back_the_imported()

        spec.loader.exec_module = execute_then_call_back  # type: ignore[method-assign]
        return spec

    @contextmanager
    def _busy_here(self) -> Iterator[bool]:
        """Whether this thread was not busy with a watched import or a callback already."""
        depth = getattr(self._busy, "depth", 0)
        self._busy.depth = depth + 1
        try:
            yield depth == 0
        finally:
            self._busy.depth = depth

    def _spec_from_the_others(self, fullname: str, path: Any, target: Any) -> ModuleSpec | None:
        for finder in tuple(sys.meta_path):  # another thread's cassette may leave it meanwhile
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def call_back_the_imported(self) -> None:
        """Call back for each watched module imported by now (the first time only).

        A callback may import watched modules itself (vcrpy's patchers import every library
        they patch): they are called back after it, not inside it.
        """
        with self._busy_here() as outermost:
            while outermost:
                with self._claiming:  # another thread may be taking callbacks meanwhile
                    imported = [name for name in self._callbacks if name in sys.modules]
                if not imported:
                    break
                for name in imported:
                    with self._claiming:
                        callback = self._callbacks.pop(name, None)
                        if callback is None or callback in self._called:
                            continue
                        self._called.add(callback)
                    callback()
        if not self._callbacks:
            _leave_meta_path(self)


def _leave_meta_path(finder: importlib.abc.MetaPathFinder) -> None:
    with suppress(ValueError):
        sys.meta_path.remove(finder)


def _patch_httpx2(cassette: CassetteTransport, patching: _Patching) -> Callable[[], None]:
    def patch() -> None:
        from llmx_replay.transports._httpx2 import intercepted_httpx2

        patching.apply(intercepted_httpx2(cassette))

    return patch


def _patch_buffered(
    cassette: CassetteTransport, patching: _Patching, patcher: str
) -> Callable[[], None]:
    def patch() -> None:
        # Imported outside the lock: vcrpy imports every library it patches. It keeps the
        # httpx methods it finds then, maybe a cassette's, to put back while its clients
        # send on: a cassette's passes requests through once it ends.
        from llmx_replay.transports._buffered import buffered_through

        patching.enter(buffered_through(cassette, patcher))

    return patch


@contextmanager
def intercepting(cassette: CassetteTransport) -> Iterator[CassetteTransport]:
    """Route every HTTP client of the process through `cassette` while active.

    httpx and httpx2 clients stream through it; the libraries of `BUFFERED_LIBRARIES` go
    through it buffered, once the application has imported them.

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
    buffered = {
        patcher: _patch_buffered(cassette, patching, patcher)
        for patcher in set(BUFFERED_LIBRARIES.values())
    }
    late = _WhenImported(
        {
            "httpx2": _patch_httpx2(cassette, patching),
            **{module: buffered[patcher] for module, patcher in BUFFERED_LIBRARIES.items()},
        }
    )
    try:
        cassette.intercepting = True
        patching.apply(_patch_httpx(cassette))
        sys.meta_path.insert(0, late)
        late.call_back_the_imported()
        yield cassette
    finally:
        cassette.intercepting = False
        _leave_meta_path(late)
        with _LOCK:
            patching.restore()
            _active = None
