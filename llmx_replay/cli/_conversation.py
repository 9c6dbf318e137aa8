"""Reading a conversation file (a `Prompt` as JSON) with errors that name the field."""

from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from llmx_replay._exceptions import InputError, field_path
from llmx_replay._files import read_file
from llmx_replay.cli._chat_shape import chat_tool, prompt_document
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


def input_error(
    source: str, error: ValidationError, document: Any, chat_tools: frozenset[int] = frozenset()
) -> InputError:
    """The first problem pydantic found in `document`, as an `InputError` naming its field.

    `chat_tools` are the positions of tools the file gave in the Chat Completions shape,
    whose fields it holds under ``function``.
    """
    details: list[Any] = error.errors(include_url=False)
    first = details[0]
    location = _readable_location(document, tuple(first["loc"]))
    problem = first["msg"]
    if len(details) > 1:
        problem += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    if location[:1] == ("tools",) and len(location) > 1 and location[1] in chat_tools:
        location = ("tools", location[1], "function", *location[2:])
    return InputError(source, problem, field_path(location) or None)


def load_prompt(path: Path) -> Prompt:
    """Read a conversation file, in either shape.

    llmx's ``{"instructions", "input", "tools"}``, or a Chat Completions request body,
    ``{"messages", "tools"}``.
    """
    source = str(path)
    data = read_file(path)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InputError(source, f"invalid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InputError(
            source,
            "a conversation is a JSON object: llmx's (`input`, `tools`) or a Chat Completions "
            "body (`messages`, `tools`)",
        )
    if "messages" in document:
        if "input" in document or "instructions" in document:
            raise InputError(
                source,
                "either llmx's conversation (`instructions`, `input`) or a Chat Completions "
                "body (`messages`), not both",
                "messages",
            )
        document = prompt_document(document, source)
    tools = document.get("tools")
    chat_tools: frozenset[int] = frozenset()
    if isinstance(tools, list):
        # Chat Completions' tools (`{"type": "function", "function": {...}}`) in either shape.
        read = [chat_tool(tool) if isinstance(tool, dict) else tool for tool in tools]
        chat_tools = frozenset(i for i, tool in enumerate(tools) if tool is not read[i])
        document = {**document, "tools": read}
    try:
        return Prompt.model_validate(document)
    except ValidationError as error:
        raise input_error(source, error, document, chat_tools) from None
