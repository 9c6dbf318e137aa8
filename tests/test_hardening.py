"""Hardening: recording never breaks a working stream, secrets stay off disk, replay gives
back what was recorded, cassettes round-trip byte-exact, foreign cassettes are not
overwritten, and bad input files or options fail as `InputError` / a one-line CLI error.

The live side is an `httpx.MockTransport` whose responses stream fixed chunks.
"""

import base64
import gzip
import json
import math
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
import vcr
import yaml
from click.testing import CliRunner, Result
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from llmx_replay import ChatClient, InputError, ReplayOptions, SecretInCassette, VirtualClock
from llmx_replay.cassette import (
    REDACTED,
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    Scrubber,
    dumps,
    find_secrets,
    load_cassette,
    parse_cassette,
    save_cassette,
)
from llmx_replay.cli import cli
from llmx_replay.models import ErrorEvent, Prompt, ProviderSettings, ResponseEvent
from llmx_replay.transports import (
    CassetteTransport,
    Faults,
    RecordingTransport,
    ReplayTransport,
)

JsonObject = dict[str, Any]
HeaderItems = Sequence[tuple[str | bytes, str | bytes]]
Via = Literal["new-episodes", "recording"]
VIAS: tuple[Via, ...] = ("new-episodes", "recording")

BASE_URL = "https://llm.example.com/v1"
URL = f"{BASE_URL}/chat/completions"
GEMINI_URL = "https://generativelanguage.example.com/v1beta/models/g:streamGenerateContent"
MODEL = "gpt-test"
ERROR_PREFIX = "llmx-replay: error:"
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
SSE_HEADERS: HeaderItems = (("content-type", "text/event-stream"),)


def chat_body(text: str = "hi") -> JsonObject:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": True}


BODY = chat_body()


# --------------------------------------------------------------------------------------------
# Helpers: SSE bodies
# --------------------------------------------------------------------------------------------


