"""Other wire APIs are refused, never misread as Chat Completions (issue 9, item 9).

An Anthropic Messages, OpenAI Responses or Gemini generateContent body, recorded at its own
endpoint or behind a Chat Completions URL (a proxy), or given as a raw SSE file, is refused
by every reader of events with one line naming the file, the interaction and the format;
`diff` compares what it can (the raw bodies) and then says why it did not compare events.
"""

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from llmx_replay import (
    CassetteOptions,
    CassetteSession,
    EventPipeline,
    InputError,
    StreamMode,
    UnsupportedWireFormat,
)
from llmx_replay.cassette import load_cassette
from llmx_replay.harness import require_chat_completions
from llmx_replay.models import ErrorEvent, Prompt, ProviderSettings
from llmx_replay.stream._wire import foreign_wire_format
from tests.test_cli import (
    CHAT_URI,
    ERROR_PREFIX,
    HELLO_SSE,
    HELLO_STREAMING,
    assert_one_line_error,
    chat_interaction,
    jsonl,
    run,
    write_cassette,
)
from tests.test_playback import CASSETTES, OTHER_APIS_DECISION

ANTHROPIC_URI = "https://api.anthropic.com/v1/messages"
RESPONSES_URI = "https://api.openai.com/v1/responses"
GEMINI_URI = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash"
    ":streamGenerateContent?alt=sse"
)


def anthropic_sse(text: str = "Hello") -> str:
    """An Anthropic Messages stream answering `text`, as the API sends it."""
    return (
        "event: message_start\n"
        'data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL",'
        '"type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5",'
        '"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}'
        "\n\n"
        "event: content_block_start\n"
        'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
        "\n\n"
        "event: ping\n"
        'data: {"type": "ping"}\n\n'
        "event: content_block_delta\n"
        'data: {"type":"content_block_delta","index":0,'
        f'"delta":{{"type":"text_delta","text":"{text}"}}}}\n\n'
        "event: content_block_stop\n"
        'data: {"type":"content_block_stop","index":0}\n\n'
        "event: message_delta\n"
        'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        '"usage":{"output_tokens":15}}\n\n'
        "event: message_stop\n"
        'data: {"type":"message_stop"}\n\n'
    )


RESPONSES_SSE = (
    "event: response.created\n"
    'data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_67c9fdce",'
    '"object":"response","created_at":1741290958,"status":"in_progress","model":"gpt-4.1",'
    '"output":[],"usage":null}}\n\n'
    "event: response.in_progress\n"
    'data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_67c9fdce",'
    '"object":"response","status":"in_progress","output":[]}}\n\n'
    "event: response.output_item.added\n"
    'data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,'
    '"item":{"id":"msg_67c9fdcf","type":"message","status":"in_progress","role":"assistant",'
    '"content":[]}}\n\n'
    "event: response.output_text.delta\n"
    'data: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_67c9fdcf",'
    '"output_index":0,"content_index":0,"delta":"Hi"}\n\n'
    "event: response.completed\n"
    'data: {"type":"response.completed","sequence_number":4,"response":{"id":"resp_67c9fdce",'
    '"object":"response","status":"completed","output":[],"usage":{"input_tokens":5,'
    '"output_tokens":1,"total_tokens":6}}}\n\n'
)
# Gemini ends its events with CRLF pairs.
GEMINI_SSE = (
    'data: {"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},'
    '"index": 0}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 1,'
    '"totalTokenCount": 6},"modelVersion": "gemini-2.0-flash","responseId": "abc123"}\r\n\r\n'
    'data: {"candidates": [{"content": {"parts": [{"text": " there"}],"role": "model"},'
    '"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 5,'
    '"candidatesTokenCount": 2,"totalTokenCount": 7},"modelVersion": "gemini-2.0-flash",'
    '"responseId": "abc123"}\r\n\r\n'
)
ANTHROPIC_REQUEST = '{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[]}'

# What each other API streams, at its own endpoint, and the name the refusal gives it.
STREAMS = {
    "anthropic": (ANTHROPIC_URI, anthropic_sse(), "an Anthropic Messages stream"),
    "responses": (RESPONSES_URI, RESPONSES_SSE, "an OpenAI Responses stream"),
    "gemini": (GEMINI_URI, GEMINI_SSE, "a Gemini generateContent stream"),
}


def refusal(path: Path, found: str, interaction: int = 0) -> str:
    return (
        f"{path}: interaction {interaction}: {found}, not Chat Completions; "
        "llmx-replay reads Chat Completions only"
    )


def interaction_at(uri: str, body: str, request_body: str = ANTHROPIC_REQUEST) -> dict[str, Any]:
    """One vcrpy interaction: a POST to `uri` answered 200 with the SSE `body`."""
    interaction = chat_interaction(body)
    interaction["request"]["uri"] = uri
    interaction["request"]["body"] = request_body
    return interaction


