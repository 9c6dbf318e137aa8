"""The corpus of real recorded cassettes (issue 3, section 1): what public projects recorded
against many providers, in the formats they commit (47 files when this was written).

Every cassette loads, none of its interactions is refused as another API's wire format,
and every Chat Completions interaction in it plays in the three modes without raising, ends
with exactly one terminal event, and survives our own writer. The
streaming-mode events of each cassette are snapshotted under ``__snapshots__/test_corpus/``
(one JSON file per cassette, its chat interactions' events one after the other, each turn
ending with its `completed` or `error` event), so a change of behaviour on real provider data
shows up as a diff. Explicit tests check what the corpus's MANIFEST.md says each cassette
exercises, against expectations read from the recorded bytes or written out by hand.

The corpus folder is given with ``--llmx-corpus PATH`` or ``LLMX_REPLAY_CORPUS`` (see
``conftest.py``).
"""

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from syrupy.assertion import SnapshotAssertion

from llmx_replay import StreamMode
from llmx_replay.cassette import Cassette, Interaction, dumps, load_cassette, parse_cassette
from llmx_replay.harness import Playback, play_response, require_chat_completions
from llmx_replay.models import (
    Completed,
    ErrorEvent,
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    Reasoning,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
    ResponseItem,
    TokenUsage,
)
from llmx_replay.stream._wire import foreign_wire_format
from llmx_replay.syrupy_ext import EventsSnapshotExtension

MODES: tuple[StreamMode, ...] = get_args(StreamMode)

# Cassettes whose events we believe are wrong, and that wait for a decision: their current
# events are not snapshotted, so that a wrong answer is never recorded as the expected one.
UNDECIDED: dict[str, str] = {}


# --- helpers ---------------------------------------------------------------------------


def load(corpus_dir: Path, name: str) -> Cassette:
    path = corpus_dir / name
    if not path.is_file():
        pytest.fail(f"the corpus {corpus_dir} has no cassette {name}", pytrace=False)
    return load_cassette(path)


def chat_interactions(cassette: Cassette) -> list[Interaction]:
    return [i for i in cassette.interactions if i.request.is_chat_completions]


def play(
    corpus_dir: Path, name: str, index: int = 0, mode: StreamMode = "streaming"
) -> list[ResponseEvent]:
    """The events of the `index`-th interaction of a cassette (counting every interaction)."""
    interaction = load(corpus_dir, name).interactions[index]
    assert interaction.request.is_chat_completions
    return list(play_response(interaction.response, Playback(mode)))


def finished(events: list[ResponseEvent]) -> list[ResponseItem]:
    return [event.item for event in events if isinstance(event, OutputItemDone)]


def calls(events: list[ResponseEvent]) -> list[FunctionCall]:
    return [item for item in finished(events) if isinstance(item, FunctionCall)]


def completed(events: list[ResponseEvent]) -> Completed:
    assert isinstance(events[-1], Completed), events[-1]
    return events[-1]


def error(events: list[ResponseEvent]) -> ErrorEvent:
    assert isinstance(events[-1], ErrorEvent), events[-1]
    return events[-1]


def text(events: list[ResponseEvent]) -> str:
    messages = [item for item in finished(events) if isinstance(item, Message)]
    return "".join(message.text for message in messages)


def reasoning(events: list[ResponseEvent]) -> str:
    return "".join(item.text for item in finished(events) if isinstance(item, Reasoning))


def kinds(events: list[ResponseEvent]) -> list[str]:
    """The types of the finished items, in order."""
    return [item.type for item in finished(events)]


def usage(
    prompt: int, completion: int, total: int, *, cached: int = 0, reasoning: int = 0
) -> TokenUsage:
    return TokenUsage(
        input_tokens=prompt,
        cached_input_tokens=cached,
        output_tokens=completion,
        reasoning_output_tokens=reasoning,
        total_tokens=total,
    )


