"""The message a provider puts in an error, wherever it puts it."""

from typing import Any

import orjson


def provider_message(error: Any) -> str:
    """The message in an `error` value (`{"message": ...}` or a string), or the value itself."""
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(error, str) and error:
        return error
    return "Unknown error" if not error else orjson.dumps(error).decode()


def read_error_body(body: bytes) -> tuple[str, Any]:
    """The provider's message in an error body, and its `error` object (None if it has none).

    The message is the `error`'s (or the body's `message`), else the body's text.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip(), None
    if isinstance(document, dict):
        if document.get("error"):
            return provider_message(document["error"]), document["error"]
        if isinstance(document.get("message"), str):
            return str(document["message"]), None
    return body.decode(errors="replace").strip(), None
