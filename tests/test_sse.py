"""The SSE decoder against the WHATWG event-stream rules, and chunking invariance.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
(seed-behaviour.md §7.4). The property tests check that splitting a body anywhere, down to
inside a UTF-8 character or between CR and LF, changes nothing, for the decoder and for the
whole `EventPipeline`, and that arbitrary bytes never break either.
"""

import itertools
import json
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmx_replay import Aggregator, EventPipeline, ServerSentEvent, SSEDecodeError, SSEDecoder
from llmx_replay.models import Completed, ErrorEvent, ResponseEvent

BOM = b"\xef\xbb\xbf"
Mode = Literal["raw", "streaming", "aggregated"]
MODES: tuple[Mode, ...] = ("raw", "streaming", "aggregated")
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_all(*chunks: bytes) -> list[ServerSentEvent]:
    """Decode the chunks in order, then flush."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.decode(chunk)
    events += decoder.flush()
    return events


def datas(*chunks: bytes) -> list[str]:
    return [event.data for event in decode_all(*chunks)]


def ev(
    data: str, event: str = "message", id: str = "", retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(data=data, event=event, id=id, retry=retry)


def split_at(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(points)]


# --------------------------------------------------------------------------------------------
# Byte order mark
# --------------------------------------------------------------------------------------------


def test_bom_is_stripped_and_the_first_event_is_kept() -> None:
    assert decode_all(BOM + b"data: first\n\ndata: second\n\n") == [ev("first"), ev("second")]


def test_bom_split_across_chunks() -> None:
    assert datas(BOM[:1], BOM[1:2], BOM[2:] + b"data: first\n\n") == ["first"]


def test_bom_alone_in_the_first_chunk() -> None:
    assert datas(BOM, b"data: first\n\n") == ["first"]


def test_only_one_bom_is_stripped() -> None:
    """A second BOM belongs to the field name `\\ufeffdata`, an unknown field."""
    assert datas(BOM + BOM + b"data: x\n\ndata: y\n\n") == ["y"]


def test_bom_is_stripped_only_at_the_start() -> None:
    assert datas(b"data: a\n\n", BOM + b"data: b\n\n") == ["a"]
    assert datas(b"data: a\n\n" + BOM + b"data: b\n\ndata: c\n\n") == ["a", "c"]


def test_bom_inside_a_value_is_kept() -> None:
    assert datas(b"data: a" + BOM + b"b\n\n") == ["a\ufeffb"]


# --------------------------------------------------------------------------------------------
# Line endings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_line_endings(eol: bytes) -> None:
    body = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert datas(body) == ["a\nb", "c"]


def test_mixed_line_endings() -> None:
    assert datas(b"data: a\r\ndata: b\r\rdata: c\n\r\ndata: d\r\n\n") == ["a\nb", "c", "d"]


def test_crlf_split_between_cr_and_lf() -> None:
    assert datas(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_cr_then_crlf_is_two_line_breaks() -> None:
    assert datas(b"data: a\r", b"\r\n") == ["a"]


def test_cr_at_a_chunk_end_then_an_empty_chunk() -> None:
    assert datas(b"data: a\r", b"", b"\ndata: b\r\n\r\n") == ["a\nb"]


# --------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    body = b": keep-alive\n\n:\ndata: a\n: inside\ndata: b\n\n"
    assert datas(body) == ["a\nb"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert datas(b"data: one\ndata: two\ndata: three\n\n") == ["one\ntwo\nthree"]


def test_one_leading_space_is_stripped() -> None:
    body = b"data:x\n\ndata: x\n\ndata:  x\n\ndata: x \n\n"
    assert datas(body) == ["x", "x", " x", "x "]


def test_empty_data_dispatches_an_empty_string() -> None:
    assert datas(b"data:\n\ndata: \n\ndata\n\n") == ["", "", ""]


def test_empty_data_lines_add_newlines() -> None:
    assert datas(b"data:\ndata:\n\ndata: a\ndata:\n\n") == ["\n", "a\n"]


def test_colon_in_value_is_kept() -> None:
    assert datas(b'data: {"a": "b:c"}\n\n') == ['{"a": "b:c"}']


def test_event_type() -> None:
    events = decode_all(b"event: ping\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\n")
    assert events == [ev("a", event="ping"), ev("b"), ev("c")]


def test_event_type_does_not_leak_from_an_undispatched_block() -> None:
    assert decode_all(b"event: ping\n\ndata: a\n\n") == [ev("a")]


def test_id_persists_and_can_be_reset() -> None:
    body = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\nid\ndata: d\n\n"
    assert decode_all(body) == [ev("a", id="1"), ev("b", id="1"), ev("c", id="2"), ev("d")]


def test_id_after_data_in_the_same_block_applies() -> None:
    assert decode_all(b"data: a\nid: 7\n\n") == [ev("a", id="7")]


def test_id_with_nul_is_ignored() -> None:
    body = b"id: good\ndata: a\n\nid: b\x00d\ndata: b\n\n"
    assert decode_all(body) == [ev("a", id="good"), ev("b", id="good")]


def test_retry_digits_only() -> None:
    body = (
        b"retry: 1500\ndata: a\n\n"
        b"retry: 15x\ndata: b\n\n"
        b"retry: -1\ndata: c\n\n"
        b"retry:\ndata: d\n\n"
        b"retry: \xc2\xb2\ndata: e\n\n"
        b"retry:7\ndata: f\n\n"
    )
    assert decode_all(body) == [
        ev("a", retry=1500),
        ev("b"),
        ev("c"),
        ev("d"),
        ev("e"),
        ev("f", retry=7),
    ]


def test_unknown_fields_are_ignored() -> None:
    assert decode_all(b"foo: bar\nData: x\ndata: a\n\n") == [ev("a")]


def test_blocks_without_data_are_not_dispatched() -> None:
    body = b"event: ping\n\nid: 3\n\nretry: 10\n\n: comment\n\n\n\n\ndata: a\n\n\n\n"
    assert decode_all(body) == [ev("a", id="3")]


def test_blank_lines_alone_give_no_events() -> None:
    assert decode_all(b"\n\n\n\r\n\r\r") == []


def test_unterminated_final_event_is_discarded() -> None:
    assert datas(b"data: a\n\ndata: b\n") == ["a"]
    assert datas(b"data: a\n\ndata: b") == ["a"]
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\n\ndata: b") == [ev("a")]
    assert decoder.flush() == []


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\n") == []
    assert decoder.decode(b"\n") == [ev("a")]
    assert decoder.decode(b"data: b\n\ndata: c\n\nda") == [ev("b"), ev("c")]
    assert decoder.decode(b"ta: d\n\n") == [ev("d")]
    assert decoder.flush() == []


def test_multi_byte_characters_split_across_chunks() -> None:
    body = "data: é€😀\n\n".encode()
    start = body.index(b"\xf0")
    assert datas(body[: start + 1], body[start + 1 : start + 3], body[start + 3 :]) == ["é€😀"]


# --------------------------------------------------------------------------------------------
# Invalid UTF-8
# --------------------------------------------------------------------------------------------


def test_invalid_utf8_raises_with_the_events_before_it() -> None:
    decoder = SSEDecoder()
    with pytest.raises(SSEDecodeError) as raised:
        decoder.decode(b"data: a\n\ndata: b\n\ndata: \xff\n\ndata: c\n\n")
    assert raised.value.events == [ev("a"), ev("b")]


def test_invalid_utf8_in_a_later_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\n\n") == [ev("a")]
    with pytest.raises(SSEDecodeError) as raised:
        decoder.decode(b"data: b\n\n\x80")
    assert raised.value.events == [ev("b")]


@pytest.mark.parametrize(
    "bad",
    [b"\x80\x80", b"\xc3\x28", b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xc0\xaf"],
)
def test_invalid_sequences_raise(bad: bytes) -> None:
    with pytest.raises(SSEDecodeError):
        decode_all(b"data: " + bad + b"\n\n")


def test_invalid_continuation_after_a_split_character_raises() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: \xe2\x82") == []
    with pytest.raises(SSEDecodeError):
        decoder.decode(b"A\n\n")


def test_truncated_character_at_flush_raises() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\n\ndata: \xe2\x82") == [ev("a")]
    with pytest.raises(SSEDecodeError):
        decoder.flush()


def test_sse_decode_error_is_a_library_error() -> None:
    from llmx_replay import LlmxReplayError

    assert issubclass(SSEDecodeError, LlmxReplayError)


# --------------------------------------------------------------------------------------------
# Property: the decoder's events do not depend on how the body is split
# --------------------------------------------------------------------------------------------

VALUE_TEXT = st.text(alphabet=st.sampled_from(list('ab :é€😀\ufeff\r\n{}"')), max_size=8)
LINE = st.one_of(
    VALUE_TEXT.map(lambda v: f"data: {v}"),
    VALUE_TEXT.map(lambda v: f"data:{v}"),
    st.just("data"),
    VALUE_TEXT.map(lambda v: f"event: {v}"),
    VALUE_TEXT.map(lambda v: f"id: {v}"),
    st.sampled_from(["retry: 100", "retry: x", "id: a\x00b", ": comment é", ":", "unknown: 1"]),
)
EOL = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def sse_bodies(draw: st.DrawFn) -> bytes:
    parts: list[str] = []
    for line, eol, blank in draw(st.lists(st.tuples(LINE, EOL, st.booleans()), max_size=12)):
        parts.append(line + eol)
        if blank:
            parts.append(draw(EOL))
    prefix = BOM if draw(st.booleans()) else b""
    return prefix + "".join(parts).encode()


def outcome(chunks: Sequence[bytes]) -> tuple[list[ServerSentEvent], bool]:
    """The events decoded (up to an error, included) and whether decoding failed."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    try:
        for chunk in chunks:
            events += decoder.decode(chunk)
        events += decoder.flush()
    except SSEDecodeError as raised:
        return events + raised.events, True
    return events, False


