"""The Chat Completions request built from a prompt and a provider (seed §3.3-3.4, §5, §7.2-7.3).

Where llmx-replay deliberately differs from the seed, the test's docstring names the decision
(D1, D2, D3, D12, D15 in decisions.md); those tests fail on the seed's behaviour (§9 B1-B5,
B17, B22). Everything else asserts the seed's behaviour, which the port keeps.
"""

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import TypeAdapter

from llmx_replay import (
    MissingEnvVarError,
    OrphanCallPolicy,
    UnsupportedOperation,
    build_body,
    build_messages,
    build_request,
    chat_completions_url,
    normalize_history,
)
from llmx_replay.models import (
    FunctionCallOutput,
    FunctionCallOutputPayload,
    Prompt,
    ProviderSettings,
    ResponseItem,
)
from llmx_replay.stream._provider_errors import read_error_body
from llmx_replay.stream._retry import backoff, retry_after, retry_delay

Json = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Helpers: items in the seed's JSON shapes, and the request built from them.
# ---------------------------------------------------------------------------------------------

INSTRUCTIONS = "You are a test."
SYS: Json = {"role": "system", "content": INSTRUCTIONS}
PNG = "data:image/png;base64,iVBORw0KGgo="


def message(role: str, *parts: Json) -> Json:
    return {"type": "message", "role": role, "content": list(parts)}


def input_text(text: str) -> Json:
    return {"type": "input_text", "text": text}


def output_text(text: str) -> Json:
    return {"type": "output_text", "text": text}


def input_image(url: str = PNG) -> Json:
    return {"type": "input_image", "image_url": url}


def user(text: str) -> Json:
    return message("user", input_text(text))


def assistant(text: str) -> Json:
    return message("assistant", output_text(text))


def reasoning(*texts: str, kind: str = "reasoning_text") -> Json:
    return {
        "type": "reasoning",
        "summary": [],
        "content": [{"type": kind, "text": text} for text in texts],
    }


def function_call(call_id: str = "c1", arguments: str = "{}", name: str = "f") -> Json:
    return {"type": "function_call", "name": name, "arguments": arguments, "call_id": call_id}


def function_output(call_id: str, output: str | list[Json]) -> Json:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def local_shell_call(id: str | None = "id1", call_id: str | None = None) -> Json:
    item: Json = {
        "type": "local_shell_call",
        "call_id": call_id,
        "status": "in_progress",
        "action": {"type": "exec", "command": ["echo"], "timeout_ms": 1000},
    }
    if id is not None:
        item["id"] = id
    return item


def custom_call(call_id: str, name: str = "custom", input: str = "{}") -> Json:
    return {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": input}


def custom_output(call_id: str, output: str) -> Json:
    return {"type": "custom_tool_call_output", "call_id": call_id, "output": output}


def function_tool(name: str, description: str = "", properties: Json | None = None) -> Json:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "strict": False,
        "parameters": {"type": "object", "properties": properties or {}},
    }


def prompt(*items: Json, instructions: str = INSTRUCTIONS, **fields: Any) -> Prompt:
    return Prompt.model_validate({"instructions": instructions, "input": list(items), **fields})


def messages(*items: Json, orphan_calls: OrphanCallPolicy = "abort") -> list[Json]:
    built = build_messages(prompt(*items), orphan_calls=orphan_calls)
    return [m.model_dump(mode="json") for m in built]


def body(p: Prompt, provider: ProviderSettings | None = None, model: str = "m") -> Json:
    settings = provider or ProviderSettings()
    dumped: Json = build_body(p, model, settings, orphan_calls="abort").model_dump(mode="json")
    return dumped


def chat_user(text: str) -> Json:
    return {"role": "user", "content": text}


def chat_assistant(text: str, reasoning: str | None = None) -> Json:
    entry: Json = {"role": "assistant", "content": text}
    if reasoning is not None:
        entry["reasoning"] = reasoning
    return entry


def chat_function_call(
    call_id: str = "c1", arguments: str = "{}", name: str = "f", reasoning: str | None = None
) -> Json:
    entry: Json = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }
    if reasoning is not None:
        entry["reasoning"] = reasoning
    return entry


def chat_shell_call(id: str = "id1", reasoning: str | None = None) -> Json:
    entry: Json = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": id,
                "type": "local_shell_call",
                "status": "in_progress",
                "action": {
                    "type": "exec",
                    "command": ["echo"],
                    "timeout_ms": 1000,
                    "working_directory": None,
                    "env": None,
                    "user": None,
                },
            }
        ],
    }
    if reasoning is not None:
        entry["reasoning"] = reasoning
    return entry


def chat_custom_call(id: str | None, name: str = "custom", input: str = "{}") -> Json:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": id, "type": "custom", "custom": {"name": name, "input": input}}],
    }


def chat_tool(call_id: str, content: str | list[Json]) -> Json:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def items(*raw: Json) -> list[ResponseItem]:
    return TypeAdapter(list[ResponseItem]).validate_python(list(raw))


def dump_items(values: list[ResponseItem]) -> list[Json]:
    dumped: list[Json] = TypeAdapter(list[ResponseItem]).dump_python(values, mode="json")
    return dumped


def with_reasoning(built: list[Json]) -> list[Json]:
    return [m for m in built if "reasoning" in m]


# ---------------------------------------------------------------------------------------------
# §10.2 chat_completions_payload.rs, as tests of the request builder.
# ---------------------------------------------------------------------------------------------


def test_omits_reasoning_when_none_present() -> None:
    """§10.2 omits_reasoning_when_none_present."""
    assert messages(user("u1"), assistant("a1")) == [SYS, chat_user("u1"), chat_assistant("a1")]


def test_attaches_reasoning_to_previous_assistant() -> None:
    """§10.2 attaches_reasoning_to_previous_assistant."""
    assert messages(user("u1"), assistant("a1"), reasoning("rA")) == [
        SYS,
        chat_user("u1"),
        chat_assistant("a1", reasoning="rA"),
    ]


