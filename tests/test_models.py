"""JSON shapes of conversation items and events (seed §1, §2.1), as round trips."""

from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from llmx_replay import build_messages
from llmx_replay.models import (
    Completed,
    Created,
    CustomToolCall,
    ErrorEvent,
    FunctionCall,
    FunctionCallOutput,
    FunctionCallOutputPayload,
    GhostSnapshot,
    InputImage,
    InputText,
    LocalShellCall,
    Message,
    Other,
    OtherAction,
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    OutputTextDelta,
    Prompt,
    RateLimits,
    RateLimitWindow,
    Reasoning,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningText,
    ResponseEvent,
    ResponseItem,
    SearchAction,
    Text,
    TokenUsage,
    WebSearchCall,
)

Json = dict[str, Any]

ITEM: TypeAdapter[Any] = TypeAdapter(ResponseItem)
EVENT: TypeAdapter[Any] = TypeAdapter(ResponseEvent)


def load(raw: Json) -> Any:
    return ITEM.validate_python(raw)


def dump(item: Any) -> Json:
    dumped: Json = ITEM.dump_python(item, mode="json")
    return dumped


def round_trip(raw: Json) -> Json:
    """Load `raw` from JSON text and dump it back to a dict."""
    return dump(ITEM.validate_json(orjson.dumps(raw)))


def user(text: str) -> Json:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def usage() -> TokenUsage:
    return TokenUsage(
        input_tokens=100,
        cached_input_tokens=80,
        output_tokens=50,
        reasoning_output_tokens=20,
        total_tokens=150,
    )


# ---------------------------------------------------------------------------------------------
# Message (§1.1)
# ---------------------------------------------------------------------------------------------


def test_message_round_trip() -> None:
    """§1.1: {"type":"message","role":R,"content":[...]} with all three content kinds."""
    raw = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "hi"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
            {"type": "output_text", "text": "yo"},
        ],
    }
    item = load(raw)
    assert isinstance(item, Message)
    assert item.content == [
        InputText(text="hi"),
        InputImage(image_url="data:image/png;base64,AA=="),
        OutputText(text="yo"),
    ]
    assert round_trip(raw) == raw


def test_message_id_is_read_but_never_dumped() -> None:
    """§1.1: `id` is read if present and never serialized."""
    item = load({**user("hi"), "id": "msg_1"})
    assert item.id == "msg_1"
    assert dump(item) == user("hi")


def test_message_id_defaults_to_none() -> None:
    """§1.1: `id` defaults to None."""
    assert load(user("hi")).id is None


# ---------------------------------------------------------------------------------------------
# Reasoning (§1.1) and its `content` omission rule.
# ---------------------------------------------------------------------------------------------


def test_reasoning_with_reasoning_text_writes_content() -> None:
    """§1.1 rule, case 3: at least one reasoning_text: `content` is written."""
    raw = {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "s"}],
        "content": [{"type": "reasoning_text", "text": "r"}, {"type": "text", "text": "t"}],
        "encrypted_content": None,
    }
    assert round_trip(raw) == raw


def test_reasoning_without_content_writes_null() -> None:
    """§1.1 rule, case 2: content None: `"content": null` is written."""
    item = load({"type": "reasoning", "summary": []})
    assert item.content is None
    assert dump(item) == {
        "type": "reasoning",
        "summary": [],
        "content": None,
        "encrypted_content": None,
    }


@pytest.mark.parametrize(
    "content", [[], [{"type": "text", "text": "only plain text"}]], ids=["empty", "text-only"]
)
def test_reasoning_without_reasoning_text_omits_content(content: list[Json]) -> None:
    """§1.1 rule, case 1: Some(content) with no reasoning_text entry: the key is omitted."""
    item = load({"type": "reasoning", "summary": [], "content": content})
    assert item.content is not None
    assert dump(item) == {"type": "reasoning", "summary": [], "encrypted_content": None}


def test_reasoning_id_is_read_not_dumped_and_encrypted_content_kept() -> None:
    """§1.1: `id` defaults to "" and is never written; encrypted_content is written when set."""
    item = load({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"})
    assert item.id == "rs_1"
    assert load({"type": "reasoning", "summary": []}).id == ""
    assert dump(item) == {
        "type": "reasoning",
        "summary": [],
        "content": None,
        "encrypted_content": "gAAA",
    }


def test_reasoning_content_kinds() -> None:
    """§1.1: reasoning_text and text parts load as their own classes."""
    item = load(
        {
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "a"}, {"type": "text", "text": "b"}],
        }
    )
    assert isinstance(item, Reasoning)
    assert item.content == [ReasoningText(text="a"), Text(text="b")]


