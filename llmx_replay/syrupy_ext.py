"""A syrupy extension that snapshots `ResponseEvent`s and request bodies as readable JSON.

    def test_turn(snapshot: SnapshotAssertion) -> None:
        assert events == snapshot.use_extension(EventsSnapshotExtension)

(the pytest plugin's `llmx_snapshot` fixture is that snapshot). Each snapshot is a file,
``__snapshots__/<test module>/<test name>.json`` (``<test name>.1.json`` for a test's second
one), and stays valid JSON laid out for diffs: a list holds one item per line, an object one
key per line with its lists one item per line. So a changed event, or a changed message of a
request body, is one changed line.

Events are dumped in their documented JSON shape (`model_dump(mode="json")`, keys in field
order). Values that change with every recording are masked: each distinct id (``id``,
``call_id``, ``tool_call_id``, ``response_id``) becomes ``"<id 1>"``, ``"<id 2>"``... in
order of first appearance, so that a call and its result still show as the same call, and
``created`` becomes ``"<created>"``. syrupy's ``exclude``/``include`` filters and matchers
apply to the JSON shape, e.g. ``props("token_usage")``.
"""

import json
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar, get_args

from pydantic import TypeAdapter
from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

from llmx_replay.models.events import ResponseEvent

_EVENTS: TypeAdapter[list[ResponseEvent]] = TypeAdapter(list[ResponseEvent])
# `ResponseEvent` is `Annotated[Union[...], Field(...)]`: these are the union's classes.
_EVENT_TYPES: tuple[type[Any], ...] = get_args(get_args(ResponseEvent)[0])


def _dumped(data: SerializableData) -> Any:
    """Events as their JSON shape; other data as it is."""
    if isinstance(data, _EVENT_TYPES):
        return _EVENTS.dump_python([data], mode="json")[0]
    if isinstance(data, list | tuple) and any(isinstance(e, _EVENT_TYPES) for e in data):
        if not all(isinstance(e, _EVENT_TYPES) for e in data):
            raise TypeError(
                "EventsSnapshotExtension snapshots a list of events, or data without events, "
                "not a mix of both"
            )
        return _EVENTS.dump_python(list(data), mode="json")
    if isinstance(data, Iterator):
        raise TypeError(
            "EventsSnapshotExtension snapshots events, not an iterator of them: pass list(events)"
        )
    return data


class _Masker:
    """Replaces volatile values with placeholders numbered by first appearance.

    It also makes every mapping an `OrderedDict`: syrupy's JSON extension sorts the keys of
    plain dicts but keeps an `OrderedDict`'s order, the events' field order.
    """

    def __init__(self, id_keys: frozenset[str], time_keys: frozenset[str]) -> None:
        self._id_keys = id_keys
        self._time_keys = time_keys
        self._ids: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return OrderedDict((key, self._field(key, item)) for key, item in value.items())
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        return value

    def _field(self, key: Any, value: Any) -> Any:
        if key in self._id_keys and isinstance(value, str) and value:
            return self._ids.setdefault(value, f"<id {len(self._ids) + 1}>")
        if key in self._time_keys and isinstance(value, str | int | float) and value != "":
            return "<created>"  # a timestamp; a `created` holding more (a schema) is content
        return self(value)


def _line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _laid_out(value: Any) -> str:
    """JSON with a list's items, or an object's keys and their lists' items, one per line."""
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(f"  {_line(item)}" for item in value) + "\n]"
    if isinstance(value, dict) and value:
        fields = []
        for key, item in value.items():
            if isinstance(item, list) and item:
                listed = ",\n".join(f"    {_line(element)}" for element in item)
                fields.append(f"  {_line(key)}: [\n{listed}\n  ]")
            else:
                fields.append(f"  {_line(key)}: {_line(item)}")
        return "{\n" + ",\n".join(fields) + "\n}"
    return _line(value)


class EventsSnapshotExtension(JSONSnapshotExtension):
    """Snapshots events and any JSON data, with volatile ids and timestamps masked.

    Events are one, or a list or tuple of them; JSON data are such as the request bodies a
    client sent.
    """

    id_keys: ClassVar[frozenset[str]] = frozenset({"id", "call_id", "tool_call_id", "response_id"})
    time_keys: ClassVar[frozenset[str]] = frozenset({"created"})

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        """`data` as snapshot text: events dumped, volatile values masked, one item per line.

        syrupy's `exclude`, `include` and `matcher` apply to the masked JSON shape.
        """
        masked = _Masker(self.id_keys, self.time_keys)(_dumped(data))
        filtered = self._filter(
            data=masked, depth=0, path=(), exclude=exclude, include=include, matcher=matcher
        )
        return _laid_out(filtered) + "\n"
