"""`llmx-replay inspect` and `llmx-replay diff`: exact outputs on small cassettes built here."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmx_replay import ChatClient
from llmx_replay.cassette import (
    Cassette,
    CassetteMetadata,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    save_cassette,
)
from llmx_replay.models import ProviderSettings
from llmx_replay.models.request import ChatRequest
from llmx_replay.transports import RecordingTransport
from tests.test_cli import (
    CHAT_URI,
    DECISIONS,
    HELLO_SSE,
    RATE_LIMIT_BODY,
    assert_one_line_error,
    chat_interaction,
    content,
    finish,
    run,
    sse,
    write_cassette,
)

LOCAL_URI = "http://127.0.0.1:8000/v1/chat/completions"
METADATA = CassetteMetadata(
    toolkit="0.1.0",
    recorded_at="2026-01-01T00:00:00+00:00",
    base_url="http://127.0.0.1:8000/v1",
    model="m",
)


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    total = prompt + completion
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    return {"choices": [], "usage": usage}


def response(
    body: str,
    *,
    chunks: list[tuple[int, float]] | None = None,
    headers_ms: float | None = 12.5,
    partial: str | None = None,
    status: int = 200,
) -> RecordedResponse:
    """A recorded response; `chunks` default to two, split at the first event's end."""
    encoded = body.encode()
    if chunks is None:
        first = encoded.index(b"\n\n") + 2
        chunks = [(first, 20.25), (len(encoded) - first, 31.0)]
    return RecordedResponse(
        status=status,
        reason="OK",
        headers=[("content-type", "text/event-stream")],
        body=encoded,
        headers_ms=headers_ms,
        chunks=tuple(chunks),
        partial=partial,
    )


def save(path: Path, *responses: RecordedResponse, model: str = "m") -> Path:
    request = RecordedRequest(
        method="POST",
        uri=LOCAL_URI,
        body=json.dumps({"model": model, "messages": [], "stream": True}).encode(),
    )
    cassette = Cassette(
        interactions=[Interaction(request=request, response=answer) for answer in responses],
        source_format="llmx-replay",
        metadata=METADATA,
    )
    save_cassette(path, cassette)
    return path


HELLO = response(HELLO_SSE)
LOCAL_HEADER = (
    "#  status  provider   model  chunks  headers  first  total  finish  tokens  partial  request"
)
HELLO_USAGE = {
    "input_tokens": 5,
    "cached_input_tokens": 0,
    "output_tokens": 2,
    "reasoning_output_tokens": 0,
    "total_tokens": 7,
}
BROKE_OFF = "the body broke off: ReadError: connection reset"
REPLAYED_BREAK = "error while reading the response: ReadError('connection reset')"


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    return save(tmp_path / "hello.yaml", HELLO)


