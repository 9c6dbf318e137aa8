"""Tool calls streamed in fragments, joined into whole calls (seed §7.4, with D4)."""

from typing import Any

import orjson

from llmx_replay.models.items import FunctionCall


class _ToolCall:
    __slots__ = ("arguments", "call_id", "index", "name")

    def __init__(self, index: int | None) -> None:
        self.index = index
        self.name: str | None = None
        self.call_id: str | None = None
        self.arguments: list[str] = []


class ToolCallAccumulator:
    """The tool calls of one turn, built from the fragments of ``delta.tool_calls``.

    D4: a fragment joins its call by `index`, else by `id`, else follows the last call; a
    provider that reuses an index for a call with another id starts a new call.
    """

    __slots__ = ("_by_key", "_calls")

    def __init__(self) -> None:
        self._calls: list[_ToolCall] = []
        self._by_key: dict[Any, _ToolCall] = {}

    def __bool__(self) -> bool:
        """Whether a call has started since the last `finish`."""
        return bool(self._calls)

    def add(self, fragment: dict[str, Any]) -> None:
        """Join one fragment to its call, or start a new call with it."""
        index = fragment.get("index")
        if type(index) is int and len(fragment) == 2 and index in self._by_key:
            # The common case, first: more arguments for a known call (`index`, `function`).
            function = fragment.get("function")
            if type(function) is dict and len(function) == 1:
                arguments = function.get("arguments")
                if type(arguments) is str:
                    self._by_key[index].arguments.append(arguments)
                    return
        call_id = fragment.get("id")
        if type(call_id) is not str or not call_id:
            call_id = None
        function = fragment.get("function")
        if type(function) is not dict:
            function = {}
        name = function.get("name")
        if type(index) is int:
            key: Any = index
        elif call_id is not None:
            key = ("id", call_id)
        elif name or not self._calls:
            key = ("call", len(self._calls))
        else:
            key = None
        call = self._by_key.get(key) if key is not None else self._calls[-1]
        if call is None or (call_id is not None and call.call_id not in (None, call_id)):
            call = _ToolCall(index if type(index) is int else None)
            self._calls.append(call)
            self._by_key[key] = call
        if call_id is not None and call.call_id is None:
            call.call_id = call_id
        if type(name) is str and name and call.name is None:
            call.name = name
        arguments = function.get("arguments")
        if type(arguments) is str:
            call.arguments.append(arguments)
        elif type(arguments) is dict:
            call.arguments.append(orjson.dumps(arguments).decode())

    def finish(self) -> list[FunctionCall]:
        """The whole calls, ordered by index (calls without one first), and a fresh start."""
        ordered = sorted(self._calls, key=lambda call: -1 if call.index is None else call.index)
        self._calls = []
        self._by_key = {}
        return [
            FunctionCall(
                name=call.name or "", arguments="".join(call.arguments), call_id=call.call_id or ""
            )
            for call in ordered
        ]
