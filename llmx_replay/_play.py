"""Playing recorded responses back through the real client, over an httpx transport."""

from collections.abc import Iterator

import httpx

from llmx_replay._client import ChatClient
from llmx_replay._clock import VirtualClock
from llmx_replay._pipeline import StreamMode
from llmx_replay.cassette import Interaction, RecordedResponse
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.models.request import ChatRequest

_PLACEHOLDER_URL = "http://llmx-replay.invalid/v1/chat/completions"
# Each response is played once: a recorded failure is reported, not retried.
_PLAYBACK_PROVIDER = ProviderSettings(name="playback", request_max_retries=0)


def _serving(response: RecordedResponse) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            response.status,
            headers=response.headers,
            content=response.event_chunks(),
            extensions={"reason_phrase": response.reason.encode()},
        )

    return httpx.MockTransport(handler)


def _url(uri: str) -> str:
    try:
        url = httpx.URL(uri)
    except httpx.InvalidURL:
        return _PLACEHOLDER_URL
    return uri if url.scheme in ("http", "https") and url.host else _PLACEHOLDER_URL


def play_response(
    response: RecordedResponse, *, mode: StreamMode, uri: str = "", body: bytes | None = None
) -> Iterator[ResponseEvent]:
    """The events the client yields when a provider answers with `response`."""
    with ChatClient(
        _PLAYBACK_PROVIDER,
        "playback",
        transport=_serving(response),
        mode=mode,
        clock=VirtualClock(),
        environ={},
    ) as client:
        request = ChatRequest(url=_url(uri), headers=[], body=body or b"{}")
        yield from client.stream_request(request)


def play_interaction(interaction: Interaction, *, mode: StreamMode) -> Iterator[ResponseEvent]:
    """The events for one recorded Chat Completions interaction."""
    request = interaction.request
    return play_response(interaction.response, mode=mode, uri=request.uri, body=request.body)


def play_sse_body(body: bytes, *, mode: StreamMode) -> Iterator[ResponseEvent]:
    """The events for a raw SSE body, served as a successful event-stream response."""
    response = RecordedResponse(
        status=200, reason="OK", headers=[("content-type", "text/event-stream")], body=body
    )
    return play_response(response, mode=mode)
