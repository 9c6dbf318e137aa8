"""The ASGI application: each HTTP request answered from a cassette, or forwarded and recorded.

A request becomes an `httpx.Request` for the cassette's transport, which answers it as it
answers a test's client: the recorded response, in its recorded chunks, paced and broken as
the options say; or, in a recording mode, the upstream's response, passed on chunk by chunk
as it arrives while it is recorded. Each chunk is one write to the client.

Three endings have no ASGI message, so the connection is closed instead: a recording that
broke off (its replay breaks off the same way), an upstream that breaks off, and a replay
still playing when the server stops. A stall that never ends holds the connection, sending
nothing, until the client leaves.
"""

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import orjson

from llmx_replay._exceptions import Absence, InputError, LlmxReplayError, NoMatchingInteraction
from llmx_replay.serve._cassettes import CASSETTE_HEADER, LOGGER, ServedCassettes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NO_RECORDING_STATUS = 404
"""The status of a request no recording answers: nothing is found for it (and clients do not
retry a 404, as they would a 5xx)."""

# Hop-by-hop headers belong to one connection, not to the message passed on; the length is
# the server's to set for what it sends.
_NOT_PASSED_ON = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"content-length",
        b"host",
        CASSETTE_HEADER.encode(),
    }
)


class ConnectionCut(Exception):
    """Raised to have the ASGI server close a connection mid-response, on purpose."""


class ServeApp:
    """Answers requests from `cassettes`; `origin` is where recordings are sent (or None)."""

    def __init__(self, cassettes: ServedCassettes, origin: str | None) -> None:
        self.cassettes = cassettes
        self._origin = origin
        self._stopping: asyncio.Event | None = None
        self.misses: list[NoMatchingInteraction] = []
        """Every request no recording answered, as it was answered."""

    def stop_replays(self) -> None:
        """End the replays being played: the server is stopping (recordings go on)."""
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
                # After the last stream: what was recorded is synced to the disk.
                await self.cassettes.aclose()
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
        request, name = self._request(scope, bytes(body))
        try:
            transport = await self.cassettes.answering(request, name)
            replaying = transport.policy.replays and transport.player.can_answer(request)
            response = await transport.handle_async_request(request)
        except NoMatchingInteraction as miss:
            self.misses.append(miss)
            await _send_error(send, NO_RECORDING_STATUS, _no_recording(miss))
            return
        except InputError as error:
            LOGGER.warning("%s %s: %s", request.method, request.url.raw_path.decode(), error)
            param = error.field or error.source  # the header, or the cassette's file
            await _send_error(send, 400, _error(str(error), "invalid_request_error", param))
            return
        except httpx.TransportError as error:
            line = f"upstream {self._origin}: {type(error).__name__}: {error}"
            LOGGER.warning("%s %s: %s", request.method, request.url.raw_path.decode(), line)
            await _send_error(send, 502, _error(line, "upstream_error", None))
            return
        if not replaying:
            LOGGER.info(
                "%s %s: no recording; sent to %s and recorded into %s",
                request.method,
                request.url.raw_path.decode(),
                self._origin,
                transport.path,
            )
        left = asyncio.ensure_future(receive())  # completes when the client leaves
        try:
            await self._respond(response, send, left, replaying)
        finally:
            left.cancel()
            await response.aclose()

    def _request(self, scope: Scope, body: bytes) -> tuple[httpx.Request, str | None]:
        """The request as the cassette's transport takes it, and the cassette it names."""
        name = None
        headers: list[tuple[bytes, bytes]] = []
        for key, value in scope["headers"]:
            lowered = key.lower()
            if lowered == CASSETTE_HEADER.encode():
                name = value.decode("latin-1").strip()
            elif lowered not in _NOT_PASSED_ON:
                headers.append((key, value))
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = path + (b"?" + query if query else b"")
        # Recordings are made of the upstream's URL; a replay matches any origin.
        origin = self._origin or f"{scope['scheme']}://{_host(scope)}"
        url = httpx.URL(origin + target.decode("latin-1") if target.startswith(b"/") else origin)
        return httpx.Request(scope["method"], url, headers=headers, content=body), name

    async def _respond(
        self, response: httpx.Response, send: Send, left: "asyncio.Future[Message]", replay: bool
    ) -> None:
        headers = [
            (key.lower(), value)
            for key, value in response.headers.raw
            if key.lower() not in _NOT_PASSED_ON
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        assert isinstance(response.stream, httpx.AsyncByteStream)
        pumping = asyncio.ensure_future(_pump(response.stream, send))
        try:
            ended = await self._until(pumping, left, replay)
        finally:
            if not pumping.done():
                pumping.cancel()
                await asyncio.wait({pumping})
        error = pumping.exception() if ended else None
        if ended and isinstance(error, httpx.ReadTimeout) and replay:
            # A stall that never ends: nothing more is sent, until the client leaves.
            ended = await self._until(None, left, replay)
        elif isinstance(error, httpx.TransportError):
            raise ConnectionCut(f"the body broke off: {error}") from error
        elif isinstance(error, LlmxReplayError):
            # The client has the whole body; what failed is keeping it (a secret in it).
            LOGGER.error("not recorded: %s", error)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        elif error is not None:
            raise error
        elif ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if not left.done():
            raise ConnectionCut("the server stopped before the replay ended")

    async def _until(
        self, work: "asyncio.Future[None] | None", left: "asyncio.Future[Message]", replay: bool
    ) -> bool:
        """Wait for `work` to end (True), the client to leave, or a replay's server to stop.

        Without `work`, only the last two end the wait.
        """
        waits: set[asyncio.Future[Any]] = {left} if work is None else {work, left}
        stopping = None
        if replay and self._stopping is not None:
            stopping = asyncio.ensure_future(self._stopping.wait())
            waits.add(stopping)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
        return work is not None and work.done()


_CHUNKS_BETWEEN_YIELDS = 4
"""An instant replay's chunks are written without waiting; after this many, the event loop
runs, so that a client that left is seen (asyncio warns from the fifth write to a lost
connection on) and the other streams are served."""


async def _pump(stream: httpx.AsyncByteStream, send: Send) -> None:
    written = 0
    async for chunk in stream:
        if chunk:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            written += 1
            if written % _CHUNKS_BETWEEN_YIELDS == 0:
                await asyncio.sleep(0)


def _host(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key.lower() == b"host":
            return str(value.decode("latin-1"))
    host, port = scope.get("server") or ("127.0.0.1", 80)
    return f"{host}:{port}"


def _error(message: str, kind: str, param: str | None, **more: Any) -> dict[str, Any]:
    """A JSON error body in the OpenAI shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None, **more}}


def _no_recording(miss: NoMatchingInteraction) -> dict[str, Any]:
    """The error body of a request no recording answers, and its log line (the same)."""
    line = str(miss).replace(":\n  ", ": ").replace("\n  ", "; ")
    LOGGER.warning("%s", line)
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
    body = _error(
        line,
        "invalid_request_error",
        differences[0]["field"] if differences else None,
        llmx_replay={
            "cassette": miss.cassette,
            "closest_interaction": miss.closest,
            "differences": differences,
            "more_differences": miss.more_differences,
            "reason": miss.reason,
        },
    )
    body["error"]["code"] = "no_recording"
    return body


async def _send_error(send: Send, status: int, body: dict[str, Any]) -> None:
    content = orjson.dumps(body, default=str)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content, "more_body": False})
