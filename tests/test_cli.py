"""The `llmx-replay` command line, driven through click's `CliRunner`.

Every input file is written to `tmp_path`; nothing touches the network.
"""

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from llmx_replay._version import __version__
from llmx_replay.cli import cli

ERROR_PREFIX = "llmx-replay: error: "
CHAT_URI = "https://api.openai.com/v1/chat/completions"
REQUEST_BODY = '{"model":"m","messages":[],"stream":true}'


# --- helpers ---------------------------------------------------------------------------


def run(*args: str) -> Result:
    """Run the CLI in-process; stdout and stderr stay apart (click >= 8.2)."""
    return CliRunner().invoke(cli, list(args))


def jsonl(result: Result) -> list[dict[str, Any]]:
    """Every stdout line parsed as one JSON object."""
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit status 2, nothing on stdout, and one `llmx-replay: error: ` line on stderr."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(ERROR_PREFIX), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def sse(*chunks: dict[str, Any], done: bool = True) -> str:
    """An SSE body of `data:` events, ended by `data: [DONE]` unless `done` is False."""
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
    return body + ("data: [DONE]\n\n" if done else "")


def content(text: str) -> dict[str, Any]:
    return {"choices": [{"delta": {"content": text}}]}


def finish(reason: str = "stop") -> dict[str, Any]:
    return {"choices": [{"delta": {}, "finish_reason": reason}]}


USAGE_CHUNK: dict[str, Any] = {
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}
HELLO_SSE = sse(content("Hel"), content("lo"), finish(), USAGE_CHUNK)

USAGE = {
    "input_tokens": 5,
    "cached_input_tokens": 0,
    "output_tokens": 2,
    "reasoning_output_tokens": 0,
    "total_tokens": 7,
}
USAGE_TEXT = "usage: input 5 (cached 0), output 2 (reasoning 0), total 7"
COMPLETED = {"type": "completed", "response_id": "", "token_usage": USAGE, "finish_reason": "stop"}
MESSAGE_ADDED = {
    "type": "output_item_added",
    "item": {"type": "message", "role": "assistant", "content": []},
}
HELLO_DONE = {
    "type": "output_item_done",
    "item": {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello"}],
    },
}
HELLO_STREAMING: list[dict[str, Any]] = [
    MESSAGE_ADDED,
    {"type": "output_text_delta", "delta": "Hel"},
    {"type": "output_text_delta", "delta": "lo"},
    HELLO_DONE,
    COMPLETED,
]
HELLO_TEXT = f"Hello\n[completed] finish_reason: stop; {USAGE_TEXT}\n"


def chat_interaction(
    body: str | bytes,
    *,
    status: int = 200,
    message: str = "OK",
    content_type: str = "text/event-stream",
    extra_headers: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """One vcrpy interaction: a POST to /chat/completions and its recorded response."""
    headers: dict[str, list[str]] = {"content-type": [content_type], **(extra_headers or {})}
    return {
        "request": {
            "method": "POST",
            "uri": CHAT_URI,
            "body": REQUEST_BODY,
            "headers": {"content-type": ["application/json"]},
        },
        "response": {
            "status": {"code": status, "message": message},
            "headers": headers,
            "body": {"string": body},
        },
    }


def write_cassette(path: Path, *interactions: dict[str, Any]) -> Path:
    return write_yaml(path, {"interactions": list(interactions), "version": 1})


# --- payload ---------------------------------------------------------------------------

FULL_CONVERSATION: dict[str, Any] = {
    "instructions": "Be brief.",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hello"}],
        },
        {
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "think"}],
        },
        {"type": "function_call", "name": "get", "arguments": '{"a":1}', "call_id": "c1"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "get",
            "description": "Get a thing.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "required": ["a"],
            },
        }
    ],
}

FULL_BODY: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning": "think"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get", "arguments": '{"a":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ],
    "stream": True,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get",
                "description": "Get a thing.",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "number"}},
                    "required": ["a"],
                },
            },
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "max_tokens": 8192,
}


@pytest.fixture
def conversation(tmp_path: Path) -> Path:
    return write_json(tmp_path / "conversation.json", FULL_CONVERSATION)