def test_attaches_reasoning_to_function_call_anchor() -> None:
    """§10.2 attaches_reasoning_to_function_call_anchor. D1: the seed cuts the unanswered call
    and fails this test; we keep the call with its reasoning and answer it with "aborted"."""
    assert messages(user("u1"), reasoning("rFunc"), function_call("c1")) == [
        SYS,
        chat_user("u1"),
        chat_function_call("c1", reasoning="rFunc"),
        chat_tool("c1", "aborted"),
    ]


def test_truncate_cuts_the_unanswered_call_with_the_reasoning_anchored_to_it() -> None:
    """Seed: `attaches_reasoning_to_function_call_anchor` (§10.2), with orphan_calls="truncate":
    the seed's output, in which the call (and its reasoning) is cut, so no reasoning is
    attached."""
    built = messages(user("u1"), reasoning("rFunc"), function_call("c1"), orphan_calls="truncate")
    assert built == [SYS, chat_user("u1")]


def test_attaches_reasoning_to_local_shell_call() -> None:
    """§10.2 attaches_reasoning_to_local_shell_call: uses the item id, status and the action
    with nulls written. D1: the call has no output, so an "aborted" result follows it, under
    the id the Chat form gives the call (upstream answers only calls with a call_id, which
    left this one unanswered for the provider)."""
    assert messages(user("u1"), reasoning("rShell"), local_shell_call(id="id1")) == [
        SYS,
        chat_user("u1"),
        chat_shell_call("id1", reasoning="rShell"),
        chat_tool("id1", "aborted"),
    ]


def test_drops_reasoning_when_last_role_is_user() -> None:
    """§10.2 drops_reasoning_when_last_role_is_user."""
    assert messages(assistant("aPrev"), reasoning("rHist"), user("uNew")) == [
        SYS,
        chat_assistant("aPrev"),
        chat_user("uNew"),
    ]


def test_ignores_reasoning_before_last_user() -> None:
    """§10.2 ignores_reasoning_before_last_user."""
    built = messages(user("u1"), assistant("a1"), user("u2"), reasoning("rAfterU1"))
    assert built == [SYS, chat_user("u1"), chat_assistant("a1"), chat_user("u2")]


def test_skips_empty_reasoning_segments() -> None:
    """§10.2 skips_empty_reasoning_segments."""
    built = messages(user("u1"), assistant("a1"), reasoning(""), reasoning("   "))
    assert built == [SYS, chat_user("u1"), chat_assistant("a1")]


def test_suppresses_duplicate_assistant_messages() -> None:
    """§10.2 suppresses_duplicate_assistant_messages (still true under D2: they are adjacent)."""
    assert messages(assistant("dup"), assistant("dup")) == [SYS, chat_assistant("dup")]


def test_payload_top_level_matches_seed_with_a_function_tool() -> None:
    """§10.2: the top-level payload is model, messages, stream, tools (last one cached) and
    max_tokens 8192."""
    p = prompt(user("u1"), tools=[function_tool("f", "does f")])
    assert body(p, model="anthropic/claude-sonnet-4-20250514") == {
        "model": "anthropic/claude-sonnet-4-20250514",
        "messages": [SYS, chat_user("u1")],
        "stream": True,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "does f",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {}},
                },
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "max_tokens": 8192,
    }


# ---------------------------------------------------------------------------------------------
# D1: normalise unanswered calls and orphan outputs instead of truncating (B1-B3).
# ---------------------------------------------------------------------------------------------


def test_unanswered_function_call_is_aborted_and_later_user_message_kept() -> None:
    """D1 (B1): the seed returns [system, u1]; we keep u2 and answer c1 with "aborted" right
    after the call."""
    assert messages(user("u1"), function_call("c1"), user("u2")) == [
        SYS,
        chat_user("u1"),
        chat_function_call("c1"),
        chat_tool("c1", "aborted"),
        chat_user("u2"),
    ]


def test_orphan_function_output_is_dropped() -> None:
    """D1: the seed sends an output whose call is not in the history as a stray tool message."""
    built = messages(user("u1"), function_output("gone", "stale"), user("u2"))
    assert built == [SYS, chat_user("u1"), chat_user("u2")]


def test_orphan_custom_output_is_dropped() -> None:
    """D1: a custom tool output with no custom call is dropped."""
    built = messages(user("u1"), custom_output("gone", "stale"), user("u2"))
    assert built == [SYS, chat_user("u1"), chat_user("u2")]


def test_unanswered_custom_tool_call_is_aborted() -> None:
    """D1 (B2): the seed never checks custom calls and sends them unanswered."""
    assert messages(user("u1"), custom_call("t1"), user("u2")) == [
        SYS,
        chat_user("u1"),
        chat_custom_call(None),
        chat_tool("t1", "aborted"),
        chat_user("u2"),
    ]


def test_unanswered_local_shell_call_is_aborted() -> None:
    """D1 (B2): a local shell call with a call_id and no output is answered with a function
    output; the tool_calls entry keeps the seed's use of the item id (B17 is not changed)."""
    assert messages(user("u1"), local_shell_call(id="id1", call_id="s1"), user("u2")) == [
        SYS,
        chat_user("u1"),
        chat_shell_call("id1"),
        chat_tool("s1", "aborted"),
        chat_user("u2"),
    ]


def test_answered_calls_get_no_synthetic_output() -> None:
    """D1: a call that has its output is left alone (no second "aborted" message)."""
    built = messages(
        user("u1"),
        function_call("c1"),
        function_output("c1", "ok"),
        custom_call("t1"),
        custom_output("t1", "done"),
    )
    assert built == [
        SYS,
        chat_user("u1"),
        chat_function_call("c1"),
        chat_tool("c1", "ok"),
        chat_custom_call(None),
        chat_tool("t1", "done"),
    ]


def test_synthetic_output_goes_right_after_its_call_not_at_the_end() -> None:
    """D1: with two calls, c1 unanswered and c2 answered later, "aborted" follows c1 at once."""
    built = messages(
        user("u1"),
        function_call("c1"),
        function_call("c2", name="g"),
        function_output("c2", "ok"),
    )
    assert built == [
        SYS,
        chat_user("u1"),
        chat_function_call("c1"),
        chat_tool("c1", "aborted"),
        chat_function_call("c2", name="g"),
        chat_tool("c2", "ok"),
    ]


