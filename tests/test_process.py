"""The Chat Completions stream processor, through `EventPipeline`, in all three modes.

Covers seed-behaviour.md §10.1 and §10.5 (the test vectors), §7.8 (scenarios S1-S13) and the
deviations D4-D11 and D14 of decisions.md. Where our outcome differs from the seed's, the test
asserts ours and its docstring names the decision; such a test fails on the seed (§9, B-list).
"""

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Literal

import pytest

from llmx_replay import ChatStreamProcessor, EventPipeline
from llmx_replay.models import (
    Completed,
    ErrorEvent,
    ErrorKind,
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    OutputTextDelta,
    Reasoning,
    ReasoningContentDelta,
    ReasoningText,
    ResponseEvent,
    TokenUsage,
)

Mode = Literal["raw", "streaming", "aggregated"]
MODES: tuple[Mode, ...] = ("raw", "streaming", "aggregated")
Payload = str | dict[str, Any]

STREAM_CLOSED = "stream closed before completion"

# --------------------------------------------------------------------------------------------
# Notation: events (seed-behaviour.md, "Notation used throughout")
# --------------------------------------------------------------------------------------------


def added_message() -> OutputItemAdded:
    """`Added(M)`."""
    return OutputItemAdded(item=Message(role="assistant", content=[]))


def added_reasoning() -> OutputItemAdded:
    """`Added(R)`."""
    return OutputItemAdded(item=Reasoning(summary=[], content=[]))


def text(delta: str) -> OutputTextDelta:
    """`TD(x)`."""
    return OutputTextDelta(delta=delta)


def think(delta: str) -> ReasoningContentDelta:
    """`RD(x)`."""
    return ReasoningContentDelta(delta=delta)


def done_message(*parts: str) -> OutputItemDone:
    """`Done(M[a,b])`."""
    return OutputItemDone(
        item=Message(role="assistant", content=[OutputText(text=p) for p in parts])
    )


def done_reasoning(*parts: str) -> OutputItemDone:
    """`Done(R[a,b])`."""
    return OutputItemDone(
        item=Reasoning(summary=[], content=[ReasoningText(text=p) for p in parts])
    )


def done_call(name: str, arguments: str, call_id: str) -> OutputItemDone:
    """`Done(FC{n,args,cid})`."""
    return OutputItemDone(item=FunctionCall(name=name, arguments=arguments, call_id=call_id))


def usage(
    input_tokens: int, output_tokens: int, total: int, *, cached: int = 0, reasoning: int = 0
) -> TokenUsage:
    return TokenUsage(
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        reasoning_output_tokens=reasoning,
        total_tokens=total,
    )


def completed(usage: TokenUsage | None = None, finish: str | None = None) -> Completed:
    """`Completed(u)`, which in llmx-replay also carries the finish reason (D7)."""
    return Completed(response_id="", token_usage=usage, finish_reason=finish)


def error(
    kind: ErrorKind,
    message: str = "",
    status: int | None = None,
    *,
    provider_error: Any = None,
    finish: str | None = None,
    usage: TokenUsage | None = None,
) -> ErrorEvent:
    """An `ErrorEvent`; compare it with `masked()` events when the text is not specified."""
    return ErrorEvent(
        kind=kind,
        message=message,
        status=status,
        provider_error=provider_error,
        finish_reason=finish,
        token_usage=usage,
    )


def masked(events: Sequence[ResponseEvent]) -> list[ResponseEvent]:
    """The events with every error message blanked, for errors whose wording is free."""
    return [dataclasses.replace(e, message="") if isinstance(e, ErrorEvent) else e for e in events]


# --------------------------------------------------------------------------------------------
# Notation: chunks (seed-behaviour.md §7.8: `c(x)`, `r(x)`)
# --------------------------------------------------------------------------------------------

DONE = "[DONE]"


def c(content: Any) -> dict[str, Any]:
    return {"choices": [{"delta": {"content": content}}]}


def r(reasoning: Any) -> dict[str, Any]:
    return {"choices": [{"delta": {"reasoning": reasoning}}]}


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"delta": fields}]}


def finish(reason: str, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"delta": fields, "finish_reason": reason}]}


def frag(
    index: int | None = None,
    call_id: str | None = None,
    name: str | None = None,
    arguments: Any = None,
) -> dict[str, Any]:
    """One element of `delta.tool_calls`."""
    fragment: dict[str, Any] = {}
    if index is not None:
        fragment["index"] = index
    if call_id is not None:
        fragment["id"] = call_id
        fragment["type"] = "function"
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    fragment["function"] = function
    return fragment


def calls(*fragments: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"delta": {"tool_calls": list(fragments)}}]}


def usage_chunk(**counters: Any) -> dict[str, Any]:
    return {"choices": [], "usage": counters}


def sse(*payloads: Payload, event: str | None = None, eol: str = "\n") -> bytes:
    """An event-stream body: each payload as `data: <json>` and a blank line."""
    lines = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        head = f"event: {event}{eol}" if event else ""
        lines.append(f"{head}data: {data}{eol}{eol}")
    return "".join(lines).encode()


def run(
    body: bytes | Sequence[Any],
    mode: Mode = "raw",
    *,
    status: int = 200,
    fail: tuple[ErrorKind, str] | None = None,
) -> list[ResponseEvent]:
    """Feed a body through `EventPipeline` and end it (or break it off with `fail`).

    `body` is the raw bytes, a list of byte chunks, or a list of payloads (`str` or `dict`)
    for `sse()`.
    """
    if isinstance(body, bytes):
        chunks: list[bytes] = [body]
    elif all(isinstance(part, bytes) for part in body):
        chunks = [part for part in body if isinstance(part, bytes)]
    else:
        chunks = [sse(*body)]
    pipeline = EventPipeline(mode, status=status)
    events: list[ResponseEvent] = []
    for chunk in chunks:
        events += pipeline.feed(chunk)
    events += pipeline.end_abruptly(*fail) if fail else pipeline.end()
    assert pipeline.done
    return events


