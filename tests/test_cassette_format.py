"""The cassette file format (issue 3, section 1): a vcrpy-compatible YAML file that keeps
what vcrpy loses (chunk sizes and times, time to headers, a partial marker, metadata), that
a reviewer can read, that our fast reader and plain libyaml read alike, that is versioned,
and that is written atomically even by concurrent writers."""

import gzip
import math
import multiprocessing
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import vcr
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from llmx_replay import InputError
from llmx_replay.cassette import (
    BodyCanonicalizer,
    Cassette,
    CassetteMetadata,
    CassetteWriter,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    Scrubber,
    _yaml,
    dumps,
    load_cassette,
    parse_cassette,
    save_cassette,
    write_atomically,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE_URL = "http://127.0.0.1:9/v1"
CHAT_URL = f"{BASE_URL}/chat/completions"
DATA_LINE = (
    'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Grüße, 你好 🎉 — ça va?"}}]}'
)
SSE_BODY = (
    f"{DATA_LINE}\n\n"
    'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
).encode()
BINARY_BODY = b"\x00\xff\xfe\x80binary\x89PNG\r\n"
CRLF_BODY = b"data: first\r\n\r\ndata: second\r\n\r\n"
METADATA = CassetteMetadata(
    toolkit="0.3.0",
    recorded_at="2025-06-01T12:00:00+00:00",
    base_url=BASE_URL,
    model="gpt-test",
)


def chat_body(prompt: str, model: str = "gpt-test") -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "stream": True,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": prompt},
            ],
        }
    )


def interaction(
    prompt: str,
    body: bytes = SSE_BODY,
    status: int = 200,
    *,
    request_body: bytes | None = None,
    request_headers: list[tuple[str, str]] | None = None,
    response_headers: list[tuple[str, str]] | None = None,
    method: str = "POST",
    uri: str = CHAT_URL,
    chunks: tuple[tuple[int, float], ...] | None = None,
    headers_ms: float | None = None,
    partial: str | None = None,
) -> Interaction:
    return Interaction(
        request=RecordedRequest(
            method=method,
            uri=uri,
            headers=request_headers or [("content-type", "application/json")],
            body=chat_body(prompt) if request_body is None else request_body,
        ),
        response=RecordedResponse(
            status=status,
            reason="OK" if status == 200 else "",
            headers=response_headers or [("content-type", "text/event-stream")],
            body=body,
            headers_ms=headers_ms,
            chunks=chunks,
            partial=partial,
        ),
    )


def cassette_of(
    *interactions: Interaction, metadata: CassetteMetadata | None = METADATA
) -> Cassette:
    return Cassette(interactions=list(interactions), source_format="llmx-replay", metadata=metadata)


def sse_chunks() -> tuple[tuple[int, float], ...]:
    first = len(DATA_LINE.encode()) + 2
    return ((first, 101.25), (len(SSE_BODY) - first - 14, 150.5), (14, 151.0))


def rich_cassette() -> Cassette:
    """Several interactions covering every kind of body and every llmx-replay extra."""
    return cassette_of(
        interaction(
            "Say hello",
            request_headers=[
                ("content-type", "application/json"),
                ("content-length", str(len(chat_body("Say hello")))),
                ("x-trace", "a"),
                ("x-trace", "b"),
            ],
            response_headers=[
                ("content-type", "text/event-stream"),
                ("x-multi", "one"),
                ("x-multi", "two"),
                ("x-multi", "three"),
            ],
            chunks=sse_chunks(),
            headers_ms=98.125,
        ),
        interaction(
            "CRLF please",
            body=CRLF_BODY,
            chunks=((13, 5.0), (len(CRLF_BODY) - 13, 7.5)),
            headers_ms=4.0,
            partial="cancelled",
        ),
        interaction(
            "binary",
            body=BINARY_BODY,
            method="GET",
            uri="http://127.0.0.1:9/v1/files/1/content",
            request_body=b"",
            response_headers=[("content-type", "application/octet-stream")],
        ),
        interaction("empty", body=b"", status=204, response_headers=[("x-empty", "yes")]),
        interaction(
            "form",
            uri="http://127.0.0.1:9/v1/upload?a=1",
            request_body=b"name=caf%C3%A9&note=plain text, not JSON",
            request_headers=[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "40"),
            ],
            body=b'{"ok": true}',
            response_headers=[("content-type", "application/json")],
        ),
    )


