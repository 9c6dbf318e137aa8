"""Each decision D1-D24 has a cassette under cassettes/decisions/ showing the provider
behaviour that needs it; these tests play them (and, for the request-side decisions, check
that our request builder produces the request the cassette records as ours)."""

from pathlib import Path

import orjson
import pytest

from llmx_replay import build_body, chat_completions_url
from llmx_replay.cassette import Cassette, load_cassette
from llmx_replay.harness import Playback, play_response
from llmx_replay.models import (
    Completed,
    ErrorEvent,
    FunctionCall,
    Message,
    OutputItemDone,
    OutputText,
    Prompt,
    ProviderSettings,
    Reasoning,
    ReasoningText,
    Refusal,
    ResponseEvent,
    SummaryText,
    TokenUsage,
)

INSTRUCTIONS = "You are a helpful assistant."
DECISIONS = Path(__file__).parent.parent / "cassettes" / "decisions"


def cassette(name: str) -> Cassette:
    return load_cassette(DECISIONS / name)


def play(name: str, index: int, mode: str = "streaming") -> list[ResponseEvent]:
    interaction = cassette(name).interactions[index]
    return list(play_response(interaction.response, Playback(mode)))  # type: ignore[arg-type]


def usage(input_tokens: int, output_tokens: int, total: int, cached: int = 0) -> TokenUsage:
    return TokenUsage(
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        reasoning_output_tokens=0,
        total_tokens=total,
    )


def finished_items(events: list[ResponseEvent]) -> list[object]:
    return [event.item for event in events if isinstance(event, OutputItemDone)]


def recorded_body(name: str, index: int) -> object:
    body = cassette(name).interactions[index].request.body
    assert body is not None
    return orjson.loads(body)


def user(text: str) -> dict[str, object]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str) -> dict[str, object]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def ours(prompt: dict[str, object], model: str) -> object:
    body = build_body(
        Prompt.model_validate({"instructions": INSTRUCTIONS, **prompt}), model, ProviderSettings()
    )
    return body.model_dump(mode="json")


def test_d01_anthropic_rejects_orphan_call_and_our_request_answers_it() -> None:
    """D1: the orphan call gets an "aborted" result; the newest user message is kept."""
    [error] = play("d01-orphan-tool-call.yaml", 0)
    assert isinstance(error, ErrorEvent)
    assert (error.kind, error.status) == ("unexpected_status", 400)
    assert "tool_result" in error.message
    call = {
        "type": "function_call",
        "name": "shell",
        "arguments": '{"command":["ls"]}',
        "call_id": "toolu_01",
    }
    prompt = {"input": [user("List the files."), call, user("Never mind, just say hi.")]}
    assert ours(prompt, "anthropic/claude-sonnet-4-20250514") == recorded_body(
        "d01-orphan-tool-call.yaml", 1
    )
    assert finished_items(play("d01-orphan-tool-call.yaml", 1)) == [
        Message(role="assistant", content=[{"type": "output_text", "text": "Hi!"}])
    ]


def test_d02_a_repeated_reply_later_in_the_conversation_is_sent() -> None:
    """D2: both "OK" replies are sent; the seed dropped the second."""
    prompt = {
        "input": [
            user("Remember the number 7."),
            assistant("OK"),
            user("Now remember 9."),
            assistant("OK"),
            user("What is their sum?"),
        ]
    }
    assert ours(prompt, "gpt-4o-mini") == recorded_body("d02-repeated-assistant-reply.yaml", 0)


def test_d03_zero_argument_call_is_sent_back_with_an_empty_object() -> None:
    """D3: the streamed `arguments: ""` goes back as "{}" with its output."""
    [call] = finished_items(play("d03-zero-argument-tool.yaml", 0))
    assert call == FunctionCall(name="llm_version", arguments="", call_id="toolu_02")
    tool = {
        "type": "function",
        "name": "llm_version",
        "description": "The version.",
        "parameters": {"type": "object", "properties": {}},
    }
    prompt = {
        "input": [
            user("Which version are you?"),
            call.model_dump(mode="json"),
            {"type": "function_call_output", "call_id": "toolu_02", "output": "0.1.8"},
        ],
        "tools": [tool],
    }
    assert ours(prompt, "anthropic/claude-sonnet-4-20250514") == recorded_body(
        "d03-zero-argument-tool.yaml", 1
    )


