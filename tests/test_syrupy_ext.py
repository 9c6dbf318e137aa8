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
    dumped = [event.model_dump(mode="json") for event in events]
    call = dumped[7]["item"]
    assert call["call_id"] == "call_1"
    call["call_id"] = "<id 1>"  # the only volatile value of this turn
    assert json.loads(text) == dumped
    # Keys keep the events' field order (``type`` first), as `model_dump_json` writes them.
    assert [list(item) for item in json.loads(text)] == [
        list(json.loads(event.model_dump_json())) for event in events
    ]
    assert "Paris ☀." in text  # non-ASCII text stays readable, not escaped


def test_one_event_per_line() -> None:
    events = stream_events()
    lines = str(EventsSnapshotExtension().serialize(events)).splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert [json.loads(line.strip().rstrip(",")) for line in lines[1:-1]] == json.loads(
        "\n".join(lines)
    )
    assert len(lines) == len(events) + 2


def test_a_request_body_has_one_message_per_line_and_ids_kept_consistent() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function"}]},
            {"role": "tool", "tool_call_id": "call_9", "content": "done"},
        ],
        "stream": True,
    }
    text = str(EventsSnapshotExtension().serialize(body))
    assert text.splitlines() == [
        "{",
        '  "model": "m",',
        '  "messages": [',
        '    {"role": "user", "content": "hi"},',
        '    {"role": "assistant", "tool_calls": [{"id": "<id 1>", "type": "function"}]},',
        '    {"role": "tool", "tool_call_id": "<id 1>", "content": "done"}',
        "  ],",
        '  "stream": true',
        "}",
    ]


def test_refuses_an_iterator_of_events() -> None:
    extension = EventsSnapshotExtension()
    with pytest.raises(TypeError, match=r"pass list\(events\)"):
        extension.serialize(event for event in stream_events())


def test_a_created_that_is_not_a_timestamp_is_content_and_shown() -> None:
    schema = {"properties": {"created": {"type": "string"}}, "created": 1795662611}
    text = str(EventsSnapshotExtension().serialize(schema))
    assert json.loads(text) == {
        "properties": {"created": {"type": "string"}},
        "created": "<created>",
    }


def test_refuses_events_mixed_with_other_data() -> None:
    with pytest.raises(TypeError, match="not a mix of both"):
        EventsSnapshotExtension().serialize([stream_events()[0], {"type": "completed"}])