def test_reasoning_prescan_runs_on_normalised_history() -> None:
    """D1: an orphan output between an assistant message and its reasoning is dropped first, so
    the reasoning attaches to the assistant message (the seed scans the raw input and drops it)."""
    built = messages(user("u1"), assistant("a1"), function_output("gone", "x"), reasoning("r"))
    assert built == [SYS, chat_user("u1"), chat_assistant("a1", reasoning="r")]


def test_truncate_reproduces_seed_cutoff() -> None:
    """D1 option orphan_calls="truncate" = seed B1: everything from the first unanswered
    function call on is dropped, later user message included."""
    built = messages(
        user("u1"),
        assistant("a1"),
        function_call("c1"),
        user("u2"),
        orphan_calls="truncate",
    )
    assert built == [SYS, chat_user("u1"), chat_assistant("a1")]


def test_truncate_keeps_answered_calls_before_the_cutoff() -> None:
    """orphan_calls="truncate" (B1): the cutoff is at the first *unanswered* function call."""
    built = messages(
        user("u1"),
        function_call("c1"),
        function_output("c1", "ok"),
        function_call("c2"),
        user("u2"),
        orphan_calls="truncate",
    )
    assert built == [SYS, chat_user("u1"), chat_function_call("c1"), chat_tool("c1", "ok")]


def test_truncate_keeps_seed_orphan_outputs_and_unanswered_other_calls() -> None:
    """orphan_calls="truncate" (B1/B2): no normalisation: orphan outputs are sent, custom and
    local shell calls are never cut nor answered."""
    built = messages(
        user("u1"),
        function_output("gone", "stale"),
        custom_call("t1"),
        local_shell_call(id="id1", call_id="s1"),
        orphan_calls="truncate",
    )
    assert built == [
        SYS,
        chat_user("u1"),
        chat_tool("gone", "stale"),
        chat_custom_call(None),
        chat_shell_call("id1"),
    ]


def test_truncate_prescan_ignores_the_cutoff() -> None:
    """orphan_calls="truncate" (B3): the last role is computed over the cut items, so the
    trailing user message that is cut still suppresses all reasoning."""
    built = messages(
        user("u1"),
        assistant("a1"),
        reasoning("r"),
        function_call("c1"),
        user("u2"),
        orphan_calls="truncate",
    )
    assert built == [SYS, chat_user("u1"), chat_assistant("a1")]


# §10.4 history_tests.rs normalisation vectors.


def test_normalize_adds_output_for_function_call() -> None:
    """D1 / §10.4: [FunctionCall call-x] gains FunctionCallOutput "aborted"."""
    result = normalize_history(items(function_call("call-x", name="do_it")))
    assert dump_items(result) == [
        function_call("call-x", name="do_it"),
        function_output("call-x", "aborted"),
    ]


def test_normalize_adds_output_for_custom_tool_call() -> None:
    """D1 / §10.4: [CustomToolCall tool-x] gains CustomToolCallOutput "aborted"."""
    result = normalize_history(items(custom_call("tool-x")))
    assert dump_items(result) == [custom_call("tool-x"), custom_output("tool-x", "aborted")]


def test_normalize_adds_output_for_local_shell_call() -> None:
    """D1 / §10.4: [LocalShellCall shell-1] gains FunctionCallOutput "aborted"."""
    shell = local_shell_call(id=None, call_id="shell-1")
    result = normalize_history(items(shell))
    assert dump_items(result) == dump_items(items(shell, function_output("shell-1", "aborted")))


def test_normalize_removes_orphan_function_output() -> None:
    """D1 / §10.4: an orphan FunctionCallOutput is removed."""
    assert normalize_history(items(function_output("orphan-1", "x"))) == []


def test_normalize_removes_orphan_custom_output() -> None:
    """D1 / §10.4: an orphan CustomToolCallOutput is removed."""
    assert normalize_history(items(custom_output("orphan-1", "x"))) == []


def test_normalize_mixed_vector() -> None:
    """D1 / §10.4: [FC c1, FCO c2 orphan, CTC t1, LSC s1] -> each call followed by "aborted"."""
    shell = local_shell_call(id=None, call_id="s1")
    result = normalize_history(
        items(function_call("c1"), function_output("c2", "x"), custom_call("t1"), shell)
    )
    assert dump_items(result) == dump_items(
        items(
            function_call("c1"),
            function_output("c1", "aborted"),
            custom_call("t1"),
            custom_output("t1", "aborted"),
            shell,
            function_output("s1", "aborted"),
        )
    )


def test_normalize_does_not_pair_outputs_across_call_kinds() -> None:
    """D1: a custom output does not answer a function call with the same id, nor the reverse."""
    result = normalize_history(items(function_call("x"), custom_output("x", "no")))
    assert dump_items(result) == [function_call("x"), function_output("x", "aborted")]


def test_normalize_keeps_local_shell_output() -> None:
    """D1: a function output answers a local shell call with that call_id (it is no orphan)."""
    shell = local_shell_call(id=None, call_id="s1")
    result = normalize_history(items(shell, function_output("s1", "done")))
    assert dump_items(result) == dump_items(items(shell, function_output("s1", "done")))


# ---------------------------------------------------------------------------------------------
# D2: duplicate assistant suppression only for an immediate repeat (B4).
# ---------------------------------------------------------------------------------------------


def test_same_assistant_reply_in_two_turns_is_kept() -> None:
    """D2 (B4): the seed drops the second "OK" and leaves two user messages in a row."""
    built = messages(user("u1"), assistant("OK"), user("u2"), assistant("OK"), user("u3"))
    assert built == [
        SYS,
        chat_user("u1"),
        chat_assistant("OK"),
        chat_user("u2"),
        chat_assistant("OK"),
        chat_user("u3"),
    ]


def test_assistant_text_repeated_after_another_assistant_message_is_kept() -> None:
    """D2: A(x), A(y), A(x): x repeats an earlier message, not the preceding one, so it is
    kept (the seed keeps it too; this guards against an "any earlier text" rule)."""
    built = messages(assistant("x"), assistant("y"), assistant("x"))
    assert built == [SYS, chat_assistant("x"), chat_assistant("y"), chat_assistant("x")]


