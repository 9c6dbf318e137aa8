"""Playing recorded responses back through the real client and the real replay transport.

Each response is served by a `ReplayTransport` over a cassette of that one interaction, so
recorded chunk boundaries, pacing and injected faults reach the client exactly as they do
in a test that replays the cassette.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmx_replay._client import ChatClient
from llmx_replay._clock import Clock, VirtualClock
from llmx_replay._files import read_file
from llmx_replay._pipeline import StreamMode
from llmx_replay.cassette import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    looks_like_sse,
    parse_cassette,
)
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.models.request import ChatRequest
from llmx_replay.transports import Faults, Pacing, ReplayTransport

SSE_FORMAT = "sse"
"""The `source_format` of a raw SSE body read as a cassette."""

# The answer does not depend on the request, so every response is served to this one; its
# recorded request could not always be sent as it is (no host, secrets scrubbed from the URL).
_PLAYBACK_URL = "http://llmx-replay.invalid/v1/chat/completions"
_PLAYBACK_BODY = b"{}"


@dataclass(frozen=True)
class Playback:
    """How to play: the client's mode, the replay's pacing and faults, and its clock.

    The default clock is virtual, so that instant replays and stalls never wait; pass a
    `SystemClock` for output that really streams at the recorded pace.
    """

    mode: StreamMode = "streaming"
    pacing: Pacing = "instant"
    speed: float = 1.0
    faults: Faults = field(default_factory=Faults)
    clock: Clock = field(default_factory=VirtualClock)
    idle_timeout_ms: int | None = None


def play_response(response: RecordedResponse, playback: Playback) -> Iterator[ResponseEvent]:
    """The events the client yields when a provider answers with `response`."""
    cassette = Cassette(
        interactions=[
            Interaction(
                request=RecordedRequest(method="POST", uri=_PLAYBACK_URL, body=_PLAYBACK_BODY),
                response=response,
            )
        ],
        source_format="llmx-replay",
    )
    transport = ReplayTransport(
        cassette,
        pacing=playback.pacing,
        speed=playback.speed,
        faults=playback.faults,
        clock=playback.clock,
    )
    # Each response is played once: a recorded failure is reported, not retried.
    provider = ProviderSettings(
        name="playback", request_max_retries=0, stream_idle_timeout_ms=playback.idle_timeout_ms
    )
    request = ChatRequest(url=_PLAYBACK_URL, headers=[], body=_PLAYBACK_BODY)
    with ChatClient(
        provider,
        "playback",
        transport=transport,
        mode=playback.mode,
        clock=playback.clock,
        environ={},
    ) as client:
        yield from client.stream_request(request)


def play_interaction(interaction: Interaction, *, mode: StreamMode) -> Iterator[ResponseEvent]:
    """The events for one recorded Chat Completions interaction, played instantly."""
    return play_response(interaction.response, Playback(mode=mode))


def load_recording(path: Path) -> Cassette:
    """A cassette file, or a raw SSE body as a cassette of one successful interaction
    (format `SSE_FORMAT`, no request URI)."""
    data = read_file(path)
    if not looks_like_sse(data):
        return parse_cassette(data, str(path))
    response = RecordedResponse(
        status=200, reason="OK", headers=[("content-type", "text/event-stream")], body=data
    )
    request = RecordedRequest(method="POST", uri="")
    return Cassette(
        interactions=[Interaction(request=request, response=response)], source_format=SSE_FORMAT
    )