def expected_after_round_trip(original: Interaction) -> Interaction:
    """What a saved interaction reads back as: a JSON request body re-indented, and its
    `content-length` dropped when the stored body is no longer the recorded bytes."""
    request = original.request
    if request.body:
        try:
            parsed = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return original
        stored = orjson.dumps(parsed, option=orjson.OPT_INDENT_2)
        if stored != request.body:
            headers = [(k, v) for k, v in request.headers if k.lower() != "content-length"]
            request = request.model_copy(update={"body": stored, "headers": headers})
    return original.model_copy(update={"request": request})


# --------------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------------


def test_round_trip_keeps_every_interaction() -> None:
    original = rich_cassette()
    loaded = parse_cassette(dumps(original).encode(), "rich.yaml")

    assert loaded.source_format == "llmx-replay"
    assert loaded.metadata == METADATA
    assert loaded.interactions == [expected_after_round_trip(i) for i in original.interactions]


def test_round_trip_bodies_are_byte_exact() -> None:
    loaded = parse_cassette(dumps(rich_cassette()).encode(), "rich.yaml")

    assert [i.response.body for i in loaded.interactions] == [
        SSE_BODY,
        CRLF_BODY,
        BINARY_BODY,
        b"",
        b'{"ok": true}',
    ]
    assert loaded.interactions[0].response.chunks == sse_chunks()
    assert loaded.interactions[0].response.headers_ms == 98.125
    assert loaded.interactions[1].response.partial == "cancelled"
    assert loaded.interactions[1].response.chunks == ((13, 5.0), (len(CRLF_BODY) - 13, 7.5))
    assert loaded.interactions[0].response.recorded_chunks() == [
        (SSE_BODY[: sse_chunks()[0][0]], 101.25),
        (SSE_BODY[sse_chunks()[0][0] : len(SSE_BODY) - 14], 150.5),
        (b"data: [DONE]\n\n", 151.0),
    ]


def test_round_trip_json_request_body_is_equal_as_json_and_loses_its_content_length() -> None:
    loaded = parse_cassette(dumps(rich_cassette()).encode(), "rich.yaml")
    request = loaded.interactions[0].request

    assert orjson.loads(request.body or b"") == orjson.loads(chat_body("Say hello"))
    assert request.body != chat_body("Say hello")  # stored indented
    assert request.headers == [
        ("content-type", "application/json"),
        ("x-trace", "a"),
        ("x-trace", "b"),
    ]


def test_round_trip_non_json_request_body_is_byte_exact_and_keeps_content_length() -> None:
    loaded = parse_cassette(dumps(rich_cassette()).encode(), "rich.yaml")
    request = loaded.interactions[4].request

    assert request.body == b"name=caf%C3%A9&note=plain text, not JSON"
    assert request.headers == [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "40"),
    ]


def test_round_trip_compact_json_that_is_already_canonical_keeps_content_length() -> None:
    body = b"[]"
    original = cassette_of(
        interaction("x", request_body=body, request_headers=[("content-length", "2")])
    )
    loaded = parse_cassette(dumps(original).encode(), "c.yaml")

    assert loaded.interactions[0].request.body == b"[]"
    assert loaded.interactions[0].request.headers == [("content-length", "2")]


def test_round_trip_without_metadata() -> None:
    original = cassette_of(interaction("Say hello"), metadata=None)
    loaded = parse_cassette(dumps(original).encode(), "c.yaml")

    assert loaded.interactions == [expected_after_round_trip(original.interactions[0])]


def test_round_trip_keeps_a_gzip_file_body_without_content_encoding() -> None:
    # A downloaded .gz file is the body itself, not a content encoding: it must come back
    # as recorded, not decompressed.
    payload = gzip.compress(b"not a content encoding, a file", mtime=0)
    original = cassette_of(
        interaction(
            "download",
            body=payload,
            method="GET",
            uri="http://127.0.0.1:9/v1/files/archive.gz",
            request_body=b"",
            response_headers=[("content-type", "application/gzip")],
        )
    )
    loaded = parse_cassette(dumps(original).encode(), "c.yaml")

    assert loaded.interactions[0].response.body == payload


