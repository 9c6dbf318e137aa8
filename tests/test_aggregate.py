"""The aggregator's two consumer modes over raw event sequences (seed-behaviour.md §7.6).

``streaming`` forwards deltas and replaces each finished assistant message by one whole
message where the raw stream closed it (D5); ``aggregated`` emits only finished items,
`Completed` and errors, each reasoning once (D14).
"""

import itertools
from collections.abc import Sequence
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmx_replay import Aggregator
from llmx_replay.models import (
    Completed,
    Created,
    ErrorEvent,
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    OutputTextDelta,
    RateLimits,
    RateLimitWindow,
    Reasoning,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningText,
    Refusal,
    RefusalDelta,
    ResponseEvent,
    SummaryText,
    TokenUsage,
)

AggregateMode = Literal["streaming", "aggregated"]
PROPERTY = settings(max_examples=200, deadline=None)

# The notation of seed-behaviour.md (see also tests/test_process.py).


def added_message() -> OutputItemAdded:
    return OutputItemAdded(item=Message(role="assistant", content=[]))


def added_reasoning() -> OutputItemAdded:
    return OutputItemAdded(item=Reasoning(summary=[], content=[]))


def text(delta: str) -> OutputTextDelta:
    return OutputTextDelta(delta=delta)


def think(delta: str) -> ReasoningContentDelta:
    return ReasoningContentDelta(delta=delta)


def done_message(*parts: str) -> OutputItemDone:
    return OutputItemDone(
        item=Message(role="assistant", content=[OutputText(text=p) for p in parts])
    )


def done_reasoning(*parts: str) -> OutputItemDone:
    return OutputItemDone(
        item=Reasoning(summary=[], content=[ReasoningText(text=p) for p in parts])
    )


def done_call(name: str, arguments: str, call_id: str) -> OutputItemDone:
    return OutputItemDone(item=FunctionCall(name=name, arguments=arguments, call_id=call_id))


def completed(usage: TokenUsage | None = None, finish: str | None = None) -> Completed:
    return Completed(response_id="", token_usage=usage, finish_reason=finish)


USAGE = TokenUsage(
    input_tokens=10,
    cached_input_tokens=0,
    output_tokens=2,
    reasoning_output_tokens=0,
    total_tokens=12,
)
OVERLOADED = ErrorEvent(kind="unexpected_status", message="Overloaded", status=200)


def aggregate(mode: AggregateMode, *batches: Sequence[ResponseEvent]) -> list[ResponseEvent]:
    aggregator = Aggregator(mode)
    out: list[ResponseEvent] = []
    for batch in batches:
        out += aggregator.feed(list(batch))
    return out


# --------------------------------------------------------------------------------------------
# Streaming mode
# --------------------------------------------------------------------------------------------


def test_streaming_forwards_deltas_and_makes_the_message_whole() -> None:
    raw: list[ResponseEvent] = [
        added_message(),
        text("Hel"),
        text("lo"),
        done_message("Hel", "lo"),
        completed(USAGE, "stop"),
    ]
    assert aggregate("streaming", raw) == [
        added_message(),
        text("Hel"),
        text("lo"),
        done_message("Hello"),
        completed(USAGE, "stop"),
    ]


def test_streaming_forwards_reasoning_unchanged() -> None:
    """In Streaming mode reasoning is never aggregated (§7.6)."""
    raw: list[ResponseEvent] = [
        added_reasoning(),
        think("partA"),
        think("partB"),
        done_reasoning("partA", "partB"),
        completed(),
    ]
    assert aggregate("streaming", raw) == raw


def test_streaming_forwards_a_message_without_deltas_unchanged() -> None:
    raw: list[ResponseEvent] = [done_message("a", "b"), completed()]
    assert aggregate("streaming", raw) == raw


def test_streaming_keeps_the_message_before_the_calls() -> None:
    """D5: the whole message stays where the raw stream closed it, before the call (the
    seed's aggregator swallows it and emits it at Completed, after the call, B10)."""
    raw: list[ResponseEvent] = [
        added_message(),
        text("Let me check."),
        done_message("Let me check."),
        done_call("shell", "{}", "call_1"),
        completed(finish="tool_calls"),
    ]
    assert aggregate("streaming", raw) == raw


def test_streaming_completed_makes_leftover_text_whole() -> None:
    """Deltas that no finished item closed become a message before Completed; in Streaming
    mode reasoning deltas are not aggregated."""
    raw: list[ResponseEvent] = [
        added_reasoning(),
        think("r"),
        added_message(),
        text("a"),
        text("b"),
        completed(),
    ]
    assert aggregate("streaming", raw) == [*raw[:-1], done_message("ab"), completed()]