@PROPERTY
@given(st.data())
def test_property_decoder_split_anywhere_gives_the_same_events(data: st.DataObject) -> None:
    body = data.draw(sse_bodies())
    cuts = data.draw(st.lists(st.integers(0, len(body))))
    whole = outcome([body])
    assert whole[1] is False
    assert outcome(split_at(body, cuts)) == whole


@PROPERTY
@given(st.data())
def test_property_decoder_byte_by_byte_gives_the_same_events(data: st.DataObject) -> None:
    body = data.draw(sse_bodies())
    assert outcome([body[i : i + 1] for i in range(len(body))]) == outcome([body])


@PROPERTY
@given(st.data())
def test_property_decoder_arbitrary_bytes(data: st.DataObject) -> None:
    """Arbitrary bytes, split anywhere: only `SSEDecodeError` is ever raised, flushing ends
    the body, and the outcome is the same as decoding it in one piece."""
    prefix = data.draw(st.sampled_from([b"", b"data: ", BOM, b"data: a\r"]))
    body = prefix + data.draw(st.binary(max_size=120))
    cuts = data.draw(st.lists(st.integers(0, len(body))))
    assert outcome(split_at(body, cuts)) == outcome([body])


# --------------------------------------------------------------------------------------------
# Property: the pipeline's events do not depend on how the body is split
# --------------------------------------------------------------------------------------------