def test_crlf_body_is_written_so_that_vcrpy_replays_its_exact_bytes() -> None:
    """A literal block cannot hold CR: a CRLF body is written as one escaped string, so that
    vcrpy (which knows no llmx-replay markers) replays exactly what was recorded."""
    text = dumps(cassette_of(interaction("CRLF please", body=CRLF_BODY)))
    _, responses = deserialize(text, yamlserializer)

    assert responses[0]["body"]["string"] == CRLF_BODY


def test_crlf_body_loads_back_byte_exact(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    cassette = cassette_of(interaction("CRLF please", body=CRLF_BODY))
    save_cassette(path, cassette)

    assert load_cassette(path).interactions[0].response.body == CRLF_BODY
    assert parse_cassette(dumps(cassette).encode(), "c.yaml").interactions[0].response.body == (
        CRLF_BODY
    )


@pytest.mark.parametrize(
    "body",
    [b"a\r\nb\nc\r", b"data: a\r\n\r\ndata: b\n\n", b"data: a\r\rdata: b\r\n\r\n"],
    ids=["crlf-lf-cr", "crlf-then-lf", "cr-then-crlf"],
)
def test_body_with_mixed_line_endings_round_trips_byte_exact(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "c.yaml"
    cassette = cassette_of(interaction("mixed", body=body))
    save_cassette(path, cassette)

    assert load_cassette(path).interactions[0].response.body == body
    assert parse_cassette(dumps(cassette).encode(), "c.yaml").interactions[0].response.body == body


# --------------------------------------------------------------------------------------------
# Readable
# --------------------------------------------------------------------------------------------


def test_sse_body_is_a_literal_block_one_line_per_sse_line() -> None:
    text = dumps(cassette_of(interaction("Say hello", chunks=sse_chunks(), headers_ms=98.125)))

    expected_block = (
        "    body:\n"
        "      string: |+\n"
        f"        {DATA_LINE}\n"
        "\n"
        '        data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n'
        "\n"
        "        data: [DONE]\n"
        "\n"
    )
    assert expected_block in text
    assert "\\n" not in text
    assert "\\U" not in text
    assert "\\u" not in text


def test_json_request_body_is_an_indented_literal_block() -> None:
    text = dumps(cassette_of(interaction("Say hello")))

    assert (
        "    body: |-\n"
        "      {\n"
        '        "model": "gpt-test",\n'
        '        "stream": true,\n'
        '        "messages": [\n'
        "          {\n"
        '            "role": "system",\n'
        '            "content": "You are terse."\n'
        "          },\n"
        "          {\n"
        '            "role": "user",\n'
        '            "content": "Say hello"\n'
        "          }\n"
        "        ]\n"
        "      }\n"
    ) in text


def test_chunk_timing_is_compact_with_no_second_copy_of_the_body() -> None:
    chunks = sse_chunks()
    text = dumps(cassette_of(interaction("Say hello", chunks=chunks, headers_ms=98.125)))
    lines = text.splitlines()

    sizes = " ".join(str(size) for size, _ in chunks)
    assert [line.strip() for line in lines if "chunk_bytes" in line] == [f"chunk_bytes: {sizes}"]
    assert [line.strip() for line in lines if "chunk_ms" in line] == ["chunk_ms: 101.25 150.5 151"]
    assert [line.strip() for line in lines if "headers_ms" in line] == ["headers_ms: 98.125"]
    assert text.count(DATA_LINE) == 1
    assert text.count("data: [DONE]") == 1


def test_the_file_is_vcrpy_shaped() -> None:
    text = dumps(rich_cassette())
    document = yaml.safe_load(text)

    assert document["version"] == 1
    assert document["llmx_replay"]["format"] == 1
    assert document["llmx_replay"]["model"] == "gpt-test"
    first = document["interactions"][0]
    assert first["request"]["method"] == "POST"
    assert first["request"]["uri"] == CHAT_URL
    assert first["request"]["headers"]["x-trace"] == ["a", "b"]
    assert first["response"]["status"] == {"code": 200, "message": "OK"}
    assert first["response"]["headers"]["x-multi"] == ["one", "two", "three"]
    assert first["response"]["body"]["string"].encode() == SSE_BODY
    assert document["interactions"][2]["response"]["body"]["string"] == BINARY_BODY


# --------------------------------------------------------------------------------------------
# The fast reader and full libyaml agree
# --------------------------------------------------------------------------------------------

TRICKY = st.sampled_from(
    [
        *["\n", "\r", "\r\n", "\t", " ", "  ", "🎉", "é", "你", ":", "|", "- ", "#", "'", '"'],
        *["\\", "data: ", "string: |+", "body: |-", "key: |", "\u2028", "\x85", "\ufeff", "\x00"],
    ]
)
LINE = st.sampled_from(
    ["", " ", "x", "string: |+", "body: |-", "key: |", "- item", "data: [DONE]", "  indented"]
) | st.text(max_size=8)
TEXT = (
    st.text(alphabet=st.characters(codec="utf-8"))
    | st.lists(TRICKY | st.text(max_size=4), max_size=12).map("".join)
    | st.tuples(st.sampled_from(["", " ", "\t", "\n"]), st.lists(LINE, max_size=6)).map(
        lambda parts: parts[0] + "\n".join(parts[1])
    )
)


def as_text(value: object) -> object:
    """The fast reader gives literal blocks as their UTF-8 bytes; compare them as text (a
    `!!binary` body, not UTF-8, is bytes both ways)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, dict):
        return {key: as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_text(item) for item in value]
    return value


def both_ways(text: str) -> tuple[object, object]:
    fast = as_text(_yaml.load(text.encode()))
    full = yaml.load(text, Loader=_yaml._Loader)  # a safe loader subclass
    return fast, full


def request_body_matches(loaded: bytes | None, original: bytes | None) -> bool:
    if original is None or loaded == original:
        return loaded == original
    try:
        return bool(orjson.loads(loaded or b"") == orjson.loads(original))
    except orjson.JSONDecodeError:
        return False


@PROPERTY
@given(
    bodies=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=3),
    model=st.none() | TEXT,
)
@example(bodies=[(" a\nb: |\nc", " a\nstring: |+\nc\n")], model=None)
@example(bodies=[(" lead\n\nbody: |-\nz", "x")], model=None)
@example(bodies=[("a\n\n\n", "\n")], model=" m\nbase_url: |\n")
@example(bodies=[("\n\na\n  b", "data: x\r\n\r\n")], model="🎉")
def test_fast_reader_and_libyaml_agree(bodies: list[tuple[str, str]], model: str | None) -> None:
    original = cassette_of(
        *(
            interaction("p", body=response.encode(), request_body=request.encode())
            for request, response in bodies
        ),
        metadata=METADATA.model_copy(update={"model": model}),
    )
    text = dumps(original)
    fast, full = both_ways(text)

    assert fast == full
    loaded = parse_cassette(text.encode(), "generated.yaml")
    assert [i.response.body for i in loaded.interactions] == [r.encode() for _, r in bodies]
    for got, (request, _) in zip(loaded.interactions, bodies, strict=True):
        assert request_body_matches(got.request.body, request.encode())
    assert loaded.metadata is not None
    assert loaded.metadata.model == model


@PROPERTY
@given(bodies=st.lists(st.binary(), min_size=1, max_size=3))
def test_fast_reader_and_libyaml_agree_on_binary_bodies(bodies: list[bytes]) -> None:
    original = cassette_of(*(interaction("p", body=body) for body in bodies))
    text = dumps(original)
    fast, full = both_ways(text)

    assert fast == full
    loaded = parse_cassette(text.encode(), "generated.yaml")
    assert [i.response.body for i in loaded.interactions] == bodies


def test_a_file_without_its_marker_line_loads_the_same() -> None:
    text = dumps(rich_cassette())
    first_line, rest = text.split("\n", 1)
    assert first_line == _yaml.MARKER

    assert parse_cassette(rest.encode(), "unmarked.yaml") == parse_cassette(
        text.encode(), "marked.yaml"
    )


# --------------------------------------------------------------------------------------------
# vcrpy compatibility
# --------------------------------------------------------------------------------------------


def test_vcrpy_deserializes_our_cassette(tmp_path: Path) -> None:
    path = tmp_path / "ours.yaml"
    save_cassette(path, rich_cassette())

    requests, responses = deserialize(path.read_text(encoding="utf-8"), yamlserializer)

    assert [(r.method, r.uri) for r in requests] == [
        ("POST", CHAT_URL),
        ("POST", CHAT_URL),
        ("GET", "http://127.0.0.1:9/v1/files/1/content"),
        ("POST", CHAT_URL),
        ("POST", "http://127.0.0.1:9/v1/upload?a=1"),
    ]
    assert orjson.loads(requests[0].body) == orjson.loads(chat_body("Say hello"))
    assert [r["body"]["string"] for r in responses] == [
        SSE_BODY,
        CRLF_BODY,
        BINARY_BODY,
        b"",
        b'{"ok": true}',
    ]
    assert [r["status"]["code"] for r in responses] == [200, 200, 200, 204, 200]
    assert responses[0]["headers"]["x-multi"] == ["one", "two", "three"]


def test_vcrpy_replays_our_cassette_over_httpx(tmp_path: Path) -> None:
    path = tmp_path / "ours.yaml"
    save_cassette(
        path,
        cassette_of(
            interaction("Say hello", chunks=sse_chunks(), headers_ms=98.125),
            interaction(
                "binary",
                body=BINARY_BODY,
                status=201,
                uri=f"{BASE_URL}/binary",
                response_headers=[("content-type", "application/octet-stream")],
            ),
        ),
    )

    with (
        vcr.use_cassette(str(path), record_mode="none", match_on=["method", "uri"]),
        httpx.Client() as client,
    ):
        first = client.post(CHAT_URL, content=chat_body("Say hello"))
        second = client.post(f"{BASE_URL}/binary", content=b"whatever")

    assert first.status_code == 200
    assert first.headers["content-type"] == "text/event-stream"
    assert first.content == SSE_BODY
    assert second.status_code == 201
    assert second.content == BINARY_BODY


def test_we_read_a_cassette_that_vcrpy_recorded(tmp_path: Path) -> None:
    path = tmp_path / "vcrpy.yaml"
    request_body = chat_body("Say hello")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers=[
                ("content-type", "text/event-stream"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
            content=SSE_BODY,
        )

    with (
        vcr.use_cassette(str(path), record_mode="once"),
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
    ):
        live = client.post(CHAT_URL, content=request_body)
    assert live.content == SSE_BODY
    assert _yaml.MARKER not in path.read_text(encoding="utf-8")

    loaded = load_cassette(path)

    assert loaded.source_format == "vcrpy"
    assert loaded.metadata is None
    [recorded] = loaded.interactions
    assert recorded.request.method == "POST"
    assert recorded.request.uri == CHAT_URL
    assert recorded.request.body == request_body
    assert recorded.response.status == 200
    assert recorded.response.body == SSE_BODY
    assert recorded.response.header("content-type") == "text/event-stream"
    assert [v for k, v in recorded.response.headers if k == "set-cookie"] == ["a=1", "b=2"]
    assert recorded.response.chunks is None
    assert [piece for piece, _ in recorded.response.recorded_chunks()] == [
        f"{DATA_LINE}\n\n".encode(),
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]


# --------------------------------------------------------------------------------------------
# Versioning and broken extras
# --------------------------------------------------------------------------------------------


def one_interaction_text() -> str:
    sizes = ((len(SSE_BODY) - 14, 10.0), (14, 20.0))
    text = dumps(cassette_of(interaction("Say hello", chunks=sizes, headers_ms=5.0)))
    assert f"chunk_bytes: {len(SSE_BODY) - 14} 14\n" in text
    assert "chunk_ms: 10 20\n" in text
    assert "format: 1\n" in text
    return text


def load_error(text: str) -> InputError:
    with pytest.raises(InputError) as raised:
        parse_cassette(text.encode(), "broken.yaml")
    return raised.value


def test_a_newer_format_is_refused_naming_the_field() -> None:
    error = load_error(one_interaction_text().replace("format: 1\n", "format: 2\n"))

    assert error.source == "broken.yaml"
    assert error.field == "llmx_replay.format"
    assert "newer llmx-replay" in error.problem
    assert str(error).startswith("broken.yaml: llmx_replay.format: ")


def test_an_unknown_vcrpy_version_is_refused_naming_the_field() -> None:
    text = one_interaction_text()
    assert text.count("\nversion: 1\n") == 1
    error = load_error(text.replace("\nversion: 1\n", "\nversion: 2\n"))

    assert error.field == "version"
    assert "2" in error.problem


CHUNKS = "interactions[0].response.llmx_replay"
SIZE = len(SSE_BODY)


@pytest.mark.parametrize(
    ("chunk_bytes", "chunk_ms", "field"),
    [
        pytest.param(f"{SIZE - 14} 13", "10 20", "chunk_bytes", id="sizes-short-of-body"),
        pytest.param(f"{SIZE - 14} 15", "10 20", "chunk_bytes", id="sizes-beyond-body"),
        pytest.param(f"{SIZE - 14} 14", "10", "chunk_ms", id="fewer-times"),
        pytest.param(f"{SIZE}", "10 20", "chunk_ms", id="fewer-sizes"),
        pytest.param(f"{SIZE - 14} x14", "10 20", "chunk_bytes", id="size-not-a-number"),
        pytest.param(f"{SIZE - 14} 14.5", "10 20", "chunk_bytes", id="size-not-whole"),
        pytest.param(f"{SIZE - 14} 14", "10 later", "chunk_ms", id="time-not-a-number"),
        pytest.param(f"{SIZE - 14} 14", "10 nan", "chunk_ms", id="time-nan"),
        pytest.param(f"{SIZE - 14} 14", "inf 20", "chunk_ms", id="time-infinite"),
        pytest.param(f"{SIZE - 14} 14", "10 -1", "chunk_ms", id="time-negative"),
        pytest.param(f"{SIZE - 14} 14", "10 86400001", "chunk_ms", id="time-past-a-day"),
        pytest.param(f"{SIZE + 1} -1", "10 20", "chunk_bytes", id="negative-size"),
    ],
)
def test_broken_chunk_data_is_refused_naming_the_field(
    chunk_bytes: str, chunk_ms: str, field: str
) -> None:
    text = (
        one_interaction_text()
        .replace(f"chunk_bytes: {SIZE - 14} 14\n", f"chunk_bytes: {chunk_bytes}\n")
        .replace("chunk_ms: 10 20\n", f"chunk_ms: {chunk_ms}\n")
    )
    error = load_error(text)

    assert error.field == f"{CHUNKS}.{field}"


def test_chunk_sizes_without_times_are_refused() -> None:
    text = one_interaction_text().replace("chunk_ms: 10 20\n", "")
    error = load_error(text)

    assert error.field == f"{CHUNKS}.chunk_ms"


def test_headers_ms_that_is_not_a_number_is_refused() -> None:
    text = one_interaction_text().replace("headers_ms: 5.0\n", "headers_ms: soon\n")
    error = load_error(text)

    assert error.field == f"{CHUNKS}.headers_ms"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(InputError) as raised:
        load_cassette(path)

    assert raised.value.source == str(path)
    assert raised.value.problem == "no such file"


def cassette_document() -> dict[str, Any]:
    """A small valid vcrpy-style cassette with an `llmx_replay` response section."""
    return {
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": CHAT_URL,
                    "headers": {"content-type": ["application/json"]},
                    "body": chat_body("Say hello").decode(),
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["text/event-stream"]},
                    "body": {"string": SSE_BODY.decode()},
                    "llmx_replay": {"headers_ms": 5.0},
                },
            }
        ],
        "version": 1,
    }


def write_document(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def file_load_error(path: Path) -> InputError:
    """The `InputError` loading the file at `path` raises; it names the file."""
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    error = caught.value
    assert path.name in str(error)
    return error


def test_the_base_input_cassette_loads(tmp_path: Path) -> None:
    cassette = load_cassette(write_document(tmp_path / "c.yaml", cassette_document()))
    assert cassette.interactions[0].response.body == SSE_BODY


def test_partial_that_is_not_a_string_is_an_input_error(tmp_path: Path) -> None:
    document = cassette_document()
    document["interactions"][0]["response"]["llmx_replay"] = {"partial": 5}

    error = file_load_error(write_document(tmp_path / "c.yaml", document))

    assert error.field == f"{CHUNKS}.partial"


@pytest.mark.parametrize("value", [-50, float("nan")], ids=["negative", "nan"])
def test_headers_ms_that_is_negative_or_nan_is_an_input_error(tmp_path: Path, value: float) -> None:
    document = cassette_document()
    document["interactions"][0]["response"]["llmx_replay"] = {"headers_ms": value}
    path = write_document(tmp_path / "c.yaml", document)
    assert (".nan" in path.read_text()) == math.isnan(value)

    error = file_load_error(path)

    assert error.field == f"{CHUNKS}.headers_ms"


def test_parsed_body_with_an_integer_too_large_for_json_is_an_input_error(tmp_path: Path) -> None:
    document = cassette_document()
    request = document["interactions"][0]["request"]
    del request["body"]
    request["parsed_body"] = {"model": "gpt-test", "n": 2**70}

    error = file_load_error(write_document(tmp_path / "c.yaml", document))

    assert error.field == "interactions[0].request.parsed_body"


def test_malformed_request_uri_is_an_input_error(tmp_path: Path) -> None:
    document = cassette_document()
    document["interactions"][0]["request"]["uri"] = "http://[::1/v1/chat/completions"

    error = file_load_error(write_document(tmp_path / "c.yaml", document))

    assert error.field == "interactions[0].request.uri"


@pytest.mark.parametrize(
    "text",
    [
        "# llmx-replay cassette\n!llmx-replay/block 7\n",
        "# llmx-replay cassette\ninteractions:\n- request:\n    method: POST\n"
        f"    uri: {CHAT_URL}\n  response:\n    status: 200\n    body: !llmx-replay/block 7\n"
        "version: 1\n",
    ],
    ids=["whole-file", "response-body"],
)
def test_marked_file_with_a_dangling_block_reference_is_an_input_error(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")

    file_load_error(path)


# --------------------------------------------------------------------------------------------
# Atomic and concurrent writes
# --------------------------------------------------------------------------------------------


def fail(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = tmp_path / "cassette.yaml"
    path.write_bytes(b"old content\n")
    monkeypatch.setattr(os, step, fail)

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, b"new content that must not appear\n" * 1000)

    monkeypatch.undo()
    assert path.read_bytes() == b"old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cassette.yaml"]


def test_a_failed_first_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new" / "cassette.yaml"
    monkeypatch.setattr(os, "fsync", fail)

    with pytest.raises(OSError):
        write_atomically(path, b"data\n")

    monkeypatch.undo()
    assert list(path.parent.iterdir()) == []


def test_a_successful_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "cassette.yaml"
    path.write_bytes(b"old\n")

    write_atomically(path, b"new\n")

    assert path.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cassette.yaml"]


WRITERS = 4
PER_WRITER = 10


def _write_interactions(path: str, writer: int) -> None:
    cassette_writer = CassetteWriter(
        Path(path), scrubber=Scrubber(), canonicalizer=BodyCanonicalizer()
    )
    for number in range(PER_WRITER):
        cassette_writer.add(interaction(f"writer {writer} prompt {number}"))


def _prompt(recorded: Interaction) -> str:
    return str(orjson.loads(recorded.request.body or b"")["messages"][1]["content"])


def test_concurrent_writers_lose_nothing_and_leave_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_interactions, args=(str(path), writer))
        for writer in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * WRITERS

    loaded = load_cassette(path)

    prompts = [_prompt(recorded) for recorded in loaded.interactions]
    assert len(prompts) == WRITERS * PER_WRITER
    assert sorted(prompts) == sorted(
        f"writer {w} prompt {n}" for w in range(WRITERS) for n in range(PER_WRITER)
    )
    for writer in range(WRITERS):
        own = [p for p in prompts if p.startswith(f"writer {writer} ")]
        assert own == [f"writer {writer} prompt {n}" for n in range(PER_WRITER)]
    assert all(recorded.response.body == SSE_BODY for recorded in loaded.interactions)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.yaml"]