@pytest.fixture
def partial(tmp_path: Path) -> Path:
    body = sse(content("Hel"), done=False)
    cut = response(body, chunks=[(len(body), 15.0)], headers_ms=10.0, partial=BROKE_OFF)
    return save(tmp_path / "partial.yaml", HELLO, cut)


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A vcrpy cassette: a 429, then the answer; no timing, no chunks."""
    rate_limited = chat_interaction(
        RATE_LIMIT_BODY, status=429, message="Too Many Requests", content_type="application/json"
    )
    return write_cassette(tmp_path / "vcrpy.yaml", rate_limited, chat_interaction(HELLO_SSE))


# --- inspect ---------------------------------------------------------------------------


def test_inspect_text(hello: Path) -> None:
    result = run("inspect", str(hello))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"file: {hello}\n"
        "format: llmx-replay\n"
        "toolkit: 0.1.0\n"
        "recorded_at: 2026-01-01T00:00:00+00:00\n"
        "base_url: http://127.0.0.1:8000/v1\n"
        "model: m\n"
        "interactions: 1\n"
        "\n"
        f"{LOCAL_HEADER}\n"
        "0  200     127.0.0.1  m      2       12.5     20.2   31.0   stop    5/2/7   -        "
        f"POST {LOCAL_URI}\n"
        "(headers, first, total: ms from the start of the request to the headers, the first "
        "chunk and the last; tokens: input/output/total)\n"
    )


def test_inspect_json(hello: Path) -> None:
    result = run("inspect", str(hello), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "file": str(hello),
        "format": "llmx-replay",
        "metadata": METADATA.model_dump(),
        "interactions": [
            {
                "index": 0,
                "method": "POST",
                "uri": LOCAL_URI,
                "status": 200,
                "provider": "127.0.0.1",
                "model": "m",
                "chunks": 2,
                "events": 5,
                "headers_ms": 12.5,
                "first_chunk_ms": 20.25,
                "total_ms": 31.0,
                "finish_reason": "stop",
                "usage": HELLO_USAGE,
                "moderation": None,
                "error": None,
                "partial": None,
                "retried_by": None,
            }
        ],
    }


def test_inspect_partial_recording_text(partial: Path) -> None:
    result = run("inspect", str(partial))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[8:] == [
        LOCAL_HEADER,
        "0  200     127.0.0.1  m      2       12.5     20.2   31.0   stop    5/2/7   -        "
        f"POST {LOCAL_URI}",
        "1  200     127.0.0.1  m      1       10.0     15.0   15.0   -       -       yes      "
        f"POST {LOCAL_URI}",
        "(headers, first, total: ms from the start of the request to the headers, the first "
        "chunk and the last; tokens: input/output/total)",
        "",
        # The recording's network error ends its replay too.
        f"interaction 1: error: stream: {REPLAYED_BREAK}",
        f"interaction 1: partial: {BROKE_OFF}",
    ]


def test_inspect_partial_recording_json(partial: Path) -> None:
    result = run("inspect", str(partial), "--format", "json")
    second = json.loads(result.stdout)["interactions"][1]
    assert second["partial"] == BROKE_OFF
    assert second["finish_reason"] is None
    assert second["usage"] is None
    assert second["error"] == {
        "kind": "stream",
        "message": REPLAYED_BREAK,
        "status": None,
        "provider_error": None,
    }


def test_inspect_vcrpy_cassette_has_no_timing(foreign: Path) -> None:
    result = run("inspect", str(foreign))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"file: {foreign}\n"
        "format: vcrpy\n"
        "interactions: 2\n"
        "\n"
        "#  status  provider        model  chunks  headers  first  total  finish  tokens  "
        "partial  request\n"
        "0  429     api.openai.com  m      1       -        -      -      -       -       "
        f"-        POST {CHAT_URI}\n"
        "1  200     api.openai.com  m      5       -        -      -      stop    5/2/7   "
        f"-        POST {CHAT_URI}\n"
        "(headers, first, total: ms from the start of the request to the headers, the first "
        "chunk and the last; tokens: input/output/total)\n"
        "\n"
        "interaction 0: status 429, retried: interaction 1 answered the turn\n"
    )


def test_inspect_vcrpy_cassette_json(foreign: Path) -> None:
    result = run("inspect", str(foreign), "--format", "json")
    document = json.loads(result.stdout)
    assert document["format"] == "vcrpy"
    assert document["metadata"] is None
    retried, answer = document["interactions"]
    assert (retried["status"], retried["retried_by"]) == (429, 1)
    assert answer["retried_by"] is None
    assert answer["chunks"] == answer["events"] == 5
    assert answer["headers_ms"] is answer["first_chunk_ms"] is answer["total_ms"] is None
    assert answer["usage"] == HELLO_USAGE


def test_inspect_model_from_the_first_chunk(tmp_path: Path) -> None:
    """Without a request body, the model is the one the provider named in its first chunk."""
    body = sse({"model": "gpt-x", **content("Hi")}, finish())
    interaction = chat_interaction(body)
    del interaction["request"]["body"]
    path = write_cassette(tmp_path / "no-body.yaml", interaction)
    document = json.loads(run("inspect", str(path), "--format", "json").stdout)
    assert document["interactions"][0]["model"] == "gpt-x"


def test_inspect_a_recording_made_by_the_recorder(tmp_path: Path) -> None:
    """Recorded for real through `RecordingTransport`: timing is there, and a body that
    broke off is marked partial."""

    def pieces() -> Iterator[bytes]:
        yield b'data: {"model":"m","choices":[{"delta":{"content":"Hel"}}]}\n\n'
        raise httpx.ReadError("connection reset")

    class Broken(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            return pieces()

    inner = httpx.MockTransport(lambda request: httpx.Response(200, stream=Broken()))
    path = tmp_path / "recorded.yaml"
    provider = ProviderSettings(request_max_retries=0)
    request = ChatRequest(url=LOCAL_URI, headers=[], body=b'{"model":"m"}')
    with ChatClient(provider, "m", transport=RecordingTransport(path, inner)) as client:
        list(client.stream_request(request))
    result = run("inspect", str(path), "--format", "json")
    (facts,) = json.loads(result.stdout)["interactions"]
    assert facts["partial"] == BROKE_OFF
    assert facts["chunks"] == 1
    assert 0 <= facts["headers_ms"] <= facts["first_chunk_ms"] == facts["total_ms"]
    assert facts["model"] == "m"


def test_inspect_raw_sse_body(tmp_path: Path) -> None:
    path = tmp_path / "body.sse"
    path.write_text(HELLO_SSE)
    document = json.loads(run("inspect", str(path), "--format", "json").stdout)
    assert document["format"] == "sse"
    (facts,) = document["interactions"]
    assert (facts["events"], facts["finish_reason"], facts["usage"]) == (5, "stop", HELLO_USAGE)


def test_inspect_error_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(run("inspect", str(missing)), f"{missing}: no such file")


def test_inspect_error_broken_cassette(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("interactions:\n- request: {}\n")
    assert_one_line_error(run("inspect", str(path)), f"{path}: interactions[0].response: ")


def test_inspect_error_bad_format(hello: Path) -> None:
    assert_one_line_error(run("inspect", str(hello), "--format", "jsonl"), "--format")


# --- diff ------------------------------------------------------------------------------


def test_diff_equal_recordings(hello: Path, tmp_path: Path) -> None:
    again = save(tmp_path / "again.yaml", HELLO)
    result = run("diff", str(hello), str(again))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "no differences\n"
    result = run("diff", str(hello), str(again), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "a": str(hello),
        "b": str(again),
        "equal": True,
        "differences": [],
        "unsupported_wire_formats": [],
    }


LONGER_SSE = sse(content("Hel"), content("p me"), finish("length"), usage_chunk(5, 3))


@pytest.fixture
def changed(tmp_path: Path) -> Path:
    """The same conversation answered differently: other text, finish reason and usage,
    three chunks instead of two, and slower."""
    encoded = LONGER_SSE.encode()
    chunks = [(10, 40.0), (50, 45.0), (len(encoded) - 60, 90.0)]
    return save(tmp_path / "changed.yaml", response(LONGER_SSE, chunks=chunks))


def test_diff_text(hello: Path, changed: Path) -> None:
    result = run("diff", str(hello), str(changed))
    assert result.exit_code == 1, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        'interaction 0: text differs at character 4: "Hello" -> "Help me"',
        "interaction 0: finish_reason: stop -> length",
        "interaction 0: usage.output_tokens: 2 -> 3",
        "interaction 0: usage.total_tokens: 7 -> 8",
        "interaction 0: chunks: 2 -> 3",
        "interaction 0: chunk_bytes: min 52, median 52, max 223 -> min 10, median 50, max 219",
        "interaction 0: first_chunk_ms: 20.25 -> 40",
        "interaction 0: total_ms: 31 -> 90",
    ]


def test_diff_json(hello: Path, changed: Path) -> None:
    result = run("diff", str(hello), str(changed), "--format", "json", "--ignore", "chunking")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["equal"] is False
    assert document["differences"] == [
        {
            "interaction": 0,
            "category": "text",
            "field": "text",
            "a": "Hello",
            "b": "Help me",
            "character": 4,
        },
        {
            "interaction": 0,
            "category": "finish",
            "field": "finish_reason",
            "a": "stop",
            "b": "length",
        },
        {
            "interaction": 0,
            "category": "usage",
            "field": "usage.output_tokens",
            "a": 2,
            "b": 3,
        },
        {"interaction": 0, "category": "usage", "field": "usage.total_tokens", "a": 7, "b": 8},
        {
            "interaction": 0,
            "category": "timing",
            "field": "first_chunk_ms",
            "a": 20.25,
            "b": 40.0,
        },
        {"interaction": 0, "category": "timing", "field": "total_ms", "a": 31.0, "b": 90.0},
    ]


def test_diff_ignore_leaves_out_categories(hello: Path, changed: Path) -> None:
    args = ["diff", str(hello), str(changed)]
    for category in ("text", "finish", "usage", "chunking"):
        args += ["--ignore", category]
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "interaction 0: first_chunk_ms: 20.25 -> 40",
        "interaction 0: total_ms: 31 -> 90",
    ]
    result = run(*args, "--ignore", "timing")
    assert (result.exit_code, result.stdout) == (0, "no differences\n")


def test_diff_only_timing(hello: Path, tmp_path: Path) -> None:
    (first, _), (rest, _) = HELLO.chunks or ()
    slower = save(
        tmp_path / "slower.yaml", response(HELLO_SSE, chunks=[(first, 24.0), (rest, 45.0)])
    )
    result = run("diff", str(hello), str(slower))
    assert result.exit_code == 1
    # 20.25 -> 24 ms is within the default 25 % tolerance; 31 -> 45 ms is not.
    assert result.stdout == "interaction 0: total_ms: 31 -> 45\n"
    exact = run("diff", str(hello), str(slower), "--timing-tolerance", "0")
    assert exact.stdout.splitlines() == [
        "interaction 0: first_chunk_ms: 20.25 -> 24",
        "interaction 0: total_ms: 31 -> 45",
    ]
    lenient = run("diff", str(hello), str(slower), "--timing-tolerance", "50")
    assert (lenient.exit_code, lenient.stdout) == (0, "no differences\n")


def test_diff_only_chunking(hello: Path, tmp_path: Path) -> None:
    """The same bytes at the same times, cut differently."""
    rechunked = response(HELLO_SSE, chunks=[(20, 20.25), (32, 20.25), (223, 31.0)])
    result = run("diff", str(hello), str(save(tmp_path / "rechunked.yaml", rechunked)))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "interaction 0: chunks: 2 -> 3",
        "interaction 0: chunk_bytes: min 52, median 52, max 223 -> min 20, median 32, max 223",
    ]


def tool_call_sse(name: str, arguments: str, call_id: str) -> str:
    function = {"name": name, "arguments": arguments}
    call = {"index": 0, "id": call_id, "type": "function", "function": function}
    return sse(
        {"choices": [{"delta": {"reasoning": "Look it up."}}]},
        {"choices": [{"delta": {"tool_calls": [call]}}]},
        finish("tool_calls"),
    )


def test_diff_reasoning_and_tool_calls_but_not_call_ids(tmp_path: Path) -> None:
    a = save(tmp_path / "a.yaml", response(tool_call_sse("get", '{"city":"Paris"}', "call_1")))
    same = save(
        tmp_path / "same.yaml", response(tool_call_sse("get", '{"city":"Paris"}', "call_2"))
    )
    assert run("diff", str(a), str(same)).stdout == "no differences\n"

    other = sse(
        {"choices": [{"delta": {"reasoning": "Look it up twice."}}]},
        {
            "choices": [
                {
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c",
                                "function": {"name": "find", "arguments": '{"city":"Rome"}'},
                            },
                            {"index": 1, "id": "d", "function": {"name": "get", "arguments": "{}"}},
                        ]
                    }
                }
            ]
        },
        finish("tool_calls"),
    )
    b = save(tmp_path / "b.yaml", response(other))
    result = run("diff", str(a), str(b), "--ignore", "chunking")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        'interaction 0: reasoning differs at character 11: "Look it up." -> "Look it up twice."',
        "interaction 0: tool_calls: 1 -> 2",
        "interaction 0: tool_calls[0].name: get -> find",
        "interaction 0: tool_calls[0].arguments differs at character 10: "
        '"{\\"city\\":\\"Paris\\"}" -> "{\\"city\\":\\"Rome\\"}"',
    ]


def test_diff_long_texts_show_the_neighbourhood_of_the_first_difference(tmp_path: Path) -> None:
    words = " ".join(f"word{number}" for number in range(30))
    a = save(tmp_path / "a.yaml", response(sse(content(words), finish())))
    b = save(
        tmp_path / "b.yaml", response(sse(content(words.replace("word12", "WORD12")), finish()))
    )
    result = run("diff", str(a), str(b), "--ignore", "chunking")
    assert result.stdout == (
        "interaction 0: text differs at character 75: "
        '..."word9 word10 word11 word12 word13 word14"... -> '
        '..."word9 word10 word11 WORD12 word13 word14"...\n'
    )


def test_diff_status_errors_and_partial(hello: Path, partial: Path) -> None:
    result = run("diff", str(hello), str(partial), "--ignore", "timing")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "interactions: 1 -> 2",
        f"interaction 1: only in B: POST {LOCAL_URI} -> 200",
    ]
    swapped = run("diff", str(partial), str(partial), "--format", "json")
    assert swapped.exit_code == 0


def test_diff_partial_against_complete(tmp_path: Path, partial: Path) -> None:
    body = sse(content("Hel"), done=False)
    cut = response(body, chunks=[(len(body), 15.0)], headers_ms=10.0, partial=BROKE_OFF)
    complete = save(tmp_path / "complete.yaml", HELLO, HELLO)
    result = run("diff", str(partial), str(complete), "--ignore", "timing", "--ignore", "chunking")
    assert result.exit_code == 1
    assert cut.partial == BROKE_OFF
    assert result.stdout.splitlines() == [
        'interaction 1: text differs at character 4: "Hel" -> "Hello"',
        "interaction 1: finish_reason: - -> stop",
        f"interaction 1: error: stream: {REPLAYED_BREAK} -> -",
        "interaction 1: usage: - -> input 5 (cached 0), output 2 (reasoning 0), total 7",
        f"interaction 1: partial: {BROKE_OFF} -> -",
    ]


def test_diff_against_a_vcrpy_cassette(hello: Path, foreign: Path) -> None:
    """Another tool's recording has no timing: its times show as `-`."""
    result = run("diff", str(hello), str(foreign), "--ignore", "chunking")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "interactions: 1 -> 2",
        f"interaction 0: uri: {LOCAL_URI} -> {CHAT_URI}",
        "interaction 0: status: 200 -> 429",
        'interaction 0: text differs at character 1: "Hello" -> ""',
        "interaction 0: finish_reason: stop -> -",
        "interaction 0: error: - -> retry_limit: exceeded retry limit, last status: "
        "429 Too Many Requests: Rate limit reached",
        "interaction 0: usage: input 5 (cached 0), output 2 (reasoning 0), total 7 -> -",
        "interaction 0: first_chunk_ms: 20.25 -> -",
        "interaction 0: total_ms: 31 -> -",
        f"interaction 1: only in B: POST {CHAT_URI} -> 200",
    ]