def test_payload_prints_the_whole_body(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == FULL_BODY
    assert "\n  " in result.stdout  # indented by default


def test_payload_max_tokens(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m", "--max-tokens", "100")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {**FULL_BODY, "max_tokens": 100}


def test_payload_no_max_tokens_omits_it(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m", "--no-max-tokens")
    assert result.exit_code == 0, result.stderr
    expected = {key: value for key, value in FULL_BODY.items() if key != "max_tokens"}
    assert json.loads(result.stdout) == expected


ORPHAN_CONVERSATION: dict[str, Any] = {
    "instructions": "sys",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "function_call", "name": "get", "arguments": "{}", "call_id": "c9"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "more"}]},
    ],
}


def test_payload_orphan_call_is_answered_aborted_by_default(tmp_path: Path) -> None:
    path = write_json(tmp_path / "orphan.json", ORPHAN_CONVERSATION)
    result = run("payload", str(path), "--model", "m", "--no-max-tokens")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c9", "type": "function", "function": {"name": "get", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c9", "content": "aborted"},
            {"role": "user", "content": "more"},
        ],
        "stream": True,
    }


def test_payload_orphan_calls_truncate_cuts_the_history(tmp_path: Path) -> None:
    path = write_json(tmp_path / "orphan.json", ORPHAN_CONVERSATION)
    result = run(
        "payload", str(path), "--model", "m", "--no-max-tokens", "--orphan-calls", "truncate"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "model": "m",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}],
        "stream": True,
    }


def test_payload_compact_prints_compact_json(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m", "--compact")
    assert result.exit_code == 0, result.stderr
    compact = json.dumps(FULL_BODY, separators=(",", ":"), ensure_ascii=False)
    assert result.stdout == compact + "\n"


def test_payload_base_url_prints_the_request_line_on_stderr(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m", "--base-url", "http://x/v1/")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == FULL_BODY
    assert result.stderr == "POST http://x/v1/chat/completions\n"


def test_payload_leaves_out_an_item_of_unknown_type(tmp_path: Path) -> None:
    document = {
        **FULL_CONVERSATION,
        "input": [*FULL_CONVERSATION["input"], {"type": "mystery_item", "x": 1}],
    }
    path = write_json(tmp_path / "conversation.json", document)
    result = run("payload", str(path), "--model", "m")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == FULL_BODY


def test_payload_error_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert_one_line_error(run("payload", str(missing), "--model", "m"), f"{missing}: ")


def test_payload_error_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"input": [')
    line = assert_one_line_error(run("payload", str(path), "--model", "m"), f"{path}: ")
    assert "JSON" in line


def test_payload_error_top_level_not_an_object(tmp_path: Path) -> None:
    path = write_json(tmp_path / "list.json", [{"type": "message"}])
    assert_one_line_error(run("payload", str(path), "--model", "m"), f"{path}: ")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        pytest.param(
            {"input": [{"type": "message", "content": [{"type": "input_text", "text": "x"}]}]},
            "input[0].role",
            id="message-without-role",
        ),
        pytest.param(
            {"input": [{"type": "function_call", "name": "get", "call_id": "c1"}]},
            "input[0].arguments",
            id="function-call-without-arguments",
        ),
        pytest.param(
            {"tools": [{"type": "function", "parameters": {"type": "object", "properties": {}}}]},
            "tools[0].name",
            id="function-tool-without-name",
        ),
        pytest.param({"input": [{"role": "user", "content": []}]}, "input[0]", id="no-type"),
        pytest.param({"input": [], "bogus": 1}, "bogus", id="unknown-top-level-key"),
        pytest.param(
            {"input": [], "output_schema": {"type": "object"}}, "output_schema", id="output-schema"
        ),
    ],
)
def test_payload_error_names_the_field(tmp_path: Path, document: Any, field: str) -> None:
    path = write_json(tmp_path / "conversation.json", document)
    assert_one_line_error(run("payload", str(path), "--model", "m"), f"{path}: {field}: ")


def test_payload_error_max_tokens_zero(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m", "--max-tokens", "0")
    assert_one_line_error(result, "--max-tokens")


def test_payload_error_max_tokens_with_no_max_tokens(conversation: Path) -> None:
    result = run(
        "payload", str(conversation), "--model", "m", "--max-tokens", "5", "--no-max-tokens"
    )
    assert_one_line_error(result, "--max-tokens", "--no-max-tokens")


def test_payload_error_missing_model(conversation: Path) -> None:
    assert_one_line_error(run("payload", str(conversation)), "--model")


def test_payload_error_bad_orphan_calls(conversation: Path) -> None:
    result = run("payload", str(conversation), "--model", "m", "--orphan-calls", "keep")
    assert_one_line_error(result, "--orphan-calls")


# --- play: raw SSE bodies --------------------------------------------------------------


@pytest.fixture
def hello_sse(tmp_path: Path) -> Path:
    path = tmp_path / "body.sse"
    path.write_text(HELLO_SSE)
    return path


def test_play_sse_streaming_jsonl(hello_sse: Path) -> None:
    result = run("play", str(hello_sse), "--mode", "streaming", "--format", "jsonl")
    assert jsonl(result) == HELLO_STREAMING
    assert result.stderr == ""


def test_play_sse_default_mode_is_streaming(hello_sse: Path) -> None:
    assert jsonl(run("play", str(hello_sse), "--format", "jsonl")) == HELLO_STREAMING


def test_play_sse_aggregated_jsonl(hello_sse: Path) -> None:
    result = run("play", str(hello_sse), "--mode", "aggregated", "--format", "jsonl")
    assert jsonl(result) == [HELLO_DONE, COMPLETED]


def test_play_sse_raw_jsonl_keeps_one_part_per_delta(hello_sse: Path) -> None:
    result = run("play", str(hello_sse), "--mode", "raw", "--format", "jsonl")
    assert jsonl(result) == [
        MESSAGE_ADDED,
        {"type": "output_text_delta", "delta": "Hel"},
        {"type": "output_text_delta", "delta": "lo"},
        {
            "type": "output_item_done",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "Hel"},
                    {"type": "output_text", "text": "lo"},
                ],
            },
        },
        COMPLETED,
    ]


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
def test_play_sse_text_format(hello_sse: Path, mode: str) -> None:
    result = run("play", str(hello_sse), "--mode", mode, "--format", "text")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == HELLO_TEXT
    assert result.stderr == ""


