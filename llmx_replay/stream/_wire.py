"""Telling another API's wire format from Chat Completions, before a body is misread as one.

An Anthropic Messages, OpenAI Responses or Gemini generateContent body read as a Chat
Completions stream gives no error a user can act on (it ends as "stream closed before
completion", or empty), so what would read one is told here which API it holds instead.

Of an event stream only the start is looked at: its first few lines, and the JSON of its
first few ``data:`` payloads, so this costs the same on a long stream as on a short one. A
JSON body (a whole response) is parsed once. A body it cannot tell (an error body, an
empty one) is taken for Chat Completions: the processor reads those and says what went
wrong.
"""

import re
from typing import Any

import orjson

_ANTHROPIC_MESSAGES = "Anthropic Messages"
_OPENAI_RESPONSES = "OpenAI Responses"
_GEMINI = "Gemini generateContent"

_BOM = b"\xef\xbb\xbf"
_NOT_WHITESPACE = re.compile(rb"[^ \t\r\n]")
_LINE = re.compile(rb"[^\r\n]+")
_LINES_LOOKED_AT = 40
_PAYLOADS_LOOKED_AT = 3

# Anthropic's `ping` and `error` events are left out: a Chat Completions provider or proxy
# may send events of those names too.
_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
)
_RESPONSES_EVENT_PREFIX = "response."
_GEMINI_KEYS = ("candidates", "promptFeedback")

# The API that each of these request paths belongs to, after the query and fragment.
_API_PATHS = (
    (re.compile(r"/v1/messages/?$"), _ANTHROPIC_MESSAGES),
    (re.compile(r"/responses/?$"), _OPENAI_RESPONSES),
    (re.compile(r":(?:stream)?[Gg]enerateContent/?$"), _GEMINI),
)

_CHAT_COMPLETIONS = "Chat Completions"
"""What the classifiers below return for a body they can tell is Chat Completions."""


def foreign_wire_format(body: bytes, uri: str = "") -> str | None:
    """The other API's wire format a response body is in, named for people; else None.

    Args:
        body: The response body, decoded (no content encoding).
        uri: The request's URI: when the body cannot be told (an error, say), a request
            to another API's endpoint names that API.

    Returns:
        Such as ``Anthropic Messages stream``, ``OpenAI Responses JSON body`` or
        ``Gemini generateContent request``; None for Chat Completions, and for a body
        that cannot be told apart from it at an endpoint of no other API.
    """
    start = len(_BOM) if body.startswith(_BOM) else 0
    first = _NOT_WHITESPACE.search(body, start)
    if first is not None and first.group() in (b"{", b"["):
        found = _json_body_format(body[start:])
    else:
        found = _stream_format(body, start)
    if found == _CHAT_COMPLETIONS:
        return None
    if found is not None:
        return found
    api = _api_of(uri)
    return f"{api} request" if api else None


def _api_of(uri: str) -> str | None:
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return next((api for pattern, api in _API_PATHS if pattern.search(path)), None)


def _stream_format(body: bytes, start: int) -> str | None:
    """What the first events of an SSE body say they are, None if they do not say."""
    payloads = 0
    for number, match in enumerate(_LINE.finditer(body, start)):
        if number == _LINES_LOOKED_AT:
            break
        line = match.group()
        if line.startswith(b"event:"):
            found = _event_format(line[6:].strip().decode(errors="replace"))
        elif line.startswith(b"data:"):
            found = _payload_format(line[5:])
            payloads += 1
        else:
            continue
        if found is not None or payloads == _PAYLOADS_LOOKED_AT:
            return found
    return None


def _event_format(name: str) -> str | None:
    if name in _ANTHROPIC_EVENTS:
        return f"{_ANTHROPIC_MESSAGES} stream"
    if name.startswith(_RESPONSES_EVENT_PREFIX):
        return f"{_OPENAI_RESPONSES} stream"
    return None


def _payload_format(data: bytes) -> str | None:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # `[DONE]`, or a payload split over several data lines
    if not isinstance(document, dict):
        return None
    if "choices" in document:
        return _CHAT_COMPLETIONS
    return payload_wire_format(document)


def payload_wire_format(payload: dict[str, Any]) -> str | None:
    """The other API's stream that a parsed ``data`` payload belongs to, else None.

    None also for a payload that does not tell (Chat Completions, or anything else).
    """
    kind = payload.get("type")
    if isinstance(kind, str):
        found = _event_format(kind)
        if found is not None:
            return found
    if any(key in payload for key in _GEMINI_KEYS):
        return f"{_GEMINI} stream"
    return None


def _json_body_format(body: bytes) -> str | None:
    """What a JSON body is: a whole response, or Gemini's stream as one JSON array."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, list) and document:
        document = document[0]
    if not isinstance(document, dict) or "error" in document:
        return None
    if "choices" in document:
        return _CHAT_COMPLETIONS
    if document.get("type") == "message":
        return f"{_ANTHROPIC_MESSAGES} JSON body"
    if document.get("object") == "response":
        return f"{_OPENAI_RESPONSES} JSON body"
    if any(key in document for key in _GEMINI_KEYS):
        return f"{_GEMINI} JSON body"
    return None