def cassette_at(path: Path, uri: str, body: str) -> Path:
    return write_cassette(path, interaction_at(uri, body))


# --- telling the formats apart ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "uri", "expected"),
    [
        (anthropic_sse(), ANTHROPIC_URI, "Anthropic Messages stream"),
        (RESPONSES_SSE, RESPONSES_URI, "OpenAI Responses stream"),
        (GEMINI_SSE, GEMINI_URI, "Gemini generateContent stream"),
        # Behind a proxy's Chat Completions URL, or without a request (a raw SSE file).
        (anthropic_sse(), CHAT_URI, "Anthropic Messages stream"),
        (RESPONSES_SSE, "", "OpenAI Responses stream"),
        (GEMINI_SSE, CHAT_URI, "Gemini generateContent stream"),
    ],
    ids=[
        "anthropic",
        "responses",
        "gemini",
        "anthropic-proxied",
        "responses-raw",
        "gemini-proxied",
    ],
)
def test_another_apis_stream_is_named(body: str, uri: str, expected: str) -> None:
    assert foreign_wire_format(body.encode(), uri) == expected


def test_an_anthropic_stream_without_event_lines_is_told_by_its_payload_types() -> None:
    data_only = "".join(
        line + "\n" for line in anthropic_sse().splitlines() if not line.startswith("event:")
    )

    assert foreign_wire_format(data_only.encode()) == "Anthropic Messages stream"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"id": "msg_1", "type": "message", "role": "assistant", "content": []},
            "Anthropic Messages JSON body",
        ),
        ({"id": "resp_1", "object": "response", "output": []}, "OpenAI Responses JSON body"),
        # streamGenerateContent without alt=sse sends its chunks as one JSON array.
        ([{"candidates": [{"content": {"parts": []}}]}], "Gemini generateContent JSON body"),
    ],
    ids=["anthropic", "responses", "gemini-array"],
)
def test_another_apis_whole_json_response_is_named(document: Any, expected: str) -> None:
    assert foreign_wire_format(json.dumps(document).encode(), CHAT_URI) == expected


def test_a_body_that_cannot_be_told_is_named_by_the_other_apis_endpoint() -> None:
    overloaded = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'

    assert foreign_wire_format(overloaded, ANTHROPIC_URI) == "Anthropic Messages request"
    assert foreign_wire_format(b"", RESPONSES_URI) == "OpenAI Responses request"


@pytest.mark.parametrize(
    "body",
    [
        HELLO_SSE.encode(),
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        b'{"error":{"message":"Rate limit reached","type":"requests"}}',
        b"",
        b"\xef\xbb\xbf\n: OPENROUTER PROCESSING\n\n" + HELLO_SSE.encode(),
    ],
    ids=["chat-stream", "error-json", "openai-error-json", "empty", "bom-and-comments"],
)
def test_chat_completions_and_bodies_that_cannot_be_told_are_not_refused(body: bytes) -> None:
    assert foreign_wire_format(body, CHAT_URI) is None


def test_the_bodys_own_chunks_win_over_the_endpoint() -> None:
    """A Chat Completions stream served at a path another API uses is still read."""
    assert foreign_wire_format(HELLO_SSE.encode(), RESPONSES_URI) is None


def test_a_chat_completions_stream_is_told_by_its_first_chunk_whatever_follows() -> None:
    body = HELLO_SSE + anthropic_sse()

    assert foreign_wire_format(body.encode(), CHAT_URI) is None


