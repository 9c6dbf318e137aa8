"""Recorded HTTP interactions, whatever file format they were read from."""

import re
from collections.abc import Iterable, Iterator

import orjson
from pydantic import BaseModel, ConfigDict

EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
"""Where an SSE event ends: its blank line, in any of the three line breaks."""
_CHAT_PATH = re.compile(r"/chat(/completions)?/?$")

_LENGTH_HEADERS = frozenset({"content-length", "transfer-encoding"})
_WIRE_HEADERS = _LENGTH_HEADERS | {"content-encoding"}

CANCELLED = "the caller was cancelled before the end"
"""The `partial` reason of a recording whose async caller was cancelled mid-body (an idle
timeout does that): its replay stalls after the last chunk, as the live stream did."""

BROKE_OFF = "the body broke off: "
"""How the `partial` reason of a recording that a network error cut short starts; the
error's type and message follow, so that a replay can end the same way."""


def first_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header `name` (case-insensitive), if any."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def stored_headers(headers: Iterable[tuple[str, str]], *, decoded: bool) -> list[tuple[str, str]]:
    """A response's headers as kept beside its stored body, without those that no longer hold.

    The length headers no longer hold for the stored body, nor its content encoding once the
    body is `decoded`.
    """
    wire = _WIRE_HEADERS if decoded else _LENGTH_HEADERS
    return [(key, value) for key, value in headers if key.lower() not in wire]


def model_in(data: bytes) -> str | None:
    """The string `model` of a JSON object, if `data` is one."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    model = document.get("model") if isinstance(document, dict) else None
    return model if isinstance(model, str) else None


def split_events(body: bytes) -> Iterator[bytes]:
    """`body` cut after each SSE event, as a stream arrives from a provider."""
    start = 0
    for end in EVENT_END.finditer(body):
        yield body[start : end.end()]
        start = end.end()
    if start < len(body):
        yield body[start:]


class RecordedRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    uri: str
    headers: list[tuple[str, str]] = []
    body: bytes | None = None

    @property
    def model(self) -> str | None:
        """The `model` a JSON request body asks for."""
        return model_in(self.body or b"")

    @property
    def is_chat_completions(self) -> bool:
        """A POST to ``.../chat/completions`` (or Writer's ``.../chat``)."""
        path = self.uri.split("?", 1)[0].split("#", 1)[0]
        return self.method.upper() == "POST" and _CHAT_PATH.search(path) is not None


class RecordedResponse(BaseModel):
    """A response with its body stored decoded (no content encoding).

    What vcrpy keeps, plus how the body arrived when llmx-replay recorded it: the time to
    the headers, each chunk's size and time offset (both from the start of the request),
    and why the recording stopped early, if it did.
    """

    model_config = ConfigDict(frozen=True)

    status: int
    reason: str = ""
    headers: list[tuple[str, str]] = []
    body: bytes = b""
    headers_ms: float | None = None
    chunks: tuple[tuple[int, float], ...] | None = None
    partial: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), if any."""
        return first_header(self.headers, name)

    def recorded_chunks(self) -> list[tuple[bytes, float]]:
        """The body as it arrived, each piece with its time offset in milliseconds.

        A response recorded by other tools has no chunk data: it is cut after each SSE event,
        all at the time of the headers.
        """
        if self.chunks is None:
            start = self.headers_ms or 0.0
            return [(piece, start) for piece in self.event_chunks()]
        pieces: list[tuple[bytes, float]] = []
        position = 0
        for size, offset_ms in self.chunks:
            pieces.append((self.body[position : position + size], offset_ms))
            position += size
        return pieces

    def event_chunks(self) -> Iterator[bytes]:
        """The body cut after each SSE event, as a stream arrives from a provider."""
        return split_events(self.body)


class Interaction(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: RecordedRequest
    response: RecordedResponse


class CassetteMetadata(BaseModel):
    """Who recorded a cassette, when, and against what.

    `note` says more, such as that it was written by hand, and why.
    """

    model_config = ConfigDict(frozen=True)

    toolkit: str
    recorded_at: str
    base_url: str | None = None
    model: str | None = None
    note: str | None = None


class Cassette(BaseModel):
    """The interactions of one cassette file, in recorded order."""

    model_config = ConfigDict(frozen=True)

    interactions: list[Interaction]
    source_format: str
    metadata: CassetteMetadata | None = None