def test_play_raw_text_shows_each_event_on_a_line(hello_sse: Path) -> None:
    """--mode raw in text shows what makes it raw: every delta, and a part per delta."""
    raw = jsonl(run("play", str(hello_sse), "--mode", "raw", "--format", "jsonl"))
    lines = run("play", str(hello_sse), "--mode", "raw").stdout.splitlines()
    deltas = [event["delta"] for event in raw if event["type"] == "output_text_delta"]
    assert lines[: len(deltas) + 1] == [
        'output_item_added message assistant [0 parts] ""',
        *(f"output_text_delta {json.dumps(delta)}" for delta in deltas),
    ]
    assert lines[len(deltas) + 1].startswith(
        f"output_item_done message assistant [{len(deltas)} parts] "
    )
    assert lines[-1] == HELLO_TEXT.splitlines()[-1]


def test_play_sse_text_is_the_default_format(hello_sse: Path) -> None:
    result = run("play", str(hello_sse))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == HELLO_TEXT


def test_play_text_shows_reasoning_and_tool_calls(tmp_path: Path) -> None:
    path = tmp_path / "tools.sse"
    path.write_text(
        sse(
            {"choices": [{"delta": {"reasoning": "Think"}}]},
            {"choices": [{"delta": {"reasoning": "ing."}}]},
            content("Let me look."),
            {
                "choices": [
                    {
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "get", "arguments": '{"a"'},
                                }
                            ]
                        }
                    }
                ]
            },
            {
                "choices": [
                    {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}
                ]
            },
            finish("tool_calls"),
            {
                "choices": [],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 4,
                    "total_tokens": 14,
                    "prompt_tokens_details": {"cached_tokens": 3},
                    "completion_tokens_details": {"reasoning_tokens": 2},
                },
            },
        )
    )
    result = run("play", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[reasoning] Thinking.",
        "Let me look.",
        '[tool call] get (call_1): {"a":1}',
        "[completed] finish_reason: tool_calls; "
        "usage: input 10 (cached 3), output 4 (reasoning 2), total 14",
    ]


