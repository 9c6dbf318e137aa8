"""The streaming Chat Completions client, sync and async, over any httpx transport.

Both clients share everything but the I/O: request building, the retry decisions and the
event pipeline are pure. Failures of the provider or of the network end the event stream
with an `ErrorEvent` rather than raising.
"""

import asyncio
import os
import random
from collections.abc import AsyncIterator, Iterator, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Self

import httpx

from llmx_replay._clock import Clock, SystemClock
from llmx_replay._exceptions import UnsupportedOperation
from llmx_replay.models.events import ErrorEvent, ResponseEvent
from llmx_replay.models.prompt import Prompt, ProviderSettings
from llmx_replay.models.request import ChatRequest
from llmx_replay.stream._pipeline import EventPipeline, StreamMode
from llmx_replay.stream._request import OrphanCallPolicy, build_request
from llmx_replay.stream._retry import failed_status_error, retry_delay

# What cannot be sent: network failures, and (as reqwest reports them, at send time) a
# header value that is not ASCII or a malformed URL.
_REQUEST_ERRORS = (httpx.HTTPError, httpx.InvalidURL, UnicodeEncodeError)
_CONNECT_TIMEOUT = 30.0
# llmx's reqwest client keeps no cookie jar: a cookie one response sets is not sent back.
_NO_COOKIES = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def response_events(response: httpx.Response, mode: StreamMode) -> Iterator[ResponseEvent]:
    """The events of a successful response's body, read as it arrives; closes the response.

    A read timeout is the idle timeout, and any other network error ends the turn with the
    events received so far.
    """
    pipeline = EventPipeline(mode, status=response.status_code)
    try:
        for chunk in response.iter_bytes():
            yield from pipeline.feed(chunk)
            if pipeline.done:
                return
        yield from pipeline.end()
    except httpx.TimeoutException:
        yield from pipeline.idle_timeout()
    except httpx.HTTPError as error:
        yield from pipeline.read_failed(error)
    finally:
        response.close()


def error_body(response: httpx.Response) -> bytes:
    """A failed response's body, read whole; closes the response."""
    try:
        return response.read()
    except httpx.HTTPError:
        return b""  # An unreadable error body still leaves its status to act on.
    finally:
        response.close()


