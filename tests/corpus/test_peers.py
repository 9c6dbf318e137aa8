"""What the openai SDK's own accumulator keeps of a real stream, the client keeps too.

Each recorded Chat Completions stream of the corpus is served to the openai SDK's
`client.chat.completions.stream()`, which builds its final completion with
`ChatCompletionStreamState`. Where it builds one, the client's turn must hold the same answer
text, refusal, annotations, tool calls, finish reason and usage, but for the SDK's own
mistakes listed in `SDK_MISTAKES`; where it gives up (a chunk it cannot read, an error
chunk), there is nothing of its to compare.
"""

from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

from llmx_replay.cassette import Cassette, Interaction, load_cassette
from llmx_replay.harness import Playback, play_response
from llmx_replay.models import (
    Completed,
    ErrorEvent,
    FunctionCall,
    Message,
    OutputItemDone,
    ResponseEvent,
)
from llmx_replay.transports import for_httpx2
from tests.corpus.conftest import cassette_names

# Where the SDK is wrong and the client right: (cassette, field) -> (ours, the SDK's).
SDK_MISTAKES: dict[tuple[str, str], tuple[Any, Any]] = {
    # Novita sends the call's name on two chunks; the SDK glues them.
    ("openrouter/novita-empty-then-full-args-no-finish-reason.yaml", "tool_calls"): (
        [("llm_version", "{}")],
        [("llm_versionllm_version", "{}")],
    ),
}


def sdk_completion(body: bytes) -> ChatCompletion | None:
    """The SDK's final completion of a streamed body, or None when it gives up on it."""

    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.Client(transport=for_httpx2(httpx.MockTransport(serve)))
    client = openai.OpenAI(base_url="http://provider.test/v1", api_key="sk-test", http_client=http)
    try:
        with client.chat.completions.stream(model="m", messages=[]) as stream:
            for _ in stream:
                pass
            return stream.get_final_completion()
    except openai.LengthFinishReasonError as stopped:
        return stopped.completion  # the helper refuses to parse a cut answer; it was built
    except Exception:  # it crashes in many ways (TypeError, KeyError, ...): all are giving up
        return None
    finally:
        client.close()


def ours(events: list[ResponseEvent]) -> dict[str, Any]:
    """The turn as the SDK's final completion shows it."""
    messages = [
        e.item for e in events if isinstance(e, OutputItemDone) and isinstance(e.item, Message)
    ]
    calls = [
        e.item for e in events if isinstance(e, OutputItemDone) and isinstance(e.item, FunctionCall)
    ]
    end = events[-1]
    assert isinstance(end, Completed | ErrorEvent)
    usage = end.token_usage
    return {
        "content": "".join(message.text for message in messages) or None,
        "refusal": "".join(message.refusal or "" for message in messages) or None,
        "annotations": [note for message in messages for note in message.annotations or ()],
        "tool_calls": [(call.name, call.arguments) for call in calls],
        "finish_reason": end.finish_reason,
        "usage": None if usage is None else (usage.input_tokens, usage.output_tokens),
    }


def theirs(completion: ChatCompletion) -> dict[str, Any]:
    choice = next(choice for choice in completion.choices if choice.index == 0)
    message = choice.message
    usage = completion.usage
    return {
        "content": message.content or None,
        "refusal": message.refusal or None,
        "annotations": [note.model_dump(exclude_unset=True) for note in message.annotations or ()],
        "tool_calls": [
            (call.function.name, call.function.arguments) for call in message.tool_calls or ()
        ],
        "finish_reason": choice.finish_reason,
        "usage": None if usage is None else (usage.prompt_tokens, usage.completion_tokens),
    }


def kept_by_both(cassette: str, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Ours where the SDK has a value (what it keeps, we must keep; more is allowed), and
    the SDK's own value where its mistake is known and ours is the right one."""
    kept = {}
    for key, value in theirs.items():
        mistake = SDK_MISTAKES.get((cassette, key))
        if mistake is not None and (ours[key], value) == mistake:
            kept[key] = value
        else:
            kept[key] = ours[key] if value not in (None, []) else value
    return kept


def streams(cassette: Cassette) -> list[Interaction]:
    """The recorded Chat Completions streams of a cassette (not errors, not JSON bodies)."""
    return [
        interaction
        for interaction in cassette.interactions
        if interaction.request.is_chat_completions
        and interaction.response.status == 200
        and interaction.response.body.lstrip()[:1] not in (b"{", b"[")
    ]


def test_the_client_keeps_what_the_openai_sdk_keeps(corpus_dir: Path, cassette_name: str) -> None:
    compared = 0
    for interaction in streams(load_cassette(corpus_dir / cassette_name)):
        completion = sdk_completion(interaction.response.body)
        if completion is None:
            continue
        events = list(play_response(interaction.response, Playback("aggregated")))
        sdk = theirs(completion)
        assert kept_by_both(cassette_name, ours(events), sdk) == sdk
        compared += 1
    if not compared:
        pytest.skip("no stream here that the openai SDK reads")


def test_the_sdk_reads_most_of_the_corpus(corpus_dir: Path) -> None:
    """The comparison above skips what the SDK cannot read: it must still compare most
    streams (49 of 54 today), or it would pass by comparing nothing."""
    recorded = [
        interaction
        for name in cassette_names(corpus_dir)
        for interaction in streams(load_cassette(corpus_dir / name))
    ]
    read = [i for i in recorded if sdk_completion(i.response.body) is not None]
    assert len(recorded) >= 50
    assert len(read) >= 0.85 * len(recorded)
