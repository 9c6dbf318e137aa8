"""A Chat Completions request body (`messages`, `tools`) read as a conversation.

The shape every OpenAI user already has: ``{"messages": [...], "tools": [...]}``, as sent to
``/chat/completions``. It becomes the `Prompt` the client would send as that body again:
leading system (or developer) messages are the instructions, user and assistant messages
their text and images, an assistant's ``tool_calls`` function calls, and ``tool`` messages
their outputs. Request options (``model``, ``max_tokens``, ``temperature``...) are left to
the command's own options. A field that is wrong is named as the body names it.
"""

from typing import Any

from llmx_replay._exceptions import InputError

_INSTRUCTION_ROLES = ("system", "developer")


class _Reader:
    """Reads one body, naming `source` and the field of each problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, field: str, problem: str) -> InputError:
        return InputError(self.source, problem, field)

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.error(field, "expected a string")
        return value

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(field, "expected an object")
        return value

    def array(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(field, "expected an array")
        return value

    def parts(self, content: Any, field: str, *, text_type: str) -> list[dict[str, Any]]:
        """A message's content (a string, or text and image parts) as llmx content items."""
        if content is None:
            return []
        if isinstance(content, str):
            return [{"type": text_type, "text": content}] if content else []
        items = []
        for index, part in enumerate(self.array(content, field)):
            where = f"{field}[{index}]"
            part = self.mapping(part, where)
            kind = part.get("type")
            if kind == "text":
                items.append(
                    {"type": text_type, "text": self.text(part.get("text"), f"{where}.text")}
                )
            elif kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                items.append(
                    {"type": "input_image", "image_url": self.text(url, f"{where}.image_url.url")}
                )
            else:
                raise self.error(f"{where}.type", f"expected 'text' or 'image_url', got {kind!r}")
        return items

    def tool_call(self, call: Any, field: str) -> dict[str, Any]:
        call = self.mapping(call, field)
        if call.get("type", "function") != "function":
            raise self.error(f"{field}.type", f"expected 'function', got {call.get('type')!r}")
        function = self.mapping(call.get("function"), f"{field}.function")
        return {
            "type": "function_call",
            "call_id": self.text(call.get("id"), f"{field}.id"),
            "name": self.text(function.get("name"), f"{field}.function.name"),
            "arguments": self.text(function.get("arguments"), f"{field}.function.arguments"),
        }

    def reasoning(self, message: dict[str, Any], field: str) -> list[dict[str, Any]]:
        """An assistant's ``reasoning`` (or ``reasoning_content``) as a reasoning item."""
        name = "reasoning" if "reasoning" in message else "reasoning_content"
        text = message.get(name)
        if text is None or text == "":
            return []
        text = self.text(text, f"{field}.{name}")
        return [
            {
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": text}],
            }
        ]

    def tool_output(self, content: Any, field: str) -> str | list[dict[str, Any]]:
        if isinstance(content, str):
            return content
        return self.parts(content, field, text_type="input_text")


def chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions tool (``{"type": "function", "function": {...}}``) as llmx's spec.

    Any other tool is returned as it is, for the conversation's own validation to judge.
    """
    function = tool.get("function")
    if tool.get("type") == "function" and isinstance(function, dict) and "name" not in tool:
        return {"type": "function", **function}
    return tool


def prompt_document(body: dict[str, Any], source: str) -> dict[str, Any]:
    """The `Prompt` (as JSON) a Chat Completions request body holds."""
    read = _Reader(source)
    messages = read.array(body.get("messages"), "messages")
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        message = read.mapping(message, field)
        role = read.text(message.get("role"), f"{field}.role")
        content = message.get("content")
        if role in _INSTRUCTION_ROLES and not items:
            parts = read.parts(content, f"{field}.content", text_type="input_text")
            instructions.append("".join(part.get("text", "") for part in parts))
        elif role == "tool":
            call_id = read.text(message.get("tool_call_id"), f"{field}.tool_call_id")
            output = read.tool_output(content, f"{field}.content")
            items.append({"type": "function_call_output", "call_id": call_id, "output": output})
        elif role == "assistant":
            parts = read.parts(content, f"{field}.content", text_type="output_text")
            refusal = message.get("refusal")
            if refusal is not None:
                parts.append(
                    {"type": "output_text", "text": read.text(refusal, f"{field}.refusal")}
                )
            reasoning = read.reasoning(message, field)
            calls = message.get("tool_calls") or []
            # Placed where the client attaches it to this message again (seed §7.2): after
            # the message's text, or else before its first call.
            if parts:
                items.append({"type": "message", "role": role, "content": parts})
            items.extend(reasoning)
            for number, call in enumerate(read.array(calls, f"{field}.tool_calls")):
                items.append(read.tool_call(call, f"{field}.tool_calls[{number}]"))
        elif role in ("user", *_INSTRUCTION_ROLES):
            parts = read.parts(content, f"{field}.content", text_type="input_text")
            items.append({"type": "message", "role": role, "content": parts})
        else:
            raise read.error(
                f"{field}.role",
                f"expected system, developer, user, assistant or tool, got {role!r}",
            )
    tools = read.array(body.get("tools", []), "tools")
    document: dict[str, Any] = {
        "instructions": "\n\n".join(instructions),
        "input": items,
        # Read as llmx's by `load_prompt`, which takes Chat-style tools in either shape.
        "tools": [read.mapping(tool, f"tools[{i}]") for i, tool in enumerate(tools)],
    }
    if isinstance(body.get("parallel_tool_calls"), bool):
        document["parallel_tool_calls"] = body["parallel_tool_calls"]
    schema = _output_schema(body.get("response_format"))
    if schema is not None:
        document["output_schema"] = schema
    return document


def _output_schema(response_format: Any) -> Any:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    json_schema = response_format.get("json_schema")
    return json_schema.get("schema") if isinstance(json_schema, dict) else None
