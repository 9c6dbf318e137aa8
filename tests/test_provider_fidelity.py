"""What providers send besides text, reasoning and calls, kept on the events (D18-D23).

Each test feeds chunks shaped as the provider sends them (the corpus cassette named in the
docstring holds the real stream) through `EventPipeline`, in every mode where the modes differ.
"""

from typing import Any

import pytest

from llmx_replay.models import (
    Completed,
    ErrorEvent,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    Reasoning,
    ReasoningText,
    Refusal,
    RefusalDelta,
    SummaryText,
)
from tests.test_process import (
    DONE,
    MODES,
    Mode,
    added_message,
    added_reasoning,
    c,
    completed,
    delta,
    done_message,
    done_reasoning,
    error,
    finish,
    r,
    run,
    text,
    think,
    usage,
)


def details(*parts: dict[str, Any], reasoning: str | None = None) -> dict[str, Any]:
    """A chunk whose delta carries OpenRouter's `reasoning_details` (and maybe `reasoning`)."""
    fields: dict[str, Any] = {"reasoning_details": list(parts)}
    if reasoning is not None:
        fields["reasoning"] = reasoning
    return delta(**fields)


def detail_text(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "reasoning.text", "text": text, "format": "anthropic-claude-v1"} | extra


# --------------------------------------------------------------------------------------------
# D18: reasoning_details
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_d18_reasoning_details_text_alone_is_reasoning(mode: Mode) -> None:
    """D18: reasoning sent only as `reasoning.text` details (Snowflake Cortex, OpenRouter) is
    reasoning, as `reasoning` is (the seed drops it)."""
    body = [details(detail_text("Let me ")), details(detail_text("think.")), c("Hi"), DONE]
    streamed = [
        added_reasoning(),
        think("Let me "),
        think("think."),
        added_message(),
        text("Hi"),
        done_reasoning("Let me ", "think."),
        done_message("Hi"),
        completed(),
    ]
    expected = {
        "raw": streamed,
        "streaming": streamed,
        "aggregated": [done_reasoning("Let me think."), done_message("Hi"), completed()],
    }
    assert run(body, mode) == expected[mode]


def test_d18_details_that_repeat_reasoning_are_read_once() -> None:
    """D18: OpenRouter sends each piece twice, as `reasoning` and as a detail; it is one piece
    (`openrouter/reasoning-details-tool-calls.yml`)."""
    body = [details(detail_text("once"), reasoning="once"), DONE]
    assert run(body, "aggregated") == [done_reasoning("once"), completed()]


@pytest.mark.parametrize("mode", MODES)
def test_d18_encrypted_details_are_the_reasonings_encrypted_content(mode: Mode) -> None:
    """D18: o-series models through OpenRouter send their reasoning encrypted only
    (`openrouter/reasoning-details.yaml`): a reasoning item with that encrypted content."""
    encrypted = {"type": "reasoning.encrypted", "data": "gAAAAB", "format": "openai-responses-v1"}
    body = [delta(reasoning=None, reasoning_details=[encrypted]), c("Hi"), finish("stop"), DONE]
    events = run(body, mode)
    reasoning = Reasoning(summary=[], content=[], encrypted_content="gAAAAB")
    assert events[-3:] == [
        OutputItemDone(item=reasoning),
        done_message("Hi"),
        completed(finish="stop"),
    ]
    assert (added_reasoning() in events) is (mode != "aggregated")
    assert reasoning.model_dump() == {
        "type": "reasoning",
        "summary": [],
        "encrypted_content": "gAAAAB",
    }


def test_d18_anthropic_signature_is_the_encrypted_content() -> None:
    """D18: Anthropic's thinking signature, sent on a text detail without text, is what it
    needs back to continue: the reasoning's encrypted content, its text unchanged."""
    body = [
        details(detail_text("Hmm"), reasoning="Hmm"),
        details({"type": "reasoning.text", "signature": "EvsC", "index": 0}),
        DONE,
    ]
    assert run(body, "aggregated") == [
        OutputItemDone(
            item=Reasoning(
                summary=[], content=[ReasoningText(text="Hmm")], encrypted_content="EvsC"
            )
        ),
        completed(),
    ]


@pytest.mark.parametrize(
    ("mode", "summary"), [("raw", ["Plan", "ning"]), ("aggregated", ["Planning"])]
)
def test_d18_summary_details_are_the_reasonings_summary(mode: Mode, summary: list[str]) -> None:
    """D18: `reasoning.summary` details make the reasoning's summary, a part per piece as the
    content has, whole in aggregated mode."""
    body = [
        details({"type": "reasoning.summary", "summary": "Plan"}),
        details({"type": "reasoning.summary", "summary": "ning"}),
        DONE,
    ]
    events = run(body, mode)
    assert events[-2:] == [
        OutputItemDone(
            item=Reasoning(summary=[SummaryText(text=piece) for piece in summary], content=[])
        ),
        completed(),
    ]