def test_streaming_each_message_is_made_from_its_own_deltas() -> None:
    raw: list[ResponseEvent] = [
        added_message(),
        text("a"),
        done_message("a"),
        added_message(),
        text("b"),
        text("c"),
        done_message("b", "c"),
        completed(),
    ]
    assert aggregate("streaming", raw) == [
        added_message(),
        text("a"),
        done_message("a"),
        added_message(),
        text("b"),
        text("c"),
        done_message("bc"),
        completed(),
    ]


# --------------------------------------------------------------------------------------------
# Aggregated mode (D14)
# --------------------------------------------------------------------------------------------


def test_aggregated_emits_only_finished_items_and_completed() -> None:
    """D14: no `OutputItemAdded`, no deltas, and the reasoning once (the seed forwards
    `Added` and emits the reasoning twice, B11/B20)."""
    raw: list[ResponseEvent] = [
        added_reasoning(),
        think("th"),
        think("ink"),
        added_message(),
        text("o"),
        text("k"),
        done_reasoning("th", "ink"),
        done_message("o", "k"),
        completed(USAGE, "stop"),
    ]
    assert aggregate("aggregated", raw) == [
        done_reasoning("think"),
        done_message("ok"),
        completed(USAGE, "stop"),
    ]


def test_aggregated_keeps_the_order_of_reasoning_message_and_calls() -> None:
    """D5 + D14: the seed would give `Added(R), Added(M), Done(R), Done(FC), Done(R),
    Done(M), Completed`."""
    raw: list[ResponseEvent] = [
        added_reasoning(),
        think("plan"),
        added_message(),
        text("Checking."),
        done_reasoning("plan"),
        done_message("Checking."),
        done_call("a", "{}", "call_a"),
        done_call("b", '{"x":1}', "call_b"),
        completed(finish="tool_calls"),
    ]
    assert aggregate("aggregated", raw) == [
        done_reasoning("plan"),
        done_message("Checking."),
        done_call("a", "{}", "call_a"),
        done_call("b", '{"x":1}', "call_b"),
        completed(finish="tool_calls"),
    ]


def test_aggregated_completed_makes_leftover_deltas_whole() -> None:
    raw: list[ResponseEvent] = [
        added_reasoning(),
        think("r1"),
        think("r2"),
        added_message(),
        text("t"),
        completed(),
    ]
    assert aggregate("aggregated", raw) == [
        done_reasoning("r1r2"),
        done_message("t"),
        completed(),
    ]


def test_aggregated_reasoning_without_deltas_keeps_its_text() -> None:
    assert aggregate("aggregated", [done_reasoning("x"), completed()]) == [
        done_reasoning("x"),
        completed(),
    ]


def test_aggregated_message_without_deltas() -> None:
    assert aggregate("aggregated", [done_message("only"), completed()]) == [
        done_message("only"),
        completed(),
    ]


def test_aggregated_error_after_finished_items() -> None:
    raw: list[ResponseEvent] = [added_message(), text("par"), done_message("par"), OVERLOADED]
    assert aggregate("aggregated", raw) == [done_message("par"), OVERLOADED]


# --------------------------------------------------------------------------------------------
# Both modes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
def test_errors_and_rate_limits_are_forwarded(mode: AggregateMode) -> None:
    limits = RateLimits(primary=RateLimitWindow(used_percent=12.5, window_minutes=60))
    assert aggregate(mode, [limits, OVERLOADED]) == [limits, OVERLOADED]


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
def test_unused_event_kinds_are_swallowed(mode: AggregateMode) -> None:
    raw: list[ResponseEvent] = [
        Created(),
        ReasoningSummaryDelta(delta="s"),
        ReasoningSummaryPartAdded(),
        completed(),
    ]
    assert aggregate(mode, raw) == [completed()]


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
def test_function_calls_are_forwarded_at_once(mode: AggregateMode) -> None:
    call = done_call("run", '{"a":1}', "call_1")
    assert aggregate(mode, [call]) == [call]


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
def test_state_is_kept_across_batches(mode: AggregateMode) -> None:
    raw: list[ResponseEvent] = [
        added_reasoning(),
        think("a"),
        think("b"),
        added_message(),
        text("c"),
        text("d"),
        done_reasoning("a", "b"),
        done_message("c", "d"),
        completed(),
    ]
    one = aggregate(mode, raw)
    assert aggregate(mode, *[[event] for event in raw]) == one
    assert aggregate(mode, raw[:3], [], raw[3:6], raw[6:]) == one


# --------------------------------------------------------------------------------------------
# What providers send besides text (D18, D22, D23)
# --------------------------------------------------------------------------------------------


def refused(delta: str) -> RefusalDelta:
    return RefusalDelta(delta=delta)


