"""An incremental Server-Sent Events decoder that follows the WHATWG event-stream rules.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

It is pure: feed it the body's bytes in whatever pieces they arrive and it returns the events
completed so far. The same bytes give the same events however they are split.
"""

from typing import NamedTuple

from llmx_replay._exceptions import SSEDecodeError

_BOM = "\ufeff"
_TRUNCATED = "unexpected end of data"


class ServerSentEvent(NamedTuple):
    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Turns chunks of an event-stream body into `ServerSentEvent`s."""

    __slots__ = ("_after_cr", "_last_id", "_offset", "_pending_bytes", "_started", "_text")

    def __init__(self) -> None:
        self._pending_bytes = b""
        self._text = ""
        self._after_cr = False
        self._started = False
        self._last_id = ""
        self._offset = 0

    def decode(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume one piece of the body and return the events it completed.

        Raises `SSEDecodeError` at the first byte that is not valid UTF-8, carrying the
        events completed before it.
        """
        data = self._pending_bytes + chunk if self._pending_bytes else chunk
        try:
            text = data.decode()
            self._pending_bytes = b""
        except UnicodeDecodeError as error:
            if error.reason == _TRUNCATED and error.end == len(data):
                text = data[: error.start].decode()
                self._pending_bytes = data[error.start :]
            else:
                events = self._feed(data[: error.start].decode())
                raise SSEDecodeError(
                    f"invalid UTF-8 in the event stream at byte {self._offset}", events
                ) from None
        return self._feed(text)

    def flush(self) -> list[ServerSentEvent]:
        """Signal the end of the body.

        An event without its closing blank line is discarded, as the standard says. A
        multi-byte character cut off by the end of the body is an `SSEDecodeError`.
        """
        if self._pending_bytes:
            raise SSEDecodeError(
                f"the event stream ends inside a UTF-8 character at byte {self._offset}"
            )
        self._text = ""
        return []

    def _feed(self, text: str) -> list[ServerSentEvent]:
        self._offset += len(text.encode()) if not text.isascii() else len(text)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == _BOM:
                text = text[1:]
        # A CR ending one chunk and an LF starting the next are a single line break.
        if self._after_cr and text[:1] == "\n":
            text = text[1:]
        self._after_cr = text[-1:] == "\r"
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        buffered = self._text + text if self._text else text
        end = buffered.rfind("\n\n")
        if end < 0:
            self._text = buffered
            return []
        self._text = buffered[end + 2 :]
        events: list[ServerSentEvent] = []
        for block in buffered[:end].split("\n\n"):
            if block[:5] == "data:" and "\n" not in block:
                value = block[5:]
                events.append(
                    ServerSentEvent(
                        value[1:] if value[:1] == " " else value, "message", self._last_id
                    )
                )
            else:
                self._decode_block(block, events)
        return events

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
