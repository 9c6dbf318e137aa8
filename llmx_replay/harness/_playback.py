"""Playing recorded responses through the protocol, as the client would have received them.

Each turn's recorded responses are served in order, with their recorded chunk boundaries,
pacing and faults (as `ReplayTransport` serves them), and go through the same pipeline and
retry decisions as the client's: a retried failure waits as its response asked, a gap past
the idle timeout ends the turn with an idle timeout, a recording cut short by the network
ends with the same read error.
"""

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from llmx_replay._clock import Clock, VirtualClock
from llmx_replay._files import read_file
from llmx_replay._options import ReplayOptions
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
from llmx_replay.stream._pipeline import EventPipeline, StreamMode
from llmx_replay.stream._retry import failed_status_error, is_retryable, retry_delay
from llmx_replay.transports._replay import (
    Piece,
    headers_delay,
    injected_status_body,
    recorded_break,
    replayed_pieces,
)

SSE_FORMAT = "sse"
"""The `source_format` of a raw SSE body read as a cassette."""

_DEFAULTS = ProviderSettings()


@dataclass(frozen=True)
class Playback:
    """How to play: the client's mode, how responses are served, and the idle timeout.

    By default responses are served on a `VirtualClock`, so that instant replays and stalls
    never wait; give `replay` a `SystemClock` for output that really streams at the
    recorded pace.

    Attributes:
        mode: The client's mode (``raw``, ``streaming`` or ``aggregated``).
        replay: Pacing, speed, faults and the clock.
        idle_timeout: Seconds without a piece of the body before the turn fails (the
            provider default, 300, when None).
    """

    mode: StreamMode = "streaming"
    replay: ReplayOptions = field(default_factory=lambda: ReplayOptions(clock=VirtualClock()))
    idle_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class _Served:
    """A response as the client receives it: status, reason, headers and body pieces."""

    status: int
    reason: str
    headers: httpx.Headers
    pieces: list[Piece]
    ending: httpx.TransportError | None


def _served(response: RecordedResponse, options: ReplayOptions) -> _Served:
    faults = options.faults
    if faults.status is not None:
        return _Served(
            faults.status,
            httpx.codes.get_reason_phrase(faults.status),
            httpx.Headers({"content-type": "application/json"}),
            [Piece(injected_status_body(faults.status), 0.0)],
            None,
        )
    return _Served(
        response.status,
        response.reason,
        httpx.Headers([(name.encode(), value.encode()) for name, value in response.headers]),
        replayed_pieces(response, options),
        None if faults.cut_after is not None else recorded_break(response.partial),
    )


def _body(served: _Served, read_timeout: float, clock: Clock) -> bytes:
    """A failed response's body, read whole; one that stalls or breaks off reads as empty."""
    data = bytearray()
    for piece in served.pieces:
        if piece.delay > read_timeout:
            clock.sleep(read_timeout)
            return b""
        if piece.delay:
            clock.sleep(piece.delay)
        data += piece.data
    return b"" if served.ending is not None else bytes(data)


def _events(
    served: _Served, mode: StreamMode, read_timeout: float, clock: Clock
) -> Iterator[ResponseEvent]:
    pipeline = EventPipeline(mode, status=served.status)
    for piece in served.pieces:
        if piece.delay > read_timeout:
            clock.sleep(read_timeout)
            yield from pipeline.idle_timeout()
            return
        if piece.delay:
            clock.sleep(piece.delay)
        if piece.data:
            yield from pipeline.feed(piece.data)
            if pipeline.done:
                return
    if served.ending is not None:
        yield from pipeline.read_failed(served.ending)
        return
    yield from pipeline.end()


def play_response(response: RecordedResponse, playback: Playback) -> Iterator[ResponseEvent]:
    """The events the client yields when a provider answers with `response`."""
    return play_attempts([response], playback)


def play_attempts(
    responses: Sequence[RecordedResponse], playback: Playback
) -> Iterator[ResponseEvent]:
    """The events of one turn whose attempts were answered with `responses` in turn.

    The client retries as often as the recording did, waiting as each response asked; the
    last recorded failure is reported, not retried, since nothing was recorded after it.
    """
    options = playback.replay
    clock = options.clock
    read_timeout = playback.idle_timeout or _DEFAULTS.idle_timeout
    rng = random.Random()
    for attempt, response in enumerate(responses, start=1):
        delay = headers_delay(response, options)
        if delay:
            clock.sleep(delay)
        served = _served(response, options)
        if 200 <= served.status < 300:
            yield from _events(served, playback.mode, read_timeout, clock)
            return
        body = _body(served, read_timeout, clock)
        error = failed_status_error(
            attempt, served.status, served.reason, body, max_retries=len(responses) - 1
        )
        if error is not None:
            yield error
            return
        clock.sleep(
            retry_delay(
                attempt,
                served.headers,
                now=clock.now(),
                rng=rng,
                cap=_DEFAULTS.max_retry_delay_ms / 1000,
            )
        )


def turns(cassette: Cassette) -> list[list[int]]:
    """The cassette's Chat Completions interactions grouped into the turns a client made.

    A request answered with a retryable failure (429, 5xx) and then sent again, unchanged,
    is one turn whose attempts are its interactions, in recorded order.
    """
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
    """A cassette file, or a raw SSE body as a cassette of one successful interaction.

    That cassette has the format `SSE_FORMAT` and no request URI.
    """
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
