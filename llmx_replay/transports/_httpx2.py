"""Our httpx transports inside an httpx2 client, such as the one the openai SDK runs on.

httpx2 has classes of its own, so an httpx transport cannot be handed to it directly;
`for_httpx2` wraps one. Each httpx2 request becomes an httpx request (method, URL, headers
in order, body, timeouts), and the wrapped transport's response comes back as an httpx2
response whose body passes every chunk through the moment it arrives. httpx errors from the
wrapped transport are raised as the httpx2 errors of the same name, so that httpx2 and the
SDK treat them as their own (a stalled replay is an ``httpx2.ReadTimeout``).

It also gives interception its httpx2 side (`intercepted_httpx2`): the requests of httpx2's
own HTTP transports go through a cassette, and those it records are sent on through the
very transport, seen as an httpx one, whose errors stay httpx2's.

httpx2 is optional: only this module imports it.
"""

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from llmx_replay.transports._record import SENDING_ON

if TYPE_CHECKING:
    from llmx_replay.transports._cassette import CassetteTransport

try:
    import httpx2
except ImportError as error:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "llmx_replay.transports.for_httpx2 needs httpx2 (pip install httpx2)"
    ) from error

__all__ = ["Httpx2Transport", "for_httpx2"]

_RESPONSE_EXTENSIONS = ("http_version", "reason_phrase")


def _httpx2_error(error: httpx.RequestError) -> httpx2.RequestError:
    """The httpx2 error of the same name as `error` (``ReadTimeout`` -> ``ReadTimeout``)."""
    kind = getattr(httpx2, type(error).__name__, None)
    if not (isinstance(kind, type) and issubclass(kind, httpx2.RequestError)):
        kind = httpx2.TransportError if isinstance(error, httpx.TransportError) else None
    return (kind or httpx2.RequestError)(str(error))


# httpx and httpx2 share their API: one conversion serves both ways, given the target library.


def _request_in(library: Any, request: Any, body: bytes) -> Any:
    """`request` (of httpx or httpx2) as a request of `library`, with `body`."""
    extensions = {}
    if "timeout" in request.extensions:
        extensions["timeout"] = request.extensions["timeout"]
    return library.Request(
        request.method,
        str(request.url),
        headers=request.headers.raw,
        content=body,
        extensions=extensions,
    )


def _response_in(library: Any, response: Any, stream: Any) -> Any:
    """`response` (of httpx or httpx2) as a response of `library` whose body is `stream`."""
    extensions = {k: v for k, v in response.extensions.items() if k in _RESPONSE_EXTENSIONS}
    return library.Response(
        response.status_code, headers=response.headers.raw, stream=stream, extensions=extensions
    )


class _SyncStream(httpx2.SyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        stream = self._response.stream
        if not isinstance(stream, httpx.SyncByteStream):
            raise TypeError("the wrapped transport answered with an async body")
        try:
            yield from stream
        except httpx.RequestError as error:
            raise _httpx2_error(error) from error

    def close(self) -> None:
        self._response.close()


class _AsyncStream(httpx2.AsyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise TypeError("the wrapped transport answered with a sync body")
        try:
            async for chunk in stream:
                yield chunk
        except httpx.RequestError as error:
            raise _httpx2_error(error) from error

    async def aclose(self) -> None:
        await self._response.aclose()


class Httpx2Transport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """An httpx2 transport, sync and async, that sends each request through `transport`.

    `transport` is one of our httpx transports (`RecordingTransport`, `ReplayTransport`,
    `CassetteTransport`) or any other.
    """

    def __init__(self, transport: httpx.BaseTransport | httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if not isinstance(self.transport, httpx.BaseTransport):
            raise TypeError("the wrapped transport is async only; use an httpx2.AsyncClient")
        body = request.read()
        try:
            response = self.transport.handle_request(_request_in(httpx, request, body))
        except httpx.RequestError as error:
            raise _httpx2_error(error) from error
        response2: httpx2.Response = _response_in(httpx2, response, _SyncStream(response))
        return response2

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not isinstance(self.transport, httpx.AsyncBaseTransport):
            raise TypeError("the wrapped transport is sync only; use an httpx2.Client")
        body = await request.aread()
        try:
            response = await self.transport.handle_async_request(_request_in(httpx, request, body))
        except httpx.RequestError as error:
            raise _httpx2_error(error) from error
        response2: httpx2.Response = _response_in(httpx2, response, _AsyncStream(response))
        return response2

    def close(self) -> None:
        if isinstance(self.transport, httpx.BaseTransport):
            self.transport.close()

    async def aclose(self) -> None:
        if isinstance(self.transport, httpx.AsyncBaseTransport):
            await self.transport.aclose()


def for_httpx2(transport: httpx.BaseTransport | httpx.AsyncBaseTransport) -> Httpx2Transport:
    """`transport` as an httpx2 transport.

    It is for ``httpx2.Client(transport=...)`` or ``httpx2.AsyncClient(transport=...)``, and
    so for the openai SDK's ``http_client``::

        http = httpx2.Client(transport=for_httpx2(ReplayTransport("chat.yaml")))
        client = openai.OpenAI(base_url=..., api_key="unused", http_client=http)
    """
    return Httpx2Transport(transport)


class _FromHttpx2Sync(httpx.SyncByteStream):
    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        stream = self._response.stream
        assert isinstance(stream, httpx2.SyncByteStream)
        yield from stream

    def close(self) -> None:
        self._response.close()


class _FromHttpx2Async(httpx.AsyncByteStream):
    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        async for chunk in stream:
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class _Httpx2Through(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx2 transport, called with its original method, seen as an httpx transport.

    Its errors stay httpx2's, so that the application sees the errors of its own client.
    """

    def __init__(self, transport: Any, sync: Any = None, async_: Any = None) -> None:
        self._transport = transport
        self._sync = sync
        self._async = async_

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._sync(self._transport, _request_in(httpx2, request, request.content))
        converted: httpx.Response = _response_in(httpx, response, _FromHttpx2Sync(response))
        return converted

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._async(self._transport, _request_in(httpx2, request, request.content))
        converted: httpx.Response = _response_in(httpx, response, _FromHttpx2Async(response))
        return converted


class _CassetteVia(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """`cassette`, sending what it records on through `through`."""

    def __init__(self, cassette: "CassetteTransport", through: _Httpx2Through) -> None:
        self._cassette = cassette
        self._through = through

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._cassette.handle_request_through(request, self._through)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._cassette.handle_async_request_through(request, self._through)


def intercepted_httpx2(cassette: "CassetteTransport") -> list[tuple[type, str, Any]]:
    """The replacements of httpx2's HTTP transport methods that send through `cassette`.

    See `llmx_replay.transports._intercept`.
    """
    sync = httpx2.HTTPTransport.handle_request
    async_ = httpx2.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
        if SENDING_ON.get() or not cassette.intercepting:
            return sync(self, request)
        via = _CassetteVia(cassette, _Httpx2Through(self, sync=sync))
        return Httpx2Transport(via).handle_request(request)

    async def handle_async_request(
        self: httpx2.AsyncHTTPTransport, request: httpx2.Request
    ) -> httpx2.Response:
        if SENDING_ON.get() or not cassette.intercepting:
            return await async_(self, request)
        via = _CassetteVia(cassette, _Httpx2Through(self, async_=async_))
        return await Httpx2Transport(via).handle_async_request(request)

    return [
        (httpx2.HTTPTransport, "handle_request", handle_request),
        (httpx2.AsyncHTTPTransport, "handle_async_request", handle_async_request),
    ]
