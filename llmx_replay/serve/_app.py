"""The ASGI application: each HTTP request answered from a cassette, or forwarded and recorded.

A request becomes an `httpx.Request` for the cassette's transport, which answers it as it
answers a test's client: the recorded response, in its recorded chunks, paced and broken as
the options say; or, in a recording mode, the upstream's response, passed on chunk by chunk
as it arrives while it is recorded. Each chunk is one write to the client.

A recording runs to the upstream's end even when its client leaves, so that the cassette
holds what the provider sent for every later client; when the server stops, it is given
`recording_grace` seconds, and left out of the cassette if it has not ended by then.

Three endings have no ASGI message, so the connection is closed instead: a recording that
broke off (its replay breaks off the same way), an upstream that breaks off, and a response
still being sent when the server stops. A stall that never ends holds the connection,
sending nothing, until the client leaves.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from llmx_replay._exceptions import Absence, InputError, LlmxReplayError, NoMatchingInteraction
from llmx_replay.serve._cassettes import CASSETTE_HEADER, LOGGER, ServedCassettes
from llmx_replay.transports._record import discard_recording, is_recorded

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KEPT_MISSES = 1000
"""How many misses a server keeps, the last ones: a client asking the same wrong request in
a loop for days must not fill the memory."""

NO_RECORDING_STATUS = 404
"""The status of a request no recording answers: nothing is found for it (and clients do not
retry a 404, as they would a 5xx)."""

# Hop-by-hop headers belong to one connection, not to the message passed on (and so do the
# headers a Connection header names); the length is the server's to set for what it sends.
_NOT_PASSED_ON = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"content-length",
        b"host",
        CASSETTE_HEADER.encode(),
    }
)

# The upstream's response may take as long as the provider generates; reaching it may not.
_UPSTREAM_TIMEOUT = {"connect": 30.0, "read": None, "write": 30.0, "pool": 30.0}


class ConnectionCut(Exception):
    """Raised to have the ASGI server close a connection mid-response, on purpose."""


class ServeApp:
    """Answers requests from `cassettes`; `origin` is where recordings are sent (or None)."""

    def __init__(
        self, cassettes: ServedCassettes, origin: str | None, *, recording_grace: float
    ) -> None:
        self.cassettes = cassettes
        self._origin = origin
        self._recording_grace = recording_grace
        self._stopping: asyncio.Event | None = None
        self.misses: deque[NoMatchingInteraction] = deque(maxlen=KEPT_MISSES)
        """The last requests no recording answered, as each was answered."""
        self.miss_count = 0
        """How many requests no recording answered."""
        self.close_error: Exception | None = None
        """What failed when the cassettes were closed at the end, if anything did."""

    def begin_stopping(self) -> None:
        """The server is stopping: end the replays, give recordings their grace."""
        if self._stopping is not None:
            self._stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: HTTP requests, and the lifespan's startup and shutdown."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._stopping = asyncio.Event()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # After the last response: what was recorded is synced to the disk.
                try:
                    await self.cassettes.aclose()
                except Exception as error:
                    self.close_error = error
                    LOGGER.error("closing the cassettes failed: %s", error)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        target = _target(scope)
        try:
            request, name = self._request(scope, target, bytes(body))
            transport = await self.cassettes.answering(request, name)
            response = await transport.handle_async_request(request)
        except NoMatchingInteraction as miss:
            self.misses.append(miss)
            self.miss_count += 1
            line = _one_line(miss)
            LOGGER.warning("%s", line)
            await _send_error(send, NO_RECORDING_STATUS, _no_recording(miss, line))
            return
        except (InputError, httpx.InvalidURL) as error:
            param = (error.field or error.source) if isinstance(error, InputError) else None
            LOGGER.warning("%s %s: %s", scope["method"], target, error)
            await _send_error(send, 400, _error(str(error), "invalid_request_error", param))
            return
        except httpx.TransportError as error:
            line = f"upstream {self._origin}: {type(error).__name__}: {error}"
            LOGGER.warning("%s %s: %s", scope["method"], target, line)
            await _send_error(send, 502, _error(line, "upstream_error", None))
            return
        replaying = not is_recorded(response)
        if not replaying:
            LOGGER.info(
                "%s %s: sent to %s, recorded into %s",
                scope["method"],
                target,
                self._origin,
                transport.path,
            )
        try:
            if replaying:
                await self._replay(response, send, receive)
            else:
                await self._record(request, response, send)
        finally:
            await response.aclose()

    def _request(self, scope: Scope, target: str, body: bytes) -> tuple[httpx.Request, str | None]:
        """The request as the cassette's transport takes it, and the cassette it names."""
        name = None
        connection_scoped = _connection_scoped(scope["headers"])
        headers: list[tuple[bytes, bytes]] = []
        for key, value in scope["headers"]:
            lowered = key.lower()
            if lowered == CASSETTE_HEADER.encode():
                name = value.decode(errors="replace").strip()
            elif lowered not in _NOT_PASSED_ON and lowered not in connection_scoped:
                headers.append((key, value))
        # Recordings are made of the upstream's URL; a replay matches any origin, and the
        # server's own address is one the client cannot make invalid.
        origin = self._origin or _own_origin(scope)
        request = httpx.Request(
            scope["method"],
            httpx.URL(origin + target),
            headers=headers,
            content=body,
            extensions={"timeout": _UPSTREAM_TIMEOUT},
        )
        return request, name

    async def _replay(self, response: httpx.Response, send: Send, receive: Receive) -> None:
        left = asyncio.ensure_future(receive())  # completes when the client leaves
        try:
            await self._replay_until_left(response, send, left)
        finally:
            left.cancel()

    async def _replay_until_left(
        self, response: httpx.Response, send: Send, left: "asyncio.Future[Message]"
    ) -> None:
        await _start(response, send)
        pumping = asyncio.ensure_future(_pump(response, send))
        try:
            ended = await self._until(pumping, left)
        finally:
            if not pumping.done():
                pumping.cancel()
                await asyncio.wait({pumping})
        error = pumping.exception() if ended else None
        if isinstance(error, httpx.ReadTimeout):
            # A stall that never ends: nothing more is sent, until the client leaves.
            ended = await self._until(None, left)
        elif isinstance(error, httpx.TransportError):
            raise ConnectionCut(f"the recording broke off: {error}") from error
        elif error is not None:
            raise error
        elif ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if not left.done():
            raise ConnectionCut("the server stopped before the replay ended")

    async def _record(self, request: httpx.Request, response: httpx.Response, send: Send) -> None:
        await _start(response, send)
        # A client that leaves is sent nothing more (uvicorn drops what is sent to a closed
        # connection), and the rest is recorded.
        pumping = asyncio.ensure_future(_pump(response, send))
        try:
            if not await self._until(pumping, None):
                await asyncio.wait({pumping}, timeout=self._recording_grace)
        finally:
            if not pumping.done():
                discard_recording(response)
                pumping.cancel()
                await asyncio.wait({pumping})
                LOGGER.warning(
                    "%s: left out, the upstream had not ended it %s s after the server "
                    "began to stop",
                    request.url,
                    self._recording_grace,
                )
        if pumping.cancelled():
            raise ConnectionCut("the server stopped before the upstream ended the response")
        error = pumping.exception()
        if isinstance(error, httpx.TransportError):
            raise ConnectionCut(f"the upstream broke off: {error}") from error
        if isinstance(error, LlmxReplayError):
            # The client has the whole body; what failed is keeping it (a secret in it).
            LOGGER.error("not recorded: %s", error)
        elif error is not None:
            raise error
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _until(
        self, work: "asyncio.Future[None] | None", left: "asyncio.Future[Message] | None"
    ) -> bool:
        """Wait for `work` to end (True), the client to leave, or the server to stop."""
        waits: set[asyncio.Future[Any]] = {future for future in (work, left) if future}
        stopping = None
        if self._stopping is not None:
            stopping = asyncio.ensure_future(self._stopping.wait())
            waits.add(stopping)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
        return work is not None and work.done()


