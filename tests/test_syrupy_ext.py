"""EventsSnapshotExtension: events snapshotted as readable JSON, one file per test, and
`serialize` itself: the layout, the masked volatile values, what it refuses."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from llmx_replay import EventPipeline
from llmx_replay.models import (
    Completed,
    FunctionCall,
    OutputItemDone,
    OutputTextDelta,
    ResponseEvent,
    TokenUsage,
)
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


def serialize(data: Any) -> str:
    text = EventsSnapshotExtension().serialize(data)
    assert isinstance(text, str)
    return text


def call_events(call_id: str) -> list[ResponseEvent]:
    call = FunctionCall(name="get_weather", arguments='{"city": "Paris"}', call_id=call_id)
    return [
        OutputItemDone(item=call),
        OutputTextDelta(delta="ok"),
        OutputItemDone(item=FunctionCall(name="again", arguments="{}", call_id=call_id)),
        Completed(finish_reason="tool_calls"),
    ]


def masked_as_json(value: Any, call_id: str) -> Any:
    """`value` in JSON with the tool call id replaced by the first placeholder."""
    return json.loads(json.dumps(value).replace(json.dumps(call_id), json.dumps("<id 1>")))


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
    text = serialize(events)
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
    lines = serialize(events).splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert [json.loads(line.strip().rstrip(",")) for line in lines[1:-1]] == json.loads(
        "\n".join(lines)
    )
    assert len(lines) == len(events) + 2


def test_serialized_events_are_json_equal_to_their_dump_with_ids_masked() -> None:
    events = call_events("call_abc")

    text = serialize(events)

    dumped = [event.model_dump(mode="json") for event in events]
    assert json.loads(text) == masked_as_json(dumped, "call_abc")
    assert text.endswith("]\n")
    # The same id twice is the same placeholder; another id gets the next one.
    assert serialize(call_events("call_abc")) == serialize(call_events("call_xyz"))
    two = [*call_events("call_1")[:1], *call_events("call_2")[:1]]
    assert [event["item"]["call_id"] for event in json.loads(serialize(two))] == [
        "<id 1>",
        "<id 2>",
    ]


def test_a_tuple_of_events_and_one_event_serialize_like_a_list() -> None:
    events = call_events("call_abc")
    assert serialize(tuple(events)) == serialize(events)
    one = json.loads(serialize(events[0]))
    assert one == masked_as_json(events[0].model_dump(mode="json"), "call_abc")


def test_a_request_body_has_one_message_per_line_and_ids_kept_consistent() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_abc", "type": "function", "function": {"name": "w"}},
                    {"id": "call_def", "type": "function", "function": {"name": "w"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_def", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_abc", "content": "sun"},
        ],
        "stream": True,
        "created": 1767225600,
        "tools": [],
    }

    text = serialize(body)

    data = json.loads(text)
    assert list(data) == list(body)  # keys keep their order
    calls = data["messages"][1]["tool_calls"]
    assert [call["id"] for call in calls] == ["<id 1>", "<id 2>"]
    assert [m["tool_call_id"] for m in data["messages"][2:]] == ["<id 2>", "<id 1>"]
    assert data["created"] == "<created>"
    assert text.splitlines() == [
        "{",
        '  "model": "m",',
        '  "messages": [',
        *(
            f"    {json.dumps(message, ensure_ascii=False)}{',' if i < 3 else ''}"
            for i, message in enumerate(data["messages"])
        ),
        "  ],",
        '  "stream": true,',
        '  "created": "<created>",',
        '  "tools": []',
        "}",
    ]


def test_a_response_id_is_masked_like_the_other_ids() -> None:
    """D17: a new recording of the same behaviour has another response id, not another
    snapshot."""
    events = [
        OutputItemDone(FunctionCall(name="f", arguments="{}", call_id="call_1")),
        Completed(response_id="chatcmpl-9", finish_reason="tool_calls"),
        Completed(response_id="", finish_reason="stop"),
    ]

    assert [event["response_id"] for event in json.loads(serialize(events))[1:]] == [
        "<id 2>",
        "",
    ]


def test_what_is_not_a_volatile_value_is_left_alone() -> None:
    data = {"id": "", "call_id": None, "created": None, "tool_call_id": 7, "name": "call_abc"}
    assert json.loads(serialize(data)) == data


def test_refuses_an_iterator_of_events() -> None:
    events = stream_events()
    for iterator in (iter(events), (event for event in events), filter(None, events)):
        with pytest.raises(TypeError, match=r"pass list\(events\)"):
            serialize(iterator)


def test_a_created_that_is_not_a_timestamp_is_content_and_shown() -> None:
    schema = {"properties": {"created": {"type": "string"}}, "created": 1795662611}
    text = serialize(schema)
    assert json.loads(text) == {
        "properties": {"created": {"type": "string"}},
        "created": "<created>",
    }


def test_refuses_events_mixed_with_other_data() -> None:
    with pytest.raises(TypeError, match="not a mix of both"):
        serialize([stream_events()[0], {"type": "completed"}])


_MASKED_KEYS = {"id", "call_id", "tool_call_id", "created"}
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text().filter(lambda key: key not in _MASKED_KEYS), children, max_size=4
        )
    ),
    max_leaves=20,
)


def as_pairs(value: Any) -> Any:
    """`value` with each object as its list of (key, value) pairs, as `object_pairs_hook`
    gives them."""
    if isinstance(value, dict):
        return [(key, as_pairs(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [as_pairs(item) for item in value]
    return value


@given(_json_values)
def test_the_laid_out_text_is_always_the_same_json(value: Any) -> None:
    text = serialize(value)

    assert text.endswith("\n")
    assert json.loads(text) == value
    # Every object keeps its keys in their order, at any depth.
    assert json.loads(text, object_pairs_hook=list) == as_pairs(value)
    if isinstance(value, list) and value:
        # One item per line, however the items look (newlines in strings are escaped).
        assert len(text.split("\n")) == len(value) + 3
