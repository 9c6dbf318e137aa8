"""Parts and items the stream builds without validation equal those pydantic validates.

The processor builds a part per delta with `text_parts` / `refusal_parts`, and the finished
`Reasoning` and `Message` with `model_construct` (issue 14). Each must be what the same
constructor call validated would give: equal, dumped alike (with and without unset fields),
with the same repr and fields set; checked on the builders, on a stream with every kind of
part, and on every Chat Completions interaction of the corpus when there is one.
"""

import copy
import dataclasses
import pickle
from collections.abc import Iterator
from typing import Any, get_args

import orjson
import pytest
from pydantic import BaseModel

from llmx_replay import EventPipeline, StreamMode
from llmx_replay.cassette import load_cassette
from llmx_replay.harness import Playback, play_response
from llmx_replay.models import (
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    ReasoningText,
    Refusal,
    ResponseEvent,
    SummaryText,
)
from llmx_replay.models.items import refusal_parts, text_parts
from tests.corpus.conftest import cassette_names, corpus_problem, corpus_root

MODES: tuple[StreamMode, ...] = get_args(StreamMode)
TEXTS = ["Hel", "lo", " ", "lo", "", "naïve → 😀", "Hel", '"quoted"\n']


def validated(value: Any) -> Any:
    """`value` built again through validation, each model from the fields it was given."""
    if isinstance(value, BaseModel):
        given = {name: validated(getattr(value, name)) for name in value.model_fields_set}
        return type(value).model_validate(given)
    if isinstance(value, list):
        return [validated(item) for item in value]
    return value


def assert_same(built: BaseModel, reference: BaseModel) -> None:
    assert built == reference
    assert repr(built) == repr(reference)
    assert built.model_fields_set == reference.model_fields_set
    assert built.model_dump(mode="json") == reference.model_dump(mode="json")
    assert built.model_dump(exclude_unset=True) == reference.model_dump(exclude_unset=True)
    assert built.model_dump_json() == reference.model_dump_json()


def parts_of(item: BaseModel) -> Iterator[BaseModel]:
    for name in ("content", "summary"):
        yield from getattr(item, name, None) or ()


def assert_events_as_validated(events: list[ResponseEvent]) -> None:
    """Every item of `events`, and every part of it, is as validation builds it."""
    for event in events:
        if not isinstance(event, OutputItemAdded | OutputItemDone):
            continue
        reference = validated(event.item)
        assert_same(event.item, reference)
        assert event == dataclasses.replace(event, item=reference)
        assert event.model_dump(mode="json") == type(event)(reference).model_dump(mode="json")
        for part in parts_of(event.item):
            from_dump = type(part).model_validate(part.model_dump())
            assert part == from_dump
            assert part.model_dump_json() == from_dump.model_dump_json()


# --- the builders -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [OutputText, ReasoningText, SummaryText])
def test_text_parts_are_the_validated_parts(kind: type[OutputText]) -> None:
    built = text_parts(kind, TEXTS)
    expected = [kind(text=text) for text in TEXTS]
    assert built == expected
    for part, reference in zip(built, expected, strict=True):
        assert_same(part, reference)
        assert hash(part) == hash(reference)


def test_refusal_parts_are_the_validated_parts() -> None:
    built = refusal_parts(TEXTS)
    expected = [Refusal(refusal=text) for text in TEXTS]
    for part, reference in zip(built, expected, strict=True):
        assert_same(part, reference)


def test_a_built_part_copies_and_pickles_alone() -> None:
    """Built parts share their fields set: a changed copy of one leaves the others alone."""
    first, second = text_parts(ReasoningText, ["a", "b"])
    changed = first.model_copy(update={"text": "c"})
    assert changed == ReasoningText(text="c")
    assert (first.text, second.text) == ("a", "b")
    assert first.model_fields_set == second.model_fields_set == {"text"}
    assert copy.deepcopy(first) == first
    assert pickle.loads(pickle.dumps(second)) == second
    with pytest.raises(ValueError, match="frozen"):
        first.text = "d"  # type: ignore[misc]


# --- streams ------------------------------------------------------------------------------


def body(*deltas: dict[str, Any], finish: dict[str, Any] | None = None) -> bytes:
    chunks = [{"id": "r1", "choices": [{"index": 0, "delta": delta}]} for delta in deltas]
    chunks.append(
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **(finish or {})}
    )
    events = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)
    return events + b"data: [DONE]\n\n"


EVERY_PART = body(
    {"role": "assistant", "reasoning": "Let"},
    {"reasoning": " me"},
    {"reasoning_content": " me"},
    {
        "reasoning_details": [
            {"type": "reasoning.summary", "summary": "Sum"},
            {"type": "reasoning.summary", "summary": "mary"},
            {"type": "reasoning.text", "text": " think", "signature": "sig"},
            {"type": "reasoning.encrypted", "data": "enc"},
        ]
    },
    {"content": [{"type": "thinking", "thinking": [{"text": " more"}]}]},
    {"content": "Hello"},
    {"content": ", world"},
    {"refusal": "I can"},
    {"refusal": "not"},
    {"annotations": [{"type": "url_citation", "url_citation": {"url": "https://a.test"}}]},
    {"content": "Hello"},
    finish={"citations": ["https://a.test"], "search_results": [{"url": "https://a.test"}]},
)


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_with_every_kind_of_part_gives_validated_items(mode: StreamMode) -> None:
    pipeline = EventPipeline(mode)
    events = pipeline.feed(EVERY_PART) + pipeline.end()
    done = [event.item for event in events if isinstance(event, OutputItemDone)]
    assert [item.type for item in done] == ["reasoning", "message"]
    assert_events_as_validated(events)


def test_every_corpus_interaction_gives_validated_items(pytestconfig: pytest.Config) -> None:
    problem = corpus_problem(pytestconfig)
    if problem is not None:
        pytest.skip(problem)
    root = corpus_root(pytestconfig)
    assert root is not None
    for name in cassette_names(root):
        for interaction in load_cassette(root / name).interactions:
            if not interaction.request.is_chat_completions:
                continue
            for mode in MODES:
                events = list(play_response(interaction.response, Playback(mode)))
                assert_events_as_validated(events)