CITED = [{"type": "url_citation", "url_citation": {"url": "https://a"}}]


def test_streaming_makes_the_refusal_whole_and_keeps_the_annotations() -> None:
    """D23, D22: refusal pieces become one refusal part, after the whole text; what else
    the message carries stays."""
    pieces = Message(
        role="assistant",
        content=[OutputText(text="Par"), Refusal(refusal="no"), Refusal(refusal="pe")],
        annotations=CITED,
    )
    raw = [added_message(), text("Par"), refused("no"), refused("pe"), OutputItemDone(pieces)]
    whole = Message(
        role="assistant",
        content=[OutputText(text="Par"), Refusal(refusal="nope")],
        annotations=CITED,
    )
    assert aggregate("streaming", raw) == [*raw[:4], OutputItemDone(whole)]
    assert aggregate("aggregated", raw) == [OutputItemDone(whole)]


def test_refusal_deltas_no_item_closed_become_a_message_before_completed() -> None:
    raw = [refused("no"), completed()]
    whole = Message(role="assistant", content=[Refusal(refusal="no")])
    assert aggregate("aggregated", raw) == [OutputItemDone(whole), completed()]


def test_aggregated_makes_the_summary_whole_and_keeps_the_encrypted_content() -> None:
    """D18: in aggregated mode a reasoning's summary is whole, as its text is."""
    pieces = Reasoning(
        summary=[SummaryText(text="Pl"), SummaryText(text="an")],
        content=[],
        encrypted_content="gAAAA",
    )
    raw = [added_reasoning(), OutputItemDone(pieces), completed()]
    whole = Reasoning(summary=[SummaryText(text="Plan")], content=[], encrypted_content="gAAAA")
    assert aggregate("aggregated", raw) == [OutputItemDone(whole), completed()]
    assert aggregate("streaming", raw) == raw


# --------------------------------------------------------------------------------------------
# Properties over raw turns shaped like the processor's output
# --------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from(list("ab é😀\n")), min_size=1, max_size=4)


@st.composite
def raw_turns(
    draw: st.DrawFn,
) -> tuple[list[ResponseEvent], list[str], list[str], list[OutputItemDone], ResponseEvent]:
    reasoning = draw(st.lists(TEXT, max_size=3))
    texts = draw(st.lists(TEXT, max_size=3))
    calls = [
        done_call(f"f{i}", arguments, f"call_{i}")
        for i, arguments in enumerate(draw(st.lists(TEXT, max_size=2)))
    ]
    terminals: list[ResponseEvent] = [completed(), completed(USAGE, "stop"), OVERLOADED]
    terminal = draw(st.sampled_from(terminals))
    raw: list[ResponseEvent] = []
    if reasoning:
        raw += [added_reasoning(), *map(think, reasoning)]
    if texts:
        raw += [added_message(), *map(text, texts)]
    if reasoning:
        raw.append(done_reasoning(*reasoning))
    if texts:
        raw.append(done_message(*texts))
    raw += calls
    raw.append(terminal)
    return raw, reasoning, texts, calls, terminal


@PROPERTY
@given(raw_turns(), st.lists(st.integers(0, 20)))
def test_property_aggregated_mode(
    turn: tuple[list[ResponseEvent], list[str], list[str], list[OutputItemDone], ResponseEvent],
    cuts: list[int],
) -> None:
    """D14: finished items only, reasoning once with all its text, the message whole, in the
    raw order; however the raw events are batched."""
    raw, reasoning, texts, calls, terminal = turn
    expected: list[ResponseEvent] = []
    if reasoning:
        expected.append(done_reasoning("".join(reasoning)))
    if texts:
        expected.append(done_message("".join(texts)))
    expected += [*calls, terminal]
    points = [0, *sorted({min(cut, len(raw)) for cut in cuts}), len(raw)]
    batches = [raw[a:b] for a, b in itertools.pairwise(points)]
    assert aggregate("aggregated", *batches) == expected


@PROPERTY
@given(raw_turns(), st.lists(st.integers(0, 20)))
def test_property_streaming_mode(
    turn: tuple[list[ResponseEvent], list[str], list[str], list[OutputItemDone], ResponseEvent],
    cuts: list[int],
) -> None:
    """Streaming: the raw sequence with only the finished message made whole."""
    raw, _, texts, _, _ = turn
    expected = [
        done_message("".join(texts))
        if isinstance(e, OutputItemDone) and isinstance(e.item, Message)
        else e
        for e in raw
    ]
    points = [0, *sorted({min(cut, len(raw)) for cut in cuts}), len(raw)]
    batches = [raw[a:b] for a, b in itertools.pairwise(points)]
    assert aggregate("streaming", *batches) == expected