def payloads(body: bytes) -> list[dict[str, Any]]:
    """The JSON ``data:`` payloads of an SSE body up to [DONE], read line by line (not with
    our decoder; every corpus event is one ``data:`` line)."""
    found = []
    for line in body.decode().splitlines():
        if line.startswith("data:"):
            if line[5:].strip() == "[DONE]":
                break
            found.append(json.loads(line[5:]))
    return found


def sent_deltas(body: bytes) -> tuple[list[str], list[str], list[str]]:
    """The non-empty text, reasoning and refusal pieces that choice 0 streamed, in order, up
    to an error chunk: text from `content` (a string, or `text` parts), reasoning from
    `reasoning` or else `reasoning_content`, or Mistral's `thinking` parts (D9), or else the
    text of `reasoning_details` (D18), refusals from `refusal` (D23)."""
    texts: list[str] = []
    thoughts: list[str] = []
    refusals: list[str] = []
    for chunk in payloads(body):
        if chunk.get("error") is not None:
            break
        choice: dict[str, Any] = next(
            (c for c in chunk.get("choices") or [] if c.get("index", 0) in (0, None)), {}
        )
        delta = choice.get("delta") or {}
        thought = delta.get("reasoning") or delta.get("reasoning_content")
        if isinstance(thought, str) and thought:
            thoughts.append(thought)
        else:
            thoughts.extend(
                detail["text"]
                for detail in delta.get("reasoning_details") or []
                if detail.get("type") == "reasoning.text" and detail.get("text")
            )
        content = delta.get("content")
        if isinstance(content, str) and content:
            texts.append(content)
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "text" and part.get("text"):
                texts.append(part["text"])
            elif part.get("type") == "thinking":
                thoughts.extend(piece["text"] for piece in part["thinking"] if piece.get("text"))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            refusals.append(refusal)
    return texts, thoughts, refusals


def choice_text(body: bytes, index: int) -> str:
    """The `delta.content` text that choice `index` streamed."""
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in payloads(body)
        for choice in chunk.get("choices") or []
        if choice.get("index") == index and isinstance(choice.get("delta"), dict)
    )


def outline(events: list[ResponseEvent]) -> list[object]:
    """Finished items (messages and reasoning by their text) and the terminal event: what
    every mode must agree on."""
    out: list[object] = []
    for event in events:
        if isinstance(event, OutputItemDone):
            item = event.item
            out.append((item.type, item.text) if isinstance(item, Message | Reasoning) else item)
        elif isinstance(event, Completed | ErrorEvent):
            out.append(event)
    return out


# --- every cassette --------------------------------------------------------------------


def test_plays_in_every_mode_without_raising(corpus_dir: Path, cassette_name: str) -> None:
    interactions = chat_interactions(load(corpus_dir, cassette_name))
    assert interactions, "no Chat Completions interaction found"
    for interaction in interactions:
        for mode in MODES:
            events = list(play_response(interaction.response, Playback(mode)))
            terminal = [e for e in events if isinstance(e, Completed | ErrorEvent)]
            assert terminal == events[-1:], f"{mode}: one terminal event, last"
            for call in calls(events):
                assert call.name, call
                json.loads(call.arguments)  # valid JSON arguments, also for parallel calls


def test_every_mode_gives_the_same_items_and_ending(corpus_dir: Path, cassette_name: str) -> None:
    for interaction in chat_interactions(load(corpus_dir, cassette_name)):
        raw, streaming, aggregated = (
            outline(list(play_response(interaction.response, Playback(mode)))) for mode in MODES
        )
        assert raw == streaming == aggregated


def test_deltas_are_what_choice_0_sent(corpus_dir: Path, cassette_name: str) -> None:
    """Against the recorded bytes: no text or reasoning piece lost, added or reordered."""
    for interaction in chat_interactions(load(corpus_dir, cassette_name)):
        body = interaction.response.body
        if interaction.response.status != 200 or body.lstrip()[:1] == b"{":
            continue  # an error or a complete JSON answer: no deltas
        events = list(play_response(interaction.response, Playback("raw")))
        assert sent_deltas(body) == (
            [e.delta for e in events if isinstance(e, OutputTextDelta)],
            [e.delta for e in events if isinstance(e, ReasoningContentDelta)],
            [e.delta for e in events if isinstance(e, RefusalDelta)],
        )


