"""An incremental Server-Sent Events decoder that follows the WHATWG event-stream rules.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

It is pure: feed it the body's bytes in whatever pieces they arrive and it returns the events
completed so far. The same bytes give the same events however they are split.

Lines are found in the bytes (a CR or LF byte is never part of a multi-byte UTF-8
character), and the stream is checked to be UTF-8 as it arrives, so that the common
``data: <json>`` payloads can go to a JSON parser as bytes, without a text copy.
"""

import os
from typing import NamedTuple

from llmx_replay._exceptions import SSEDecodeError

_BOM = b"\xef\xbb\xbf"
_TRUNCATED = "unexpected end of data"
_PLAIN_SEPARATOR = b"\n\ndata: "


MAX_EVENT_VARIABLE = "LLMX_REPLAY_MAX_EVENT_BYTES"
_MAX_EVENT_DEFAULT = 64 * 1024 * 1024


def default_max_event_bytes() -> int:
    """The most one event may hold: 64 MiB unless `MAX_EVENT_VARIABLE` says."""
    value = os.environ.get(MAX_EVENT_VARIABLE, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else _MAX_EVENT_DEFAULT


class _EventTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"an event of the stream exceeds {limit:,} bytes without ending "
            f"(set {MAX_EVENT_VARIABLE} to allow more)"
        )


class ServerSentEvent(NamedTuple):
    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


def _plain_data(region: bytes) -> list[bytes] | None:
    r"""The data of each event when `region` holds only one-line ``data: ...`` events, else None.

    Those are what providers send; the data is found in two passes over the bytes.

    Splitting at ``\n\ndata: `` leaves a newline in some piece unless every block was a
    single ``data:`` line, so counting the newlines is enough to tell.
    """
    if region[:6] != b"data: ":
        return None
    data = region[6:].split(_PLAIN_SEPARATOR)
    return data if region.count(b"\n") == 2 * (len(data) - 1) else None


class SSEDecoder:
    """Turns chunks of an event-stream body into `ServerSentEvent`s.

    `decode` gives whole events; `decode_data` gives only the UTF-8 bytes of their `data`,
    which is all a Chat Completions client reads (it ignores event names and ids).
    """

    __slots__ = (
        "_after_cr",
        "_buffer",
        "_last_id",
        "_max_event_bytes",
        "_offset",
        "_started",
        "_unchecked",
    )

    def __init__(self, max_event_bytes: int | None = None) -> None:
        """`max_event_bytes` caps one event (default: `default_max_event_bytes()`)."""
        self._buffer = bytearray()
        self._unchecked = b""
        self._after_cr = False
        self._started = False
        self._last_id = ""
        self._offset = 0
        self._max_event_bytes = max_event_bytes or default_max_event_bytes()

    def decode(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume one piece of the body and return the events it completed.

        Raises `SSEDecodeError` at the first byte that is not valid UTF-8, carrying the
        events completed before it.
        """
        region, error = self._take(chunk)
        events = [] if region is None else self._events(region)
        if error is not None:
            raise SSEDecodeError(error, events)
        return events

    def decode_data(self, chunk: bytes) -> list[bytes]:
        """Like `decode`, but return only the `data` of each event, as UTF-8 bytes."""
        region, error = self._take(chunk)
        data: list[bytes] = []
        if region is not None:
            plain = _plain_data(region)
            if plain is None:
                plain = [event.data.encode() for event in self._decoded_blocks(region)]
            data = plain
        if error is not None:
            raise SSEDecodeError(error, data)
        return data

    def _take(self, chunk: bytes) -> tuple[bytes | None, str | None]:
        """The lines `chunk` completes, and the error that stopped it, if any."""
        valid, error = self._check_utf8(chunk)
        try:
            return self._complete_region(valid), error
        except _EventTooLarge as too_large:
            self._buffer = bytearray()
            return None, str(too_large)

    def _events(self, region: bytes) -> list[ServerSentEvent]:
        plain = _plain_data(region)
        if plain is not None:
            last_id = self._last_id
            return [ServerSentEvent(data.decode(), "message", last_id) for data in plain]
        return self._decoded_blocks(region)

    def _decoded_blocks(self, region: bytes) -> list[ServerSentEvent]:
        """The events of a region that is not only plain ``data:`` lines."""
        events: list[ServerSentEvent] = []
        for block in region.decode().split("\n\n"):
            self._decode_block(block, events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """Signal the end of the body.

        An event without its closing blank line is discarded, as the standard says. A
        multi-byte character cut off by the end of the body is an `SSEDecodeError`.
        """
        if self._unchecked:
            raise SSEDecodeError(
                "the event stream ends inside a UTF-8 character at byte "
                f"{self._offset - len(self._unchecked)}"
            )
        self._buffer = bytearray()
        return []

    def _check_utf8(self, chunk: bytes) -> tuple[bytes, str | None]:
        """The part of `chunk` up to the first invalid UTF-8 byte, and an error if there is one.

        A character cut by the end of the chunk is checked when the rest arrives.
        """
        start = self._offset
        self._offset += len(chunk)
        if not self._unchecked and chunk.isascii():
            return chunk, None
        data = self._unchecked + chunk
        try:
            data.decode()
        except UnicodeDecodeError as error:
            if error.reason == _TRUNCATED and error.end == len(data):
                self._unchecked = data[error.start :]
                return chunk, None
            held = len(self._unchecked)
            self._unchecked = b""
            message = f"invalid UTF-8 in the event stream at byte {start - held + error.start}"
            return chunk[: max(error.start - held, 0)], message
        self._unchecked = b""
        return chunk, None

    def _complete_region(self, chunk: bytes) -> bytes | None:
        """Add `chunk`; return the lines now closed by a blank line, if an event is complete.

        The closing blank line itself is left out; None means no event is complete yet.
        """
        if not self._started:
            head = bytes(self._buffer) + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._buffer = bytearray(head)  # Wait to know whether it starts with a BOM.
                return None
            self._started = True
            self._buffer = bytearray()
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if not chunk:
            return None
        # A CR ending one chunk and an LF starting the next are a single line break.
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._buffer:
            end = chunk.rfind(b"\n\n")
            if end >= 0:
                self._buffer[:] = chunk[end + 2 :]
                return chunk[:end]
            self._buffer[:] = chunk
        else:
            # Only the new bytes are searched (with the one before them, for a blank line
            # across the boundary): an event arriving in many pieces costs its size once.
            searched_from = len(self._buffer) - 1
            self._buffer += chunk
            end = self._buffer.rfind(b"\n\n", searched_from)
            if end >= 0:
                region = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return region
        if len(self._buffer) > self._max_event_bytes:
            raise _EventTooLarge(self._max_event_bytes)
        return None

    def _decode_block(self, block: str, events: list[ServerSentEvent]) -> None:
        """Interpret the lines of one block; a blank line, and the block's end, dispatch."""
        data: list[str] = []
        event_type = ""
        retry: int | None = None
        for line in block.split("\n"):
            if not line:
                if data:
                    events.append(
                        ServerSentEvent(
                            "\n".join(data), event_type or "message", self._last_id, retry
                        )
                    )
                data, event_type, retry = [], "", None
                continue
            if line[0] == ":":
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                retry = int(value)
        if data:
            events.append(
                ServerSentEvent("\n".join(data), event_type or "message", self._last_id, retry)
            )