def test_reasoning_summary_is_required() -> None:
    """§1.1: `summary` is required on deserialize; the error names it."""
    with pytest.raises(ValidationError) as caught:
        load({"type": "reasoning", "content": []})
    assert [e["loc"][-1] for e in caught.value.errors()] == ["summary"]


# ---------------------------------------------------------------------------------------------
# Calls and outputs (§1.1, §1.3)
# ---------------------------------------------------------------------------------------------


def test_function_call_round_trip_without_id() -> None:
    """§1.1: arguments is a raw JSON string; `id` is read but never written."""
    raw = {"type": "function_call", "name": "f", "arguments": '{"a":1}', "call_id": "c1"}
    item = load({**raw, "id": "fc_1"})
    assert isinstance(item, FunctionCall)
    assert item.id == "fc_1"
    assert item.arguments == '{"a":1}'
    assert dump(item) == raw


def test_serializes_success_as_plain_string() -> None:
    """§10.4 serializes_success_as_plain_string: {content:"ok"} gives "output":"ok"."""
    item = FunctionCallOutput(call_id="c1", output=FunctionCallOutputPayload(content="ok"))
    assert dump(item) == {"type": "function_call_output", "call_id": "c1", "output": "ok"}


def test_serializes_failure_as_string() -> None:
    """§10.4 serializes_failure_as_string: success is never written."""
    payload = FunctionCallOutputPayload(content="bad", success=False)
    item = FunctionCallOutput(call_id="c1", output=payload)
    assert dump(item) == {"type": "function_call_output", "call_id": "c1", "output": "bad"}


def test_deserializes_string_payload() -> None:
    """§1.3: a JSON string gives content=s, no items, success None."""
    item = load({"type": "function_call_output", "call_id": "c1", "output": "done"})
    assert item.output == FunctionCallOutputPayload(content="done")
    assert item.output.content_items is None
    assert item.output.success is None


def test_deserializes_array_payload_into_items() -> None:
    """§10.4 deserializes_array_payload_into_items: content is the items' compact JSON,
    byte-identical to serde's (type first, then text/image_url)."""
    output = [
        {"type": "input_text", "text": "note"},
        {"type": "input_image", "image_url": "data:image/png;base64,XYZ"},
    ]
    raw = {"type": "function_call_output", "call_id": "c1", "output": output}
    item = load(raw)
    assert item.output.success is None
    assert item.output.content_items == [
        InputText(text="note"),
        InputImage(image_url="data:image/png;base64,XYZ"),
    ]
    assert item.output.content == (
        '[{"type":"input_text","text":"note"},'
        '{"type":"input_image","image_url":"data:image/png;base64,XYZ"}]'
    )
    assert round_trip(raw) == raw


def test_array_payload_compact_json_keeps_non_ascii() -> None:
    """§1.3: compact JSON like serde_json: no spaces, non-ASCII not escaped."""
    output = [{"text": "héllo", "type": "input_text"}]
    item = load({"type": "function_call_output", "call_id": "c1", "output": output})
    assert item.output.content == '[{"type":"input_text","text":"héllo"}]'


def test_serializes_items_payload_as_array() -> None:
    """§1.3: with content_items, the array is written, not `content`."""
    payload = FunctionCallOutputPayload(
        content="ignored", content_items=[InputText(text="caption")], success=True
    )
    item = FunctionCallOutput(call_id="c1", output=payload)
    assert dump(item)["output"] == [{"type": "input_text", "text": "caption"}]


def test_local_shell_call_writes_nulls() -> None:
    """§1.1: call_id and every optional action field are written, as null when absent; the
    `id` is read but never written."""
    item = load(
        {
            "type": "local_shell_call",
            "id": "ls_1",
            "status": "completed",
            "action": {"type": "exec", "command": ["ls", "-l"]},
        }
    )
    assert isinstance(item, LocalShellCall)
    assert item.id == "ls_1"
    assert dump(item) == {
        "type": "local_shell_call",
        "call_id": None,
        "status": "completed",
        "action": {
            "type": "exec",
            "command": ["ls", "-l"],
            "timeout_ms": None,
            "working_directory": None,
            "env": None,
            "user": None,
        },
    }


def test_local_shell_call_full_round_trip() -> None:
    """§1.1: all action fields set."""
    raw = {
        "type": "local_shell_call",
        "call_id": "s1",
        "status": "in_progress",
        "action": {
            "type": "exec",
            "command": ["echo", "hi"],
            "timeout_ms": 1000,
            "working_directory": "/tmp",
            "env": {"A": "1"},
            "user": "me",
        },
    }
    assert round_trip(raw) == raw