def test_streaming_events(
    corpus_dir: Path, cassette_name: str, snapshot: SnapshotAssertion
) -> None:
    if cassette_name in UNDECIDED:
        pytest.skip(f"not snapshotted until decided: {UNDECIDED[cassette_name]}")
    events = [
        event
        for interaction in chat_interactions(load(corpus_dir, cassette_name))
        for event in play_response(interaction.response, Playback("streaming"))
    ]
    assert events == snapshot.use_extension(EventsSnapshotExtension)


def test_survives_our_writer(corpus_dir: Path, cassette_name: str) -> None:
    cassette = load(corpus_dir, cassette_name)
    again = parse_cassette(dumps(cassette).encode(), "x")
    assert [i.request.is_chat_completions for i in again.interactions] == [
        i.request.is_chat_completions for i in cassette.interactions
    ]
    for before, after in zip(chat_interactions(cassette), chat_interactions(again), strict=True):
        for mode in MODES:
            assert list(play_response(after.response, Playback(mode))) == list(
                play_response(before.response, Playback(mode))
            )


def test_no_interaction_is_taken_for_another_apis(corpus_dir: Path, cassette_name: str) -> None:
    """Not one recorded interaction, of Chat Completions or not, is refused as another
    API's wire format (Anthropic Messages, OpenAI Responses, Gemini)."""
    cassette = load(corpus_dir, cassette_name)
    require_chat_completions(cassette, cassette_name)
    found = [
        foreign_wire_format(interaction.response.body, interaction.request.uri)
        for interaction in cassette.interactions
    ]
    assert found == [None] * len(cassette.interactions)


# --- what MANIFEST.md says each cassette exercises -------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_openai_parallel_tool_calls(corpus_dir: Path, index: int) -> None:
    """Two calls streamed at index 0 and 1, arguments split over many chunks (D4)."""
    events = play(corpus_dir, "openai/parallel-tool-calls.yaml", index)
    assert kinds(events) == ["function_call", "function_call"]
    found = calls(events)
    assert [call.name for call in found] == ["get_current_weather"] * 2
    assert [json.loads(call.arguments) for call in found] == [
        {"location": "San Francisco"},
        {"location": "Boston"},
    ]
    assert all(call.call_id.startswith("call_") for call in found)
    assert found[0].call_id != found[1].call_id
    assert completed(events).finish_reason == "tool_calls"
    assert completed(events).token_usage is None  # no usage chunk was asked for


@pytest.mark.parametrize(
    ("name", "last_usage"),
    [
        ("openai/n2-choices-stream.yaml", usage(26, 104, 130)),
        ("litellm-proxy/n2-choices-stream-options-leak.yaml", usage(13, 27, 40)),
        ("writer/n2-choices-no-done.yaml", usage(39, 95, 134)),
    ],
)
def test_n2_streams_follow_choice_0_only(
    corpus_dir: Path, name: str, last_usage: TokenUsage
) -> None:
    """Interleaved choices 0 and 1: only choice 0 is read (D4); Writer sends no [DONE] and
    LiteLLM sends one more chunk after its usage chunk."""
    body = load(corpus_dir, name).interactions[0].response.body
    events = play(corpus_dir, name)
    assert choice_text(body, 1)  # the second choice did stream text
    assert text(events) == choice_text(body, 0)
    assert "".join(e.delta for e in events if isinstance(e, OutputTextDelta)) == text(events)
    assert kinds(events) == ["message"]
    assert completed(events).finish_reason == "stop"
    assert completed(events).token_usage == last_usage


def test_refusal_stream_completes_with_usage(corpus_dir: Path) -> None:
    """`delta.refusal` (first chunk: `content: null, refusal: ""`), then a usage chunk."""
    events = play(corpus_dir, "openai/refusal-stream.yaml")
    assert completed(events).finish_reason == "stop"
    assert completed(events).token_usage == usage(64, 13, 77)


