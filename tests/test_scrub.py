"""Secrets never reach disk (issue 3, section 2): credential headers and query parameters
are scrubbed on requests and responses, and a last scan refuses to write a cassette that
still holds something shaped like a key, saying where."""

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from llmx_replay._exceptions import SecretInCassette
from llmx_replay.cassette import (
    REDACTED,
    BodyCanonicalizer,
    Cassette,
    CassetteWriter,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    Scrubber,
    find_secrets,
    load_cassette,
    save_cassette,
)

CHAT_URL = "http://127.0.0.1:9/v1/chat/completions"
OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
ANTHROPIC_KEY = "sk-ant-api03-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm" * 2
GOOGLE_KEY = "AIza" + "SyD-3x4mpl3_K3y0123456789abcdefghij"  # 35 characters after AIza
BEARER_TOKEN = "Bearer " + "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
SSE_BODY = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
ALPHABET = "abcdefghijklmnopqrstuvwxyz"

SECRET_HEADERS = [
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
]


def test_the_sample_keys_have_the_real_shapes() -> None:
    assert len(GOOGLE_KEY) == 4 + 35
    assert len(OPENAI_KEY) > 3 + 20
    assert len(ANTHROPIC_KEY) > 7 + 20


def chat_body(prompt: str) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": prompt}]})


def interaction(
    prompt: str = "Say hello",
    body: bytes = SSE_BODY,
    status: int = 200,
    *,
    uri: str = CHAT_URL,
    request_headers: list[tuple[str, str]] | None = None,
    response_headers: list[tuple[str, str]] | None = None,
    request_body: bytes | None = None,
) -> Interaction:
    return Interaction(
        request=RecordedRequest(
            method="POST",
            uri=uri,
            headers=request_headers or [("content-type", "application/json")],
            body=chat_body(prompt) if request_body is None else request_body,
        ),
        response=RecordedResponse(
            status=status,
            headers=response_headers or [("content-type", "text/event-stream")],
            body=body,
        ),
    )


def cassette_of(*interactions: Interaction) -> Cassette:
    return Cassette(interactions=list(interactions), source_format="llmx-replay")


def places(findings: list[str]) -> list[str]:
    """The field each finding names (the part before ": holds ...")."""
    return [finding.split(": ", 1)[0] for finding in findings]


# --------------------------------------------------------------------------------------------
# Scrubber
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SECRET_HEADERS)
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_default_scrubber_redacts_secret_headers_in_requests_and_responses(
    name: str, case: Callable[[str], str]
) -> None:
    header = case(name)
    original = interaction(
        request_headers=[("content-type", "application/json"), (header, "secret-value")],
        response_headers=[(header, "secret-value"), ("x-request-id", "req_123")],
    )

    scrubbed = Scrubber().interaction(original)

    assert scrubbed.request.headers == [("content-type", "application/json"), (header, REDACTED)]
    assert scrubbed.response.headers == [(header, REDACTED), ("x-request-id", "req_123")]
    assert scrubbed.request.body == original.request.body
    assert scrubbed.response.body == original.response.body
    assert scrubbed.request.uri == original.request.uri


def test_default_scrubber_redacts_every_repeated_secret_header() -> None:
    original = interaction(response_headers=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")])

    scrubbed = Scrubber().interaction(original)

    assert scrubbed.response.headers == [("Set-Cookie", REDACTED), ("set-cookie", REDACTED)]


def test_default_scrubber_leaves_other_headers_alone() -> None:
    headers = [
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("user-agent", "llmx-replay/0.3"),
        ("x-stainless-retry-count", "0"),
        ("openai-processing-ms", "123"),
    ]
    original = interaction(request_headers=headers, response_headers=headers)

    assert Scrubber().interaction(original) == original


@pytest.mark.parametrize("param", ["key", "api_key"])
def test_default_scrubber_redacts_key_query_parameters(param: str) -> None:
    uri = f"https://example.test/v1beta/models/g:streamGenerateContent?alt=sse&{param}=s3cr3t&n=2"

    scrubbed = Scrubber().interaction(interaction(uri=uri))

    parts = urlsplit(scrubbed.request.uri)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "example.test",
        "/v1beta/models/g:streamGenerateContent",
    )
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("alt", "sse"),
        (param, REDACTED),
        ("n", "2"),
    ]
    assert "s3cr3t" not in scrubbed.request.uri


def test_default_scrubber_leaves_a_url_without_secret_parameters_unchanged() -> None:
    uri = "https://example.test/v1/chat/completions?api-version=2024-10-21&keyword=x%20y#frag"

    assert Scrubber().interaction(interaction(uri=uri)).request.uri == uri