def event(payload: JsonObject | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def content(text: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def finish(reason: str = "stop") -> JsonObject:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


DONE = event("[DONE]")
TURN_BODY = event(content("Hel")) + event(content("lo")) + event(finish()) + DONE
TURN_CHUNKS: tuple[bytes, ...] = (TURN_BODY[:20], TURN_BODY[20:75], TURN_BODY[75:])


def _corrupt_gzip(body: bytes) -> bytes:
    compressed = gzip.compress(body * 20)
    corrupt = compressed[:10] + bytes(byte ^ 0xFF for byte in compressed[10:30]) + compressed[30:]
    try:
        zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(corrupt)
    except zlib.error:
        return corrupt
    raise AssertionError("the corrupted gzip body decompresses")


CORRUPT_GZIP = _corrupt_gzip(TURN_BODY)


# --------------------------------------------------------------------------------------------
# Helpers: the live side and the caller
# --------------------------------------------------------------------------------------------


class ChunkStream(httpx.SyncByteStream):
    """A body handed out in the given chunks, with no delay."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = list(chunks)

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def upstream(
    chunks: Sequence[bytes] = TURN_CHUNKS,
    headers: HeaderItems = SSE_HEADERS,
    status: int = 200,
) -> httpx.MockTransport:
    """A live side answering every request with `chunks`, streamed."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=list(headers), stream=ChunkStream(chunks))

    return httpx.MockTransport(handler)


def upstream_of_bodies(bodies: Sequence[bytes]) -> httpx.MockTransport:
    """A live side answering its n-th request with `bodies[n]`."""
    waiting = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=list(SSE_HEADERS), stream=ChunkStream([waiting.pop(0)]))

    return httpx.MockTransport(handler)


def fetch(client: httpx.Client, *, url: str = URL, body: JsonObject | None = None) -> list[bytes]:
    """The decoded chunks a plain httpx caller gets from a streamed POST."""
    with client.stream("POST", url, json=BODY if body is None else body) as response:
        return list(response.iter_bytes())


def read(
    transport: httpx.BaseTransport, *, url: str = URL, body: JsonObject | None = None
) -> list[bytes]:
    with httpx.Client(transport=transport) as client:
        return fetch(client, url=url, body=body)


def chat_events(transport: httpx.BaseTransport) -> list[ResponseEvent]:
    provider = ProviderSettings(base_url=BASE_URL, request_max_retries=0)
    with ChatClient(provider, MODEL, transport=transport) as client:
        return list(client.stream(Prompt()))


def recorded(path: Path, index: int = 0) -> RecordedResponse:
    return load_cassette(path).interactions[index].response


def stored_response(path: Path, index: int = 0) -> JsonObject:
    """The response as the file holds it, read as plain YAML (as vcrpy would)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    response: JsonObject = document["interactions"][index]["response"]
    return response


# --------------------------------------------------------------------------------------------
# Helpers: cassettes
# --------------------------------------------------------------------------------------------


def make_interaction(
    body: bytes = TURN_BODY,
    *,
    prompt: str = "hi",
    uri: str = URL,
    request_headers: list[tuple[str, str]] | None = None,
    response_headers: list[tuple[str, str]] | None = None,
) -> Interaction:
    return Interaction(
        request=RecordedRequest(
            method="POST",
            uri=uri,
            headers=request_headers if request_headers is not None else [],
            body=json.dumps(chat_body(prompt)).encode(),
        ),
        response=RecordedResponse(
            status=200,
            reason="OK",
            headers=response_headers if response_headers is not None else list(SSE_HEADERS),
            body=body,
        ),
    )


def cassette_of(*interactions: Interaction) -> Cassette:
    return Cassette(interactions=list(interactions), source_format="llmx-replay")


def vcrpy_record(
    path: Path,
    *,
    serializer: str = "yaml",
    url: str = URL,
    filter_query_parameters: Sequence[str | tuple[str, str]] = (),
) -> None:
    """Record one streamed POST with vcrpy itself into `path`."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=list(SSE_HEADERS), content=TURN_BODY)

    with (
        vcr.use_cassette(
            str(path),
            record_mode="once",
            serializer=serializer,
            filter_query_parameters=list(filter_query_parameters),
        ),
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
    ):
        assert client.post(url, json=BODY).content == TURN_BODY


RUBY_VCR_CASSETTE = f"""\
---
http_interactions:
- request:
    method: post
    uri: {URL}
    body:
      encoding: UTF-8
      string: '{json.dumps(BODY)}'
    headers:
      Content-Type:
      - application/json
  response:
    status:
      code: 200
      message: OK
    headers:
      Content-Type:
      - text/event-stream
    body:
      encoding: UTF-8
      string: "data: [DONE]\\n\\n"
  recorded_at: Thu, 01 Jan 2026 00:00:00 GMT
recorded_with: VCR 6.2.0
"""


def foreign_cassette(tmp_path: Path, kind: str) -> Path:
    if kind == "vcrpy-json":
        path = tmp_path / "vcrpy.json"
        vcrpy_record(path, serializer="json")
    else:
        path = tmp_path / "ruby.yml"
        path.write_text(RUBY_VCR_CASSETTE, encoding="utf-8")
    assert len(load_cassette(path).interactions) == 1
    return path


def appending_transport(path: Path, via: Via, inner: httpx.BaseTransport) -> httpx.BaseTransport:
    if via == "new-episodes":
        return CassetteTransport(path, record_mode="new_episodes", inner=inner)
    return RecordingTransport(path, inner=inner)


# ============================================================================================
# 1. Recording never breaks a stream that works without it
# ============================================================================================


def _deflate(body: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(body) + compressor.flush()


@pytest.mark.parametrize("wbits", [-15, 15], ids=["raw-deflate", "zlib-deflate"])
def test_deflate_body_reaches_the_caller_as_without_the_recorder_and_is_stored_decoded(
    tmp_path: Path, wbits: int
) -> None:
    path = tmp_path / "c.yaml"
    compressed = _deflate(TURN_BODY, wbits)
    pieces = [compressed[:10], compressed[10:30], compressed[30:]]
    assert all(pieces)
    headers: HeaderItems = (*SSE_HEADERS, ("content-encoding", "deflate"))

    without = b"".join(read(upstream(pieces, headers)))
    through = b"".join(read(RecordingTransport(path, inner=upstream(pieces, headers))))

    assert without == TURN_BODY
    assert through == without
    stored = stored_response(path)
    assert "content-encoding" not in {name.lower() for name in stored["headers"]}
    assert stored["body"]["string"] == TURN_BODY.decode()


def test_corrupt_gzip_body_gives_chat_client_the_same_events_as_without_the_recorder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    headers: HeaderItems = (*SSE_HEADERS, ("content-encoding", "gzip"))

    without = chat_events(upstream([CORRUPT_GZIP], headers))
    through = chat_events(RecordingTransport(path, inner=upstream([CORRUPT_GZIP], headers)))

    assert isinstance(without[-1], ErrorEvent)
    assert through == without


def test_corrupt_gzip_body_is_stored_raw_and_replays_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    headers: HeaderItems = (*SSE_HEADERS, ("content-encoding", "gzip"))
    without = chat_events(upstream([CORRUPT_GZIP], headers))
    chat_events(RecordingTransport(path, inner=upstream([CORRUPT_GZIP], headers)))

    response = recorded(path)
    assert response.header("content-encoding") == "gzip"
    assert response.body == CORRUPT_GZIP
    assert chat_events(ReplayTransport(path)) == without


# ============================================================================================
# 2. Secrets
# ============================================================================================


def test_scrubber_redacts_the_userinfo_of_a_url() -> None:
    assert Scrubber().url("https://user:pass@host/v1/x?a=1") == "https://<redacted>@host/v1/x?a=1"


def test_recording_through_a_url_with_a_password_keeps_it_off_disk(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    password = "s3cr3t-pass"
    url = f"https://user:{password}@llm.example.com/v1/chat/completions"

    assert b"".join(read(RecordingTransport(path, inner=upstream()), url=url)) == TURN_BODY

    text = path.read_text(encoding="utf-8")
    assert password not in text
    assert base64.b64encode(f"user:{password}".encode()).decode() not in text
    cassette = load_cassette(path)
    assert password not in cassette.interactions[0].request.uri
    assert cassette.metadata is not None
    assert password not in (cassette.metadata.base_url or "")


@pytest.mark.parametrize("name", ["location", "content-location"])
def test_secret_query_parameter_in_a_response_location_header_is_redacted(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "c.yaml"
    headers: HeaderItems = (*SSE_HEADERS, (name, "https://h/next?token=SECRET123&page=2"))

    read(RecordingTransport(path, inner=upstream(headers=headers)))

    assert "SECRET123" not in path.read_text(encoding="utf-8")
    value = recorded(path).header(name)
    assert value is not None
    assert "token=%3Credacted%3E" in value
    assert parse_qs(urlsplit(value).query) == {"token": [REDACTED], "page": ["2"]}


@pytest.mark.parametrize(
    "name", ["key", "api_key", "api-key", "apikey", "access_token", "token", "KEY", "Api_Key"]
)
def test_default_scrubber_redacts_secret_query_parameters_whatever_their_case(name: str) -> None:
    scrubbed = Scrubber().url(f"https://h.example/v1/x?{name}=s3cr3t&n=2")

    assert "s3cr3t" not in scrubbed
    assert parse_qsl(urlsplit(scrubbed).query) == [(name, REDACTED), ("n", "2")]


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
        "x-auth-token",
        "x-amz-security-token",
    ],
)
def test_default_scrubber_redacts_secret_headers(name: str) -> None:
    original = make_interaction(
        request_headers=[(name, "s3cr3t")], response_headers=[(name.upper(), "s3cr3t")]
    )

    scrubbed = Scrubber().interaction(original)

    assert scrubbed.request.headers == [(name, REDACTED)]
    assert scrubbed.response.headers == [(name.upper(), REDACTED)]


def test_find_secrets_sees_a_percent_encoded_key_in_a_header() -> None:
    key = "sk%2Dproj-" + ALPHABET
    cassette = cassette_of(make_interaction(response_headers=[("x-echo", key)]))

    found = find_secrets(cassette)

    assert found
    assert any("headers" in finding for finding in found), found


def test_find_secrets_sees_a_json_escaped_key_in_a_body() -> None:
    body = b'{"echo": "sk\\u002dproj-' + ALPHABET.encode() + b'"}'
    assert b"\\u002d" in body
    cassette = cassette_of(make_interaction(body=body))

    found = find_secrets(cassette)

    assert found
    assert any("body" in finding for finding in found), found


@pytest.mark.parametrize("word", ["BEARER", "bearer", "Bearer", "BeArEr"])
def test_find_secrets_sees_a_bearer_token_in_any_letter_case(word: str) -> None:
    body = f"authorized with {word} {ALPHABET}\n".encode()

    assert find_secrets(cassette_of(make_interaction(body=body)))


def test_find_secrets_finds_nothing_in_a_clean_cassette() -> None:
    assert find_secrets(cassette_of(make_interaction())) == []


# ============================================================================================
# 3. Headers that are not ASCII
# ============================================================================================


def test_replay_gives_back_a_non_ascii_header_value(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    headers: HeaderItems = (
        (b"content-type", b"text/event-stream"),
        (b"x-name", "café".encode()),
    )
    inner = upstream(headers=headers)
    with httpx.Client(transport=inner) as plain:
        assert plain.post(URL, json=BODY).headers["x-name"] == "café"
    read(RecordingTransport(path, inner=inner))

    with httpx.Client(transport=ReplayTransport(path)) as client:
        response = client.post(URL, json=BODY)

    assert response.headers["x-name"] == "café"
    assert response.content == TURN_BODY


# ============================================================================================
# 4. Chunk offsets measure the provider, not the caller
# ============================================================================================


def test_recorded_chunk_offsets_do_not_include_the_callers_time(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    pieces = [event(content(f"t{n}")) for n in range(5)]
    received: list[bytes] = []

    with (
        httpx.Client(transport=RecordingTransport(path, inner=upstream(pieces))) as client,
        client.stream("POST", URL, json=BODY) as response,
    ):
        for chunk in response.iter_bytes():
            received.append(chunk)
            time.sleep(0.05)

    assert received == pieces
    chunks = recorded(path).chunks
    assert chunks is not None
    offsets = [ms for _, ms in chunks]
    assert len(offsets) == 5
    assert all(ms < 20 for ms in offsets), offsets


# ============================================================================================
# 5. Record mode `rewrite`
# ============================================================================================

SECRET_BODY = event(content("sk-proj-" + ALPHABET[:10] * 3)) + DONE
NEW_BODY = event(content("new")) + DONE


def _old_cassette(path: Path) -> bytes:
    save_cassette(path, cassette_of(make_interaction(prompt="one"), make_interaction(prompt="two")))
    assert len(load_cassette(path).interactions) == 2
    return path.read_bytes()


def test_rewrite_refused_recording_leaves_the_old_cassette_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    before = _old_cassette(path)
    inner = upstream_of_bodies([SECRET_BODY])
    transport = CassetteTransport(path, record_mode="rewrite", inner=inner)

    with httpx.Client(transport=transport) as client, pytest.raises(SecretInCassette):
        fetch(client)

    assert path.read_bytes() == before


def test_rewrite_after_a_refused_recording_keeps_only_the_new_interaction(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _old_cassette(path)
    inner = upstream_of_bodies([SECRET_BODY, NEW_BODY])
    transport = CassetteTransport(path, record_mode="rewrite", inner=inner)

    with httpx.Client(transport=transport) as client:
        with pytest.raises(SecretInCassette):
            fetch(client)
        assert fetch(client) == [NEW_BODY]

    cassette = load_cassette(path)
    assert [i.response.body for i in cassette.interactions] == [NEW_BODY]


# ============================================================================================
# 6. A response the caller never closes
# ============================================================================================


@pytest.mark.parametrize("kind", ["recording", "cassette"])
def test_unclosed_response_is_written_as_partial_when_the_transport_closes(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "c.yaml"
    inner = upstream()
    transport: RecordingTransport | CassetteTransport = (
        RecordingTransport(path, inner=inner)
        if kind == "recording"
        else CassetteTransport(path, record_mode="once", inner=inner)
    )
    client = httpx.Client(transport=transport)
    response = client.send(client.build_request("POST", URL, json=BODY), stream=True)
    chunks = response.iter_bytes()  # kept: the response stays open, never closed by the caller
    try:
        assert next(chunks) == TURN_CHUNKS[0]

        transport.close()

        assert path.exists()
        response_recorded = recorded(path)
        assert response_recorded.body == TURN_CHUNKS[0]
        assert response_recorded.partial is not None
    finally:
        response.close()
        client.close()


# ============================================================================================
# 7. CRLF bodies
# ============================================================================================

CRLF_SSE = b"data: a\r\n\r\ndata: b\r\n\r\n"


def test_crlf_body_is_written_so_that_vcrpy_replays_its_exact_bytes() -> None:
    """A literal block cannot hold CR: a CRLF body is written as one escaped string, so that
    vcrpy (which knows no llmx-replay markers) replays exactly what was recorded."""
    text = dumps(cassette_of(make_interaction(body=CRLF_SSE)))
    _, responses = deserialize(text, yamlserializer)

    assert responses[0]["body"]["string"] == CRLF_SSE


def test_crlf_body_loads_back_byte_exact(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    cassette = cassette_of(make_interaction(body=CRLF_SSE))
    save_cassette(path, cassette)

    assert recorded(path).body == CRLF_SSE
    assert parse_cassette(dumps(cassette).encode(), "c.yaml").interactions[0].response.body == (
        CRLF_SSE
    )


@pytest.mark.parametrize(
    "body",
    [b"a\r\nb\nc\r", b"data: a\r\n\r\ndata: b\n\n", b"data: a\r\rdata: b\r\n\r\n"],
    ids=["crlf-lf-cr", "crlf-then-lf", "cr-then-crlf"],
)
def test_body_with_mixed_line_endings_round_trips_byte_exact(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "c.yaml"
    cassette = cassette_of(make_interaction(body=body))
    save_cassette(path, cassette)

    assert recorded(path).body == body
    assert parse_cassette(dumps(cassette).encode(), "c.yaml").interactions[0].response.body == body


# ============================================================================================
# 8. Recording into a cassette of another tool's format
# ============================================================================================


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("kind", ["vcrpy-json", "ruby-vcr"])
def test_recording_into_a_foreign_format_cassette_is_refused_and_leaves_it_untouched(
    tmp_path: Path, kind: str, via: Via
) -> None:
    path = foreign_cassette(tmp_path, kind)
    before = path.read_bytes()

    with pytest.raises(InputError) as caught:
        read(appending_transport(path, via, upstream()), body=chat_body("a new question"))

    assert path.name in str(caught.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("via", VIAS)
def test_recording_appends_to_a_vcrpy_yaml_cassette_that_vcrpy_still_reads(
    tmp_path: Path, via: Via
) -> None:
    path = tmp_path / "vcrpy.yaml"
    vcrpy_record(path)
    new_body = chat_body("a new question")

    read(appending_transport(path, via, upstream()), body=new_body)

    cassette = load_cassette(path)
    assert len(cassette.interactions) == 2
    assert [json.loads(i.request.body or b"") for i in cassette.interactions] == [BODY, new_body]
    requests, responses = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
    assert len(requests) == len(responses) == 2
    assert [json.loads(request.body) for request in requests] == [BODY, new_body]


# ============================================================================================
# 9. Matching ignores secret query parameters
# ============================================================================================


def test_replay_matches_a_live_key_against_a_cassette_with_the_key_filtered_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vcrpy.yaml"
    vcrpy_record(path, url=f"{GEMINI_URL}?alt=sse&key=RECORDKEY", filter_query_parameters=["key"])
    [interaction] = load_cassette(path).interactions
    assert interaction.request.uri == f"{GEMINI_URL}?alt=sse"

    with httpx.Client(transport=ReplayTransport(path)) as client:
        response = client.post(f"{GEMINI_URL}?alt=sse&key=REALKEY", json=BODY)

    assert response.status_code == 200
    assert response.content == TURN_BODY


@pytest.mark.parametrize("redacted", ["<redacted>", "%3Credacted%3E"])
def test_replay_matches_another_key_against_a_cassette_with_a_redacted_key(
    tmp_path: Path, redacted: str
) -> None:
    path = tmp_path / "c.yaml"
    save_cassette(path, cassette_of(make_interaction(uri=f"{GEMINI_URL}?alt=sse&key={redacted}")))

    with httpx.Client(transport=ReplayTransport(path)) as client:
        response = client.post(f"{GEMINI_URL}?alt=sse&key=REALKEY", json=BODY)

    assert response.status_code == 200
    assert response.content == TURN_BODY


# ============================================================================================
# 10. Cassette input errors
# ============================================================================================


def cassette_document() -> JsonObject:
    """A small valid vcrpy-style cassette with an `llmx_replay` response section."""
    return {
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": URL,
                    "headers": {"content-type": ["application/json"]},
                    "body": json.dumps(BODY),
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["text/event-stream"]},
                    "body": {"string": TURN_BODY.decode()},
                    "llmx_replay": {"headers_ms": 5.0},
                },
            }
        ],
        "version": 1,
    }


def write_document(path: Path, document: JsonObject) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def load_error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    error = caught.value
    assert path.name in str(error)
    return error


def test_the_base_input_cassette_loads(tmp_path: Path) -> None:
    cassette = load_cassette(write_document(tmp_path / "c.yaml", cassette_document()))
    assert cassette.interactions[0].response.body == TURN_BODY


def test_partial_that_is_not_a_string_is_an_input_error(tmp_path: Path) -> None:
    document = cassette_document()
    document["interactions"][0]["response"]["llmx_replay"] = {"partial": 5}

    error = load_error(write_document(tmp_path / "c.yaml", document))

    assert (error.field or "").endswith("llmx_replay.partial"), error.field


@pytest.mark.parametrize("value", [-50, float("nan")], ids=["negative", "nan"])
def test_headers_ms_that_is_negative_or_nan_is_an_input_error(tmp_path: Path, value: float) -> None:
    document = cassette_document()
    document["interactions"][0]["response"]["llmx_replay"] = {"headers_ms": value}
    path = write_document(tmp_path / "c.yaml", document)
    assert (".nan" in path.read_text()) == math.isnan(value)

    error = load_error(path)

    assert (error.field or "").endswith("headers_ms"), error.field


def test_parsed_body_with_an_integer_too_large_for_json_is_an_input_error(tmp_path: Path) -> None:
    document = cassette_document()
    request = document["interactions"][0]["request"]
    del request["body"]
    request["parsed_body"] = {"model": MODEL, "n": 2**70}

    error = load_error(write_document(tmp_path / "c.yaml", document))

    assert "parsed_body" in (error.field or ""), error.field


def test_malformed_request_uri_is_an_input_error(tmp_path: Path) -> None:
    document = cassette_document()
    document["interactions"][0]["request"]["uri"] = "http://[::1/v1/chat/completions"

    error = load_error(write_document(tmp_path / "c.yaml", document))

    assert error.field == "interactions[0].request.uri"


@pytest.mark.parametrize(
    "text",
    [
        "# llmx-replay cassette\n!llmx-replay/block 7\n",
        "# llmx-replay cassette\ninteractions:\n- request:\n    method: POST\n"
        f"    uri: {URL}\n  response:\n    status: 200\n    body: !llmx-replay/block 7\n"
        "version: 1\n",
    ],
    ids=["whole-file", "response-body"],
)
def test_marked_file_with_a_dangling_block_reference_is_an_input_error(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")

    load_error(path)


# ============================================================================================
# 11. CLI
# ============================================================================================


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result: Result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]


@pytest.fixture
def raw_sse(tmp_path: Path) -> Path:
    path = tmp_path / "body.sse"
    path.write_bytes(TURN_BODY)
    assert run("play", str(path)).exit_code == 0
    return path


def test_play_with_a_vanishingly_small_speed_is_a_one_line_error(raw_sse: Path) -> None:
    assert_one_line_error(run("play", str(raw_sse), "--pacing", "recorded", "--speed", "1e-300"))


def test_play_with_a_huge_idle_timeout_is_a_one_line_error(raw_sse: Path) -> None:
    assert_one_line_error(
        run("play", str(raw_sse), "--idle-timeout", "1e300", "--stall-after", "0")
    )


def _replayed_chunks(body: bytes, faults: Faults) -> list[bytes]:
    interaction = Interaction(
        request=RecordedRequest(method="POST", uri="http://h.test/v1/chat/completions"),
        response=RecordedResponse(
            status=200, headers=[("content-type", "text/event-stream")], body=body
        ),
    )
    cassette = Cassette(interactions=[interaction], source_format="llmx-replay")
    transport = ReplayTransport(cassette, ReplayOptions(faults=faults, clock=VirtualClock()))
    with (
        httpx.Client(transport=transport) as client,
        client.stream("POST", "http://h.test/v1/chat/completions") as response,
    ):
        return list(response.iter_bytes())


def test_faults_count_events_not_keep_alive_comments() -> None:
    """OpenRouter's `: OPENROUTER PROCESSING` comments ride with the next event."""
    body = b": ping\n\n: ping\n\ndata: one\n\ndata: two\n\n"
    assert _replayed_chunks(body, Faults(cut_after=1)) == [b": ping\n\n: ping\n\ndata: one\n\n"]


def test_drop_done_drops_a_done_event_that_carries_other_fields() -> None:
    body = b"data: one\n\nid: 7\ndata: [DONE]\n\n"
    assert _replayed_chunks(body, Faults(drop_done=True)) == [b"data: one\n\n"]


def test_stall_after_the_last_event_stalls_the_end_of_the_body() -> None:
    with pytest.raises(httpx.ReadTimeout):
        _replayed_chunks(b"data: one\n\n", Faults(stall_after=1))