def test_refusal_reaches_the_caller_marked_as_a_refusal(corpus_dir: Path) -> None:
    """The refusal streamed in `delta.refusal` is the model's answer, marked as a refusal
    (D23), where the seed dropped it and the turn looked like an empty success."""
    events = play(corpus_dir, "openai/refusal-stream.yaml")
    assert kinds(events) == ["message"]
    (message,) = finished(events)
    assert isinstance(message, Message)
    assert message.refusal == "I'm very sorry, but I can't assist with that request."
    assert message.text == ""


def test_openrouter_encrypted_reasoning_is_kept(corpus_dir: Path) -> None:
    """o3 through OpenRouter sends its reasoning only as a `reasoning.encrypted` detail: the
    reasoning item carries it as its encrypted content (D18)."""
    name = "openrouter/reasoning-details.yaml"
    body = load(corpus_dir, name).interactions[0].response.body
    sent = [
        detail["data"]
        for chunk in payloads(body)
        for choice in chunk.get("choices") or []
        for detail in (choice.get("delta") or {}).get("reasoning_details") or []
        if detail.get("type") == "reasoning.encrypted"
    ]
    events = play(corpus_dir, name)
    assert kinds(events) == ["reasoning", "message"]
    (thought, _) = finished(events)
    assert isinstance(thought, Reasoning)
    assert (thought.text, thought.encrypted_content) == ("", "".join(sent))
    assert len(sent) == 1 and sent[0].startswith("gAAAA")


def test_openrouter_claude_signature_is_the_encrypted_content(corpus_dir: Path) -> None:
    """Claude through OpenRouter: reasoning both as `reasoning` and as text details (read
    once), then its signature on a detail of its own (D18)."""
    events = play(corpus_dir, "openrouter/reasoning-details-tool-calls.yml")
    thought = next(item for item in finished(events) if isinstance(item, Reasoning))
    assert thought.text.startswith("The user is asking for the weather in Berlin")
    assert thought.text.count("The user is asking") == 1
    assert thought.encrypted_content is not None
    assert thought.encrypted_content.startswith("EvsCCkgIEBABGAIqQNe")


def test_openrouter_web_search_annotations_are_on_the_answer(corpus_dir: Path) -> None:
    """Five `url_citation` annotations, one per chunk before the text (D22)."""
    name = "openrouter/web-search-annotations.yaml"
    body = load(corpus_dir, name).interactions[0].response.body
    sent = [
        annotation
        for chunk in payloads(body)
        for choice in chunk.get("choices") or []
        for annotation in (choice.get("delta") or {}).get("annotations") or []
    ]
    events = play(corpus_dir, name)
    (message,) = finished(events)
    assert isinstance(message, Message)
    assert message.annotations == sent
    assert len(sent) == 5
    assert sent[0]["url_citation"]["url"] == "https://github.com/pydantic/pydantic-ai"


def test_perplexity_sources_are_on_the_answer(corpus_dir: Path) -> None:
    """Perplexity repeats `citations` and `search_results` on all 389 chunks: the answer
    keeps the last ones once (D22)."""
    name = "perplexity/reasoning-pro-ping-comments.yml"
    last = list(payloads(load(corpus_dir, name).interactions[0].response.body))[-1]
    events = play(corpus_dir, name)
    (message,) = [item for item in finished(events) if isinstance(item, Message)]
    assert message.citations == last["citations"]
    assert message.search_results == last["search_results"]
    assert len(message.citations) == 5


def test_deepseek_reasoning_content(corpus_dir: Path) -> None:
    """`reasoning_content` deltas then `content` (D9): a reasoning item, then the message."""
    name = "deepseek/reasoning-content.yaml"
    body = load(corpus_dir, name).interactions[0].response.body
    events = play(corpus_dir, name)
    assert kinds(events) == ["reasoning", "message"]
    assert reasoning(events) == "".join(
        chunk["choices"][0]["delta"].get("reasoning_content") or "" for chunk in payloads(body)
    )
    assert reasoning(events).startswith('Hmm, the user just said "Hello".')
    assert text(events) == "Hello there! 😊 How can I help you today?"
    assert completed(events).token_usage == usage(6, 212, 218, reasoning=198)