def test_d04_parallel_calls_are_two_items() -> None:
    """D4: two calls by index, each with its own arguments."""
    assert finished_items(play("d04-parallel-tool-calls.yaml", 0)) == [
        FunctionCall(name="get_weather", arguments='{"city": "Paris"}', call_id="call_a"),
        FunctionCall(name="get_weather", arguments='{"city": "Boston"}', call_id="call_b"),
    ]


@pytest.mark.parametrize("mode", ["raw", "streaming", "aggregated"])
def test_d05_preamble_comes_before_the_call(mode: str) -> None:
    """D5: the text the model wrote first is finished first."""
    items = finished_items(play("d05-preamble-then-tool-call.yaml", 0, mode))
    assert [type(item) for item in items] == [Message, FunctionCall]
    assert isinstance(items[0], Message) and items[0].text == "Let me check."


def test_d06_usage_after_the_finish_reason_is_kept() -> None:
    """D6: Completed carries the usage sent after the finish chunk."""
    completed = play("d06-usage-after-finish.yaml", 0)[-1]
    assert completed == Completed(
        response_id="chatcmpl-rp1",
        token_usage=usage(9, 2, 11),
        finish_reason="stop",
    )


def test_d07_length_stop_with_a_call_and_empty_finish_reasons() -> None:
    """D7: length flushes and is reported; a call with `stop` is kept; "" is no finish."""
    length = play("d07-finish-reasons.yaml", 0)
    assert isinstance(length[-1], Completed) and length[-1].finish_reason == "length"
    assert [item.text for item in finished_items(length)] == ["Once upon a time"]  # type: ignore[attr-defined]
    assert finished_items(play("d07-finish-reasons.yaml", 1)) == [
        FunctionCall(name="return_bool", arguments='{"value": true}', call_id="call_kve3")
    ]
    counted = finished_items(play("d07-finish-reasons.yaml", 2))
    assert [item.text for item in counted] == ["One, two, three."]  # type: ignore[attr-defined]


def test_d08_a_cut_stream_and_a_json_body_end_with_errors_and_lose_nothing() -> None:
    """D8: received text is flushed, then a stream error; a 200 JSON error is quoted."""
    cut = play("d08-stream-cut-short.yaml", 0)
    assert [item.text for item in finished_items(cut)] == ["TCP is a connection-oriented"]  # type: ignore[attr-defined]
    assert cut[-1] == ErrorEvent(kind="stream", message="stream closed before completion")
    [json_error] = play("d08-stream-cut-short.yaml", 1)
    assert isinstance(json_error, ErrorEvent) and json_error.kind == "stream"
    assert json_error.status == 200
    assert "The model is overloaded, please retry." in json_error.message


def test_d09_reasoning_content_and_thinking_parts_are_reasoning() -> None:
    """D9: `reasoning_content` and Mistral thinking parts become reasoning items."""
    for index, thought in [(0, "Simple addition."), (1, "Add them.")]:
        items = finished_items(play("d09-reasoning-fields.yaml", index))
        assert [type(item) for item in items] == [Reasoning, Message]
        assert items[0].text == thought  # type: ignore[attr-defined]
        assert items[1].text == "4"  # type: ignore[attr-defined]


def test_d10_error_null_is_not_an_error() -> None:
    """D10: `"error": null` on every chunk; the answer streams through."""
    events = play("d10-error-null.yaml", 0)
    assert isinstance(events[-1], Completed)
    assert [item.text for item in finished_items(events)] == ["Hi there"]  # type: ignore[attr-defined]