def test_local_shell_call_unknown_status_is_an_error() -> None:
    """§1.1: the status is one of completed, in_progress, incomplete."""
    with pytest.raises(ValidationError):
        load(
            {
                "type": "local_shell_call",
                "status": "running",
                "action": {"type": "exec", "command": []},
            }
        )


def test_custom_tool_call_omits_status_when_none() -> None:
    """§1.1: `status` is left out when None; `id` is never written."""
    raw = {"type": "custom_tool_call", "call_id": "t1", "name": "n", "input": "i"}
    item = load({**raw, "id": "ctc_1"})
    assert isinstance(item, CustomToolCall)
    assert item.id == "ctc_1"
    assert dump(item) == raw


def test_custom_tool_call_writes_status_when_set() -> None:
    """§1.1: a set status is written."""
    raw = {
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "t1",
        "name": "n",
        "input": "i",
    }
    assert round_trip(raw) == raw


def test_custom_tool_call_output_round_trip() -> None:
    """§1.1: {"type":"custom_tool_call_output","call_id","output"}."""
    raw = {"type": "custom_tool_call_output", "call_id": "t1", "output": "o"}
    assert round_trip(raw) == raw


def test_web_search_call_search_action_round_trip() -> None:
    """§1.1: a search action keeps its query; a None status is left out."""
    raw = {"type": "web_search_call", "action": {"type": "search", "query": "rust"}}
    item = load(raw)
    assert isinstance(item, WebSearchCall)
    assert item.action == SearchAction(query="rust")
    assert dump(item) == raw


def test_web_search_call_unknown_action_is_other() -> None:
    """§1.1: any unknown action type deserializes to Other, written as {"type":"other"}."""
    item = load(
        {
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "open_page", "url": "https://x"},
        }
    )
    assert isinstance(item.action, OtherAction)
    assert dump(item) == {
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "other"},
    }


def test_ghost_snapshot_round_trip() -> None:
    """§1.1: the ghost commit with its untracked paths."""
    raw = {
        "type": "ghost_snapshot",
        "ghost_commit": {
            "id": "abc",
            "parent": None,
            "preexisting_untracked_files": ["a.txt"],
            "preexisting_untracked_dirs": ["d"],
        },
    }
    item = load(raw)
    assert isinstance(item, GhostSnapshot)
    assert round_trip(raw) == raw


# ---------------------------------------------------------------------------------------------
# Unknown and invalid items
# ---------------------------------------------------------------------------------------------


def test_unknown_item_type_loads_as_other() -> None:
    """§1.1: any unknown `type` deserializes to Other and is written as {"type":"other"}."""
    item = load({"type": "compaction_summary", "payload": {"x": 1}})
    assert isinstance(item, Other)
    assert dump(item) == {"type": "other"}


def test_other_item_is_left_out_of_requests() -> None:
    """§7.2: Other is never sent to the model."""
    p = Prompt.model_validate({"input": [user("u1"), {"type": "future_item"}]})
    built = [m.model_dump(mode="json") for m in build_messages(p)]
    assert built == [{"role": "system", "content": ""}, {"role": "user", "content": "u1"}]


@pytest.mark.parametrize("raw", [{"role": "user", "content": []}, {"type": 3}, {"type": None}])
def test_item_without_string_type_is_an_error(raw: Json) -> None:
    """An item needs a string `type`; it is not silently read as Other."""
    with pytest.raises(ValidationError):
        load(raw)


def test_missing_field_error_names_the_location() -> None:
    """A known type with a missing field: the error's location names the item and the field."""
    raw = {"type": "function_call", "name": "f", "arguments": "{}"}
    with pytest.raises(ValidationError) as caught:
        Prompt.model_validate({"input": [user("u1"), raw]})
    errors = caught.value.errors()
    assert len(errors) == 1
    assert errors[0]["type"] == "missing"
    assert errors[0]["loc"][:2] == ("input", 1)
    assert errors[0]["loc"][-1] == "call_id"
    assert "call_id" in str(caught.value)


def test_wrong_field_type_is_an_error() -> None:
    """`arguments` is a JSON string, not an object."""
    raw = {"type": "function_call", "name": "f", "arguments": {"a": 1}, "call_id": "c1"}
    with pytest.raises(ValidationError) as caught:
        load(raw)
    assert caught.value.errors()[0]["loc"][-1] == "arguments"


# ---------------------------------------------------------------------------------------------
# TokenUsage (§1.2)
# ---------------------------------------------------------------------------------------------