def test_xai_usage_on_every_chunk_keeps_the_last(corpus_dir: Path) -> None:
    events = play(corpus_dir, "xai/text-stream.yaml")
    assert text(events) == "Hello! How can I assist you today?"
    assert completed(events) == Completed(
        response_id="5b557a04-bda5-4a2e-aadc-9ad1fd707f65",
        token_usage=usage(9, 10, 19),
        finish_reason="stop",
    )


def test_xai_whole_tool_call_in_one_chunk(corpus_dir: Path) -> None:
    events = play(corpus_dir, "xai/tool-call-one-chunk.yaml")
    assert calls(events) == [
        FunctionCall(
            name="return_list_of_int", arguments='{"value":[1,2,3,4,5]}', call_id="call_54325129"
        )
    ]
    assert completed(events).finish_reason == "tool_calls"


def test_openrouter_error_chunk_after_length_ends_the_turn(corpus_dir: Path) -> None:
    """17 processing comments, `length` on two chunks, then a chunk with an `error` object
    (and usage), then [DONE]: the reasoning received is kept, and the error ends the turn,
    still carrying the finish reason and the usage (D20) and the error object (D19)."""
    events = play(corpus_dir, "openrouter/stream-error-comments-length.yaml")
    assert kinds(events) == ["reasoning"]
    assert reasoning(events) == "We need to respond to a greeting. The user"
    assert error(events) == ErrorEvent(
        kind="unexpected_status",
        message="Token limit reached",
        status=200,
        provider_error={"code": 400, "message": "Token limit reached"},
        finish_reason="length",
        token_usage=usage(43, 10, 53, reasoning=11),
    )
    assert not any(isinstance(event, Completed) for event in events)


def test_gemini_tool_call_with_empty_id_and_finish_stop(corpus_dir: Path) -> None:
    """gzip `!!binary` body; one chunk with a call whose id is "" and that has no `index`,
    finish `stop` (kept as sent, D7), and usage in the same chunk."""
    events = play(corpus_dir, "gemini-openai-compat/gzip-tool-call-finish-stop.yaml")
    assert calls(events) == [
        FunctionCall(
            name="return_list_of_str",
            arguments='{"value":["apple","banana","orange"]}',
            call_id="",
        )
    ]
    assert completed(events) == Completed(token_usage=usage(14, 11, 25), finish_reason="stop")


def test_ollama_tool_call_without_index_and_finish_stop(corpus_dir: Path) -> None:
    events = play(corpus_dir, "ollama/tool-call-finish-stop.yaml")
    assert calls(events) == [
        FunctionCall(name="return_bool", arguments='{"value":true}', call_id="call_kve3oltz")
    ]
    assert kinds(events) == ["function_call"]
    assert completed(events) == Completed(
        response_id="chatcmpl-826", token_usage=None, finish_reason="stop"
    )


def test_perplexity_crlf_ping_comments_and_no_done(corpus_dir: Path) -> None:
    """CRLF line ends, `: ping` comments, 389 events, no [DONE]: the `chat.completion.done`
    chunk carries the finish reason, so the turn completes."""
    name = "perplexity/reasoning-pro-ping-comments.yml"
    body = load(corpus_dir, name).interactions[0].response.body
    assert b"\r\n\r\n" in body
    assert b": ping - " in body
    assert b"[DONE]" not in body
    last = payloads(body)[-1]
    assert last["object"] == "chat.completion.done"
    events = play(corpus_dir, name)
    assert kinds(events) == ["message"]
    assert text(events) == last["choices"][0]["message"]["content"]
    assert text(events).startswith("I would ask: **“Will the answer you are about to give")
    assert completed(events) == Completed(
        response_id="4d1e8cc3-39dd-4fa8-a223-bfe32f45b6e3",
        token_usage=usage(45, 390, 435),
        finish_reason="stop",
    )