CUT_OFF_SSE = sse(content("Hel"), content("lo"), done=False)
STREAM_ERROR = {
    "type": "error",
    "kind": "stream",
    "message": "stream closed before completion",
    "status": None,
}


def test_play_cut_off_stream_ends_with_a_stream_error_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_text(CUT_OFF_SSE)
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        MESSAGE_ADDED,
        {"type": "output_text_delta", "delta": "Hel"},
        {"type": "output_text_delta", "delta": "lo"},
        HELLO_DONE,
        STREAM_ERROR,
    ]


def test_play_cut_off_stream_ends_with_a_stream_error_text(tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_text(CUT_OFF_SSE)
    result = run("play", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Hello",
        "[error: stream] stream closed before completion",
    ]


# --- play: cassettes -------------------------------------------------------------------

RATE_LIMIT_BODY = json.dumps({"error": {"message": "Rate limit reached", "type": "requests"}})
RETRY_LIMIT_ERROR = {
    "type": "error",
    "kind": "retry_limit",
    "status": 429,
    "message": "exceeded retry limit, last status: 429 Too Many Requests: Rate limit reached",
    "provider_error": {"message": "Rate limit reached", "type": "requests"},
}


@pytest.fixture
def two_interactions(tmp_path: Path) -> Path:
    return write_cassette(
        tmp_path / "cassette.yaml",
        chat_interaction(
            RATE_LIMIT_BODY,
            status=429,
            message="Too Many Requests",
            content_type="application/json",
        ),
        chat_interaction(HELLO_SSE),
    )


def test_play_cassette_replays_a_429_then_its_retry_as_one_turn(two_interactions: Path) -> None:
    result = run("play", str(two_interactions), "--format", "jsonl")
    assert result.stderr == ""
    assert jsonl(result) == [
        {
            "type": "interaction",
            "index": 1,
            "status": 200,
            "retried": [{"index": 0, "status": 429}],
        },
        *HELLO_STREAMING,
    ]


def test_play_cassette_with_a_retried_turn_text(two_interactions: Path) -> None:
    result = run("play", str(two_interactions))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"== interaction 1: POST {CHAT_URI} -> 200 (retried after #0 429)",
        "Hello",
        f"[completed] finish_reason: stop; {USAGE_TEXT}",
    ]


def test_play_cassette_reports_a_429_nothing_retried(tmp_path: Path) -> None:
    rate_limited = chat_interaction(
        RATE_LIMIT_BODY, status=429, message="Too Many Requests", content_type="application/json"
    )
    path = write_cassette(tmp_path / "cassette.yaml", rate_limited)
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 429},
        RETRY_LIMIT_ERROR,
    ]


def test_play_cassette_keeps_a_429_and_a_different_request_apart(tmp_path: Path) -> None:
    rate_limited = chat_interaction(
        RATE_LIMIT_BODY, status=429, message="Too Many Requests", content_type="application/json"
    )
    other = chat_interaction(HELLO_SSE)
    other["request"]["body"] = REQUEST_BODY.replace('"m"', '"m2"')
    assert other["request"]["body"] != REQUEST_BODY
    path = write_cassette(tmp_path / "cassette.yaml", rate_limited, other)
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 429},
        RETRY_LIMIT_ERROR,
        {"type": "interaction", "index": 1, "status": 200},
        *HELLO_STREAMING,
    ]


def test_play_cassette_skips_non_chat_interactions_keeping_indices(tmp_path: Path) -> None:
    models = {
        "request": {"method": "GET", "uri": "https://api.openai.com/v1/models", "body": None},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": '{"data": []}'},
        },
    }
    path = write_cassette(tmp_path / "cassette.yaml", models, chat_interaction(HELLO_SSE))
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 1, "status": 200},
        *HELLO_STREAMING,
    ]


def test_play_cassette_with_gzip_binary_body(tmp_path: Path) -> None:
    interaction = chat_interaction(
        gzip.compress(HELLO_SSE.encode()), extra_headers={"content-encoding": ["gzip"]}
    )
    path = write_cassette(tmp_path / "gzip.yaml", interaction)
    assert "!!binary" in path.read_text()
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 200},
        *HELLO_STREAMING,
    ]