def test_assistant_text_repeated_after_a_tool_call_is_kept() -> None:
    """D2: a tool call and its output separate the two equal replies."""
    built = messages(
        assistant("checking"),
        function_call("c1"),
        function_output("c1", "ok"),
        assistant("checking"),
    )
    assert built == [
        SYS,
        chat_assistant("checking"),
        chat_function_call("c1"),
        chat_tool("c1", "ok"),
        chat_assistant("checking"),
    ]


def test_duplicate_after_a_skipped_empty_message_still_collapses() -> None:
    """D2: an empty message is never emitted, so the repeat is still immediate."""
    built = messages(assistant("dup"), assistant("  "), assistant("dup"))
    assert built == [SYS, chat_assistant("dup")]


# ---------------------------------------------------------------------------------------------
# D3: empty arguments are "{}"; invalid arguments keep the seed's skip-state (B5).
# ---------------------------------------------------------------------------------------------


def test_empty_arguments_are_sent_as_empty_object() -> None:
    """D3 (B5): the seed skips a zero-argument call (arguments "") and its output."""
    built = messages(user("u1"), function_call("c1", arguments=""), function_output("c1", "done"))
    assert built == [
        SYS,
        chat_user("u1"),
        chat_function_call("c1", arguments="{}"),
        chat_tool("c1", "done"),
    ]


@pytest.mark.parametrize("arguments", ["{bad", '{"a":1}{"b":2}', "NaN", '{"a": Infinity}', "[1,"])
def test_invalid_arguments_skip_call_and_its_output(arguments: str) -> None:
    """D3 keeps the seed's skip-state: a call whose arguments are not JSON is not sent, nor is
    its output; the rest of the conversation is kept."""
    built = messages(
        user("u1"),
        function_call("c1", arguments=arguments),
        function_output("c1", "out"),
        user("u2"),
    )
    assert built == [SYS, chat_user("u1"), chat_user("u2")]


def test_arguments_are_sent_as_the_original_string() -> None:
    """§7.2: valid arguments are sent verbatim, not re-serialised."""
    arguments = '{ "b": 1,  "a": [1, 2] }'
    built = messages(user("u1"), function_call("c1", arguments), function_output("c1", "ok"))
    assert built[2] == chat_function_call("c1", arguments=arguments)


def test_skip_state_is_per_call_id() -> None:
    """§7.2 skip-state: a skipped call hides only the output with its own call_id."""
    built = messages(
        user("u1"),
        function_call("c1", arguments="{bad"),
        function_output("c1", "out1"),
        function_call("c2"),
        function_output("c2", "out2"),
    )
    assert built == [SYS, chat_user("u1"), chat_function_call("c2"), chat_tool("c2", "out2")]


def test_skip_state_is_reset_by_a_later_valid_call_with_same_id() -> None:
    """§7.2 skip-state: the flag is "the latest call with this id was skipped"."""
    built = messages(
        user("u1"),
        function_call("c1", arguments="{bad"),
        function_output("c1", "first"),
        function_call("c1", arguments='{"retry":true}'),
        function_output("c1", "second"),
    )
    assert built == [
        SYS,
        chat_user("u1"),
        chat_function_call("c1", arguments='{"retry":true}'),
        chat_tool("c1", "second"),
    ]


def test_invalid_unanswered_call_is_skipped_with_its_synthetic_output() -> None:
    """D1 + D3: the "aborted" answer of a skipped call is skipped too; later messages stay."""
    built = messages(user("u1"), function_call("c1", arguments="{bad"), user("u2"))
    assert built == [SYS, chat_user("u1"), chat_user("u2")]


def test_reasoning_anchored_to_skipped_call_is_lost() -> None:
    """§7.2: a skipped call takes its anchored reasoning with it."""
    built = messages(
        user("u1"),
        reasoning("r"),
        function_call("c1", arguments="{bad"),
        function_output("c1", "x"),
    )
    assert built == [SYS, chat_user("u1")]


# ---------------------------------------------------------------------------------------------
# D12: payload fields (B17).
# ---------------------------------------------------------------------------------------------


NO_TOOLS_BODY = {
    "model": "m",
    "messages": [SYS, chat_user("u1")],
    "stream": True,
    "max_tokens": 8192,
}


def test_no_tools_key_without_tools() -> None:
    """D12 (B17): the seed sends "tools": [] which OpenAI and DeepSeek reject."""
    assert body(prompt(user("u1"))) == NO_TOOLS_BODY


def test_no_tools_key_when_no_tool_is_a_function() -> None:
    """D12: local shell, web search and freeform tools have no Chat form; no empty list."""
    freeform = {
        "type": "custom",
        "name": "apply_patch",
        "description": "",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
    }
    tools = [{"type": "local_shell"}, {"type": "web_search"}, freeform]
    assert body(prompt(user("u1"), tools=tools)) == NO_TOOLS_BODY


def test_max_tokens_defaults_to_8192() -> None:
    """D12: the default keeps the seed's value."""
    assert body(prompt(user("u1")))["max_tokens"] == 8192


def test_max_tokens_from_provider() -> None:
    """D12 (B17): the seed hard-codes 8192."""
    assert body(prompt(user("u1")), ProviderSettings(max_tokens=16384))["max_tokens"] == 16384


def test_max_tokens_none_is_omitted() -> None:
    """D12 (B17): max_tokens can be switched off (OpenAI reasoning models reject it)."""
    built = body(prompt(user("u1")), ProviderSettings(max_tokens=None))
    assert built == {"model": "m", "messages": [SYS, chat_user("u1")], "stream": True}


def test_body_has_only_seed_fields() -> None:
    """§7.3: no stream_options, tool_choice, parallel_tool_calls or temperature."""
    p = prompt(user("u1"), tools=[function_tool("f")], parallel_tool_calls=True)
    assert list(body(p)) == ["model", "messages", "stream", "tools", "max_tokens"]
    assert body(p)["stream"] is True


# ---------------------------------------------------------------------------------------------
# D15: URL (B22).
# ---------------------------------------------------------------------------------------------


def test_url_appends_chat_completions() -> None:
    """§3.3: {base_url}/chat/completions."""
    provider = ProviderSettings(base_url="http://localhost:4000/v1")
    assert chat_completions_url(provider) == "http://localhost:4000/v1/chat/completions"