class _ClientBase:
    def __init__(
        self,
        provider: ProviderSettings,
        model: str,
        *,
        mode: StreamMode,
        clock: Clock | None,
        rng: random.Random | None,
        environ: Mapping[str, str] | None,
        orphan_calls: OrphanCallPolicy,
        subagent: str | None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.mode: StreamMode = mode
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._environ = os.environ if environ is None else environ
        self._orphan_calls: OrphanCallPolicy = orphan_calls
        self._subagent = subagent

    @property
    def _timeout(self) -> httpx.Timeout:
        # The read timeout is the idle timeout: no piece of the body for that long fails.
        return httpx.Timeout(_CONNECT_TIMEOUT, read=self.provider.idle_timeout)

    def _request_for(self, prompt: Prompt) -> ChatRequest | ErrorEvent:
        try:
            return build_request(
                prompt,
                self.model,
                self.provider,
                environ=self._environ,
                orphan_calls=self._orphan_calls,
                subagent=self._subagent,
            )
        except UnsupportedOperation as error:
            return ErrorEvent(kind="unsupported_operation", message=str(error))

    def _after_status(
        self, attempt: int, response: httpx.Response, body: bytes
    ) -> float | ErrorEvent:
        """The wait before retrying a failed status, or the error that ends the turn."""
        error = failed_status_error(
            attempt,
            response.status_code,
            response.reason_phrase,
            body,
            max_retries=self.provider.effective_request_max_retries,
        )
        return self._retry_delay(attempt, response.headers) if error is None else error

    def _after_connection_error(self, attempt: int, error: Exception) -> float | ErrorEvent:
        if attempt > self.provider.effective_request_max_retries:
            return ErrorEvent(kind="connection_failed", message=f"Connection failed: {error!r}")
        return self._retry_delay(attempt, {})

    def _retry_delay(self, attempt: int, headers: Mapping[str, str]) -> float:
        return retry_delay(
            attempt,
            headers,
            now=self._clock.now(),
            rng=self._rng,
            cap=self.provider.max_retry_delay_ms / 1000,
        )

    def _build(
        self, client: httpx.Client | httpx.AsyncClient, request: ChatRequest
    ) -> httpx.Request:
        return client.build_request(
            "POST",
            request.url,
            headers=request.headers,
            content=request.body,
            timeout=self._timeout,
        )


class ChatClient(_ClientBase):
    """Streams Chat Completions turns: `stream(prompt)` yields `ResponseEvent`s.

    `transport` is any `httpx.BaseTransport`: the network by default, or a mock, or a
    replay of a recorded session. `clock` decides how retry waits pass (a `VirtualClock`
    makes them instant).
    """

    def __init__(
        self,
        provider: ProviderSettings,
        model: str,
        *,
        transport: httpx.BaseTransport | None = None,
        mode: StreamMode = "streaming",
        clock: Clock | None = None,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        orphan_calls: OrphanCallPolicy = "abort",
        subagent: str | None = None,
    ) -> None:
        super().__init__(
            provider,
            model,
            mode=mode,
            clock=clock,
            rng=rng,
            environ=environ,
            orphan_calls=orphan_calls,
            subagent=subagent,
        )
        self._http = httpx.Client(transport=transport, follow_redirects=True, cookies=_NO_COOKIES)

    def stream(self, prompt: Prompt) -> Iterator[ResponseEvent]:
        """Send `prompt` and yield the turn's events; an `ErrorEvent` ends a failed turn."""
        request = self._request_for(prompt)
        if isinstance(request, ErrorEvent):
            yield request
            return
        yield from self.stream_request(request)

    def stream_request(self, request: ChatRequest) -> Iterator[ResponseEvent]:
        """Send a prepared request (with the retry loop) and yield the turn's events."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.send(self._build(self._http, request), stream=True)
            except _REQUEST_ERRORS as error:
                outcome = self._after_connection_error(attempt, error)
            else:
                if response.is_success:
                    yield from response_events(response, self.mode)
                    return
                outcome = self._after_status(attempt, response, error_body(response))
            if isinstance(outcome, ErrorEvent):
                yield outcome
                return
            self._clock.sleep(outcome)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncChatClient(_ClientBase):
    """The async counterpart of `ChatClient`, over any `httpx.AsyncBaseTransport`.

    Besides the transport's read timeout, the idle timeout is also enforced here around
    each read, so that it holds over transports that ignore timeouts.
    """

    def __init__(
        self,
        provider: ProviderSettings,
        model: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        mode: StreamMode = "streaming",
        clock: Clock | None = None,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        orphan_calls: OrphanCallPolicy = "abort",
        subagent: str | None = None,
    ) -> None:
        super().__init__(
            provider,
            model,
            mode=mode,
            clock=clock,
            rng=rng,
            environ=environ,
            orphan_calls=orphan_calls,
            subagent=subagent,
        )
        self._http = httpx.AsyncClient(
            transport=transport, follow_redirects=True, cookies=_NO_COOKIES
        )

    async def stream(self, prompt: Prompt) -> AsyncIterator[ResponseEvent]:
        """Send `prompt` and yield the turn's events; an `ErrorEvent` ends a failed turn."""
        request = self._request_for(prompt)
        if isinstance(request, ErrorEvent):
            yield request
            return
        async for event in self.stream_request(request):
            yield event

    async def stream_request(self, request: ChatRequest) -> AsyncIterator[ResponseEvent]:
        """Send a prepared request (with the retry loop) and yield the turn's events."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(self._build(self._http, request), stream=True)
            except _REQUEST_ERRORS as error:
                outcome = self._after_connection_error(attempt, error)
            else:
                if response.is_success:
                    async for event in self._events(response):
                        yield event
                    return
                try:
                    body = await response.aread()
                except httpx.HTTPError:
                    body = b""
                finally:
                    await response.aclose()
                outcome = self._after_status(attempt, response, body)
            if isinstance(outcome, ErrorEvent):
                yield outcome
                return
            await self._clock.asleep(outcome)

    async def _events(self, response: httpx.Response) -> AsyncIterator[ResponseEvent]:
        pipeline = EventPipeline(self.mode, status=response.status_code)
        chunks = response.aiter_bytes()
        idle_timeout = self.provider.idle_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                for event in pipeline.feed(chunk):
                    yield event
                if pipeline.done:
                    return
            for event in pipeline.end():
                yield event
        except (TimeoutError, httpx.TimeoutException):
            for event in pipeline.idle_timeout():
                yield event
        except httpx.HTTPError as error:
            for event in pipeline.read_failed(error):
                yield event
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