def test_mistral_thinking_parts_are_reasoning(corpus_dir: Path) -> None:
    """magistral: `delta.content` is a list of `thinking` parts, later plain strings (D9)."""
    events = play(corpus_dir, "mistral/thinking-content-list.yaml")
    assert kinds(events) == ["reasoning", "message"]
    assert reasoning(events).startswith("Okay, the user is asking how to cross the street.")
    assert reasoning(events).endswith(
        "Let me compile this information into a clear and concise response."
    )
    assert text(events).startswith("To cross the street safely, follow these steps:")
    assert "Okay, the user" not in text(events)
    assert completed(events) == Completed(
        response_id="9f9d90210f194076abeee223863eaaf0",
        token_usage=usage(10, 232, 242),
        finish_reason="stop",
    )


@pytest.mark.parametrize("index", [0, 1])
def test_openai_404_gzip_error_to_a_stream_request(corpus_dir: Path, index: int) -> None:
    """A gzip JSON 404 (`model_not_found`) answering `stream: true`, recorded twice."""
    events = play(corpus_dir, "openai/404-gzip-error-stream-request.yaml", index)
    assert len(events) == 1
    assert error(events).kind == "unexpected_status"
    assert error(events).status == 404
    assert (
        "The model `this-model-does-not-exist-12345` does not exist or you do not have access"
        in error(events).message
    )


def test_openai_401_error_to_a_stream_request(corpus_dir: Path) -> None:
    events = play(corpus_dir, "openai/401-error-stream-request.yaml")
    assert len(events) == 1
    assert error(events).kind == "unexpected_status"
    assert error(events).status == 401
    assert "Incorrect API key provided: invalid-*****2345." in error(events).message


@pytest.mark.parametrize("index", [0, 1, 2])
def test_openrouter_429_errors(corpus_dir: Path, index: int) -> None:
    """Non-streaming 429 JSON errors (`parsed_body`); playback never retries, so each is the
    last allowed attempt."""
    events = play(corpus_dir, "openrouter/429-errors-nonstream.yaml", index)
    assert len(events) == 1
    assert error(events).kind == "retry_limit"
    assert error(events).status == 429
    assert error(events).message.endswith(": Provider returned error")


def test_openai_nonstream_gzip_tool_chain(corpus_dir: Path) -> None:
    """Three complete (non-streamed) chat completions, gzip `!!binary`: each message or call
    is kept, then the turn ends with a `stream` error (D8)."""
    name = "openai/nonstream-gzip-tool-chain.yaml"
    turns = [play(corpus_dir, name, index) for index in range(3)]
    assert [calls(events) for events in turns[:2]] == [
        [
            FunctionCall(
                name="lookup_population",
                arguments='{"country":"Crumpet"}',
                call_id="call_TTY8UFNo7rNCaOBUNtlRSvMG",
            )
        ],
        [
            FunctionCall(
                name="can_have_dragons",
                arguments='{"population":123124}',
                call_id="call_aq9UyiSFkzX6W8Ydc33DoI9Y",
            )
        ],
    ]
    assert kinds(turns[2]) == ["message"]
    assert text(turns[2]) == "YES"
    for events in turns:
        assert error(events).kind == "stream"
        assert error(events).status == 200
        assert "complete JSON response" in error(events).message


def test_gemini_nonstream_tool_call_with_empty_id(corpus_dir: Path) -> None:
    name = "gemini-openai-compat/nonstream-empty-tool-id.yaml"
    first, second = play(corpus_dir, name, 0), play(corpus_dir, name, 1)
    assert calls(first) == [FunctionCall(name="get_current_time", arguments="{}", call_id="")]
    assert text(second) == "The current time is Noon."
    assert error(first).kind == error(second).kind == "stream"


