"""A syrupy extension that snapshots `ResponseEvent`s as readable JSON, one file per test.

    def test_turn(snapshot: SnapshotAssertion) -> None:
        assert events == snapshot.use_extension(EventsSnapshotExtension)

The events are dumped in their documented JSON shape (what `model_dump(mode="json")` gives,
keys in field order) before syrupy's JSON extension writes them, so the snapshot is
``__snapshots__/<test module>/<test name>.json``. syrupy's ``exclude``/``include`` filters and
matchers apply to that JSON shape, e.g. ``props("token_usage")``.
"""

from collections import OrderedDict
from typing import Any, get_args

from pydantic import TypeAdapter
from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

from llmx_replay.models.events import ResponseEvent

_EVENTS: TypeAdapter[list[ResponseEvent]] = TypeAdapter(list[ResponseEvent])
# `ResponseEvent` is `Annotated[Union[...], Field(...)]`: these are the union's classes.
_EVENT_TYPES: tuple[type[Any], ...] = get_args(get_args(ResponseEvent)[0])


def _in_field_order(value: Any) -> Any:
    """The JSON extension sorts the keys of plain dicts, but keeps an `OrderedDict`'s order."""
    if isinstance(value, dict):
        return OrderedDict((key, _in_field_order(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_in_field_order(item) for item in value]
    return value


class EventsSnapshotExtension(JSONSnapshotExtension):
    """Snapshots one `ResponseEvent`, or a list (or tuple) of them, as JSON."""

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        if isinstance(data, _EVENT_TYPES):
            dumped = _EVENTS.dump_python([data], mode="json")[0]
        elif isinstance(data, list | tuple) and all(isinstance(e, _EVENT_TYPES) for e in data):
            dumped = _EVENTS.dump_python(list(data), mode="json")
        else:
            raise TypeError(
                "EventsSnapshotExtension snapshots a ResponseEvent or a list of them, "
                f"not {type(data).__name__} (pass list(events) for an iterator)"
            )
        return super().serialize(
            _in_field_order(dumped), exclude=exclude, include=include, matcher=matcher
        )