def test_url_default_base_is_openai() -> None:
    """§3.3: the chat path's default base URL."""
    assert chat_completions_url(ProviderSettings()) == "https://api.openai.com/v1/chat/completions"


def test_url_trailing_slash_gives_single_slash() -> None:
    """D15 (B22): the seed produces //chat/completions."""
    provider = ProviderSettings(base_url="https://host.example/v1/")
    assert chat_completions_url(provider) == "https://host.example/v1/chat/completions"


def test_url_query_params_encoded_in_configured_order() -> None:
    """D15 (B22): the seed writes k=v unencoded in map order."""
    params = {"z": "1", "api-version": "2024-02-01", "a": "x&y=z/?#"}
    url = chat_completions_url(ProviderSettings(base_url="https://h/v1", query_params=params))
    assert url == "https://h/v1/chat/completions?z=1&api-version=2024-02-01&a=x%26y%3Dz%2F%3F%23"
    assert parse_qsl(urlsplit(url).query) == list(params.items())


def test_url_empty_query_params_has_no_question_mark() -> None:
    """D15 (B22): the seed's Some({}) yields a trailing "?"."""
    provider = ProviderSettings(base_url="https://h/v1", query_params={})
    assert chat_completions_url(provider) == "https://h/v1/chat/completions"


def test_request_url_uses_chat_completions_url() -> None:
    """build_request sends to the D15 URL."""
    provider = ProviderSettings(base_url="https://h/v1/", query_params={"k": "v"})
    request = build_request(prompt(user("u1")), "m", provider, environ={})
    assert request.url == "https://h/v1/chat/completions?k=v"


# ---------------------------------------------------------------------------------------------
# Seed message building kept as is (§7.2).
# ---------------------------------------------------------------------------------------------


def test_system_message_is_first_with_instructions() -> None:
    """§7.2 step 0."""
    assert messages(user("u1"))[0] == SYS


def test_system_message_is_sent_even_with_empty_instructions() -> None:
    """§7.2 step 0: always present, even when empty."""
    built = build_messages(prompt(instructions=""))
    assert [m.model_dump(mode="json") for m in built] == [{"role": "system", "content": ""}]


def test_text_parts_are_joined_without_separator() -> None:
    """§7.2: a message's text parts are concatenated with no separator."""
    built = messages(message("user", input_text("a"), input_text("b")))
    assert built[1] == chat_user("ab")


def test_whitespace_only_text_part_is_kept_in_plain_text() -> None:
    """§7.2: whitespace-only parts are kept in the text when there is no image."""
    built = messages(message("user", input_text("a"), input_text("  "), input_text("b")))
    assert built[1] == chat_user("a  b")


def test_user_image_gives_parts_without_blank_text() -> None:
    """§7.2: with an image, content is a parts array; whitespace-only text parts are dropped."""
    built = messages(message("user", input_text("look"), input_text("   "), input_image()))
    assert built[1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": PNG}},
        ],
    }


def test_image_only_user_message_is_sent() -> None:
    """§7.2: an image alone is not an empty message."""
    built = messages(message("user", input_image()))
    assert built[1] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": PNG}}],
    }


@pytest.mark.parametrize(
    "item",
    [
        message("user"),
        message("user", input_text("")),
        message("user", input_text("  \n\t")),
        message("assistant", output_text(" ")),
    ],
)
def test_empty_or_blank_message_is_skipped(item: Json) -> None:
    """§7.2: text that is empty after trimming and no image: the message is not sent."""
    assert messages(user("u1"), item) == [SYS, chat_user("u1")]


def test_assistant_images_are_dropped() -> None:
    """§7.2 / B17: an assistant message is always plain text."""
    built = messages(message("assistant", output_text("see"), input_image()))
    assert built[1] == chat_assistant("see")


def test_image_only_assistant_message_is_sent_empty() -> None:
    """§7.2 / B17: an image-only assistant message goes out as content ""."""
    assert messages(message("assistant", input_image()))[1] == chat_assistant("")


@pytest.mark.parametrize("role", ["system", "developer"])
def test_other_roles_pass_through(role: str) -> None:
    """§7.2: the role string is sent verbatim."""
    built = messages(message(role, input_text("note")))
    assert built[1] == {"role": role, "content": "note"}


def test_function_output_content_items_become_parts() -> None:
    """§7.2: an output with content items is sent as text/image_url parts (§10.3 rmcp case)."""
    output = [input_text("caption"), input_image()]
    built = messages(user("u1"), function_call("img-cc-1"), function_output("img-cc-1", output))
    assert built[-1] == chat_tool(
        "img-cc-1",
        [{"type": "text", "text": "caption"}, {"type": "image_url", "image_url": {"url": PNG}}],
    )


def test_function_output_empty_string_is_sent() -> None:
    """§7.2: the content string is sent even when empty."""
    built = messages(user("u1"), function_call("c1"), function_output("c1", ""))
    assert built[-1] == chat_tool("c1", "")


def test_function_output_success_is_never_sent() -> None:
    """§7.2: a failed output looks like a successful one; success is not sent."""
    failed = FunctionCallOutput(
        call_id="c1", output=FunctionCallOutputPayload(content="bad", success=False)
    )
    p = Prompt(input=[*items(user("u1"), function_call("c1")), failed])
    assert [m.model_dump(mode="json") for m in build_messages(p)][-1] == chat_tool("c1", "bad")


def test_local_shell_call_without_id_uses_empty_string() -> None:
    """§7.2: the tool call id is the item id, or "" when it has none."""
    built = messages(user("u1"), local_shell_call(id=None))
    assert built[-1] == chat_shell_call("")


def test_custom_tool_call_shape_with_id() -> None:
    """§7.2: custom calls use the item id (not call_id) and carry name and input."""
    call = {**custom_call("t1", name="apply_patch", input="*** Begin Patch"), "id": "ctc_9"}
    built = messages(user("u1"), call, custom_output("t1", "patched"))
    assert built[2:] == [
        chat_custom_call("ctc_9", name="apply_patch", input="*** Begin Patch"),
        chat_tool("t1", "patched"),
    ]


def test_custom_tool_call_without_id_sends_null_id() -> None:
    """§7.2: id is null when the item has none."""
    built = messages(user("u1"), custom_call("t1"), custom_output("t1", "ok"))
    assert built[2] == chat_custom_call(None)
    assert built[2]["tool_calls"][0]["id"] is None