def _target(scope: Scope) -> str:
    """The request's path and query; an absolute URL (a proxy's client sends one) too."""
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    target = (path + (b"?" + query if query else b"")).decode("latin-1")
    if target.startswith("/"):
        return target
    parts = urlsplit(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _own_origin(scope: Scope) -> str:
    host, port = scope.get("server") or ("127.0.0.1", 80)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _connection_scoped(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The headers a Connection header names: they were meant for this hop only."""
    return frozenset(
        name.strip().lower()
        for key, value in headers
        if key.lower() == b"connection"
        for name in value.split(b",")
    )


async def _start(response: httpx.Response, send: Send) -> None:
    connection_scoped = _connection_scoped(response.headers.raw)
    headers = [
        (key.lower(), value)
        for key, value in response.headers.raw
        if key.lower() not in _NOT_PASSED_ON and key.lower() not in connection_scoped
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})


_CHUNKS_BETWEEN_YIELDS = 4
"""An instant replay's chunks are written without waiting; after this many, the event loop
runs, so that a client that left is seen (asyncio warns from the fifth write to a lost
connection on) and the other streams are served."""


async def _pump(response: httpx.Response, send: Send) -> None:
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    written = 0
    async for chunk in stream:
        if chunk:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            written += 1
            if written % _CHUNKS_BETWEEN_YIELDS == 0:
                await asyncio.sleep(0)


def _error(
    message: str, kind: str, param: str | None, code: str | None = None, **more: Any
) -> dict[str, Any]:
    """A JSON error body in the OpenAI shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code, **more}}


def _one_line(miss: NoMatchingInteraction) -> str:
    """The miss's message on one line: the differences joined by semicolons."""
    return str(miss).replace(":\n  ", ": ").replace("\n  ", "; ")


def _no_recording(miss: NoMatchingInteraction, line: str) -> dict[str, Any]:
    """The error body of a request no recording answers: `line`, and the details."""
    differences = [
        {
            "field": difference.path,
            **({} if difference.recorded is Absence.ABSENT else {"recorded": difference.recorded}),
            **(
                {}
                if difference.requested is Absence.ABSENT
                else {"requested": difference.requested}
            ),
        }
        for difference in miss.differences
    ]
    return _error(
        line,
        "invalid_request_error",
        differences[0]["field"] if differences else None,
        "no_recording",
        llmx_replay={
            "cassette": miss.cassette,
            "closest_interaction": miss.closest,
            "differences": differences,
            "more_differences": miss.more_differences,
            "reason": miss.reason,
        },
    )


async def _send_error(send: Send, status: int, body: dict[str, Any]) -> None:
    content = orjson.dumps(body, default=str)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content, "more_body": False})
