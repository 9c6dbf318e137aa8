"""Recording a live session for `llmx-replay record`: the real client sends the request
through the recorder, and each response and each retry is reported as it happens."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx

from llmx_replay._client import ChatClient
from llmx_replay._clock import Clock, SystemClock
from llmx_replay.cassette import Scrubber
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.models.request import ChatRequest
from llmx_replay.transports import CassetteTransport, RecordingTransport


class SessionReport(Protocol):
    """Where a live session tells what the event stream does not: each response that
    arrived (a retried failure yields no event) and each wait before a retry."""

    def interaction(self, index: int, method: str, uri: str, status: int) -> None: ...

    def retry(self, seconds: float, after: str) -> None: ...


class _ReportedResponses(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, session: "LiveSession") -> None:
        self._inner = inner
        self._session = session

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._inner.handle_request(request)
        except httpx.HTTPError as error:
            self._session.failed(error)
            raise
        self._session.responded(request, response)
        return response

    def close(self) -> None:
        self._inner.close()


class _ReportedRetries:
    """The client sleeps only before a retry, so each sleep is reported first: a live
    server is never retried silently."""

    def __init__(self, inner: Clock, session: "LiveSession") -> None:
        self._inner = inner
        self._session = session

    def now(self) -> datetime:
        return self._inner.now()

    def sleep(self, seconds: float) -> None:
        self._session.retrying(seconds)
        self._inner.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self._session.retrying(seconds)
        await self._inner.asleep(seconds)


class LiveSession:
    """One turn sent to a live provider and recorded into `cassette`, every response (each
    retry's too) as one interaction: added to the cassette (`append`), or replacing it once
    the first response ends, so that a request that gets no response leaves it untouched.

    `first_index` is the number of interactions the cassette already holds; `inner` is the
    network (httpx's own transport by default).
    """

    def __init__(
        self,
        cassette: Path,
        *,
        append: bool,
        first_index: int,
        report: SessionReport,
        inner: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.cassette = cassette
        self.recorded = 0
        self._append = append
        self._first_index = first_index
        self._report = report
        self._inner = inner
        self._clock = clock or SystemClock()
        self._scrubber = Scrubber()
        self._last_failure = ""

    def responded(self, request: httpx.Request, response: httpx.Response) -> None:
        uri = self._scrubber.url(str(request.url))  # as the cassette will hold it
        index = self._first_index + self.recorded
        self.recorded += 1
        self._last_failure = f"status {response.status_code}"
        self._report.interaction(index, request.method, uri, response.status_code)

    def failed(self, error: httpx.HTTPError) -> None:
        self._last_failure = f"{type(error).__name__}: {error}"

    def retrying(self, seconds: float) -> None:
        self._report.retry(seconds, self._last_failure)

    def stream(
        self, provider: ProviderSettings, model: str, request: ChatRequest
    ) -> Iterator[ResponseEvent]:
        """Send `request` with the client's retries and yield the turn's events."""
        recording: httpx.BaseTransport = (
            RecordingTransport(self.cassette, self._inner)
            if self._append
            else CassetteTransport(self.cassette, record_mode="rewrite", inner=self._inner)
        )
        with ChatClient(
            provider,
            model,
            transport=_ReportedResponses(recording, self),
            clock=_ReportedRetries(self._clock, self),
        ) as client:
            yield from client.stream_request(request)