CHAT_TEXT = st.text(alphabet=st.sampled_from(list('ab é€😀\n"\\')), min_size=1, max_size=5)


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}


def _tool_call(index: int, first: bool, arguments: str) -> dict[str, Any]:
    """A tool-call fragment; the first one of a call carries its id and name."""
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if first:
        fragment["id"] = f"call_{index}"
        fragment["type"] = "function"
        fragment["function"]["name"] = f"tool_{index}"
    return fragment


REASONING_DETAIL = st.one_of(
    CHAT_TEXT.map(lambda t: {"type": "reasoning.summary", "summary": t}),
    CHAT_TEXT.map(lambda t: {"type": "reasoning.encrypted", "data": t}),
    CHAT_TEXT.map(lambda t: {"type": "reasoning.text", "signature": t}),
)

CHAT_PAYLOAD = st.one_of(
    CHAT_TEXT.map(lambda t: _choice({"content": t})),
    CHAT_TEXT.map(lambda t: _choice({"reasoning": t})),
    CHAT_TEXT.map(lambda t: _choice({"reasoning_content": {"text": t}})),
    CHAT_TEXT.map(lambda t: _choice({"content": [{"type": "text", "text": t}]})),
    st.builds(_tool_call, st.integers(0, 2), st.booleans(), CHAT_TEXT).map(
        lambda fragment: _choice({"tool_calls": [fragment]})
    ),
    CHAT_TEXT.map(lambda t: _choice({"refusal": t})),
    CHAT_TEXT.map(
        lambda t: _choice({"reasoning_details": [{"type": "reasoning.text", "text": t}]})
    ),
    st.lists(REASONING_DETAIL, min_size=1, max_size=3).map(
        lambda details: _choice({"reasoning_details": details})
    ),
    CHAT_TEXT.map(
        lambda t: _choice({"annotations": [{"type": "url_citation", "url_citation": {"url": t}}]})
    ),
    CHAT_TEXT.map(lambda t: {"choices": [], "citations": [t], "search_results": [{"url": t}]}),
    st.booleans().map(
        lambda flagged: {"choices": [], "moderation": {"output": {"flagged": flagged}}}
    ),
    st.sampled_from(["stop", "length", "tool_calls", ""]).map(lambda f: _choice({}, f)),
    st.integers(0, 50).map(
        lambda n: {"choices": [], "usage": {"prompt_tokens": n, "completion_tokens": 2}}
    ),
    st.just({"error": None, "choices": []}),
    st.just({"error": {"message": "Overloaded", "code": "overloaded", "status_code": 529}}),
    st.just("not-json"),
    st.just("[DONE]"),
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> bytes:
    out = [BOM.decode()] if draw(st.booleans()) else []
    for payload in draw(st.lists(CHAT_PAYLOAD, max_size=10)):
        eol = draw(EOL)
        if draw(st.booleans()):
            out.append(f": keep-alive{eol}")
        if draw(st.booleans()):
            out.append(f"event: message{eol}")
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        out.append(f"data: {data}{eol}{eol}")
    return "".join(out).encode()


def pipeline_events(chunks: Sequence[bytes], mode: Mode) -> list[dict[str, Any]]:
    pipeline = EventPipeline(mode)
    events: list[ResponseEvent] = []
    for chunk in chunks:
        events += pipeline.feed(chunk)
    events += pipeline.end()
    return [event.model_dump(mode="json") for event in events]


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(data=st.data())
def test_property_pipeline_rechunking_keeps_the_events(mode: Mode, data: st.DataObject) -> None:
    body = data.draw(chat_bodies())
    cuts = data.draw(st.lists(st.integers(0, len(body))))
    assert pipeline_events(split_at(body, cuts), mode) == pipeline_events([body], mode)


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
@PROPERTY
@given(data=st.data())
def test_property_pipeline_modes_are_the_aggregator_over_the_raw_sequence(
    mode: Literal["streaming", "aggregated"], data: st.DataObject
) -> None:
    """The pipeline builds each mode's whole parts in the processor instead of aggregating:
    what it shows must be what `Aggregator` makes of the raw sequence."""
    body = data.draw(chat_bodies())
    chunks = split_at(body, data.draw(st.lists(st.integers(0, len(body)))))
    raw = EventPipeline("raw")
    events: list[ResponseEvent] = []
    for chunk in chunks:
        events += raw.feed(chunk)
    events += raw.end()
    aggregated = Aggregator(mode).feed(events)
    assert pipeline_events(chunks, mode) == [event.model_dump(mode="json") for event in aggregated]


def assert_one_terminal_event_at_the_end(events: Sequence[ResponseEvent]) -> None:
    terminal = [i for i, e in enumerate(events) if isinstance(e, Completed | ErrorEvent)]
    assert terminal == [len(events) - 1], events


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(data=st.data())
def test_property_pipeline_arbitrary_bytes_end_with_one_terminal_event(
    mode: Mode, data: st.DataObject
) -> None:
    prefix = data.draw(
        st.sampled_from([b"", b"data: ", b'data: {"choices":[{"delta":{"content":"', BOM, b"{"])
    )
    body = prefix + data.draw(st.binary(max_size=120))
    cuts = data.draw(st.lists(st.integers(0, len(body))))
    pipeline = EventPipeline(mode)
    events: list[ResponseEvent] = []
    for chunk in split_at(body, cuts):
        events += pipeline.feed(chunk)
    events += pipeline.end()
    assert pipeline.done
    assert_one_terminal_event_at_the_end(events)


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(data=st.data())
def test_property_pipeline_chat_bodies_end_with_one_terminal_event(
    mode: Mode, data: st.DataObject
) -> None:
    body = data.draw(chat_bodies())
    pipeline = EventPipeline(mode)
    events = pipeline.feed(body)
    events += (
        pipeline.end_abruptly("idle_timeout", "idle")
        if data.draw(st.booleans())
        else pipeline.end()
    )
    assert_one_terminal_event_at_the_end(events)


# --- one big event -------------------------------------------------------------------------


def test_an_event_arriving_in_many_pieces_is_decoded_whole() -> None:
    payload = b'{"choices":[{"index":0,"delta":{"content":"' + b"x" * 300_000 + b'"}}]}'
    body = b"data: " + payload + b"\n\ndata: [DONE]\n\n"
    decoder = SSEDecoder()
    pieces = [body[start : start + 997] for start in range(0, len(body), 997)]
    data = [item for piece in pieces for item in decoder.decode_data(piece)]
    assert data == [payload, b"[DONE]"]


def test_a_blank_line_split_across_pieces_ends_the_event() -> None:
    decoder = SSEDecoder()
    assert decoder.decode_data(b"data: a\n") == []
    assert decoder.decode_data(b"\ndata: b\n") == [b"a"]
    assert decoder.decode_data(b"\n") == [b"b"]


def test_an_event_past_the_cap_raises_saying_so() -> None:
    decoder = SSEDecoder(max_event_bytes=1_000)
    assert decoder.decode_data(b"data: [1]\n\n") == [b"[1]"]
    decoder.decode_data(b"data: " + b"x" * 600)
    with pytest.raises(SSEDecodeError) as caught:
        decoder.decode_data(b"x" * 600)
    assert str(caught.value) == (
        "an event of the stream exceeds 1,000 bytes without ending "
        "(set LLMX_REPLAY_MAX_EVENT_BYTES to allow more)"
    )


def test_a_line_that_never_ends_ends_the_stream_with_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMX_REPLAY_MAX_EVENT_BYTES", "4096")
    pipeline = EventPipeline("streaming")
    events = [event for _ in range(10) for event in pipeline.feed(b"data: " + b"y" * 1000)]
    (error,) = events
    assert isinstance(error, ErrorEvent)
    assert error.kind == "stream"
    assert "exceeds 4,096 bytes" in error.message