def test_play_json_cassette(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "cassette.json",
        {"interactions": [chat_interaction(HELLO_SSE)], "version": 1},
    )
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 200},
        *HELLO_STREAMING,
    ]


def test_play_ruby_vcr_cassette(tmp_path: Path) -> None:
    document = {
        "http_interactions": [
            {
                "request": {
                    "method": "post",
                    "uri": CHAT_URI,
                    "body": {"encoding": "UTF-8", "string": REQUEST_BODY},
                    "headers": {"Content-Type": ["application/json"]},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"Content-Type": ["text/event-stream"]},
                    "body": {"encoding": "UTF-8", "string": HELLO_SSE},
                },
                "recorded_at": "Tue, 01 Jul 2025 10:00:00 GMT",
            }
        ],
        "recorded_with": "VCR 6.2.0",
    }
    path = write_yaml(tmp_path / "ruby.yml", document)
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 200},
        *HELLO_STREAMING,
    ]


def test_play_single_interaction_json(tmp_path: Path) -> None:
    document = {
        "request": {"method": "POST", "url": CHAT_URI, "body": REQUEST_BODY},
        "response": {
            "status": {"code": 200},
            "headers": {"content-type": "text/event-stream"},
            "body": HELLO_SSE,
        },
    }
    path = write_json(tmp_path / "single.json", document)
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 200},
        *HELLO_STREAMING,
    ]


def test_play_old_vcrpy_httpx_layout(tmp_path: Path) -> None:
    interaction = {
        "request": {"method": "POST", "uri": CHAT_URI, "content": REQUEST_BODY, "headers": {}},
        "response": {
            "status_code": 200,
            "headers": {"content-type": ["text/event-stream"]},
            "content": HELLO_SSE,
        },
    }
    path = write_cassette(tmp_path / "httpx.yaml", interaction)
    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 0, "status": 200},
        *HELLO_STREAMING,
    ]


# --- play: bad input -------------------------------------------------------------------


def test_play_error_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(run("play", str(missing)), f"{missing}: ")


def test_play_error_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("interactions:\n- request: {method: POST\n  uri: [\n")
    line = assert_one_line_error(run("play", str(path)), f"{path}: ")
    assert "YAML" in line


