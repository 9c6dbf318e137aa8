"""Reading a conversation file (a `Prompt` as JSON) with errors that name the field."""

from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from llmx_replay._exceptions import InputError, field_path
from llmx_replay._files import read_file
from llmx_replay.models.prompt import Prompt


def _readable_location(document: Any, location: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """`location` without the union tags pydantic inserts (``input[0].message.role``)."""
    readable: list[int | str] = []
    value = document
    for part in location:
        if isinstance(value, dict) and part not in value:
            tag = value.get("type")
            if isinstance(part, str) and (part == tag or part.startswith("function-")):
                continue
        readable.append(part)
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            value = None
    return tuple(readable)


def input_error(source: str, error: ValidationError, document: Any) -> InputError:
    """The first problem pydantic found in `document`, as an `InputError` naming its field."""
    details: list[Any] = error.errors(include_url=False)
    first = details[0]
    location = _readable_location(document, tuple(first["loc"]))
    problem = first["msg"]
    if len(details) > 1:
        problem += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    return InputError(source, problem, field_path(location) or None)


def load_prompt(path: Path) -> Prompt:
    """Read a conversation file: ``{"instructions": ..., "input": [...], "tools": [...]}``."""
    source = str(path)
    data = read_file(path)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InputError(source, f"invalid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InputError(source, "a conversation is a JSON object with `input` and `tools`")
    try:
        return Prompt.model_validate(document)
    except ValidationError as error:
        raise input_error(source, error, document) from None