def test_groq_tool_use_failed_then_retries(corpus_dir: Path) -> None:
    """A non-streaming 400 `tool_use_failed`, then two complete JSON answers with reasoning."""
    name = "groq/tool-use-failed-400-nonstream.yaml"
    failed = play(corpus_dir, name, 0)
    assert error(failed).status == 400
    assert error(failed).kind == "unexpected_status"
    assert "Tool call validation failed" in error(failed).message
    retry = play(corpus_dir, name, 1)
    assert kinds(retry) == ["reasoning", "function_call"]
    assert [(c.name, c.arguments) for c in calls(retry)] == [
        ("get_something_by_name", '{"name":"test"}')
    ]
    assert error(retry).kind == "stream"
    assert kinds(play(corpus_dir, name, 2)) == ["reasoning", "message"]


def test_writer_stream_without_done_completes(corpus_dir: Path) -> None:
    name = "writer/n2-choices-no-done.yaml"
    assert b"[DONE]" not in load(corpus_dir, name).interactions[0].response.body
    events = play(corpus_dir, name)
    assert text(events).startswith("Sure, here's a light-hearted joke about OpenTelemetry:")
    assert completed(events).finish_reason == "stop"


def test_gpustack_reasoning_without_done(corpus_dir: Path) -> None:
    """`reasoning_content`, no [DONE], usage (with draft_tokens) on the finish chunk."""
    name = "gpustack/qwen3-reasoning-no-done.yml"
    assert b"[DONE]" not in load(corpus_dir, name).interactions[0].response.body
    events = play(corpus_dir, name)
    assert kinds(events) == ["reasoning", "message"]
    assert reasoning(events).startswith("\nOkay, the user wants me to count from 1 to 3.")
    assert text(events) == "\n\n1, 2, 3."
    assert completed(events) == Completed(
        response_id="chatcmpl-bbvHp6ly4leGve5B8TjAK636vZE4A7bX",
        token_usage=usage(15, 171, 186, reasoning=160),
        finish_reason="stop",
    )


def test_openrouter_call_sent_twice_without_finish_reason(corpus_dir: Path) -> None:
    """Novita via OpenRouter: the same call (id `0`) sent with `arguments: ""`, then again
    with `"{}"`; no finish reason at all, then [DONE]."""
    name = "openrouter/novita-empty-then-full-args-no-finish-reason.yaml"
    events = play(corpus_dir, name, 0)
    assert calls(events) == [FunctionCall(name="llm_version", arguments="{}", call_id="0")]
    assert completed(events) == Completed(
        response_id="gen-1753242299-QZRAt5HJHd1ptY8sdS0s",
        token_usage=usage(57, 17, 74),
        finish_reason=None,
    )
    answer = play(corpus_dir, name, 1)
    assert text(answer) == "The current version of *llm* is **0.fixed-version**."


def test_openai_length_with_no_visible_content(corpus_dir: Path) -> None:
    """gpt-5-mini spent all 50 tokens reasoning: no item, finish `length` (D7)."""
    events = play(corpus_dir, "openai/length-empty-content-gpt5mini.yaml")
    assert events == [
        Completed(
            response_id="chatcmpl-CpaLKsZmiiFPwrb0Ocw5FOVrMV89U",
            token_usage=usage(13, 50, 63, reasoning=50),
            finish_reason="length",
        )
    ]


def test_openrouter_reasoning_then_tool_call(corpus_dir: Path) -> None:
    """Ruby VCR, second body `!binary`: reasoning, then a call with split arguments."""
    name = "openrouter/reasoning-details-tool-calls.yml"
    first = play(corpus_dir, name, 0)
    assert kinds(first) == ["reasoning", "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls(first)] == [
        ("reasoning_weather", {"city": "Berlin"})
    ]
    assert completed(first).finish_reason == "tool_calls"
    second = play(corpus_dir, name, 1)
    assert text(second).startswith("The current weather in Berlin is **15°C and cloudy**.")