def test_d18_details_of_unknown_shape_are_ignored() -> None:
    body = [
        details({"type": "reasoning.future", "text": "?"}, "not a detail", {"text": "no type"}),
        details({"type": "reasoning.encrypted", "data": 7}, detail_text("")),
        c("Hi"),
        DONE,
    ]
    assert run(body, "aggregated") == [done_message("Hi"), completed()]


# --------------------------------------------------------------------------------------------
# D19: the provider's error object
# --------------------------------------------------------------------------------------------

GROQ_ERROR = {
    "message": "Failed to call a function. Please adjust your prompt.",
    "type": "invalid_request_error",
    "code": "tool_use_failed",
    "failed_generation": '<function=get_weather{"city": "Paris"}</function>',
    "status_code": 400,
}


def test_d19_in_stream_error_keeps_the_providers_error_object() -> None:
    """D19: Groq's in-stream `tool_use_failed` keeps its code, type, status code and failed
    generation; the event's own kind and status stay the seed's (S7)."""
    events = run([c("par"), {"error": GROQ_ERROR}])
    failure = events[-1]
    assert isinstance(failure, ErrorEvent)
    assert (failure.kind, failure.status, failure.message) == (
        "unexpected_status",
        200,
        GROQ_ERROR["message"],
    )
    assert failure.provider_error == GROQ_ERROR
    assert (failure.code, failure.error_type, failure.provider_status) == (
        "tool_use_failed",
        "invalid_request_error",
        400,
    )
    assert failure.model_dump()["provider_error"] == GROQ_ERROR


def test_d19_a_string_error_is_kept_as_it_came() -> None:
    failure = run([{"error": "Overloaded"}])[-1]
    assert isinstance(failure, ErrorEvent)
    assert failure.provider_error == "Overloaded"
    assert (failure.code, failure.error_type, failure.provider_status) == (None, None, None)


def test_d19_an_errors_absent_details_are_left_out_of_its_dump() -> None:
    """Errors that have nothing of the provider's dump as they did before D19/D20."""
    failure = run([c("par")])[-1]
    assert failure.model_dump() == {
        "type": "error",
        "kind": "stream",
        "message": "stream closed before completion",
        "status": None,
    }