def test_d11_usage_without_total_and_with_cache_reads() -> None:
    """D11: the total is summed; Anthropic's cache reads count as cached input."""
    first = play("d11-usage-shapes.yaml", 0)[-1]
    second = play("d11-usage-shapes.yaml", 1)[-1]
    assert isinstance(first, Completed) and isinstance(second, Completed)
    assert first.token_usage == usage(8, 1, 9)
    assert second.token_usage == usage(2100, 2, 2102, cached=2048)


def test_d12_openai_rejects_what_the_seed_sent_and_we_send_neither() -> None:
    """D12: no `tools: []`, and `max_tokens` can be switched off."""
    for index, field in [(0, "tools"), (1, "max_tokens")]:
        [error] = play("d12-empty-tools-and-max-tokens.yaml", index)
        assert isinstance(error, ErrorEvent) and error.status == 400
        assert f"'{field}'" in error.message
    body = build_body(Prompt(input=[user("hi")]), "o3-mini", ProviderSettings(max_tokens=None))
    assert set(body.model_dump(mode="json")) == {"model", "messages", "stream"}


def test_d13_recorded_retry_after_values_are_honoured() -> None:
    """D13: `retry-after-ms` wins, and an HTTP date is read relative to now."""
    from datetime import UTC, datetime

    from llmx_replay.stream._retry import retry_after

    now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = [
        retry_after({k.lower(): v for k, v in item.response.headers}, now)
        for item in cassette("d13-retry-after.yaml").interactions[:2]
    ]
    assert waits == [1.5, 5.0]


def test_d14_aggregated_mode_gives_each_reasoning_once() -> None:
    """D14: only finished items and Completed; one reasoning item."""
    events = play("d14-aggregated-reasoning.yaml", 0, "aggregated")
    assert [type(event) for event in events] == [OutputItemDone, OutputItemDone, Completed]
    reasoning, message = finished_items(events)
    assert reasoning == Reasoning(
        summary=[], content=[{"type": "reasoning_text", "text": "Rayleigh scattering."}]
    )
    assert isinstance(message, Message) and message.text == "Short wavelengths scatter more."


def test_d15_trailing_slash_base_url_gives_the_url_that_works() -> None:
    """D15: the 404 URL is what the seed built; ours is the one that answered."""
    recorded = cassette("d15-base-url-slash.yaml").interactions
    assert recorded[0].response.status == 404
    url = chat_completions_url(ProviderSettings(base_url="http://localhost:8080/v1/"))
    assert url == recorded[1].request.uri != recorded[0].request.uri


def test_d16_groq_usage_inside_x_groq_is_kept() -> None:
    """D16: the usage Groq sends only inside `x_groq` reaches `completed`."""
    events = play("d16-groq-x-groq-usage.yaml", 0)

    assert events[-1] == Completed(
        response_id="chatcmpl-gq1",
        token_usage=usage(12, 2, 14),
        finish_reason="stop",
    )


def test_d17_completed_carries_the_response_id_the_chunks_carry() -> None:
    """D17: the first non-empty chunk `id` becomes `completed.response_id`."""
    events = play("d17-response-id.yaml", 0)

    assert events[-1] == Completed(response_id="chatcmpl-rid1", finish_reason="stop")


def test_d18_reasoning_details_text_signature_encrypted_and_summary() -> None:
    """D18: Claude's doubled text is read once and its signature kept; o3's encrypted
    reasoning and summary become the reasoning's encrypted content and summary."""
    claude = finished_items(play("d18-reasoning-details.yaml", 0))
    assert claude[0] == Reasoning(
        summary=[],
        content=[
            ReasoningText(text="The user asks for the weather"),
            ReasoningText(text=" in Berlin; I will call the tool."),
        ],
        encrypted_content=signature_in("d18-reasoning-details.yaml", 0),
    )
    assert isinstance(claude[1], FunctionCall)
    o3 = finished_items(play("d18-reasoning-details.yaml", 1, "aggregated"))
    thought = o3[0]
    assert isinstance(thought, Reasoning)
    assert thought.summary == [SummaryText(text="**Introducing myself**")]
    assert thought.content == []
    assert thought.encrypted_content is not None
    assert thought.encrypted_content.startswith("gAAAAAB")
    assert o3[1] == Message(
        role="assistant", content=[OutputText(text="I'm ChatGPT, an AI assistant.")]
    )