def test_items_without_chat_form_are_left_out() -> None:
    """§7.2: reasoning, web search calls, ghost snapshots and unknown items are not sent."""
    built = messages(
        user("u1"),
        {"type": "brand_new_item", "x": 1},
        {"type": "web_search_call", "action": {"type": "search", "query": "q"}},
        {"type": "ghost_snapshot", "ghost_commit": {"id": "abc"}},
        reasoning("unanchored"),
    )
    assert built == [SYS, chat_user("u1")]


# Reasoning anchoring (§7.2 step 1).


def test_reasoning_attaches_to_next_assistant_message() -> None:
    """§7.2: without a preceding assistant message, the next assistant message is the anchor."""
    built = messages(user("u1"), reasoning("r"), assistant("a1"))
    assert built == [SYS, chat_user("u1"), chat_assistant("a1", reasoning="r")]


def test_reasoning_prefers_previous_assistant_over_next_call() -> None:
    """§7.2: the previous assistant message wins over a following call."""
    built = messages(
        user("u1"), assistant("a1"), reasoning("r"), function_call("c1"), function_output("c1", "o")
    )
    assert built == [
        SYS,
        chat_user("u1"),
        chat_assistant("a1", reasoning="r"),
        chat_function_call("c1"),
        chat_tool("c1", "o"),
    ]


def test_reasoning_with_no_anchor_is_dropped() -> None:
    """§7.2: reasoning after a tool output with nothing after it has no anchor."""
    built = messages(user("u1"), function_call("c1"), function_output("c1", "o"), reasoning("r"))
    assert with_reasoning(built) == []


def test_custom_tool_call_is_never_an_anchor() -> None:
    """§7.2: a custom call following reasoning does not carry it."""
    built = messages(
        user("u1"),
        function_call("c0"),
        function_output("c0", "o"),
        reasoning("r"),
        custom_call("t1"),
        custom_output("t1", "done"),
    )
    assert with_reasoning(built) == []


def test_several_reasoning_items_on_one_anchor_concatenate() -> None:
    """§7.2: both reasoning items anchor to a1 and join with no separator."""
    built = messages(reasoning("r0"), assistant("a1"), reasoning("r1"))
    assert built == [SYS, chat_assistant("a1", reasoning="r0r1")]


def test_reasoning_parts_concatenate_and_text_counts() -> None:
    """§1.1 / §7.2: reasoning_text and text parts both count, joined with no separator."""
    item = reasoning("x", kind="text")
    item["content"].append({"type": "reasoning_text", "text": "y"})
    built = messages(user("u1"), assistant("a1"), item)
    assert built[-1] == chat_assistant("a1", reasoning="xy")


def test_reasoning_summary_and_null_content_are_ignored() -> None:
    """§7.2: only `content` is read; `content: null` is ignored, summary never used."""
    item = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "sum"}]}
    built = messages(user("u1"), assistant("a1"), item)
    assert built == [SYS, chat_user("u1"), chat_assistant("a1")]


def test_reasoning_attaches_when_conversation_ends_with_tool_output() -> None:
    """§7.2: a conversation ending with a tool output still gets reasoning."""
    built = messages(user("u1"), reasoning("r"), function_call("c1"), function_output("c1", "o"))
    assert built[2] == chat_function_call("c1", reasoning="r")


# ---------------------------------------------------------------------------------------------
# Tools JSON (§5, §2.4).
# ---------------------------------------------------------------------------------------------


def test_only_function_tools_are_kept_and_last_is_cached() -> None:
    """§5: non-function tools are dropped; only the last function tool has cache_control."""
    freeform = {
        "type": "custom",
        "name": "apply_patch",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
    }
    tools = [
        {"type": "local_shell"},
        function_tool("f"),
        {"type": "web_search"},
        freeform,
        function_tool("g"),
    ]
    sent = body(prompt(user("u1"), tools=tools))["tools"]
    assert [t["function"]["name"] for t in sent] == ["f", "g"]
    no_parameters = {"type": "object", "properties": {}}
    assert sent == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "",
                "strict": False,
                "parameters": no_parameters,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "g",
                "description": "",
                "strict": False,
                "parameters": no_parameters,
            },
            "cache_control": {"type": "ephemeral"},
        },
    ]


def test_tool_is_wrapped_with_full_schema() -> None:
    """§5 / §2.4: {"type":"function","function":{name,description,strict,parameters}}."""
    tool = {
        "type": "function",
        "name": "shell",
        "description": "Runs a command",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}},
                "timeout": {"type": "integer", "description": "ms"},
                "login": {"type": "boolean"},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    }
    assert body(prompt(user("u1"), tools=[tool]))["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "shell",
                "description": "Runs a command",
                "strict": True,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "command": {"type": "array", "items": {"type": "string"}},
                        "login": {"type": "boolean"},
                        "timeout": {"type": "number", "description": "ms"},
                    },
                    "required": ["command"],
                    "additionalProperties": False,
                },
            },
            "cache_control": {"type": "ephemeral"},
        }
    ]


def test_tool_properties_are_sorted() -> None:
    """§2.4: properties are a sorted map, also in the body bytes."""
    props = {"zeta": {"type": "string"}, "alpha": {"type": "number"}, "mid": {"type": "boolean"}}
    p = prompt(user("u1"), tools=[function_tool("f", properties=props)])
    sent = body(p)["tools"][0]["function"]["parameters"]["properties"]
    assert list(sent) == ["alpha", "mid", "zeta"]
    raw = build_request(p, "m", ProviderSettings(), environ={}).body
    assert raw.index(b'"alpha"') < raw.index(b'"mid"') < raw.index(b'"zeta"')


def test_integer_schema_is_sent_as_number() -> None:
    """§2.4: `integer` is read as `number`, and written as `number`."""
    p = prompt(user("u1"), tools=[function_tool("f", properties={"n": {"type": "integer"}})])
    params = body(p)["tools"][0]["function"]["parameters"]
    assert params["properties"] == {"n": {"type": "number"}}


