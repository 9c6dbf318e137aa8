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


def error_body_message(body: bytes) -> str:
    """The provider's message in an error body: its `error` (or `message`), else the text."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip()
    if isinstance(document, dict):
        if document.get("error"):
            return provider_message(document["error"])
        if isinstance(document.get("message"), str):
            return str(document["message"])
    return body.decode(errors="replace").strip()
