"""Playing recorded responses back through the real client and the real replay transport.

Each turn is served by a `ReplayTransport` over a cassette of its own interactions, so
recorded chunk boundaries, pacing and injected faults reach the client exactly as they do
in a test that replays the cassette.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmx_replay._client import ChatClient
from llmx_replay._clock import Clock, VirtualClock
from llmx_replay._files import read_file
from llmx_replay._pipeline import StreamMode
from llmx_replay._retry import is_retryable
from llmx_replay.cassette import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    looks_like_sse,
    parse_cassette,
)
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import MAX_REQUEST_RETRIES, ProviderSettings
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
    return play_attempts([response], playback)


def play_attempts(
    responses: Sequence[RecordedResponse], playback: Playback
) -> Iterator[ResponseEvent]:
    """The events of one turn whose attempts were answered with `responses` in turn: the
    client retries as often as the recording did, waiting as each response asked."""
    request = RecordedRequest(method="POST", uri=_PLAYBACK_URL, body=_PLAYBACK_BODY)
    cassette = Cassette(
        interactions=[Interaction(request=request, response=answer) for answer in responses],
        source_format="llmx-replay",
    )
    transport = ReplayTransport(
        cassette,
        pacing=playback.pacing,
        speed=playback.speed,
        faults=playback.faults,
        clock=playback.clock,
    )
    # The last recorded failure is reported, not retried: nothing was recorded after it.
    provider = ProviderSettings(
        name="playback",
        request_max_retries=len(responses) - 1,
        stream_idle_timeout_ms=playback.idle_timeout_ms,
    )
    chat_request = ChatRequest(url=_PLAYBACK_URL, headers=[], body=_PLAYBACK_BODY)
    with ChatClient(
        provider,
        "playback",
        transport=transport,
        mode=playback.mode,
        clock=playback.clock,
        environ={},
    ) as client:
        yield from client.stream_request(chat_request)


def turns(cassette: Cassette) -> list[list[int]]:
    """The cassette's Chat Completions interactions grouped into the turns a client made:
    a request answered with a retryable failure (429, 5xx) and then sent again, unchanged,
    is one turn whose attempts are its interactions, in recorded order."""
    grouped: list[list[int]] = []
    for index, interaction in enumerate(cassette.interactions):
        if not interaction.request.is_chat_completions:
            continue
        if (
            grouped
            and len(grouped[-1]) <= MAX_REQUEST_RETRIES
            and _retried(cassette.interactions[grouped[-1][-1]], interaction)
        ):
            grouped[-1].append(index)
        else:
            grouped.append([index])
    return grouped


def _retried(previous: Interaction, interaction: Interaction) -> bool:
    before, now = previous.request, interaction.request
    return is_retryable(previous.response.status) and (before.method, before.uri, before.body) == (
        now.method,
        now.uri,
        now.body,
    )


def play_cassette(cassette: Cassette, playback: Playback) -> Iterator[ResponseEvent]:
    """The events of every turn of `cassette`, one turn after another."""
    for turn in turns(cassette):
        yield from play_attempts([cassette.interactions[i].response for i in turn], playback)


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