def test_nested_additional_properties_schema() -> None:
    """§2.4: additionalProperties may be a schema, and nested objects are sorted too."""
    props = {
        "o": {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}
    }
    tool = function_tool("f", properties=props)
    tool["parameters"]["additionalProperties"] = {"type": "string"}
    params = body(prompt(user("u1"), tools=[tool]))["tools"][0]["function"]["parameters"]
    assert params["additionalProperties"] == {"type": "string"}
    assert list(params["properties"]["o"]["properties"]) == ["a", "b"]


# ---------------------------------------------------------------------------------------------
# output_schema (§7.1).
# ---------------------------------------------------------------------------------------------


def test_output_schema_is_unsupported() -> None:
    """§7.1: UnsupportedOperation before anything else."""
    p = prompt(user("u1"), output_schema={"type": "object"})
    with pytest.raises(UnsupportedOperation, match="output_schema is not supported"):
        build_body(p, "m", ProviderSettings())


def test_output_schema_is_unsupported_before_auth() -> None:
    """§7.1: raised even when the key variable is missing."""
    p = prompt(user("u1"), output_schema={"type": "object"})
    with pytest.raises(UnsupportedOperation):
        build_request(p, "m", ProviderSettings(env_key="NOPE_KEY"), environ={})


# ---------------------------------------------------------------------------------------------
# Headers (§3.4, §7.3) and body bytes.
# ---------------------------------------------------------------------------------------------

TRAILER = [("accept", "text/event-stream"), ("content-type", "application/json")]


def request_headers(
    provider: ProviderSettings, environ: dict[str, str], subagent: str | None = None
) -> list[tuple[str, str]]:
    request = build_request(prompt(user("u1")), "m", provider, environ=environ, subagent=subagent)
    return request.headers


def test_bearer_from_env_key() -> None:
    """§3.4: Authorization from environ[env_key], then accept and content-type."""
    headers = request_headers(ProviderSettings(env_key="LLMX_API_KEY"), {"LLMX_API_KEY": "sk-1"})
    assert headers == [("authorization", "Bearer sk-1"), *TRAILER]


def test_bearer_token_is_untrimmed() -> None:
    """§3.4: the token is used as is."""
    headers = request_headers(ProviderSettings(env_key="K"), {"K": " sk-1 "})
    assert headers[0] == ("authorization", "Bearer  sk-1 ")


def test_experimental_bearer_token_wins_over_env_key() -> None:
    """§3.4: the literal token is used and the env var is not even required."""
    provider = ProviderSettings(env_key="K", experimental_bearer_token="lit")
    assert request_headers(provider, {}) == [("authorization", "Bearer lit"), *TRAILER]
    assert request_headers(provider, {"K": "env"})[0] == ("authorization", "Bearer lit")


def test_no_env_key_means_no_authorization() -> None:
    """§3.4: an unset env_key gives no auth."""
    assert request_headers(ProviderSettings(), {"OPENAI_API_KEY": "x"}) == TRAILER


@pytest.mark.parametrize("environ", [{}, {"MY_KEY": ""}, {"MY_KEY": "  \t"}])
def test_missing_or_blank_env_key_raises(environ: dict[str, str]) -> None:
    """§3.4 / §6: EnvVar error naming the variable, with the instructions."""
    provider = ProviderSettings(env_key="MY_KEY", env_key_instructions="Set it in ~/.llmx.")
    with pytest.raises(MissingEnvVarError) as caught:
        build_request(prompt(user("u1")), "m", provider, environ=environ)
    assert str(caught.value) == "Missing environment variable: `MY_KEY`. Set it in ~/.llmx."
    assert caught.value.variable == "MY_KEY"


def test_static_then_env_headers_in_order() -> None:
    """§3.4: http_headers, then env_http_headers whose variable is set and non-blank (value
    untrimmed), then accept and content-type."""
    provider = ProviderSettings(
        env_key="K",
        http_headers={"x-static": "1", "version": "0.1.5"},
        env_http_headers={
            "OpenAI-Organization": "ORG",
            "OpenAI-Project": "PROJECT",
            "x-blank": "BLANK",
            "x-set": "SET",
        },
    )
    environ = {"K": "tok", "ORG": " org-1 ", "BLANK": "   ", "SET": "s"}
    assert request_headers(provider, environ) == [
        ("authorization", "Bearer tok"),
        ("x-static", "1"),
        ("version", "0.1.5"),
        ("OpenAI-Organization", " org-1 "),
        ("x-set", "s"),
        *TRAILER,
    ]


def test_user_authorization_header_is_appended_not_replaced() -> None:
    """§3.4: headers are appended, so a user Authorization gives two of them."""
    provider = ProviderSettings(
        experimental_bearer_token="tok", http_headers={"Authorization": "Basic abc"}
    )
    assert request_headers(provider, {}) == [
        ("authorization", "Bearer tok"),
        ("Authorization", "Basic abc"),
        *TRAILER,
    ]


def test_subagent_header_before_accept() -> None:
    """§7.3: x-openai-subagent only when a sub-agent is given, before accept/content-type."""
    provider = ProviderSettings(http_headers={"x-a": "1"})
    assert request_headers(provider, {}, subagent="review") == [
        ("x-a", "1"),
        ("x-openai-subagent", "review"),
        *TRAILER,
    ]
    assert request_headers(provider, {}) == [("x-a", "1"), *TRAILER]


def test_body_bytes_are_compact_json_of_build_body() -> None:
    """§7.3: the body is the compact JSON of build_body's dump."""
    p = prompt(
        user("héllo"),
        assistant("a1"),
        reasoning("r"),
        function_call("c1"),
        tools=[function_tool("f", properties={"x": {"type": "string"}})],
    )
    provider = ProviderSettings(max_tokens=100)
    request = build_request(p, "model-x", provider, environ={})
    expected = build_body(p, "model-x", provider).model_dump(mode="json")
    assert json.loads(request.body) == expected
    assert request.body == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()


def test_body_bytes_exact_for_simple_prompt() -> None:
    """§7.3: exact bytes, in the seed's key order, for a one-message prompt."""
    request = build_request(
        prompt(user("hi"), instructions="sys"), "m", ProviderSettings(), environ={}
    )
    assert request.body == (
        b'{"model":"m","messages":[{"role":"system","content":"sys"},'
        b'{"role":"user","content":"hi"}],"stream":true,"max_tokens":8192}'
    )


