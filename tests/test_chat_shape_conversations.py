"""Conversation files in the Chat Completions shape: the request body every OpenAI user has.

``{"messages": [...], "tools": [...]}`` is read as the conversation the client would send as
that body again (a body `payload` printed reads back to the same body), and Chat-style tools
(``{"type": "function", "function": {...}}``) are read in llmx's shape too. Errors name the
field as the body names it.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from llmx_replay.cli import cli

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

CONVERSATION: dict[str, Any] = {
    "instructions": "Be brief.",
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this, and the weather in Paris?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "A cat. Let me look."}],
        },
        {
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "The user wants weather."}],
        },
        {
            "type": "function_call",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "call_id": "call_1",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "18 C, sunny"},
    ],
    "tools": [TOOL],
}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def payload(path: Path) -> dict[str, Any]:
    result = run("payload", str(path), "--model", "gpt-4o-mini")
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_a_body_payload_printed_reads_back_as_the_same_body(tmp_path: Path) -> None:
    body = payload(write(tmp_path / "llmx.json", CONVERSATION))
    assert [message["role"] for message in body["messages"]] == [
        "system",
        "user",
        "assistant",
        "assistant",
        "tool",
    ]
    assert payload(write(tmp_path / "body.json", body)) == body


def test_a_hand_written_chat_body_becomes_the_conversation_it_says(tmp_path: Path) -> None:
    chat = {
        "model": "ignored: --model says it",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "Call the tool.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
            {"role": "system", "content": "Mention the source."},
        ],
        "tools": [{"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}],
    }
    body = payload(write(tmp_path / "chat.json", chat))
    assert body["model"] == "gpt-4o-mini"
    assert "temperature" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief.\n\nAnswer in French."}
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["messages"][2]["reasoning"] == "Call the tool."
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}
    assert body["messages"][4] == {"role": "system", "content": "Mention the source."}
    assert body["tools"][0]["function"]["name"] == "get_weather"


def test_chat_style_tools_are_read_in_llmx_shape_too(tmp_path: Path) -> None:
    chat_tool = {"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}
    llmx = payload(write(tmp_path / "llmx.json", CONVERSATION))
    mixed = payload(write(tmp_path / "mixed.json", {**CONVERSATION, "tools": [chat_tool]}))
    assert mixed == llmx


BAD_CALL = {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"arguments": "{}"}}]}


@pytest.mark.parametrize(
    ("document", "field", "problem"),
    [
        ({"messages": {}}, "messages", "expected an array"),
        ({"messages": ["hi"]}, "messages[0]", "expected an object"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "expected a string"),
        (
            {"messages": [{"role": "function", "content": "x"}]},
            "messages[0].role",
            "expected system, developer, user, assistant or tool, got 'function'",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}, BAD_CALL]},
            "messages[1].tool_calls[0].function.name",
            "expected a string",
        ),
        (
            {"messages": [{"role": "tool", "content": "ok"}]},
            "messages[0].tool_call_id",
            "expected a string",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            "messages[0].content[0].type",
            "expected 'text' or 'image_url', got 'audio'",
        ),
        (
            {"messages": [], "input": []},
            "messages",
            "either llmx's conversation (`instructions`, `input`) or a Chat Completions body "
            "(`messages`), not both",
        ),
        (
            {"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools[0].function.parameters",
            "Field required",
        ),
    ],
)
def test_a_wrong_chat_body_is_refused_naming_the_field(
    tmp_path: Path, document: Any, field: str, problem: str
) -> None:
    path = write(tmp_path / "chat.json", document)
    result = run("payload", str(path), "--model", "m")
    assert result.exit_code == 2
    assert result.stderr == f"llmx-replay: error: {path}: {field}: {problem}\n"