def test_custom_scrubber_redacts_what_it_is_told_and_nothing_else() -> None:
    scrubber = Scrubber(
        headers=frozenset({"x-secret"}), query_params=frozenset({"token"}), secret_names=False
    )
    original = interaction(
        uri=f"{CHAT_URL}?token=t0k&key=kept",
        request_headers=[("X-Secret", "abc"), ("authorization", "Bearer short")],
        response_headers=[("x-secret", "def"), ("set-cookie", "a=1")],
    )

    scrubbed = scrubber.interaction(original)

    assert scrubbed.request.headers == [("X-Secret", REDACTED), ("authorization", "Bearer short")]
    assert scrubbed.response.headers == [("x-secret", REDACTED), ("set-cookie", "a=1")]
    assert parse_qsl(urlsplit(scrubbed.request.uri).query) == [("token", REDACTED), ("key", "kept")]


def test_scrubber_redacts_the_userinfo_of_a_url() -> None:
    assert Scrubber().url("https://user:pass@host/v1/x?a=1") == "https://<redacted>@host/v1/x?a=1"


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
    original = interaction(
        request_headers=[(name, "s3cr3t")], response_headers=[(name.upper(), "s3cr3t")]
    )

    scrubbed = Scrubber().interaction(original)

    assert scrubbed.request.headers == [(name, REDACTED)]
    assert scrubbed.response.headers == [(name.upper(), REDACTED)]


# --------------------------------------------------------------------------------------------
# find_secrets
# --------------------------------------------------------------------------------------------

SHAPES = {
    "openai": OPENAI_KEY,
    "openai-legacy": "sk-" + "a" * 48,
    "anthropic": ANTHROPIC_KEY,
    "google": GOOGLE_KEY,
    "bearer": BEARER_TOKEN,
}


def planted(where: str, secret: str) -> Interaction:
    """Interaction 1 of a cassette, holding `secret` in `where`."""
    if where == "request.uri":
        if secret.startswith("Bearer "):
            secret = secret.replace(" ", "%20")
        return interaction(uri=f"{CHAT_URL}?auth={secret}")
    if where == "request.headers.x-custom":
        return interaction(request_headers=[("x-custom", secret)])
    if where == "response.headers.x-echo":
        return interaction(response_headers=[("x-echo", secret)])
    if where == "request.body":
        return interaction(prompt=f"my key is {secret}, keep it safe")
    assert where == "response.body"
    return interaction(body=f'data: {{"content":"here: {secret}"}}\n\n'.encode())


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    "where",
    [
        "request.uri",
        "request.headers.x-custom",
        "response.headers.x-echo",
        "request.body",
        "response.body",
    ],
)
def test_find_secrets_finds_each_key_shape_everywhere_and_names_the_place(
    shape: str, where: str
) -> None:
    cassette = cassette_of(interaction(), planted(where, SHAPES[shape]))

    findings = find_secrets(cassette)

    assert places(findings) == [f"interactions[1].{where}"]


def test_find_secrets_names_every_place() -> None:
    cassette = cassette_of(
        interaction(request_headers=[("authorization", f"Bearer {OPENAI_KEY}")]),
        interaction(),
        interaction(body=f"data: {GOOGLE_KEY}\n\n".encode()),
    )

    assert places(find_secrets(cassette)) == [
        "interactions[0].request.headers.authorization",
        "interactions[0].request.headers.authorization",
        "interactions[2].response.body",
    ]


def test_find_secrets_says_what_it_found() -> None:
    cassette = cassette_of(interaction(prompt=ANTHROPIC_KEY))

    [finding] = find_secrets(cassette)

    assert finding.startswith("interactions[0].request.body: ")
    assert "Anthropic" in finding


@pytest.mark.parametrize(
    "harmless",
    [
        "sk-test",
        "sk-123",
        "sk-ant-test",
        "AIza123",
        "Bearer abc",
        "Bearer test-token",
        REDACTED,
        f"Bearer {REDACTED}",
        "sk-" + "a" * 10,
    ],
)
def test_find_secrets_ignores_short_test_strings_and_redacted(harmless: str) -> None:
    cassette = cassette_of(
        interaction(
            prompt=harmless,
            uri=f"{CHAT_URL}?key={harmless}",
            request_headers=[("authorization", harmless)],
            response_headers=[("x-echo", harmless)],
            body=f"data: {harmless}\n\n".encode(),
        )
    )

    assert find_secrets(cassette) == []


def test_find_secrets_ignores_words_that_merely_contain_sk_dash() -> None:
    # Model output often holds kebab-case names; "disk-usage-..." is not an OpenAI key.
    text = "kubectl rollout restart deployment/disk-usage-monitoring-service"
    cassette = cassette_of(interaction(body=f'data: {{"content":"{text}"}}\n\n'.encode()))

    assert find_secrets(cassette) == []