def test_request_orphan_calls_option_reaches_the_body() -> None:
    """D1: build_request passes orphan_calls on ("abort" by default, "truncate" on request)."""
    p = prompt(user("u1"), function_call("c1"), user("u2"))
    aborted = json.loads(build_request(p, "m", ProviderSettings(), environ={}).body)
    truncated = json.loads(
        build_request(p, "m", ProviderSettings(), environ={}, orphan_calls="truncate").body
    )
    assert aborted["messages"][-1] == chat_user("u2")
    assert truncated["messages"] == [SYS, chat_user("u1")]


# ---------------------------------------------------------------------------------------------
# Retry helpers (§4, D13).
# ---------------------------------------------------------------------------------------------


class FixedRandom(random.Random):
    """A Random whose random() always returns `value`; uniform(a, b) is a + (b-a)*value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.180, 0.219), (2, 0.360, 0.439), (3, 0.720, 0.879), (4, 1.440, 1.759)],
)
def test_backoff_range_per_attempt(attempt: int, low: float, high: float) -> None:
    """§4.1: floor(200 * 2^(attempt-1) * U[0.9, 1.1)) ms, in seconds."""
    rng = random.Random(1234)
    delays = [backoff(attempt, rng) for _ in range(500)]
    assert all(low <= d <= high for d in delays)
    assert all(round(d * 1000) == pytest.approx(d * 1000) for d in delays)
    assert min(delays) < low + 0.01
    assert max(delays) > high - 0.01


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.180, 0.219), (2, 0.360, 0.439), (3, 0.720, 0.879), (4, 1.440, 1.759)],
)
def test_backoff_jitter_extremes(attempt: int, low: float, high: float) -> None:
    """§4.1: the bounds of the ranges are hit exactly by the jitter's extremes."""
    assert backoff(attempt, FixedRandom(0.0)) == pytest.approx(low)
    assert backoff(attempt, FixedRandom(0.999999)) == pytest.approx(high)


def test_backoff_attempt_zero_counts_as_one() -> None:
    """§4.1: max(attempt, 1)."""
    assert backoff(0, FixedRandom(0.5)) == backoff(1, FixedRandom(0.5)) == pytest.approx(0.2)


def test_backoff_is_deterministic_for_a_seed() -> None:
    """§4.1: the jitter comes only from the given Random."""
    first = [backoff(n, random.Random(7)) for n in range(1, 6)]
    second = [backoff(n, random.Random(7)) for n in range(1, 6)]
    assert first == second


NOW = datetime(2025, 11, 16, 12, 0, 0, tzinfo=UTC)


def test_retry_after_ms() -> None:
    """D13: retry-after-ms is honoured (the seed ignores it)."""
    assert retry_after({"retry-after-ms": "1500"}, NOW) == pytest.approx(1.5)


def test_retry_after_ms_wins_over_retry_after() -> None:
    """D13: the millisecond header is the more precise one."""
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}, NOW) == pytest.approx(0.25)


def test_retry_after_integer_seconds() -> None:
    """§4.2: an unsigned integer of seconds."""
    assert retry_after({"retry-after": "7"}, NOW) == 7.0


def test_retry_after_fractional_seconds() -> None:
    """D13: a fractional value is accepted (the seed falls back to backoff)."""
    assert retry_after({"retry-after": "1.5"}, NOW) == pytest.approx(1.5)


def test_retry_after_http_date() -> None:
    """D13: an HTTP date relative to `now` (the seed ignores it)."""
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": when}, NOW) == pytest.approx(30.0)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    """D13: a date already past asks for no wait, not a negative one."""
    when = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": when}, NOW) == 0.0


def test_retry_after_absent() -> None:
    """No header: nothing asked."""
    assert retry_after({}, NOW) is None


@pytest.mark.parametrize("value", ["soon", "", "in a bit", "nan"])
def test_retry_after_garbage_is_none(value: str) -> None:
    """D13: a value that is neither seconds nor an HTTP date asks for nothing."""
    assert retry_after({"retry-after": value}, NOW) is None


def test_retry_delay_uses_retry_after() -> None:
    """D13: the asked wait is used when below the cap."""
    delay = retry_delay(1, {"retry-after": "3"}, now=NOW, rng=random.Random(0), cap=60.0)
    assert delay == 3.0


def test_retry_delay_caps_retry_after() -> None:
    """D13 (B18): the seed sleeps an uncapped Retry-After."""
    delay = retry_delay(1, {"retry-after": "3600"}, now=NOW, rng=random.Random(0), cap=60.0)
    assert delay == 60.0


def test_retry_delay_caps_backoff() -> None:
    """D13: backoff is capped too (attempt 10 is about 102 s)."""
    assert retry_delay(10, {}, now=NOW, rng=random.Random(0), cap=5.0) == 5.0


def test_retry_delay_falls_back_to_backoff() -> None:
    """§4.2: no usable header: backoff(attempt)."""
    delay = retry_delay(2, {"retry-after": "soon"}, now=NOW, rng=FixedRandom(0.0), cap=60.0)
    assert delay == pytest.approx(0.36)


def test_retry_delay_is_finite_for_nan_header() -> None:
    """D13: "nan" is not a delay; the wait must stay a finite backoff (a NaN sleep raises)."""
    delay = retry_delay(1, {"retry-after": "nan"}, now=NOW, rng=FixedRandom(0.0), cap=60.0)
    assert delay == pytest.approx(0.18)


def test_error_body_message_openai_json_and_its_error_object() -> None:
    """§10.4 util.rs: try_parse_error_message returns error.message; D19 keeps the object."""
    raw = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}'
    assert read_error_body(raw) == (
        "Incorrect API key provided",
        {"message": "Incorrect API key provided", "type": "invalid_request_error"},
    )


def test_error_body_message_plain_text_verbatim() -> None:
    """§10.4 util.rs: text that is not an error JSON is returned as is."""
    assert read_error_body(b"plain text error") == ("plain text error", None)


def test_error_body_message_json_without_error_key_verbatim() -> None:
    """§10.4 util.rs: JSON with no `error` key is returned verbatim."""
    assert read_error_body(b'{"detail":"nope"}') == ('{"detail":"nope"}', None)
