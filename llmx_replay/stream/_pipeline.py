"""Bytes of one response body -> the events a caller sees.

The bytes are decoded and processed, and what the mode shows is kept.
"""

from typing import Literal

from llmx_replay._exceptions import SSEDecodeError
from llmx_replay.models.events import (
    ErrorKind,
    OutputItemAdded,
    OutputTextDelta,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
)
from llmx_replay.stream._process import ChatStreamProcessor
from llmx_replay.stream._sse import SSEDecoder

IDLE_TIMEOUT_MESSAGE = "idle timeout waiting for SSE"

StreamMode = Literal["raw", "streaming", "aggregated"]
"""``raw`` is the processor's own sequence; the other two are the seed's consumer modes."""

_BODY_START_WHITESPACE = b" \t\r\n\xef\xbb\xbf"
# What aggregated mode leaves out of the processor's sequence: it shows finished items only.
_NOT_AGGREGATED = (OutputTextDelta, ReasoningContentDelta, RefusalDelta, OutputItemAdded)


class EventPipeline:
    """One response body's way through the SSE decoder and the processor.

    The processor builds each mode's whole parts itself (whole messages in ``streaming``,
    whole reasoning too in ``aggregated``), so its sequence is already the seed's consumer
    modes' (`Aggregator`'s output) but for the deltas aggregated mode leaves out.

    A body that starts with ``{`` or ``[`` is JSON, not an event stream; it is read whole
    and handed to the processor at the end.
    """

    __slots__ = (
        "_aggregated",
        "_decoder",
        "_json_body",
        "_leading",
        "_processor",
        "_sniffed",
        "_status",
    )

    def __init__(self, mode: StreamMode = "streaming", *, status: int = 200) -> None:
        self._decoder = SSEDecoder()
        self._processor = ChatStreamProcessor(
            whole_text=mode != "raw", whole_reasoning=mode == "aggregated"
        )
        self._aggregated = mode == "aggregated"
        self._status = status
        self._sniffed = False
        self._leading = bytearray()
        self._json_body: bytearray | None = None

    @property
    def done(self) -> bool:
        """True once the turn has ended; the rest of the body can be left unread."""
        return self._processor.done

    def feed(self, chunk: bytes) -> list[ResponseEvent]:
        """Consume one piece of the body."""
        if self._json_body is not None:
            self._json_body += chunk
            return []
        if not self._sniffed:
            start = chunk.lstrip(_BODY_START_WHITESPACE)[:1]
            if not start:
                self._leading += chunk
            else:
                self._sniffed = True
                if start in (b"{", b"["):
                    self._json_body = self._leading + chunk
                    return []
        try:
            payloads = self._decoder.decode_data(chunk)
        except SSEDecodeError as error:
            raw = self._processor.process_many(error.events)
            raw += self._processor.end_abruptly("stream", str(error))
            return self._aggregate(raw)
        return self._aggregate(self._processor.process_many(payloads))

    def end(self) -> list[ResponseEvent]:
        """The body ended."""
        processor = self._processor
        if self._json_body is not None:
            return self._aggregate(
                processor.process_json_body(bytes(self._json_body), self._status)
            )
        try:
            self._decoder.flush()  # Completes no event: an unterminated one is discarded.
        except SSEDecodeError as error:
            return self._aggregate(processor.end_abruptly("stream", str(error)))
        return self._aggregate(processor.end_of_stream())

    def end_abruptly(self, kind: ErrorKind, message: str) -> list[ResponseEvent]:
        """The body broke off: an idle timeout or a transport error."""
        return self._aggregate(self._processor.end_abruptly(kind, message))

    def idle_timeout(self) -> list[ResponseEvent]:
        """No piece of the body came within the idle timeout."""
        return self.end_abruptly("idle_timeout", IDLE_TIMEOUT_MESSAGE)

    def read_failed(self, error: Exception) -> list[ResponseEvent]:
        """Reading the body failed with `error` (a network error)."""
        return self.end_abruptly("stream", f"error while reading the response: {error!r}")

    def _aggregate(self, raw: list[ResponseEvent]) -> list[ResponseEvent]:
        if not self._aggregated:
            return raw
        return [event for event in raw if type(event) not in _NOT_AGGREGATED]