def test_grok_on_azure_mixed_body_storage(corpus_dir: Path) -> None:
    """Four interactions, bodies stored as plain strings and as Ruby `!binary`."""
    name = "azure-ai-foundry/grok-tool-calls-mixed-storage.yml"
    turns = [play(corpus_dir, name, index) for index in range(4)]
    for events in turns[0::2]:
        assert [(c.name, c.arguments) for c in calls(events)] == [("best_language_to_learn", "{}")]
        assert completed(events).finish_reason == "tool_calls"
    for events in turns[1::2]:
        assert text(events).startswith("**Ruby** is the best language to learn!")
        assert completed(events).finish_reason == "stop"


def test_legacy_httpx_stub_with_misleading_headers(corpus_dir: Path) -> None:
    """`response.content` layout; headers say gzip and JSON but the body is plain SSE."""
    events = play(corpus_dir, "openai/legacy-httpx-stub-format.yaml")
    assert [json.loads(call.arguments) for call in calls(events)] == [
        {
            "name": "David Nguyen",
            "major": "computer science",
            "school": "Stanford University",
            "grades": 3.8,
            "clubs": ["Chess Club", "South Asian Student Association"],
        }
    ]
    assert completed(events).token_usage == usage(166, 43, 209)


@pytest.mark.parametrize(
    ("name", "index", "answer"),
    [
        ("cerebras/tcp-warming-then-stream.yaml", 2, "One, two, three. What's next?"),
        ("huggingface-router/novita-with-model-lookup.yaml", 1, "Paris"),
    ],
)
def test_non_chat_interactions_are_left_out(
    corpus_dir: Path, name: str, index: int, answer: str
) -> None:
    """GET requests before the stream (TCP warming, a model lookup) are not Chat Completions."""
    cassette = load(corpus_dir, name)
    assert [i.request.is_chat_completions for i in cassette.interactions] == [
        position == index for position in range(len(cassette.interactions))
    ]
    assert text(play(corpus_dir, name, index)) == answer


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("gemini-openai-compat/gzip-text.yaml", b"!!binary"),
        ("gemini-openai-compat/gzip-tool-call-finish-stop.yaml", b"!!binary"),
        ("openai/404-gzip-error-stream-request.yaml", b"!!binary"),
        ("openai/nonstream-gzip-tool-chain.yaml", b"!!binary"),
        ("azure-ai-foundry/gpt5nano-thinking-content-filter.yml", b"!binary"),
        ("azure-ai-foundry/grok-tool-calls-mixed-storage.yml", b"!binary"),
        ("deepseek/tool-calls-multiturn.yml", b"!binary"),
        ("openrouter/reasoning-details-tool-calls.yml", b"!binary"),
        ("perplexity/reasoning-pro-ping-comments.yml", b"!binary"),
    ],
)
def test_binary_bodies_decode(corpus_dir: Path, name: str, tag: bytes) -> None:
    """gzip in `!!binary` and Ruby `!binary` base64 come out as the decoded UTF-8 text."""
    assert tag in (corpus_dir / name).read_bytes()
    for interaction in chat_interactions(load(corpus_dir, name)):
        body = interaction.response.body
        body.decode()  # UTF-8, not compressed bytes
        assert body.lstrip().startswith((b"data:", b":", b"{"))
        events = list(play_response(interaction.response, Playback("streaming")))
        assert not any(
            isinstance(event, ErrorEvent) and "UTF-8" in event.message for event in events
        )


def test_gemini_gzip_text(corpus_dir: Path) -> None:
    events = play(corpus_dir, "gemini-openai-compat/gzip-text.yaml")
    assert text(events) == "Hello there! How can I help you today?\n"
    assert completed(events) == Completed(token_usage=usage(3, 11, 14), finish_reason="stop")


def test_text_streams_open_one_message(corpus_dir: Path) -> None:
    """A role-only first chunk and empty-content chunks open no item of their own."""
    events = play(corpus_dir, "openai/python-istr-header-keys.yaml")
    added = [event for event in events if isinstance(event, OutputItemAdded)]
    assert len(added) == 1
    assert text(events) == "Assistant. How can I assist you today?"
