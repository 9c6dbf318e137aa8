"""Playing recorded responses through the protocol, as the client would have received them.

Each turn's recorded responses are handed to the client's own reading of a response
(`response_events`) as `ReplayTransport` serves them (recorded chunk boundaries, pacing,
faults), with the client's retry decisions between them: a retried failure waits as its
response asked, a gap past the idle timeout ends the turn with an idle timeout, and a
recording cut short by the network ends with the same error. No request is sent: a
recorded redirect is a failed status here, where a client would follow it.

Served at once and unchanged (instant pacing, no faults), a successful body goes straight to
the client's pipeline in large pieces instead, which gives the same events: the SSE decoder's
events do not depend on how the bytes are cut.
"""

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from llmx_replay._client import error_body, response_events
from llmx_replay._clock import VirtualClock
from llmx_replay._exceptions import OptionError, UnsupportedWireFormat
from llmx_replay._options import ReplayOptions
from llmx_replay.cassette import SSE_FORMAT, Cassette, Interaction, RecordedResponse
from llmx_replay.cassette._model import EVENT_END, split_events
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import MAX_REQUEST_RETRIES, ProviderSettings
from llmx_replay.stream._pipeline import EventPipeline, StreamMode
from llmx_replay.stream._retry import failed_status_error, is_retryable, retry_delay
from llmx_replay.stream._sse import default_max_event_bytes
from llmx_replay.stream._wire import foreign_wire_format
from llmx_replay.transports._replay import headers_delay, replayed_response

_DEFAULTS = ProviderSettings()

SLICE_BYTES = 64 * 1024
"""About how much of a body without recorded chunks is fed to the pipeline at once."""


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

    def __post_init__(self) -> None:
        """Refuse an idle timeout that is not a positive finite number of seconds."""
        timeout = self.idle_timeout
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if timeout is not None and not (number and 0 < timeout < math.inf):
            raise OptionError("idle_timeout", f"a positive number of seconds, not {timeout!r}")


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
    read_timeout = (
        _DEFAULTS.idle_timeout if playback.idle_timeout is None else playback.idle_timeout
    )
    max_retries = min(len(responses) - 1, MAX_REQUEST_RETRIES)
    rng = random.Random()
    for attempt, recorded in enumerate(responses[: max_retries + 1], start=1):
        delay = headers_delay(recorded, options)
        if delay:
            clock.sleep(delay)
        if served_unchanged(recorded, options):
            yield from _body_events(recorded, playback.mode)
            return
        response = replayed_response(recorded, options, read_timeout)
        if response.is_success:
            yield from response_events(response, playback.mode)
            return
        body = error_body(response)
        error = failed_status_error(
            attempt, response.status_code, response.reason_phrase, body, max_retries=max_retries
        )
        if error is not None:
            yield error
            return
        cap = _DEFAULTS.max_retry_delay_ms / 1000
        clock.sleep(retry_delay(attempt, response.headers, now=clock.now(), rng=rng, cap=cap))


def served_unchanged(response: RecordedResponse, options: ReplayOptions) -> bool:
    """Whether `ReplayTransport` would serve `response` as a success, whole and at once.

    That is with instant pacing and no fault, and the body complete (not cut short) and
    stored as it is read (no content encoding for httpx to undo).
    """
    faults = options.faults
    return (
        options.pacing == "instant"
        and faults.status is None
        and not faults.touches_events
        and 200 <= response.status < 300
        and response.partial is None
        and response.header("content-encoding") is None
    )


def _body_events(response: RecordedResponse, mode: StreamMode) -> Iterator[ResponseEvent]:
    """What `response_events` gives for `response` served unchanged, without HTTP."""
    pipeline = EventPipeline(mode, status=response.status)
    pieces = (
        (data for data, _ in response.recorded_chunks())
        if response.chunks is not None
        else event_slices(response.body)
    )
    for piece in pieces:
        yield from pipeline.feed(piece)
        if pipeline.done:
            return
    yield from pipeline.end()


def event_slices(body: bytes, size: int = SLICE_BYTES) -> Iterator[bytes]:
    """`body` in slices of about `size` bytes, each ending where `split_events` cuts it.

    Fed these, the pipeline gives what it gives for `split_events`' one-event chunks. Its
    decoder checks the limit on one event's size only after a chunk that completes no
    event, and a slice ends where one of those chunks does, so it completes an event as
    that chunk does. Hence the two exceptions, cut per event: the body's unfinished end, and
    a slice longer than the limit that holds invalid UTF-8 (the decoder stops before that
    byte, so there a chunk can end an event yet complete none). Looking for one event's end
    per slice, not for every one, is what makes this cheap: finding them all costs as much
    as parsing the events.
    """
    limit = default_max_event_bytes()
    start = 0
    while (found := EVENT_END.search(body, start + size)) is not None:
        piece = body[start : found.end()]
        start = found.end()
        if len(piece) > limit and not _is_utf8(piece):
            yield from split_events(piece)
        else:
            yield piece
    yield from split_events(body[start:])


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


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


def require_chat_completions(cassette: Cassette, source: str) -> None:
    """Refuse a cassette whose responses read as Chat Completions are another API's.

    Those are the responses to Chat Completions requests (what `turns` plays), or the body
    of a raw SSE file. A cassette that holds none is judged on all its interactions, so that
    one recorded against another API's endpoint is refused for what it holds.

    Raises:
        UnsupportedWireFormat: naming `source`, the first such interaction, and its format.
    """
    interactions = cassette.interactions
    read = [
        index
        for index, interaction in enumerate(interactions)
        if interaction.request.is_chat_completions or cassette.source_format == SSE_FORMAT
    ]
    for index in read or range(len(interactions)):
        request, response = interactions[index].request, interactions[index].response
        found = foreign_wire_format(response.body, request.uri)
        if found is not None:
            raise UnsupportedWireFormat(source, index, found)


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