# --------------------------------------------------------------------------------------------
# §10.1 chat_completions_sse.rs, Streaming mode (and the raw sequences stated under 10.1)
# --------------------------------------------------------------------------------------------


def test_v10_1_streams_text_without_reasoning() -> None:
    body = [c("hi"), delta(), DONE]
    assert run(body, "streaming") == [
        added_message(),
        text("hi"),
        done_message("hi"),
        completed(),
    ]


def test_v10_1_streams_text_without_reasoning_raw() -> None:
    assert run([c("hi"), delta(), DONE], "raw") == [
        added_message(),
        text("hi"),
        done_message("hi"),
        completed(),
    ]


def test_v10_1_streams_reasoning_from_string_delta() -> None:
    body = [r("think1"), c("ok"), finish("stop")]
    assert run(body, "streaming") == [
        added_reasoning(),
        think("think1"),
        added_message(),
        text("ok"),
        done_reasoning("think1"),
        done_message("ok"),
        completed(finish="stop"),
    ]


def test_v10_1_streams_reasoning_from_string_delta_raw() -> None:
    """D5: the raw stream closes reasoning before the message (the seed's raw order is
    `Done(M), Done(R)`); D6/D7: EOF after a finish reason completes, carrying the reason."""
    assert run([r("think1"), c("ok"), finish("stop")], "raw") == [
        added_reasoning(),
        think("think1"),
        added_message(),
        text("ok"),
        done_reasoning("think1"),
        done_message("ok"),
        completed(finish="stop"),
    ]


def test_v10_1_streams_reasoning_from_object_delta() -> None:
    body = [r({"text": "partA"}), r({"content": "partB"}), c("answer"), finish("stop")]
    assert run(body, "streaming") == [
        added_reasoning(),
        think("partA"),
        think("partB"),
        added_message(),
        text("answer"),
        done_reasoning("partA", "partB"),
        done_message("answer"),
        completed(finish="stop"),
    ]


def test_v10_1_streams_reasoning_from_final_message() -> None:
    body = [{"choices": [{"message": {"reasoning": "final-cot"}, "finish_reason": "stop"}]}]
    assert run(body, "streaming") == [
        added_reasoning(),
        think("final-cot"),
        done_reasoning("final-cot"),
        completed(finish="stop"),
    ]