# --------------------------------------------------------------------------------------------
# D20: an error after the finish reason
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_d20_error_after_finish_reason_keeps_the_finish_reason_and_usage(mode: Mode) -> None:
    """D20: OpenRouter ends a `length` turn with an error chunk that carries the usage
    (`openrouter/stream-error-comments-length.yaml`): the error still says both."""
    body = [
        r("We need"),
        finish("length"),
        finish("length"),
        {
            "error": {"code": 400, "message": "Token limit reached"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": None}],
            "usage": {"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53},
        },
        DONE,
    ]
    failure = run(body, mode)[-1]
    assert failure == error(
        "unexpected_status",
        "Token limit reached",
        200,
        provider_error={"code": 400, "message": "Token limit reached"},
        finish="length",
        usage=usage(43, 10, 53),
    )


def test_d20_a_stream_cut_before_the_finish_keeps_the_usage_seen() -> None:
    body = [c("par"), {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}]
    assert run(body)[-1] == error("stream", "stream closed before completion", usage=usage(3, 1, 4))


# --------------------------------------------------------------------------------------------
# D21: moderation
# --------------------------------------------------------------------------------------------


def moderation(flagged: bool) -> dict[str, Any]:
    """OpenAI's moderation report, as `ChatCompletionChunk.moderation` describes it."""
    result = {
        "type": "moderation_results",
        "model": "omni-moderation-latest",
        "results": [
            {
                "type": "moderation_result",
                "model": "omni-moderation-latest",
                "flagged": flagged,
                "categories": {"violence": flagged},
                "category_scores": {"violence": 0.9 if flagged else 0.01},
                "category_applied_input_types": {"violence": ["text"]},
            }
        ],
    }
    return {"input": result, "output": result}


@pytest.mark.parametrize("mode", MODES)
def test_d21_moderation_after_usage_is_on_completed(mode: Mode) -> None:
    """D21: the moderation chunk (`choices: []`) after the usage chunk is the turn's report: a
    flagged output no longer ends as a clean `Completed`."""
    body = [
        c("Hi"),
        finish("stop"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
        {"choices": [], "moderation": moderation(flagged=True)},
        DONE,
    ]
    done = run(body, mode)[-1]
    assert isinstance(done, Completed)
    assert done.moderation == moderation(flagged=True)
    assert done.token_usage == usage(5, 1, 6)
    assert done.model_dump()["moderation"]["output"]["results"][0]["flagged"] is True


def test_d21_the_last_report_wins_and_null_erases_nothing() -> None:
    body = [
        {"choices": [], "moderation": moderation(flagged=False)},
        c("Hi"),
        {"choices": [], "moderation": moderation(flagged=True)},
        {"choices": [], "moderation": None},
        DONE,
    ]
    done = run(body)[-1]
    assert isinstance(done, Completed)
    assert done.moderation == moderation(flagged=True)


def test_d21_an_error_carries_the_moderation_seen() -> None:
    body = [{"choices": [], "moderation": moderation(flagged=True)}, c("Hi")]
    failure = run(body)[-1]
    assert isinstance(failure, ErrorEvent)
    assert failure.moderation == moderation(flagged=True)


def test_d21_no_moderation_is_left_out_of_the_dump() -> None:
    assert "moderation" not in run([c("Hi"), DONE])[-1].model_dump()


# --------------------------------------------------------------------------------------------
# D22: annotations and sources
# --------------------------------------------------------------------------------------------


def url_citation(url: str) -> dict[str, Any]:
    return {
        "type": "url_citation",
        "url_citation": {"url": url, "title": "T", "start_index": 0, "end_index": 0},
    }


@pytest.mark.parametrize("mode", MODES)
def test_d22_annotations_are_kept_on_the_message(mode: Mode) -> None:
    """D22: OpenRouter's web search sends one `url_citation` per chunk, before the text
    (`openrouter/web-search-annotations.yaml`); the answer's message keeps them, in order."""
    body = [
        delta(content="", annotations=[url_citation("https://a")]),
        delta(content="", annotations=[url_citation("https://b")]),
        c("See a and b."),
        finish("stop"),
        DONE,
    ]
    message = run(body, mode)[-2]
    assert message == OutputItemDone(
        item=Message(
            role="assistant",
            content=[OutputText(text="See a and b.")],
            annotations=[url_citation("https://a"), url_citation("https://b")],
        )
    )


def test_d22_annotations_without_text_still_make_a_message() -> None:
    body = [delta(content="", annotations=[url_citation("https://a")]), DONE]
    assert run(body) == [
        added_message(),
        OutputItemDone(
            item=Message(role="assistant", content=[], annotations=[url_citation("https://a")])
        ),
        completed(),
    ]


def test_d22_perplexity_sources_are_the_last_sent_and_made_no_message_of_their_own() -> None:
    """D22: Perplexity repeats `citations` and `search_results` on every chunk, also after
    the finish reason (`perplexity/reasoning-pro-ping-comments.yml`)."""
    found = {"title": "A", "url": "https://a", "date": "2025-01-01"}

    def sourced(chunk: dict[str, Any], citations: list[str]) -> dict[str, Any]:
        return chunk | {"citations": citations, "search_results": [found]}

    body = [
        sourced(c("I"), ["https://a"]),
        sourced(c(" know."), ["https://a", "https://b"]),
        sourced(finish("stop"), ["https://a", "https://b"]),
        sourced({"choices": []}, ["https://a", "https://b"]),
    ]
    events = run(body, "aggregated")
    assert events == [
        OutputItemDone(
            item=Message(
                role="assistant",
                content=[OutputText(text="I know.")],
                citations=["https://a", "https://b"],
                search_results=[found],
            )
        ),
        completed(finish="stop"),
    ]


def test_d22_a_message_without_sources_dumps_as_the_seeds() -> None:
    message = run([c("Hi"), DONE], "aggregated")[0]
    assert message.model_dump() == {
        "type": "output_item_done",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi"}],
        },
    }


# --------------------------------------------------------------------------------------------
# D23: refusals
# --------------------------------------------------------------------------------------------


def refusal(delta_text: str) -> RefusalDelta:
    return RefusalDelta(delta=delta_text)


@pytest.mark.parametrize("mode", MODES)
def test_d23_a_refusal_is_marked_as_a_refusal(mode: Mode) -> None:
    """D23: OpenAI streams a refusal in `delta.refusal`, after `content: null, refusal: ""`
    (`openai/refusal-stream.yaml`): it is the answer's message, as a `refusal` part, as the
    Responses API has it (the seed dropped it; before D23 it read as answer text)."""
    body = [
        delta(role="assistant", content=None, refusal=""),
        delta(refusal="I can't"),
        delta(refusal=" help."),
        finish("stop"),
        DONE,
    ]
    pieces = {"raw": ["I can't", " help."], "streaming": ["I can't help."]}
    whole = Message(
        role="assistant",
        content=[Refusal(refusal=part) for part in pieces.get(mode, ["I can't help."])],
    )
    streamed = [added_message(), refusal("I can't"), refusal(" help.")]
    assert run(body, mode) == [
        *(streamed if mode != "aggregated" else []),
        OutputItemDone(item=whole),
        completed(finish="stop"),
    ]
    assert whole.refusal == "I can't help."
    assert whole.text == ""


def test_d23_text_and_refusal_in_one_answer_keep_both() -> None:
    body = [c("Partly: "), delta(refusal="no more."), DONE]
    events = run(body, "streaming")
    assert events == [
        added_message(),
        text("Partly: "),
        refusal("no more."),
        OutputItemDone(
            item=Message(
                role="assistant",
                content=[OutputText(text="Partly: "), Refusal(refusal="no more.")],
            )
        ),
        completed(),
    ]
    assert [type(event) for event in events].count(OutputItemAdded) == 1