def test_diff_model(hello: Path, tmp_path: Path) -> None:
    other = save(tmp_path / "other.yaml", HELLO, model="m2")
    result = run("diff", str(hello), str(other))
    assert result.stdout == "interaction 0: model: m -> m2\n"


@pytest.mark.parametrize("which", ["a", "b"])
def test_diff_error_missing_file(hello: Path, tmp_path: Path, which: str) -> None:
    missing = tmp_path / "nope.yaml"
    args = [str(missing), str(hello)] if which == "a" else [str(hello), str(missing)]
    assert_one_line_error(run("diff", *args), f"{missing}: no such file")


def test_diff_error_bad_tolerance(hello: Path) -> None:
    result = run("diff", str(hello), str(hello), "--timing-tolerance", "-1")
    assert_one_line_error(result, "--timing-tolerance")


def test_diff_error_bad_ignore(hello: Path) -> None:
    assert_one_line_error(run("diff", str(hello), str(hello), "--ignore", "colour"), "--ignore")


def test_diff_sees_a_refusal_change_that_text_alone_would_not(tmp_path: Path) -> None:
    """D23: a refusal is not text, so a changed refusal is its own difference."""
    a = save(
        tmp_path / "a.yaml", response(sse({"choices": [{"delta": {"refusal": "No."}}]}, finish()))
    )
    b = save(
        tmp_path / "b.yaml",
        response(sse({"choices": [{"delta": {"refusal": "Never."}}]}, finish())),
    )
    result = run("diff", str(a), str(b), "--ignore", "chunking")
    assert result.exit_code == 1
    assert result.stdout == 'interaction 0: refusal differs at character 2: "No." -> "Never."\n'