@pytest.mark.parametrize("path", CASSETTES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_bundled_cassette_is_refused(path: Path) -> None:
    cassette = load_cassette(path)

    require_chat_completions(cassette, str(path))
    found = [
        foreign_wire_format(interaction.response.body, interaction.request.uri)
        for interaction in cassette.interactions
    ]
    assert found == [None] * len(cassette.interactions)


# --- the error -------------------------------------------------------------------------


def test_the_error_is_an_input_error_naming_the_file_and_interaction() -> None:
    error = UnsupportedWireFormat("x.yaml", 3, "Gemini generateContent stream")

    assert isinstance(error, InputError)
    assert (error.source, error.field, error.interaction) == ("x.yaml", "interaction 3", 3)
    assert str(error) == (
        "x.yaml: interaction 3: a Gemini generateContent stream, not Chat Completions; "
        "llmx-replay reads Chat Completions only"
    )


def test_the_error_survives_pickling_under_its_public_name() -> None:
    error = UnsupportedWireFormat("x.yaml", 0, "Anthropic Messages stream")

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is UnsupportedWireFormat
    assert (copy.source, copy.interaction, copy.wire_format, str(copy)) == (
        "x.yaml",
        0,
        "Anthropic Messages stream",
        str(error),
    )


# --- play and inspect ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["play", "inspect"])
@pytest.mark.parametrize("api", STREAMS)
def test_a_cassette_of_another_api_is_refused(tmp_path: Path, command: str, api: str) -> None:
    uri, body, found = STREAMS[api]
    path = cassette_at(tmp_path / f"{api}.yaml", uri, body)

    line = assert_one_line_error(run(command, str(path)))

    assert line == ERROR_PREFIX + refusal(path, found)


@pytest.mark.parametrize("command", ["play", "inspect"])
@pytest.mark.parametrize("api", STREAMS)
def test_another_apis_stream_behind_a_chat_completions_url_is_refused(
    tmp_path: Path, command: str, api: str
) -> None:
    _, body, found = STREAMS[api]
    path = write_cassette(
        tmp_path / "proxied.yaml", chat_interaction(HELLO_SSE), chat_interaction(body)
    )

    line = assert_one_line_error(run(command, str(path)))

    assert line == ERROR_PREFIX + refusal(path, found, interaction=1)


@pytest.mark.parametrize("command", ["play", "inspect"])
@pytest.mark.parametrize("api", STREAMS)
def test_a_raw_sse_file_of_another_api_is_refused(tmp_path: Path, command: str, api: str) -> None:
    _, body, found = STREAMS[api]
    path = tmp_path / f"{api}.sse"
    path.write_text(body)

    line = assert_one_line_error(run(command, str(path)))

    assert line == ERROR_PREFIX + refusal(path, found)


def test_an_error_recorded_at_another_apis_endpoint_is_refused_by_its_endpoint(
    tmp_path: Path,
) -> None:
    overloaded = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    path = cassette_at(tmp_path / "overloaded.yaml", ANTHROPIC_URI, overloaded)

    line = assert_one_line_error(run("play", str(path)))

    assert line == ERROR_PREFIX + refusal(path, "an Anthropic Messages request")


def test_play_leaves_out_another_apis_interaction_beside_chat_completions(tmp_path: Path) -> None:
    """It is not read, so not misread: `play` plays the Chat Completions turns, as before."""
    path = write_cassette(
        tmp_path / "mixed.yaml",
        interaction_at(ANTHROPIC_URI, anthropic_sse()),
        chat_interaction(HELLO_SSE),
    )

    assert jsonl(run("play", str(path), "--format", "jsonl")) == [
        {"type": "interaction", "index": 1, "status": 200},
        *HELLO_STREAMING,
    ]


# --- diff ------------------------------------------------------------------------------


@pytest.fixture
def hello_and_howdy(tmp_path: Path) -> tuple[Path, Path]:
    """Two Anthropic cassettes of the same request, answered with different words."""
    hello = cassette_at(tmp_path / "hello.yaml", ANTHROPIC_URI, anthropic_sse("Hello"))
    howdy = cassette_at(tmp_path / "howdy.yaml", ANTHROPIC_URI, anthropic_sse("Howdy"))
    return hello, howdy


def test_diff_of_another_apis_cassettes_shows_the_raw_differences_then_refuses(
    hello_and_howdy: tuple[Path, Path],
) -> None:
    hello, howdy = hello_and_howdy

    result = run("diff", str(hello), str(howdy))

    assert result.exit_code == 2
    # Counted from 1, as `cmp` does: "Hello" and "Howdy" differ at their second letter.
    character = anthropic_sse().index("Hello") + 2
    assert result.stdout == (
        f"interaction 0: response_body differs at character {character}: "
        '..."ext_delta\\",\\"text\\":\\"Hello\\"}}\\n\\nevent: cont"... -> '
        '..."ext_delta\\",\\"text\\":\\"Howdy\\"}}\\n\\nevent: cont"...\n'
    )
    assert result.stderr == (
        f"{ERROR_PREFIX}events not compared: {refusal(hello, 'an Anthropic Messages stream')}\n"
    )


def test_diff_json_of_another_apis_cassettes_lists_what_was_not_compared(
    hello_and_howdy: tuple[Path, Path],
) -> None:
    hello, howdy = hello_and_howdy

    result = run("diff", str(hello), str(howdy), "--format", "json")

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["equal"] is False
    assert [(d["category"], d["field"]) for d in document["differences"]] == [
        ("body", "response_body")
    ]
    assert document["unsupported_wire_formats"] == [
        {"file": str(path), "interaction": 0, "wire_format": "Anthropic Messages stream"}
        for path in (hello, howdy)
    ]
    assert result.stderr.startswith(f"{ERROR_PREFIX}events not compared: {hello}: ")


def test_diff_compares_the_raw_request_bodies_where_events_cannot_be(tmp_path: Path) -> None:
    a = write_cassette(tmp_path / "a.yaml", interaction_at(ANTHROPIC_URI, anthropic_sse()))
    other_request = ANTHROPIC_REQUEST.replace("1024", "2048")
    b = write_cassette(
        tmp_path / "b.yaml", interaction_at(ANTHROPIC_URI, anthropic_sse(), other_request)
    )

    result = run("diff", str(a), str(b))

    assert result.exit_code == 2
    character = ANTHROPIC_REQUEST.index("1024") + 1
    assert result.stdout == (
        f"interaction 0: request_body differs at character {character}: "
        '..."t-4-5\\",\\"max_tokens\\":1024,\\"stream\\":true,\\""... -> '
        '..."t-4-5\\",\\"max_tokens\\":2048,\\"stream\\":true,\\""...\n'
    )


def test_diff_of_alike_cassettes_of_another_api_still_says_events_were_not_compared(
    tmp_path: Path,
) -> None:
    a = cassette_at(tmp_path / "a.yaml", ANTHROPIC_URI, anthropic_sse())
    b = cassette_at(tmp_path / "b.yaml", ANTHROPIC_URI, anthropic_sse())

    result = run("diff", str(a), str(b), "--ignore", "body")

    assert result.exit_code == 2
    assert result.stdout == "no differences\n"
    assert result.stderr.splitlines() == [
        f"{ERROR_PREFIX}events not compared: {refusal(a, 'an Anthropic Messages stream')}"
    ]


def test_diff_against_a_proxied_stream_compares_the_bodies_not_the_events(tmp_path: Path) -> None:
    chat = write_cassette(tmp_path / "chat.yaml", chat_interaction(HELLO_SSE))
    proxied = write_cassette(tmp_path / "proxied.yaml", chat_interaction(anthropic_sse()))

    result = run("diff", str(chat), str(proxied), "--ignore", "chunking")

    assert result.exit_code == 2
    (line,) = result.stdout.splitlines()
    assert line.startswith("interaction 0: response_body differs at character 1: ")
    assert result.stderr == (
        f"{ERROR_PREFIX}events not compared: {refusal(proxied, 'an Anthropic Messages stream')}\n"
    )


# --- the harness -----------------------------------------------------------------------


@pytest.mark.parametrize("api", STREAMS)
def test_session_play_raises_for_another_apis_cassette(tmp_path: Path, api: str) -> None:
    uri, body, found = STREAMS[api]
    path = cassette_at(tmp_path / f"{api}.yaml", uri, body)

    with (
        CassetteSession(path, CassetteOptions(), "none") as session,
        pytest.raises(UnsupportedWireFormat) as caught,
    ):
        session.play()

    assert str(caught.value) == refusal(path, found)
    assert (caught.value.source, caught.value.interaction) == (str(path), 0)


def test_session_play_raises_for_another_apis_stream_behind_a_chat_completions_url(
    tmp_path: Path,
) -> None:
    path = write_cassette(tmp_path / "proxied.yaml", chat_interaction(GEMINI_SSE))

    with (
        CassetteSession(path, CassetteOptions(), "none") as session,
        pytest.raises(UnsupportedWireFormat, match="a Gemini generateContent stream"),
    ):
        session.play()


# The client reads what it is given: another API's stream behind a Chat Completions URL (a
# misconfigured proxy, live or replayed) ends the turn with an error naming it.


@pytest.mark.parametrize("api", STREAMS)
@pytest.mark.parametrize("mode", ["raw", "streaming", "aggregated"])
def test_the_pipeline_ends_another_apis_stream_with_an_error_naming_it(
    api: str, mode: StreamMode
) -> None:
    _, body, found = STREAMS[api]
    pipeline = EventPipeline(mode)
    events = pipeline.feed(body.encode()) + pipeline.end()
    assert events == [
        ErrorEvent(kind="stream", message=f"expected a Chat Completions stream, got {found}")
    ]


def test_the_client_replaying_another_apis_stream_ends_with_that_error(tmp_path: Path) -> None:
    path = write_cassette(tmp_path / "proxied.yaml", chat_interaction(anthropic_sse()))
    provider = ProviderSettings(base_url=CHAT_URI.removesuffix("/chat/completions"))
    options = CassetteOptions(match_ignore=("messages", "max_tokens"), provider=provider, model="m")
    with CassetteSession(path, options, "none") as session, session.client() as client:
        events = list(client.stream(Prompt(input=[])))
    assert events == [
        ErrorEvent(
            kind="stream",
            message="expected a Chat Completions stream, got an Anthropic Messages stream",
        )
    ]


def test_the_decisions_cassette_of_other_apis_is_refused_at_each_interaction() -> None:
    """D24's cassette: an Anthropic Messages stream, then an OpenAI Responses stream."""
    cassette = load_cassette(OTHER_APIS_DECISION)
    assert [
        foreign_wire_format(interaction.response.body, interaction.request.uri)
        for interaction in cassette.interactions
    ] == ["Anthropic Messages stream", "OpenAI Responses stream"]