def signature_in(name: str, index: int) -> str:
    body = cassette(name).interactions[index].response.body
    (signature,) = [
        detail["signature"]
        for line in body.split(b"\n")
        if line.startswith(b"data: {")
        for choice in orjson.loads(line[6:])["choices"]
        for detail in choice["delta"].get("reasoning_details") or []
        if "signature" in detail
    ]
    return str(signature)


def test_d19_in_stream_error_keeps_the_providers_error_object() -> None:
    """D19: Groq's code, type, status code and failed generation stay on the error."""
    failure = play("d19-in-stream-error-object.yaml", 0)[-1]
    assert isinstance(failure, ErrorEvent)
    assert (failure.kind, failure.status) == ("unexpected_status", 200)
    assert (failure.code, failure.error_type, failure.provider_status) == (
        "tool_use_failed",
        "invalid_request_error",
        400,
    )
    assert isinstance(failure.provider_error, dict)
    assert failure.provider_error["failed_generation"].startswith("<function=get_weather")


def test_d20_error_after_finish_reason_keeps_finish_reason_and_usage() -> None:
    """D20: the error that ends the turn still carries `length` and the usage."""
    failure = play("d20-error-after-finish-reason.yaml", 0)[-1]
    assert isinstance(failure, ErrorEvent)
    assert failure.message == "Token limit reached"
    assert failure.finish_reason == "length"
    assert failure.token_usage == TokenUsage(
        input_tokens=43,
        cached_input_tokens=0,
        output_tokens=10,
        reasoning_output_tokens=11,
        total_tokens=53,
    )


def test_d21_flagged_output_is_on_completed() -> None:
    """D21: the moderation report after the usage chunk reaches `completed`, flagged."""
    done = play("d21-moderation.yaml", 0)[-1]
    assert isinstance(done, Completed)
    assert done.token_usage == usage(14, 7, 21)
    assert done.moderation is not None
    assert done.moderation["output"]["results"][0]["flagged"] is True
    assert done.moderation["input"]["results"][0]["flagged"] is False


def test_d22_annotations_and_perplexity_sources_are_on_the_answer() -> None:
    """D22: OpenRouter's annotations, and Perplexity's citations and search results."""
    (openrouter,) = finished_items(play("d22-annotations-and-sources.yaml", 0))
    assert isinstance(openrouter, Message)
    assert [note["url_citation"]["url"] for note in openrouter.annotations or []] == [
        "https://github.com/pydantic/pydantic-ai",
        "https://pydantic.dev/docs/ai/overview/",
    ]
    (perplexity,) = finished_items(play("d22-annotations-and-sources.yaml", 1))
    assert isinstance(perplexity, Message)
    assert perplexity.text == "A magic mirror shows what is [1][2]."
    assert perplexity.citations == [
        "https://croneconfidence.com/2015/01/28/your-magic-mirror/",
        "https://integrallife.com/the-magic-mirror/",
    ]
    assert [found["title"] for found in perplexity.search_results or []] == [
        "Your Magic Mirror - Crone Confidence",
        "The Magic Mirror - Integral Life",
    ]


def test_d23_refusal_is_a_refusal_part() -> None:
    """D23: the refusal is the answer's message, as a `refusal` part, not text."""
    (message,) = finished_items(play("d23-refusal.yaml", 0))
    assert message == Message(
        role="assistant",
        content=[Refusal(refusal="I'm very sorry, but I can't assist with that request.")],
    )