def test_v10_1_streams_reasoning_before_tool_call() -> None:
    tool_chunk = {
        "choices": [
            {
                "delta": {"tool_calls": [frag(call_id="call_1", name="run", arguments="{}")]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    assert run([r("pre-tool"), tool_chunk], "streaming") == [
        added_reasoning(),
        think("pre-tool"),
        done_reasoning("pre-tool"),
        done_call("run", "{}", "call_1"),
        completed(finish="tool_calls"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_v10_1_chat_sse_skips_an_event_that_is_not_json_and_completes(mode: Mode) -> None:
    """Seed: `chat_sse_emits_failed_on_parse_error`. Its "failed" is a telemetry log line;
    the events, there as here, are only `Completed`."""
    assert run(b"data: not-json\n\ndata: [DONE]\n\n", mode) == [completed()]


@pytest.mark.parametrize("mode", MODES)
def test_v10_1_chat_sse_done_chunk_emits_event(mode: Mode) -> None:
    assert run(b"data: [DONE]\n\n", mode) == [completed()]


@pytest.mark.parametrize("mode", MODES)
def test_v10_1_chat_sse_emits_error_on_invalid_utf8(mode: Mode) -> None:
    events = run(b"data: \x80\x80\n\n", mode)
    assert masked(events) == [error("stream")]


# --------------------------------------------------------------------------------------------
# §10.5 upstream reference vectors (raw stream; `event: message` lines; EOF, no [DONE])
# --------------------------------------------------------------------------------------------


def upstream(*payloads: Payload) -> list[ResponseEvent]:
    return run(sse(*payloads, event="message"), "raw")


def test_v10_5_emits_multiple_tool_calls() -> None:
    """D4: calls keyed by id, one item each (the seed glues both into one call); D6: EOF
    after a finish reason completes normally."""
    events = upstream(
        calls(frag(call_id="call_a", name="do_a", arguments='{"foo":1}')),
        calls(frag(call_id="call_b", name="do_b", arguments='{"bar":2}')),
        finish("tool_calls"),
    )
    assert events == [
        done_call("do_a", '{"foo":1}', "call_a"),
        done_call("do_b", '{"bar":2}', "call_b"),
        completed(finish="tool_calls"),
    ]


def test_v10_5_concatenates_tool_call_arguments_across_deltas() -> None:
    events = upstream(
        calls(frag(call_id="call_a", name="do_a")),
        calls(frag(call_id="call_a", arguments='{ "foo":')),
        calls(frag(call_id="call_a", arguments="1}")),
        finish("tool_calls"),
    )
    assert events == [
        done_call("do_a", '{ "foo":1}', "call_a"),
        completed(finish="tool_calls"),
    ]


def test_v10_5_emits_tool_calls_even_when_content_and_reasoning_present() -> None:
    """D9: array-form content is read and reasoning goes first; D5: reasoning, message, then
    the call (upstream expects the call before the message, the seed drops the message);
    D6: EOF after a finish reason completes with that reason."""
    events = upstream(
        delta(
            content=[{"text": "hi"}],
            reasoning="because",
            tool_calls=[frag(call_id="call_a", name="do_a", arguments="{}")],
        ),
        finish("tool_calls"),
    )
    assert events == [
        added_reasoning(),
        think("because"),
        added_message(),
        text("hi"),
        done_reasoning("because"),
        done_message("hi"),
        done_call("do_a", "{}", "call_a"),
        completed(finish="tool_calls"),
    ]


def test_v10_5_emits_a_streamed_tool_call_on_stop_finish_reason() -> None:
    """Seed: `drops_partial_tool_calls_on_stop_finish_reason`. D7: a streamed tool call is
    emitted whatever the finish reason, so ours keeps the call that upstream (and the seed)
    drop; the last event is still Completed (D6)."""
    events = upstream(
        calls(frag(call_id="call_a", name="do_a", arguments="{}")),
        finish("stop"),
    )
    assert events == [done_call("do_a", "{}", "call_a"), completed(finish="stop")]


# --------------------------------------------------------------------------------------------
# §7.8 scenarios S1-S13, in raw, streaming and aggregated mode
# --------------------------------------------------------------------------------------------

S1 = {
    "raw": [added_message(), text("Hel"), text("lo"), done_message("Hel", "lo"), completed()],
    "streaming": [added_message(), text("Hel"), text("lo"), done_message("Hello"), completed()],
    "aggregated": [done_message("Hello"), completed()],
}


@pytest.mark.parametrize("mode", MODES)
def test_s1_text_then_done(mode: Mode) -> None:
    """Aggregated: only finished items and Completed, no `Added(M)` (D14)."""
    assert run([c("Hel"), c("lo"), DONE], mode) == S1[mode]


S2_USAGE = usage(10, 2, 12)
S2 = {
    "raw": [added_message(), text("hi"), done_message("hi"), completed(S2_USAGE, "stop")],
    "streaming": [added_message(), text("hi"), done_message("hi"), completed(S2_USAGE, "stop")],
    "aggregated": [done_message("hi"), completed(S2_USAGE, "stop")],
}


@pytest.mark.parametrize("mode", MODES)
def test_s2_usage_chunk_after_finish_reason_is_kept(mode: Mode) -> None:
    """D6: the usage-only chunk after the finish reason is read (the seed completes at the
    finish reason with no usage) and Completed carries the finish reason (D7)."""
    body = [
        c("hi"),
        finish("stop"),
        usage_chunk(prompt_tokens=10, completion_tokens=2, total_tokens=12),
        DONE,
    ]
    assert run(body, mode) == S2[mode]


def test_s2_usage_in_the_finish_chunk() -> None:
    chunk = finish("stop") | {
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    }
    assert run([c("hi"), chunk], "raw") == [
        added_message(),
        text("hi"),
        done_message("hi"),
        completed(usage(10, 2, 12), "stop"),
    ]


def test_s2_cached_and_reasoning_token_details() -> None:
    chunk = usage_chunk(
        prompt_tokens=100,
        completion_tokens=50,
        total_tokens=150,
        prompt_tokens_details={"cached_tokens": 80},
        completion_tokens_details={"reasoning_tokens": 20},
    )
    assert run([chunk, DONE], "raw") == [completed(usage(100, 50, 150, cached=80, reasoning=20))]


S3 = {
    "raw": [
        added_reasoning(),
        think("think"),
        added_message(),
        text("ok"),
        done_reasoning("think"),
        done_message("ok"),
        completed(finish="stop"),
    ],
    "streaming": [
        added_reasoning(),
        think("think"),
        added_message(),
        text("ok"),
        done_reasoning("think"),
        done_message("ok"),
        completed(finish="stop"),
    ],
    "aggregated": [done_reasoning("think"), done_message("ok"), completed(finish="stop")],
}


@pytest.mark.parametrize("mode", MODES)
def test_s3_reasoning_then_text_then_stop(mode: Mode) -> None:
    """Raw: reasoning closes before the message (D5; the seed's raw order is M, R).
    Aggregated: no `Added` and the reasoning once (D14; the seed forwards both `Added` and
    emits `Done(R)` twice)."""
    assert run([r("think"), c("ok"), finish("stop")], mode) == S3[mode]


S4_CALL = done_call("shell", '{"command":["ls"]}', "call_1")
S4 = {
    "raw": [
        added_reasoning(),
        think("plan"),
        done_reasoning("plan"),
        S4_CALL,
        completed(finish="tool_calls"),
    ],
    "streaming": [
        added_reasoning(),
        think("plan"),
        done_reasoning("plan"),
        S4_CALL,
        completed(finish="tool_calls"),
    ],
    "aggregated": [done_reasoning("plan"), S4_CALL, completed(finish="tool_calls")],
}


@pytest.mark.parametrize("mode", MODES)
def test_s4_reasoning_then_tool_call_split_across_chunks(mode: Mode) -> None:
    """Aggregated: one reasoning item, no `Added` (D14; the seed repeats `Done(R)`)."""
    body = [
        r("plan"),
        calls(frag(index=0, call_id="call_1", name="shell", arguments="")),
        calls(frag(index=0, arguments='{"command":')),
        calls(frag(index=0, arguments='["ls"]}')),
        finish("tool_calls"),
    ]
    assert run(body, mode) == S4[mode]


S5_CALL = done_call("shell", '{"command":["ls"]}', "call_1")
S5 = {
    "raw": [
        added_message(),
        text("Let me check."),
        done_message("Let me check."),
        S5_CALL,
        completed(finish="tool_calls"),
    ],
    "streaming": [
        added_message(),
        text("Let me check."),
        done_message("Let me check."),
        S5_CALL,
        completed(finish="tool_calls"),
    ],
    "aggregated": [done_message("Let me check."), S5_CALL, completed(finish="tool_calls")],
}


@pytest.mark.parametrize("mode", MODES)
def test_s5_preamble_text_is_emitted_before_the_call(mode: Mode) -> None:
    """D5: the message is finished before the call (the seed's raw stream has no `Done(M)`
    and its aggregator puts the message after the call, B7/B10)."""
    body = [
        c("Let me check."),
        calls(frag(index=0, call_id="call_1", name="shell", arguments='{"command":["ls"]}')),
        finish("tool_calls"),
    ]
    assert run(body, mode) == S5[mode]


S6_ERROR = error("stream", STREAM_CLOSED)
S6 = {
    "raw": [
        added_reasoning(),
        think("a"),
        added_message(),
        text("b"),
        done_reasoning("a"),
        done_message("b"),
        S6_ERROR,
    ],
    "streaming": [
        added_reasoning(),
        think("a"),
        added_message(),
        text("b"),
        done_reasoning("a"),
        done_message("b"),
        S6_ERROR,
    ],
    "aggregated": [done_reasoning("a"), done_message("b"), S6_ERROR],
}


@pytest.mark.parametrize("mode", MODES)
def test_s6_eof_without_done_or_finish_reason_is_an_error(mode: Mode) -> None:
    """D8: what was received is flushed as finished items, then a `stream` error (the seed
    reports success with `Completed`, B12)."""
    assert run([r("a"), c("b")], mode) == S6[mode]


S7_ERROR = error(
    "unexpected_status",
    "Overloaded",
    200,
    provider_error={"message": "Overloaded", "type": "overloaded_error"},
)
S7 = {
    "raw": [added_message(), text("par"), done_message("par"), S7_ERROR],
    "streaming": [added_message(), text("par"), done_message("par"), S7_ERROR],
    "aggregated": [done_message("par"), S7_ERROR],
}


@pytest.mark.parametrize("mode", MODES)
def test_s7_error_chunk_mid_stream(mode: Mode) -> None:
    """D8/D10: the partial message is flushed, then the provider's error with status 200;
    nothing follows the error (HEAD sends Completed after it; the seed flushes nothing)."""
    body = [
        c("par"),
        {"error": {"message": "Overloaded", "type": "overloaded_error"}},
        c("more"),
        DONE,
    ]
    assert run(body, mode) == S7[mode]


S8 = {
    "raw": [added_message(), text("partial"), done_message("partial"), completed(finish="length")],
    "streaming": [
        added_message(),
        text("partial"),
        done_message("partial"),
        completed(finish="length"),
    ],
    "aggregated": [done_message("partial"), completed(finish="length")],
}


@pytest.mark.parametrize("mode", MODES)
def test_s8_finish_reason_length_flushes_and_is_reported(mode: Mode) -> None:
    """D7: `length` flushes like `stop` and Completed carries it (the seed flushes nothing
    and gives no truncation signal, B9)."""
    assert run([c("partial"), finish("length")], mode) == S8[mode]


S9 = [
    done_call("a", "{}", "call_a"),
    done_call("b", '{"x":1}', "call_b"),
    completed(finish="tool_calls"),
]


@pytest.mark.parametrize("mode", MODES)
def test_s9_parallel_tool_calls_keyed_by_index(mode: Mode) -> None:
    """D4: one call per `index` (the seed glues them into `a` with `{}{"x":1}`, B6)."""
    body = [
        calls(frag(index=0, call_id="call_a", name="a", arguments="")),
        calls(frag(index=0, arguments="{}")),
        calls(frag(index=1, call_id="call_b", name="b", arguments="")),
        calls(frag(index=1, arguments='{"x":1}')),
        finish("tool_calls"),
    ]
    assert run(body, mode) == S9


IDLE: tuple[ErrorKind, str] = ("idle_timeout", "idle timeout waiting for SSE")
S10 = {
    "raw": [added_message(), text("hi"), done_message("hi"), error(*IDLE)],
    "streaming": [added_message(), text("hi"), done_message("hi"), error(*IDLE)],
    "aggregated": [done_message("hi"), error(*IDLE)],
}


@pytest.mark.parametrize("mode", MODES)
def test_s10_idle_timeout(mode: Mode) -> None:
    """An idle timeout is an `idle_timeout` error; what was received is flushed first (D8)."""
    assert run([c("hi")], mode, fail=("idle_timeout", IDLE[1])) == S10[mode]


S10_AFTER_FINISH = {
    "raw": [added_message(), text("hi"), done_message("hi"), completed(finish="stop")],
    "streaming": [added_message(), text("hi"), done_message("hi"), completed(finish="stop")],
    "aggregated": [done_message("hi"), completed(finish="stop")],
}


@pytest.mark.parametrize("mode", MODES)
def test_s10_idle_timeout_after_a_finish_reason_completes(mode: Mode) -> None:
    """D6: once a finish reason was seen, an idle timeout (waiting for a usage chunk or
    `[DONE]`) completes the turn normally."""
    events = run([c("hi"), finish("stop")], mode, fail=("idle_timeout", IDLE[1]))
    assert events == S10_AFTER_FINISH[mode]


@pytest.mark.parametrize("mode", MODES)
def test_s11_malformed_json_is_skipped(mode: Mode) -> None:
    assert run(["not-json", DONE], mode) == [completed()]


@pytest.mark.parametrize("mode", MODES)
def test_s12_only_done(mode: Mode) -> None:
    assert run([DONE], mode) == [completed()]


def json_error_body(**provider_error: str) -> ErrorEvent:
    message = "expected an event stream, got a JSON error: Invalid API key"
    provider = {"message": "Invalid API key"} | provider_error
    return error("stream", message, 200, provider_error=provider)


@pytest.mark.parametrize("mode", MODES)
def test_s13_json_error_body_quotes_the_provider(mode: Mode) -> None:
    """D8: a 2xx JSON error body ends with a `stream` error quoting the provider's message
    (the seed yields a silent `Completed`, B19)."""
    body = b'{"error":{"message":"Invalid API key","type":"invalid_request_error"}}'
    assert run(body, mode) == [json_error_body(type="invalid_request_error")]


S13_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
# D20: the error still carries the completion's finish reason and usage.
S13_ERROR = error("stream", status=200, finish="stop", usage=usage(5, 1, 6))
S13 = {
    "raw": [added_message(), text("Hello"), done_message("Hello"), S13_ERROR],
    "streaming": [added_message(), text("Hello"), done_message("Hello"), S13_ERROR],
    "aggregated": [done_message("Hello"), S13_ERROR],
}


@pytest.mark.parametrize("mode", MODES)
def test_s13_non_streamed_completion_emits_the_message_then_an_error(mode: Mode) -> None:
    """D8: a non-streamed chat.completion is not lost: its message comes out as a finished
    item, then a `stream` error says the body was not an event stream."""
    events = run(json.dumps(S13_COMPLETION).encode(), mode)
    assert masked(events) == S13[mode]


def test_s13_non_streamed_completion_with_tool_calls_and_reasoning() -> None:
    """D8 with D9/D5: reasoning, text and calls of a JSON completion, in the model's order."""
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "need ls",
                    "tool_calls": [
                        frag(index=0, call_id="call_1", name="shell", arguments="{}"),
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    events = run(json.dumps(completion).encode(), "aggregated")
    assert masked(events) == [
        done_reasoning("need ls"),
        done_message("Checking."),
        done_call("shell", "{}", "call_1"),
        error("stream", status=200, finish="tool_calls"),
    ]


def test_s13_json_error_body_status_is_reported() -> None:
    events = run(b'{"error":{"message":"nope"}}', "raw", status=202)
    assert masked(events) == [error("stream", status=202, provider_error={"message": "nope"})]


def test_s13_json_error_body_after_leading_whitespace() -> None:
    events = run([b"\r\n ", b'{"error":{"message":"Invalid API key"}}'], "raw")
    assert events == [json_error_body()]


def test_s13_json_error_body_with_a_bom_quotes_the_provider() -> None:
    """D8: a JSON error body that starts with a UTF-8 BOM still quotes the provider."""
    events = run(b'\xef\xbb\xbf{"error":{"message":"Invalid API key"}}', "raw")
    assert events == [json_error_body()]


def test_s13_json_body_events_do_not_depend_on_chunking() -> None:
    """The same JSON body, split anywhere (also inside a leading BOM), gives the same events."""
    body = b'\xef\xbb\xbf {"error":{"message":"Invalid API key"}}'
    whole = run(body, "raw")
    for cut in range(1, len(body)):
        assert run([body[:cut], body[cut:]], "raw") == whole, cut


# --------------------------------------------------------------------------------------------
# D4: tool calls accumulated by index (falling back to id); only choice 0
# --------------------------------------------------------------------------------------------


def test_d4_several_calls_in_one_chunk_array() -> None:
    """D4: every element of `tool_calls` counts (the seed reads `tool_calls[0]` only)."""
    body = [
        calls(
            frag(index=0, call_id="call_a", name="a", arguments='{"n":1}'),
            frag(index=1, call_id="call_b", name="b", arguments='{"n":2}'),
        ),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [
        done_call("a", '{"n":1}', "call_a"),
        done_call("b", '{"n":2}', "call_b"),
        completed(finish="tool_calls"),
    ]


def test_d4_calls_keyed_by_id_without_index_interleaved() -> None:
    """D4: without `index`, fragments join the call with their `id`."""
    body = [
        calls(frag(call_id="call_a", name="a", arguments='{"p":')),
        calls(frag(call_id="call_b", name="b", arguments='{"q":')),
        calls(frag(call_id="call_a", arguments="1}")),
        calls(frag(call_id="call_b", arguments="2}")),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [
        done_call("a", '{"p":1}', "call_a"),
        done_call("b", '{"q":2}', "call_b"),
        completed(finish="tool_calls"),
    ]


def test_d4_fragments_without_index_or_id_continue_the_last_call() -> None:
    body = [
        calls(frag(call_id="call_a", name="a")),
        calls(frag(arguments='{"p":')),
        calls(frag(arguments="1}")),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [done_call("a", '{"p":1}', "call_a"), completed(finish="tool_calls")]


def test_d4_index_reused_with_a_different_id_starts_a_new_call() -> None:
    """D4: a provider that numbers every call 0 but gives each its own id gets two calls;
    later fragments with that index continue the newest one."""
    body = [
        calls(frag(index=0, call_id="call_a", name="f", arguments='{"n":1}')),
        calls(frag(index=0, call_id="call_b", name="g", arguments='{"n":')),
        calls(frag(index=0, arguments="2}")),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [
        done_call("f", '{"n":1}', "call_a"),
        done_call("g", '{"n":2}', "call_b"),
        completed(finish="tool_calls"),
    ]


def test_d4_calls_are_emitted_in_index_order() -> None:
    body = [
        calls(frag(index=1, call_id="call_b", name="b", arguments="{}")),
        calls(frag(index=0, call_id="call_a", name="a", arguments="{}")),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [
        done_call("a", "{}", "call_a"),
        done_call("b", "{}", "call_b"),
        completed(finish="tool_calls"),
    ]


def test_d4_first_name_and_id_win_within_a_call() -> None:
    body = [
        calls(frag(index=0, call_id="call_a", name="a", arguments="{")),
        calls(frag(index=0, name="other", arguments="}")),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [done_call("a", "{}", "call_a"), completed(finish="tool_calls")]


def test_d4_object_valued_arguments_are_stringified() -> None:
    """D4 (B5): object-valued `arguments` become compact JSON text (the seed ignores them,
    leaving the call with empty arguments)."""
    body = [
        calls(frag(index=0, call_id="call_a", name="read", arguments={"path": "a.txt", "n": 2})),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [
        done_call("read", '{"path":"a.txt","n":2}', "call_a"),
        completed(finish="tool_calls"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_d4_choices_other_than_index_0_are_ignored_even_interleaved(mode: Mode) -> None:
    """D4 (B15): only the choice with index 0 is followed, wherever it sits in `choices`;
    n>1 is out of scope. The seed reads `choices[0]` whatever its index, so it would show
    `B` and end at choice 1's finish reason."""
    body = [
        {"choices": [{"index": 1, "delta": {"content": "B"}}]},
        {"choices": [{"index": 0, "delta": {"content": "A"}}]},
        {
            "choices": [
                {"index": 1, "delta": {"content": "B2"}},
                {"index": 0, "delta": {"content": "A2"}},
            ]
        },
        {"choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]},
        {"choices": [{"index": 0, "delta": {"content": "A3"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        DONE,
    ]
    expected = {
        "raw": [
            added_message(),
            text("A"),
            text("A2"),
            text("A3"),
            done_message("A", "A2", "A3"),
            completed(finish="stop"),
        ],
        "streaming": [
            added_message(),
            text("A"),
            text("A2"),
            text("A3"),
            done_message("AA2A3"),
            completed(finish="stop"),
        ],
        "aggregated": [done_message("AA2A3"), completed(finish="stop")],
    }
    assert run(body, mode) == expected[mode]


# --------------------------------------------------------------------------------------------
# D5: finished items in the order the model produced them
# --------------------------------------------------------------------------------------------


def test_d5_reasoning_text_and_calls_in_order_on_tool_calls() -> None:
    """D5: reasoning, then text, then the calls (the seed emits R, FC and drops M, B7)."""
    body = [
        r("why"),
        c("Let me look."),
        calls(frag(index=0, call_id="call_1", name="ls", arguments="{}")),
        finish("tool_calls"),
        DONE,
    ]
    assert run(body) == [
        added_reasoning(),
        think("why"),
        added_message(),
        text("Let me look."),
        done_reasoning("why"),
        done_message("Let me look."),
        done_call("ls", "{}", "call_1"),
        completed(finish="tool_calls"),
    ]


# --------------------------------------------------------------------------------------------
# D6: read on to [DONE] / EOF after the finish reason; exactly one Completed
# --------------------------------------------------------------------------------------------


def test_d6_one_completed_after_finish_and_done() -> None:
    """D6: the finish reason and `[DONE]` give a single Completed, sent at `[DONE]`."""
    processor = ChatStreamProcessor()
    finished = processor.process(json.dumps(finish("stop", content="hi")))
    assert finished == [added_message(), text("hi"), done_message("hi")]
    assert not processor.done
    assert processor.process(DONE) == [completed(finish="stop")]
    assert processor.done
    assert processor.process(json.dumps(c("late"))) == []
    assert processor.end_of_stream() == []


def test_d6_last_usage_after_finish_wins() -> None:
    """D6/D11: the usage after the finish reason replaces an earlier one."""
    body = [
        c("hi") | {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
        finish("stop"),
        usage_chunk(prompt_tokens=10, completion_tokens=2, total_tokens=12),
    ]
    assert run(body) == [
        added_message(),
        text("hi"),
        done_message("hi"),
        completed(usage(10, 2, 12), "stop"),
    ]


def test_d6_processor_eof_after_finish_completes() -> None:
    processor = ChatStreamProcessor()
    assert processor.process(json.dumps(finish("stop"))) == []
    assert processor.end_of_stream() == [completed(finish="stop")]
    assert processor.end_abruptly("idle_timeout", "late") == []


# --------------------------------------------------------------------------------------------
# D7: finish reasons
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_d7_content_filter_flushes_and_is_reported(mode: Mode) -> None:
    """D7: `content_filter` flushes like `stop` (the seed flushes nothing, B9)."""
    expected = {
        "raw": [added_message(), text("x"), done_message("x"), completed(finish="content_filter")],
        "streaming": [
            added_message(),
            text("x"),
            done_message("x"),
            completed(finish="content_filter"),
        ],
        "aggregated": [done_message("x"), completed(finish="content_filter")],
    }
    assert run([c("x"), finish("content_filter"), DONE], mode) == expected[mode]


def test_d7_length_flushes_a_partial_tool_call() -> None:
    """D7: a tool call that was streamed is emitted whatever the finish reason."""
    body = [
        calls(frag(index=0, call_id="call_1", name="write", arguments='{"text":"ab')),
        finish("length"),
        DONE,
    ]
    assert run(body) == [
        done_call("write", '{"text":"ab', "call_1"),
        completed(finish="length"),
    ]


def test_d7_stop_while_a_tool_call_streamed_still_emits_it() -> None:
    """D7: some servers report `stop` for tool calls; the seed drops the call (B9)."""
    body = [
        c("Running it."),
        calls(frag(index=0, call_id="call_1", name="run", arguments='{"x":1}')),
        finish("stop"),
        DONE,
    ]
    assert run(body) == [
        added_message(),
        text("Running it."),
        done_message("Running it."),
        done_call("run", '{"x":1}', "call_1"),
        completed(finish="stop"),
    ]


def test_d7_empty_finish_reason_counts_as_none() -> None:
    """D7: `finish_reason: ""` on intermediate chunks does not end the turn (the seed ends
    after the first such chunk, B9)."""
    body = [
        {"choices": [{"delta": {"content": "a"}, "finish_reason": ""}]},
        {"choices": [{"delta": {"content": "b"}, "finish_reason": ""}]},
        finish("stop"),
        DONE,
    ]
    assert run(body) == [
        added_message(),
        text("a"),
        text("b"),
        done_message("a", "b"),
        completed(finish="stop"),
    ]


def test_d7_empty_finish_reason_then_eof_is_an_error() -> None:
    """D7 + D8: with only empty finish reasons, EOF is still an early close."""
    body = [{"choices": [{"delta": {"content": "a"}, "finish_reason": ""}]}]
    assert run(body) == [
        added_message(),
        text("a"),
        done_message("a"),
        error("stream", STREAM_CLOSED),
    ]


def test_d7_null_finish_reason_is_ignored() -> None:
    body = [{"choices": [{"delta": {"content": "a"}, "finish_reason": None}]}, DONE]
    assert run(body) == [added_message(), text("a"), done_message("a"), completed()]


def test_d7_tool_calls_finish_without_calls_flushes_text() -> None:
    """D7: `tool_calls` with no call streamed still flushes the text (the seed flushes
    nothing for it)."""
    assert run([c("hm"), finish("tool_calls"), DONE]) == [
        added_message(),
        text("hm"),
        done_message("hm"),
        completed(finish="tool_calls"),
    ]


# --------------------------------------------------------------------------------------------
# D8: early end of stream, and nothing received is lost
# --------------------------------------------------------------------------------------------


def test_d8_eof_mid_tool_call_flushes_then_errors() -> None:
    body = [calls(frag(index=0, call_id="call_1", name="run", arguments='{"a"'))]
    assert run(body) == [done_call("run", '{"a"', "call_1"), error("stream", STREAM_CLOSED)]


def test_d8_empty_body_is_an_error() -> None:
    """D8: an empty 2xx body is not a silent empty turn."""
    assert run(b"") == [error("stream", STREAM_CLOSED)]


def test_d8_invalid_utf8_after_content_flushes_then_errors() -> None:
    """D8: a decoding error ends the turn with a `stream` error after the items received so
    far; the event completed before the bad byte in the same chunk is not lost."""
    events = run([sse(c("hi")), sse(c("there")) + b"data: \xff\n\n" + sse(DONE)])
    assert masked(events) == [
        added_message(),
        text("hi"),
        text("there"),
        done_message("hi", "there"),
        error("stream"),
    ]


def test_d8_truncated_utf8_at_eof_flushes_then_errors() -> None:
    events = run(sse(c("hi")) + b"data: \xe2\x82")
    assert masked(events) == [added_message(), text("hi"), done_message("hi"), error("stream")]


def test_d8_unterminated_final_event_is_not_processed() -> None:
    """An event without its closing blank line is discarded (§7.4), so a `[DONE]` cut off
    by EOF does not complete the turn (D8)."""
    events = run(sse(c("hi")) + b"data: [DONE]")
    assert events == [
        added_message(),
        text("hi"),
        done_message("hi"),
        error("stream", STREAM_CLOSED),
    ]


def test_d8_transport_error_flushes_then_errors() -> None:
    events = run([c("hi")], "aggregated", fail=("connection_failed", "reset by peer"))
    assert events == [done_message("hi"), error("connection_failed", "reset by peer")]


# --------------------------------------------------------------------------------------------
# D9: reasoning fields, reasoning before content, array content
# --------------------------------------------------------------------------------------------


def test_d9_reasoning_content_string() -> None:
    """D9: DeepSeek/LiteLLM `reasoning_content` is read (the seed ignores it, B13)."""
    body = [delta(reasoning_content="step 1"), c("ok"), finish("stop"), DONE]
    assert run(body) == [
        added_reasoning(),
        think("step 1"),
        added_message(),
        text("ok"),
        done_reasoning("step 1"),
        done_message("ok"),
        completed(finish="stop"),
    ]


def test_d9_reasoning_content_object_forms() -> None:
    """D9: `reasoning_content` as `{text}` or `{content}`."""
    body = [
        delta(reasoning_content={"text": "a"}),
        delta(reasoning_content={"content": "b"}),
        delta(reasoning_content={"text": "", "content": "c"}),
        DONE,
    ]
    assert run(body) == [
        added_reasoning(),
        think("a"),
        think("b"),
        think("c"),
        done_reasoning("a", "b", "c"),
        completed(),
    ]


def test_d9_reasoning_before_content_within_one_chunk() -> None:
    """D9: reasoning is handled before content in the same chunk (the seed sends `Added(M)`
    first, B13)."""
    body = [delta(content="answer", reasoning_content="why"), DONE]
    assert run(body) == [
        added_reasoning(),
        think("why"),
        added_message(),
        text("answer"),
        done_reasoning("why"),
        done_message("answer"),
        completed(),
    ]


def test_d9_array_form_content() -> None:
    """D9: `content` as a list of text parts (the seed ignores it, B13)."""
    body = [
        c([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]),
        c([{"type": "text", "text": "!"}]),
        finish("stop"),
        DONE,
    ]
    assert run(body, "streaming") == [
        added_message(),
        text("Hel"),
        text("lo"),
        text("!"),
        done_message("Hello!"),
        completed(finish="stop"),
    ]


def test_d9_mistral_thinking_parts_become_reasoning() -> None:
    """D9: Mistral's `{"type":"thinking","thinking":[{"type":"text",...}]}` is reasoning."""
    body = [
        c([{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}]),
        c([{"type": "text", "text": "42"}]),
        finish("stop"),
        DONE,
    ]
    assert run(body) == [
        added_reasoning(),
        think("hmm"),
        added_message(),
        text("42"),
        done_reasoning("hmm"),
        done_message("42"),
        completed(finish="stop"),
    ]


def test_d9_reasoning_wins_over_reasoning_content() -> None:
    """D9: with both fields in one chunk only `reasoning` is read, never both."""
    body = [delta(reasoning="from reasoning", reasoning_content="from reasoning_content"), DONE]
    assert run(body) == [
        added_reasoning(),
        think("from reasoning"),
        done_reasoning("from reasoning"),
        completed(),
    ]


def test_d9_final_message_reasoning_content() -> None:
    body = [{"choices": [{"message": {"reasoning_content": "cot"}, "finish_reason": "stop"}]}]
    assert run(body, "aggregated") == [done_reasoning("cot"), completed(finish="stop")]


def test_d9_empty_reasoning_and_content_are_ignored() -> None:
    body = [delta(reasoning="", content=""), delta(reasoning={"text": ""}), c([]), DONE]
    assert run(body) == [completed()]


# --------------------------------------------------------------------------------------------
# D10: error chunks
# --------------------------------------------------------------------------------------------


def test_d10_error_null_is_not_an_error() -> None:
    """D10: `"error": null` is an ordinary chunk (the seed aborts with "Unknown error", B14)."""
    body = [
        {"error": None, "choices": [{"delta": {"content": "fine"}}]},
        {"error": None, "choices": [{"delta": {}, "finish_reason": "stop"}]},
        DONE,
    ]
    assert run(body) == [
        added_message(),
        text("fine"),
        done_message("fine"),
        completed(finish="stop"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_d10_error_chunk_flushes_then_unexpected_status(mode: Mode) -> None:
    """D10 + D8: a real error chunk flushes the reasoning and text received, then an
    `unexpected_status` error with status 200 and the provider's message (the seed flushes
    nothing)."""
    body = [r("hmm"), c("par"), {"error": {"message": "rate limited", "code": 429}}]
    rate_limited = error(
        "unexpected_status",
        "rate limited",
        200,
        provider_error={"message": "rate limited", "code": 429},
    )
    expected = {
        "raw": [
            added_reasoning(),
            think("hmm"),
            added_message(),
            text("par"),
            done_reasoning("hmm"),
            done_message("par"),
            rate_limited,
        ],
        "streaming": [
            added_reasoning(),
            think("hmm"),
            added_message(),
            text("par"),
            done_reasoning("hmm"),
            done_message("par"),
            rate_limited,
        ],
        "aggregated": [
            done_reasoning("hmm"),
            done_message("par"),
            rate_limited,
        ],
    }
    assert run(body, mode) == expected[mode]


def test_d10_error_without_message() -> None:
    events = run([{"error": {"type": "server_error"}}])
    assert masked(events) == [
        error("unexpected_status", status=200, provider_error={"type": "server_error"})
    ]


# --------------------------------------------------------------------------------------------
# D11: usage
# --------------------------------------------------------------------------------------------


def run_usage(*chunks: dict[str, Any]) -> TokenUsage | None:
    events = run([*chunks, DONE])
    assert len(events) == 1
    assert isinstance(events[0], Completed)
    return events[0].token_usage


def test_d11_missing_total_tokens_is_summed() -> None:
    """D11: a usage without `total_tokens` is kept, the total summed (the seed drops it)."""
    assert run_usage(usage_chunk(prompt_tokens=7, completion_tokens=3)) == usage(7, 3, 10)


def test_d11_cache_read_input_tokens() -> None:
    """D11: Anthropic-style `cache_read_input_tokens` counts as cached input."""
    chunk = usage_chunk(
        prompt_tokens=100, completion_tokens=5, total_tokens=105, cache_read_input_tokens=60
    )
    assert run_usage(chunk) == usage(100, 5, 105, cached=60)


def test_d11_cached_tokens_detail_wins_over_cache_read() -> None:
    chunk = usage_chunk(
        prompt_tokens=100,
        completion_tokens=5,
        total_tokens=105,
        prompt_tokens_details={"cached_tokens": 40},
        cache_read_input_tokens=60,
    )
    assert run_usage(chunk) == usage(100, 5, 105, cached=40)


def test_d11_non_integer_total_is_ignored_and_summed() -> None:
    """D11: a total that is not an integer is ignored like a missing one (the seed drops the
    whole usage)."""
    for total in ("12", 12.5, True, None):
        chunk = usage_chunk(prompt_tokens=10, completion_tokens=2, total_tokens=total)
        assert run_usage(chunk) == usage(10, 2, 12), total


def test_d11_non_integer_details_are_ignored() -> None:
    chunk = usage_chunk(
        prompt_tokens=10,
        completion_tokens=2,
        total_tokens=12,
        prompt_tokens_details={"cached_tokens": "5"},
        completion_tokens_details={"reasoning_tokens": 1.0},
    )
    assert run_usage(chunk) == usage(10, 2, 12)


def test_d11_usage_without_integer_prompt_or_completion_is_ignored() -> None:
    for counters in (
        {"prompt_tokens": "10", "completion_tokens": 2, "total_tokens": 12},
        {"prompt_tokens": 10, "completion_tokens": 2.0, "total_tokens": 12},
        {"prompt_tokens": True, "completion_tokens": 2, "total_tokens": 12},
        {"completion_tokens": 2, "total_tokens": 12},
    ):
        assert run_usage(usage_chunk(**counters)) is None, counters


def test_d11_invalid_usage_does_not_erase_the_last_valid_one() -> None:
    chunks: tuple[dict[str, Any], ...] = (
        usage_chunk(prompt_tokens=3, completion_tokens=4, total_tokens=7),
        usage_chunk(prompt_tokens="x", completion_tokens=1),
        {"choices": [], "usage": None},
    )
    assert run_usage(*chunks) == usage(3, 4, 7)


def test_d11_last_usage_wins() -> None:
    chunks = (
        usage_chunk(prompt_tokens=3, completion_tokens=4, total_tokens=7),
        usage_chunk(prompt_tokens=30, completion_tokens=40),
    )
    assert run_usage(*chunks) == usage(30, 40, 70)


def groq_chunk(**x_groq: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "x_groq": x_groq}


def test_d16_usage_inside_x_groq_is_kept() -> None:
    """D16: Groq's usage comes only inside `x_groq` (the seed completes without usage)."""
    chunk = groq_chunk(
        id="req_1", usage={"queue_time": 0.1, "prompt_tokens": 12, "completion_tokens": 24}
    )
    assert run_usage(chunk) == usage(12, 24, 36)


def test_d16_top_level_usage_wins_over_x_groq_in_the_same_chunk() -> None:
    chunk = {
        **groq_chunk(usage={"prompt_tokens": 1, "completion_tokens": 1}),
        "usage": {"prompt_tokens": 12, "completion_tokens": 24, "total_tokens": 36},
    }
    assert run_usage(chunk) == usage(12, 24, 36)


def test_d16_x_groq_without_usage_or_not_an_object_is_ignored() -> None:
    for x_groq in ({"id": "req_1"}, {"usage": None}, "req_1", None):
        chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "x_groq": x_groq}
        assert run_usage(chunk) is None, x_groq


def test_d17_completed_carries_the_first_id_a_chunk_carries() -> None:
    """D17: the seed's `completed.response_id` is always empty; the chunks carry the id."""
    chunks = [
        {"id": "", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {"id": 7, "choices": [{"index": 0, "delta": {"content": "!"}}]},
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "chatcmpl-2", "choices": [], "usage": None},
        DONE,
    ]

    assert run(chunks)[-1] == Completed(response_id="chatcmpl-1", finish_reason="stop")


def test_d17_chunks_without_an_id_complete_with_an_empty_one() -> None:
    assert run([{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, DONE]) == [
        Completed(response_id="", finish_reason="stop")
    ]


# --------------------------------------------------------------------------------------------
# The processor's contract
# --------------------------------------------------------------------------------------------


def test_done_with_surrounding_whitespace() -> None:
    assert run(b"data:  [DONE] \n\n") == [completed()]


@pytest.mark.parametrize(
    "payload", ["[1, 2]", '"text"', "null", "42", '{"choices": "x"}', '{"choices": [1, null]}']
)
def test_unexpected_json_shapes_are_skipped(payload: str) -> None:
    assert run([payload, c("ok"), DONE]) == [
        added_message(),
        text("ok"),
        done_message("ok"),
        completed(),
    ]


def test_nothing_follows_an_error() -> None:
    processor = ChatStreamProcessor()
    assert processor.end_abruptly("idle_timeout", "slow") == [error("idle_timeout", "slow")]
    assert processor.done
    assert processor.process(DONE) == []
    assert processor.end_of_stream() == []
    assert processor.end_abruptly("stream", "again") == []
