"""The cassette library: each provider behaviour llmx fought with, as a cassette and a
snapshot of the events our client makes of it and of the request it sent.

The cassettes are ``cassettes/test_library/<test>.yaml``. They were recorded from aimock
1.43.0 serving ``tests/live/fixtures/library.json``, except those whose metadata ``note``
says they were written by hand, and why; ``tests/live/test_library_aimock_live.py`` records the
others again from a fresh aimock and checks that they still give these snapshots. To record
one again by hand, point ``LLMX_REPLAY_LIBRARY_URL`` at a server (aimock's base URL, with
``/v1``; ``LLMX_REPLAY_LIBRARY_KEY`` holds its key, if it needs one) and run this file with
``--llmx-record-mode=rewrite``.

The decisions' cassettes (``cassettes/decisions/``) are played and snapshotted here too, in
both modes that show events; tests/test_decision_cassettes.py asserts what each shows.
"""

import os
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from syrupy.assertion import SnapshotAssertion

from llmx_replay import CassetteSession, UnsupportedWireFormat, build_request
from llmx_replay.cassette import RecordedResponse, load_cassette
from llmx_replay.harness import Playback, play_response
from llmx_replay.models import (
    FunctionCall,
    FunctionCallOutput,
    InputText,
    Message,
    OutputItemDone,
    Prompt,
    ProviderSettings,
    ResponseEvent,
    ResponseItem,
)

RECORD_URL_VAR = "LLMX_REPLAY_LIBRARY_URL"
RECORD_KEY_VAR = "LLMX_REPLAY_LIBRARY_KEY"
MODEL = "gpt-4o-mini"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}
ORDER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "lookup_order",
    "description": "Where an order is.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}


@pytest.fixture
def llmx_config() -> dict[str, Any]:
    """When recording, the server to record from; when replaying, nothing: the clients
    talk to each cassette's recorded base URL and model."""
    url = os.environ.get(RECORD_URL_VAR)
    if not url:
        return {}
    # aimock counts a scenario's requests per test id: a fresh one starts each scenario
    # (the 429 that comes before a success) from its beginning.
    headers = {"X-Test-Id": uuid.uuid4().hex}
    env_key = RECORD_KEY_VAR if os.environ.get(RECORD_KEY_VAR) else None
    provider = ProviderSettings(name="library", base_url=url, env_key=env_key, http_headers=headers)
    return {"provider": provider, "model": MODEL}


def user(text: str) -> Message:
    return Message(role="user", content=[InputText(text=text)])


def prompt(*items: ResponseItem, tools: tuple[dict[str, Any], ...] = ()) -> Prompt:
    return Prompt.model_validate(
        {"instructions": "You are a terse assistant.", "input": items, "tools": tools}
    )


def turn(llmx_cassette: CassetteSession, conversation: Prompt) -> list[ResponseEvent]:
    with llmx_cassette.client() as client:
        return list(client.stream(conversation))


def the_call(events: list[ResponseEvent]) -> FunctionCall:
    """The one function call a turn made."""
    calls = [
        e.item for e in events if isinstance(e, OutputItemDone) and isinstance(e.item, FunctionCall)
    ]
    assert len(calls) == 1, calls
    return calls[0]


def assert_snapshots(
    llmx_cassette: CassetteSession, events: list[ResponseEvent], snapshot: SnapshotAssertion
) -> None:
    """The events, then each request body sent, each in its own snapshot file."""
    assert events == snapshot
    for body in llmx_cassette.request_bodies():
        assert body == snapshot


def test_plain_text(llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion) -> None:
    events = turn(llmx_cassette, prompt(user("library: plain text")))
    assert_snapshots(llmx_cassette, events, llmx_snapshot)


def recorded(llmx_cassette: CassetteSession) -> list[RecordedResponse]:
    """The cassette's responses as on disk: the behaviour each test is about must be in its
    recording (also one just made), not only in the events our client made of it."""
    return [interaction.response for interaction in load_cassette(llmx_cassette.path).interactions]