def test_play_error_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"interactions": [{"request": ')
    line = assert_one_line_error(run("play", str(path)), f"{path}: ")
    assert "JSON" in line


def test_play_error_yaml_that_is_not_a_cassette(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("foo: bar\n")
    assert_one_line_error(run("play", str(path)), f"{path}: ")


def test_play_error_interaction_without_uri(tmp_path: Path) -> None:
    interaction = chat_interaction(HELLO_SSE)
    del interaction["request"]["uri"]
    path = write_cassette(tmp_path / "cassette.yaml", interaction)
    assert_one_line_error(run("play", str(path)), f"{path}: interactions[0].request.uri: ")


def test_play_error_interaction_without_status(tmp_path: Path) -> None:
    interaction = chat_interaction(HELLO_SSE)
    del interaction["response"]["status"]
    path = write_cassette(tmp_path / "cassette.yaml", interaction, chat_interaction(HELLO_SSE))
    assert_one_line_error(run("play", str(path)), f"{path}: interactions[0].response.status: ")


def test_play_error_no_chat_completions_interaction(tmp_path: Path) -> None:
    interaction = chat_interaction(HELLO_SSE)
    interaction["request"]["uri"] = "https://api.openai.com/v1/embeddings"
    path = write_cassette(tmp_path / "cassette.yaml", interaction)
    line = assert_one_line_error(run("play", str(path)), f"{path}: ")
    assert "Chat Completions" in line


@pytest.mark.parametrize("option", ["--mode", "--format"])
def test_play_error_bad_choice(hello_sse: Path, option: str) -> None:
    assert_one_line_error(run("play", str(hello_sse), option, "bogus"), option, "bogus")


# --- the group -------------------------------------------------------------------------


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"llmx-replay, version {__version__}\n"


def test_help_lists_both_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:", 1)[1].split()
    assert "payload" in commands
    assert "play" in commands


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:", 1)[1].split()
    for command in ("payload", "record", "play", "inspect", "diff"):
        assert command in commands


def test_play_text_shows_the_response_id_on_the_completed_line() -> None:
    """D17: the text renderer shows the id the chunks carried."""
    cassette = Path(__file__).parent.parent / "cassettes" / "decisions" / "d17-response-id.yaml"

    result = run("play", str(cassette))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "[completed] finish_reason: stop; response_id: chatcmpl-rid1"
    )


def test_play_jsonl_shows_the_response_id() -> None:
    cassette = Path(__file__).parent.parent / "cassettes" / "decisions" / "d17-response-id.yaml"

    [*_, completed] = jsonl(run("play", str(cassette), "--format", "jsonl"))

    assert completed == {
        "type": "completed",
        "response_id": "chatcmpl-rid1",
        "token_usage": None,
        "finish_reason": "stop",
    }


DECISIONS = Path(__file__).parent.parent / "cassettes" / "decisions"


def played_text(name: str, *options: str) -> list[str]:
    result = run("play", str(DECISIONS / name), *options)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_play_text_shows_encrypted_reasoning_and_its_summary() -> None:
    """D18: a reasoning with no readable text still shows: its summary, and how much
    encrypted content it carries."""
    lines = played_text("d18-reasoning-details.yaml", "--mode", "aggregated")
    o3 = lines[
        lines.index("== interaction 1: POST https://openrouter.ai/api/v1/chat/completions -> 200") :
    ]
    assert o3[1:4] == [
        "[reasoning summary] **Introducing myself**",
        "[reasoning] (encrypted, 130 characters)",
        "I'm ChatGPT, an AI assistant.",
    ]


def test_play_text_shows_the_providers_error_code_and_what_came_before() -> None:
    """D19, D20: the error line names the provider's code, then the finish reason and usage."""
    assert played_text("d20-error-after-finish-reason.yaml")[-1] == (
        "[error: unexpected_status, status 200, code 400] Token limit reached "
        "(finish_reason: length; usage: input 43 (cached 0), output 10 (reasoning 11), total 53)"
    )
    assert played_text("d19-in-stream-error-object.yaml")[-1].startswith(
        "[error: unexpected_status, status 200, code tool_use_failed] Failed to call a function."
    )


def test_play_text_shows_a_flagged_moderation() -> None:
    """D21: the completed line says what the moderation flagged."""
    assert "; moderation: flagged (output: violence); " in played_text("d21-moderation.yaml")[-1]


def test_play_text_shows_the_sources_under_the_answer() -> None:
    """D22: a line per cited source, under the answer."""
    lines = played_text("d22-annotations-and-sources.yaml")
    assert lines[1:4] == [
        "It is https://github.com/pydantic/pydantic-ai",
        "[citation] AI Agent Framework, the Pydantic way - GitHub "
        "<https://github.com/pydantic/pydantic-ai>",
        "[citation] Pydantic AI | Pydantic Docs <https://pydantic.dev/docs/ai/overview/>",
    ]
    assert lines[7:9] == [
        "[citation] <https://croneconfidence.com/2015/01/28/your-magic-mirror/>",
        "[citation] <https://integrallife.com/the-magic-mirror/>",
    ]


@pytest.mark.parametrize("mode", ["streaming", "aggregated"])
def test_play_text_marks_a_refusal(mode: str) -> None:
    """D23: a refusal reads as a refusal, streamed or not."""
    lines = played_text("d23-refusal.yaml", "--mode", mode)
    assert lines[1] == "[refusal] I'm very sorry, but I can't assist with that request."


def test_play_jsonl_shows_the_refusal_deltas_and_part() -> None:
    events = jsonl(run("play", str(DECISIONS / "d23-refusal.yaml"), "--format", "jsonl"))
    assert [event["delta"] for event in events if event["type"] == "refusal_delta"] == [
        "I'm very sorry,",
        " but I can't assist with that request.",
    ]
    (done,) = [event for event in events if event["type"] == "output_item_done"]
    assert done["item"]["content"] == [
        {"type": "refusal", "refusal": "I'm very sorry, but I can't assist with that request."}
    ]
