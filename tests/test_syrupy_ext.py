"""EventsSnapshotExtension: events snapshotted as readable JSON, one file per test."""

import json

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from llmx_replay import EventPipeline
from llmx_replay.models import Completed, ResponseEvent, TokenUsage
from llmx_replay.syrupy_ext import EventsSnapshotExtension

# A short hand-written turn: reasoning, text, a tool call split over two chunks, and a
# usage chunk after the finish reason.
STREAM = "".join(
    f"data: {line}\n\n"
    for line in (
        '{"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Weather?"}}]}',
        '{"choices":[{"index":0,"delta":{"content":"Let me check "}}]}',
        '{"choices":[{"index":0,"delta":{"content":"Paris ☀."}}]}',
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1",'
        '"type":"function","function":{"name":"get_weather","arguments":"{\\"city\\""}}]}}]}',
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        '"function":{"arguments":": \\"Paris\\"}"}}]}}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
        '{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}',
        "[DONE]",
    )
).encode()


def stream_events() -> list[ResponseEvent]:
    pipeline = EventPipeline("streaming")
    return pipeline.feed(STREAM) + pipeline.end()


@pytest.fixture
def events_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(EventsSnapshotExtension)


def test_snapshots_a_stream_of_events(events_snapshot: SnapshotAssertion) -> None:
    assert stream_events() == events_snapshot


def test_snapshots_one_event(events_snapshot: SnapshotAssertion) -> None:
    assert stream_events()[-1] == events_snapshot


def test_filters_apply_to_the_json_shape(events_snapshot: SnapshotAssertion) -> None:
    event = Completed(
        token_usage=TokenUsage(
            input_tokens=1,
            cached_input_tokens=0,
            output_tokens=2,
            reasoning_output_tokens=0,
            total_tokens=3,
        ),
        finish_reason="stop",
    )
    assert event == events_snapshot(exclude=props("token_usage"))


def test_the_json_is_each_events_documented_shape_in_field_order() -> None:
    events = stream_events()
    text = EventsSnapshotExtension().serialize(events)
    assert isinstance(text, str)
    assert json.loads(text) == [event.model_dump(mode="json") for event in events]
    # Keys keep the events' field order (``type`` first), as `model_dump_json` writes them.
    assert [list(item) for item in json.loads(text)] == [
        list(json.loads(event.model_dump_json())) for event in events
    ]
    assert "Paris ☀." in text  # non-ASCII text stays readable, not escaped


def test_refuses_what_is_not_events() -> None:
    extension = EventsSnapshotExtension()
    with pytest.raises(TypeError, match="ResponseEvent or a list of them, not generator"):
        extension.serialize(event for event in stream_events())
    with pytest.raises(TypeError, match="not list"):
        extension.serialize([{"type": "completed"}])