def chunks(response: RecordedResponse) -> list[dict[str, Any]]:
    """The JSON chunks of a recorded SSE body."""
    return [
        orjson.loads(line.removeprefix(b"data:"))
        for line in response.body.splitlines()
        if line.startswith(b"data:") and line.strip() != b"data: [DONE]"
    ]


def streamed_field(llmx_cassette: CassetteSession) -> str:
    """Which delta field the recorded answer streams its reasoning in."""
    deltas = [delta for chunk in chunks(recorded(llmx_cassette)[0]) for delta in _deltas(chunk)]
    found = {
        field for delta in deltas for field in ("reasoning", "reasoning_content") if field in delta
    }
    assert len(found) == 1, found
    return found.pop()


def _deltas(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return [choice.get("delta", {}) for choice in chunk.get("choices", [])]


def finish_reasons_of(chunk: dict[str, Any]) -> list[str]:
    return [
        choice["finish_reason"]
        for choice in chunk.get("choices", [])
        if choice.get("finish_reason")
    ]


def finish_reasons(response: RecordedResponse) -> list[str]:
    return [reason for chunk in chunks(response) for reason in finish_reasons_of(chunk)]


def test_reasoning_field(llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion) -> None:
    events = turn(llmx_cassette, prompt(user("library: reasoning field")))
    assert streamed_field(llmx_cassette) == "reasoning"
    assert_snapshots(llmx_cassette, events, llmx_snapshot)
    assert llmx_cassette.play(mode="aggregated") == llmx_snapshot


def test_reasoning_content_field(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(llmx_cassette, prompt(user("library: reasoning_content field")))
    assert streamed_field(llmx_cassette) == "reasoning_content"
    assert_snapshots(llmx_cassette, events, llmx_snapshot)
    assert llmx_cassette.play(mode="aggregated") == llmx_snapshot


def test_tool_call_arguments_split_across_chunks(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(
        llmx_cassette, prompt(user("library: one tool call split"), tools=(WEATHER_TOOL,))
    )
    assert_snapshots(llmx_cassette, events, llmx_snapshot)
    pieces = [
        call["function"]["arguments"]
        for chunk in chunks(recorded(llmx_cassette)[0])
        for delta in _deltas(chunk)
        for call in delta.get("tool_calls", [])
        if call.get("function", {}).get("arguments")
    ]
    assert len(pieces) >= 2, pieces


def test_parallel_tool_calls(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    conversation = prompt(user("library: two parallel tool calls"), tools=(WEATHER_TOOL,))
    events = turn(llmx_cassette, conversation)
    assert_snapshots(llmx_cassette, events, llmx_snapshot)


def test_text_before_tool_call(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(
        llmx_cassette, prompt(user("library: text then tool call"), tools=(WEATHER_TOOL,))
    )
    assert_snapshots(llmx_cassette, events, llmx_snapshot)


def test_finish_reason_length(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(llmx_cassette, prompt(user("library: finish length")))
    assert_snapshots(llmx_cassette, events, llmx_snapshot)


def test_usage_after_the_finish_chunk(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    # llmx does not ask for usage; a caller that wants it adds `stream_options` itself.
    with llmx_cassette.client() as client:
        request = build_request(
            prompt(user("library: usage chunk")), client.model, client.provider, environ=os.environ
        )
        body = {**orjson.loads(request.body), "stream_options": {"include_usage": True}}
        events = list(
            client.stream_request(request.model_copy(update={"body": orjson.dumps(body)}))
        )
    assert_snapshots(llmx_cassette, events, llmx_snapshot)
    streamed = chunks(recorded(llmx_cassette)[0])
    finished = [i for i, chunk in enumerate(streamed) if finish_reasons_of(chunk)]
    with_usage = [i for i, chunk in enumerate(streamed) if chunk.get("usage")]
    assert len(finished) == 1 and with_usage and min(with_usage) > finished[0]


def test_error_inside_the_stream(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(llmx_cassette, prompt(user("library: error in stream via litellm")))
    assert_snapshots(llmx_cassette, events, llmx_snapshot)


def test_stream_ends_without_done_or_finish_reason(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(llmx_cassette, prompt(user("library: truncated stream")))
    assert_snapshots(llmx_cassette, events, llmx_snapshot)
    # Cut by the server mid-body (a clean end without [DONE] is decisions/d08's).
    [response] = recorded(llmx_cassette)
    assert response.partial is not None and "RemoteProtocolError" in response.partial
    assert b"[DONE]" not in response.body
    assert not finish_reasons(response)


def test_rate_limited_then_served(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    events = turn(llmx_cassette, prompt(user("library: 429 then success")))
    assert_snapshots(llmx_cassette, events, llmx_snapshot)
    assert [response.status for response in recorded(llmx_cassette)] == [429, 200]
    # The client retried the same request: the cassette holds both answers, one turn.
    assert [request.content for request in llmx_cassette.requests[1:]] == [
        llmx_cassette.requests[0].content
    ]
    assert llmx_cassette.play() == events


def test_multi_turn_with_tool_results(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    history: list[ResponseItem] = [user("library: multi-turn tool")]
    first = turn(llmx_cassette, prompt(*history, tools=(ORDER_TOOL,)))
    call = the_call(first)
    result = FunctionCallOutput.model_validate(
        {"call_id": call.call_id, "output": "A-1001: shipped Monday"}
    )
    second = turn(llmx_cassette, prompt(*history, call, result, tools=(ORDER_TOOL,)))
    assert_snapshots(llmx_cassette, first + second, llmx_snapshot)


def test_unanswered_call_is_aborted(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    # D1: a call left without a result (the user interrupted it) is answered "aborted",
    # and the user message that came after it is kept.
    first_ask = user("library: aborted call")
    first = turn(llmx_cassette, prompt(first_ask, tools=(ORDER_TOOL,)))
    call = the_call(first)
    second = turn(
        llmx_cassette,
        prompt(first_ask, call, user("library: after abort"), tools=(ORDER_TOOL,)),
    )
    assert_snapshots(llmx_cassette, first + second, llmx_snapshot)
    aborted = llmx_cassette.request_body()["messages"][3]
    assert aborted == {"role": "tool", "tool_call_id": call.call_id, "content": "aborted"}


DECISIONS = sorted(
    path.stem for path in (Path(__file__).parent.parent / "cassettes" / "decisions").glob("*.yaml")
)


# D24's cassette holds other APIs' streams, which are refused rather than played.
REFUSED = "d24-other-wire-apis"


def test_every_decision_has_its_cassette() -> None:
    assert [name[:3] for name in DECISIONS] == [f"d{number:02}" for number in range(1, 25)]


@pytest.mark.parametrize(
    "decision",
    [
        pytest.param(name, marks=pytest.mark.llmx_cassette(name=f"decisions/{name}"))
        for name in DECISIONS
        if name != REFUSED
    ],
)
def test_decision(
    decision: str, llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    assert llmx_cassette.path.stem == decision
    assert llmx_cassette.play() == llmx_snapshot
    assert llmx_cassette.play(mode="aggregated") == llmx_snapshot


@pytest.mark.llmx_cassette(name=f"decisions/{REFUSED}", allow_unplayed=True)
def test_decision_other_wire_apis_are_refused_and_the_client_says_why(
    llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion
) -> None:
    """D24: playing refuses the cassette; the client, given either stream, ends the turn
    with an error naming what it got."""
    with pytest.raises(UnsupportedWireFormat, match="interaction 0: an Anthropic Messages"):
        llmx_cassette.play()
    cassette = load_cassette(llmx_cassette.path)
    events = [
        event
        for interaction in cassette.interactions
        for event in play_response(interaction.response, Playback("streaming"))
    ]
    assert events == llmx_snapshot