def test_find_secrets_scans_a_binary_body_without_failing() -> None:
    body = b"\xff\xfe\x00" + OPENAI_KEY.encode() + b"\x80"
    cassette = cassette_of(interaction(body=body))

    assert places(find_secrets(cassette)) == ["interactions[0].response.body"]


def test_find_secrets_sees_a_percent_encoded_key_in_a_header() -> None:
    key = "sk%2Dproj-" + ALPHABET
    cassette = cassette_of(interaction(response_headers=[("x-echo", key)]))

    assert find_secrets(cassette) == [
        "interactions[0].response.headers.x-echo: holds an OpenAI-style API key"
    ]


def test_find_secrets_sees_a_json_escaped_key_in_a_body() -> None:
    body = b'{"echo": "sk\\u002dproj-' + ALPHABET.encode() + b'"}'
    assert b"\\u002d" in body
    cassette = cassette_of(interaction(body=body))

    assert find_secrets(cassette) == [
        "interactions[0].response.body: holds an OpenAI-style API key"
    ]


@pytest.mark.parametrize("word", ["BEARER", "bearer", "Bearer", "BeArEr"])
def test_find_secrets_sees_a_bearer_token_in_any_letter_case(word: str) -> None:
    body = f"authorized with {word} {ALPHABET}\n".encode()

    assert find_secrets(cassette_of(interaction(body=body))) == [
        "interactions[0].response.body: holds a bearer token"
    ]


def test_find_secrets_finds_nothing_in_a_clean_cassette() -> None:
    assert find_secrets(cassette_of(interaction())) == []


# --------------------------------------------------------------------------------------------
# Refusing to write
# --------------------------------------------------------------------------------------------


def test_save_cassette_refuses_a_key_and_names_the_path_and_field(tmp_path: Path) -> None:
    path = tmp_path / "leaky.yaml"
    cassette = cassette_of(
        interaction(), interaction(response_headers=[("x-echo", f"Bearer {OPENAI_KEY}")])
    )

    with pytest.raises(SecretInCassette) as raised:
        save_cassette(path, cassette)

    assert raised.value.path == str(path)
    assert places(raised.value.findings) == [
        "interactions[1].response.headers.x-echo",
        "interactions[1].response.headers.x-echo",
    ]
    assert str(path) in str(raised.value)
    assert "interactions[1].response.headers.x-echo" in str(raised.value)
    assert OPENAI_KEY not in str(raised.value)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_cassette_refusal_leaves_the_existing_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "cassette.yaml"
    save_cassette(path, cassette_of(interaction()))
    before = path.read_bytes()

    with pytest.raises(SecretInCassette):
        save_cassette(path, cassette_of(interaction(prompt=f"use {GOOGLE_KEY}")))

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cassette.yaml"]


def test_cassette_writer_scrubs_authorization_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "recorded.yaml"
    writer = CassetteWriter(path, scrubber=Scrubber(), canonicalizer=BodyCanonicalizer())

    writer.add(
        interaction(
            uri=f"{CHAT_URL}?api_key={GOOGLE_KEY}",
            request_headers=[
                ("Authorization", f"Bearer {OPENAI_KEY}"),
                ("OpenAI-Organization", "org-abcdefghijklmnop"),
                ("content-type", "application/json"),
            ],
            response_headers=[("set-cookie", "__cf_bm=abcdefghijklmnopqrstuvwxyz0123456789")],
        )
    )

    text = path.read_text(encoding="utf-8")
    assert "Bearer sk-" not in text
    assert OPENAI_KEY not in text
    assert GOOGLE_KEY not in text
    assert "org-abcdefghijklmnop" not in text
    assert "__cf_bm" not in text
    [recorded] = load_cassette(path).interactions
    assert recorded.request.headers == [
        ("Authorization", REDACTED),
        ("OpenAI-Organization", REDACTED),
        ("content-type", "application/json"),
    ]
    assert recorded.response.headers == [("set-cookie", REDACTED)]
    assert dict(parse_qsl(urlsplit(recorded.request.uri).query)) == {"api_key": REDACTED}


def test_cassette_writer_refuses_a_key_left_in_the_body(tmp_path: Path) -> None:
    path = tmp_path / "recorded.yaml"
    writer = CassetteWriter(path, scrubber=Scrubber(), canonicalizer=BodyCanonicalizer())
    writer.add(interaction())
    before = path.read_bytes()

    with pytest.raises(SecretInCassette) as raised:
        writer.add(interaction(prompt=f"my key is {OPENAI_KEY}"))

    assert places(raised.value.findings) == ["interactions[1].request.body"]
    assert path.read_bytes() == before