def test_token_usage_round_trip() -> None:
    """§1.2: the five counters, by name."""
    raw = {
        "input_tokens": 100,
        "cached_input_tokens": 80,
        "output_tokens": 50,
        "reasoning_output_tokens": 20,
        "total_tokens": 150,
    }
    assert TokenUsage.model_validate(raw) == usage()
    assert usage().model_dump(mode="json") == raw


def test_token_usage_requires_every_key() -> None:
    """§1.2: all five keys are required when deserializing."""
    raw = {"input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 1, "total_tokens": 2}
    with pytest.raises(ValidationError) as caught:
        TokenUsage.model_validate(raw)
    assert caught.value.errors()[0]["loc"] == ("reasoning_output_tokens",)


# ---------------------------------------------------------------------------------------------
# Events (§2.1)
# ---------------------------------------------------------------------------------------------


def test_output_text_delta_dump() -> None:
    assert OutputTextDelta(delta="x").model_dump(mode="json") == {
        "type": "output_text_delta",
        "delta": "x",
    }


def test_completed_dump_with_usage_and_finish_reason() -> None:
    """§2.1: Chat always sends "" as the response id; D7 adds the finish reason."""
    event = Completed(token_usage=usage(), finish_reason="stop")
    assert event.model_dump(mode="json") == {
        "type": "completed",
        "response_id": "",
        "token_usage": {
            "input_tokens": 100,
            "cached_input_tokens": 80,
            "output_tokens": 50,
            "reasoning_output_tokens": 20,
            "total_tokens": 150,
        },
        "finish_reason": "stop",
    }


def test_completed_defaults() -> None:
    """§2.1: no usage and no finish reason by default."""
    event = Completed()
    assert (event.response_id, event.token_usage, event.finish_reason) == ("", None, None)


def test_error_event_dump() -> None:
    """decisions.md: an error carries its kind, the HTTP status and the provider's message."""
    event = ErrorEvent(kind="unexpected_status", message="Overloaded", status=200)
    assert event.model_dump(mode="json") == {
        "type": "error",
        "kind": "unexpected_status",
        "message": "Overloaded",
        "status": 200,
    }


def test_error_event_unknown_kind_is_rejected() -> None:
    """The kinds are a closed set."""
    with pytest.raises(ValidationError):
        ErrorEvent.model_validate({"type": "error", "kind": "oops", "message": "m"})


def test_output_item_done_dump_nests_the_item_shape() -> None:
    """The item inside an event is written in its §1.1 shape (no id)."""
    message = load({**user("hi"), "id": "m1"})
    assert OutputItemDone(item=message).model_dump(mode="json") == {
        "type": "output_item_done",
        "item": user("hi"),
    }


ALL_EVENTS: list[Any] = [
    Created(),
    OutputItemAdded(item=Message(role="assistant", content=[])),
    OutputItemDone(
        item=Reasoning(summary=[], content=[ReasoningText(text="think")], encrypted_content=None)
    ),
    OutputItemDone(item=FunctionCall(name="run", arguments="{}", call_id="call_1")),
    OutputTextDelta(delta="hi"),
    ReasoningContentDelta(delta="because"),
    ReasoningSummaryDelta(delta="sum"),
    ReasoningSummaryPartAdded(),
    RateLimits(
        primary=RateLimitWindow(used_percent=12.5, window_minutes=60, resets_in_seconds=30),
        secondary=None,
    ),
    Completed(token_usage=usage(), finish_reason="tool_calls"),
    Completed(),
    ErrorEvent(kind="stream", message="stream closed before completion"),
    ErrorEvent(kind="retry_limit", message="exceeded retry limit", status=429),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: f"{type(e).__name__}")
def test_response_event_round_trip(event: Any) -> None:
    """Every event variant survives dump -> load through the ResponseEvent union."""
    assert EVENT.validate_python(EVENT.dump_python(event, mode="json")) == event
    assert EVENT.validate_json(EVENT.dump_json(event)) == event


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: f"{type(e).__name__}")
def test_response_event_type_tag_is_snake_case_variant(event: Any) -> None:
    """Each event dumps with a `type` naming its variant in snake_case."""
    name = type(event).__name__
    expected = {"ErrorEvent": "error"}.get(name) or "".join(
        f"_{c.lower()}" if c.isupper() else c for c in name
    ).lstrip("_")
    assert event.model_dump(mode="json")["type"] == expected


def test_response_event_unknown_type_is_rejected() -> None:
    """Events, unlike items, have no catch-all variant."""
    with pytest.raises(ValidationError):
        EVENT.validate_python({"type": "response.created"})