def test_diff_sees_the_moderation_flag_change(tmp_path: Path) -> None:
    """D21: the same text, moderated differently, is a difference."""

    def moderated(flagged: bool) -> str:
        report = {"results": [{"flagged": flagged, "categories": {"violence": flagged}}]}
        return sse(content("Hi"), finish(), {"choices": [], "moderation": {"output": report}})

    a = save(tmp_path / "a.yaml", response(moderated(False)))
    b = save(tmp_path / "b.yaml", response(moderated(True)))
    result = run("diff", str(a), str(b), "--ignore", "chunking")
    assert result.exit_code == 1
    assert result.stdout == (
        "interaction 0: moderation: not flagged -> flagged (output: violence)\n"
    )


def test_inspect_shows_the_finish_reason_usage_and_code_an_error_carries() -> None:
    """D19, D20: the table keeps the finish reason and tokens sent before the error, and the
    error note names the provider's code."""
    cassette = DECISIONS / "d20-error-after-finish-reason.yaml"
    result = run("inspect", str(cassette), "--format", "json")
    assert result.exit_code == 0, result.stderr
    (facts,) = json.loads(result.stdout)["interactions"]
    assert facts["finish_reason"] == "length"
    assert facts["usage"]["total_tokens"] == 53
    assert facts["error"]["provider_error"] == {"code": 400, "message": "Token limit reached"}
    text = run("inspect", str(cassette)).stdout
    assert (
        "interaction 0: error: unexpected_status, status 200, code 400: Token limit reached" in text
    )


def test_inspect_notes_the_moderation() -> None:
    result = run("inspect", str(DECISIONS / "d21-moderation.yaml"))
    assert result.stdout.splitlines()[-1] == "interaction 0: moderation: flagged (output: violence)"
