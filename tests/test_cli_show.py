"""`llmx-replay show`: a cassette read as the conversation it records, turn by turn.

The bundled cassettes are shown: each turn's sent messages, then the answer as the client
reads it; plain text when piped, colour on a terminal, or JSON.
"""

import json
from pathlib import Path

from click.testing import CliRunner, Result

from llmx_replay.cli import cli

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"


def run(*args: str, color: bool = False) -> Result:
    return CliRunner().invoke(cli, list(args), color=color)


def test_show_gives_each_turns_messages_then_the_answer() -> None:
    result = run("show", str(CASSETTES / "examples" / "tool-call.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "== interaction 0: gpt-4o-mini -> 200\n"
        "system: You are a helpful assistant.\n"
        "user: What is the weather in Paris?\n"
        'answer: -> get_weather({"city": "Paris"}) [call_weather_1]\n'
        "[finish_reason: tool_calls]\n"
        "\n"
        "== interaction 1: gpt-4o-mini -> 200\n"
        "system: You are a helpful assistant.\n"
        "user: What is the weather in Paris?\n"
        'assistant: -> get_weather({"city": "Paris"}) [call_weather_1]\n'
        "tool [call_weather_1]: 18°C, light rain\n"
        "answer: It is 18°C in Paris, with light rain.\n"
        "[finish_reason: stop]\n"
    )


def test_show_gives_reasoning_refusals_and_errors_as_the_client_reads_them() -> None:
    reasoning = run("show", str(CASSETTES / "examples" / "reasoning.yaml")).stdout
    assert "answer (reasoning): 91 is odd. 91 = 7 \u00d7 13, so it is composite.\n" in reasoning
    assert "[finish_reason: stop; tokens 12/30]\n" in reasoning
    refusal = run("show", str(CASSETTES / "decisions" / "d23-refusal.yaml")).stdout
    assert "answer (refusal): I'm very sorry, but I can't assist with that request.\n" in refusal
    cut = run("show", str(CASSETTES / "decisions" / "d08-stream-cut-short.yaml")).stdout
    assert "answer: TCP is a connection-oriented\nerror: stream: stream closed" in cut


def test_show_colours_for_a_terminal_only() -> None:
    path = str(CASSETTES / "examples" / "text.yaml")
    assert "\x1b[" not in run("show", path).stdout
    coloured = run("show", path, color=True).stdout
    assert "\x1b[32m\x1b[1muser: \x1b[0m" in coloured


def test_show_json_has_the_sent_messages_and_the_answer_of_each_turn() -> None:
    result = run("show", str(CASSETTES / "decisions" / "d13-retry-after.yaml"), "--format", "json")
    assert result.exit_code == 0, result.output
    (turn,) = json.loads(result.stdout)
    assert turn["index"] == 2
    assert turn["retried"] == [0, 1]
    assert turn["status"] == 200
    assert turn["model"] == "gpt-4o-mini"
    assert [message["role"] for message in turn["messages"]] == ["system", "user"]
    assert turn["answer"]["text"] == "Hi!"
    assert turn["answer"]["finish_reason"] == "stop"
    assert turn["answer"]["error"] is None


def test_show_refuses_another_apis_stream_naming_the_interaction() -> None:
    path = CASSETTES / "decisions" / "d24-other-wire-apis.yaml"
    result = run("show", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"llmx-replay: error: {path}: interaction 0: an Anthropic Messages stream"
    )


def test_show_refuses_a_cassette_with_no_chat_completions_turn(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "interactions:\n"
        "- request: {method: GET, uri: 'https://api.openai.com/v1/models'}\n"
        "  response: {status: {code: 200, message: OK}, body: {string: '{}'}}\n"
    )
    result = run("show", str(path))
    assert result.exit_code == 2
    assert result.stderr == (
        f"llmx-replay: error: {path}: holds no Chat Completions interaction (a POST to "
        ".../chat/completions)\n"
    )


def test_show_reads_malformed_sent_messages_without_a_traceback(tmp_path: Path) -> None:
    body = json.dumps(
        {
            "messages": [
                {"role": "tool", "content": "no call id"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "function": "not an object"}]},
                {"role": "assistant", "tool_calls": "not a list"},
            ]
        }
    )
    path = tmp_path / "odd.yaml"
    path.write_text(
        "interactions:\n"
        "- request: {method: POST, uri: 'http://x/v1/chat/completions', body: "
        + json.dumps(body)
        + "}\n"
        '  response: {status: {code: 200, message: OK}, body: {string: "data: [DONE]\\n\\n"}}\n'
    )
    result = run("show", str(path))
    assert result.exit_code == 0, result.output
    assert "tool [None]: no call id\n" in result.stdout
    assert "assistant: -> None(None) [c1]\n" in result.stdout
