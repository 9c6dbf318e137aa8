"""Secrets in the places the issue found them reach neither a cassette nor a message.

Keys of other providers' shapes (Groq, AWS), headers and query parameters whose names say
they hold a secret (Azure APIM, Cloudflare AI Gateway, presigned-URL signatures), JSON body
fields so named; a mismatch message never prints a key it compares, and `record` never
prints a URL's password.
"""

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from llmx_replay import NoMatchingInteraction, ReplayTransport
from llmx_replay.cassette import Scrubber, find_secrets
from llmx_replay.cassette._model import Cassette, Interaction, RecordedRequest, RecordedResponse
from llmx_replay.cli import cli
from llmx_replay.transports import CassetteTransport

CHAT_URL = "https://gateway.example/v1/chat/completions"
GROQ_KEY = "gsk_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"


def cassette_of(request: RecordedRequest) -> Cassette:
    response = RecordedResponse(status=200, body=b"data: [DONE]\n\n")
    interactions = [Interaction(request=request, response=response)]
    return Cassette(interactions=interactions, source_format="llmx-replay")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (f'{{"note": "my key is {GROQ_KEY}"}}', "a Groq API key"),
        (f'{{"aws": "{AWS_KEY_ID}"}}', "an AWS access key id"),
    ],
)
def test_the_last_scan_sees_groq_and_aws_keys(text: str, what: str) -> None:
    request = RecordedRequest(method="POST", uri=CHAT_URL, body=text.encode())
    assert find_secrets(cassette_of(request)) == [f"interactions[0].request.body: holds {what}"]


@pytest.mark.parametrize(
    "header",
    ["Ocp-Apim-Subscription-Key", "cf-aig-authorization", "X-Goog-Api-Key", "x-session-token"],
)
def test_a_header_whose_name_says_secret_is_redacted(header: str) -> None:
    request = RecordedRequest(method="POST", uri=CHAT_URL, headers=[(header, "plainvalue123")])
    (kept,) = Scrubber().request(request).headers  # type: ignore[union-attr]
    assert kept == (header, "<redacted>")


@pytest.mark.parametrize(
    "header", ["x-ratelimit-remaining-tokens", "keep-alive", "content-type", "www-authenticate"]
)
def test_headers_that_only_look_alike_are_kept(header: str) -> None:
    request = RecordedRequest(method="POST", uri=CHAT_URL, headers=[(header, "42")])
    assert Scrubber().request(request).headers == [(header, "42")]  # type: ignore[union-attr]


def test_a_presigned_urls_signature_is_redacted() -> None:
    url = "https://bucket.s3.amazonaws.com/a?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123&n=1"
    kept = Scrubber().url(url)
    assert "abc123" not in kept and "AK%2F1" not in kept and "n=1" in kept


def test_a_body_field_named_like_a_secret_is_redacted_and_still_matches(tmp_path: Path) -> None:
    body = {"model": "m", "api_key": "plain-secret-1", "prompt_cache_key": "user-7"}
    request = RecordedRequest(method="POST", uri=CHAT_URL, body=json.dumps(body).encode())
    kept = Scrubber().request(request)
    assert kept is not None and kept.body is not None
    assert json.loads(kept.body) == {**body, "api_key": "<redacted>"}

    path = tmp_path / "c.yaml"
    with httpx.Client(transport=CassetteTransport(path, "once", inner=_echo())) as client:
        client.post(CHAT_URL, json=body).read()
    assert "plain-secret-1" not in path.read_text()
    other_key = {**body, "api_key": "another-secret-2"}
    with httpx.Client(transport=ReplayTransport(path)) as client:
        assert client.post(CHAT_URL, json=other_key).status_code == 200


def _echo() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, content=b"data: [DONE]\n\n"))


def test_a_mismatch_message_never_prints_a_key_it_compares(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    asked = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    with httpx.Client(transport=CassetteTransport(path, "once", inner=_echo())) as client:
        client.post(CHAT_URL, json=asked).read()
    leaked = "my key is sk-proj-" + "Zz9" * 10
    changed = {"model": "m", "messages": [{"role": "user", "content": leaked}]}
    with (
        httpx.Client(transport=ReplayTransport(path)) as client,
        pytest.raises(NoMatchingInteraction) as caught,
    ):
        client.post(CHAT_URL, json=changed)
    assert "sk-proj-Zz9" not in str(caught.value)
    assert "sk-pro…<redacted>" in str(caught.value)


def test_record_never_prints_a_urls_password(tmp_path: Path) -> None:
    conversation = tmp_path / "c.json"
    conversation.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    result = CliRunner().invoke(
        cli,
        [
            "record",
            str(conversation),
            "--base-url",
            "http://user:hunter2@127.0.0.1:9/v1",
            "--model",
            "m",
            "--max-retries",
            "0",
            "-o",
            str(tmp_path / "out.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert "hunter2" not in result.output
    assert "<redacted>@127.0.0.1:9" in result.stderr


def test_a_page_token_in_a_query_is_no_secret() -> None:
    url = "https://api.example/v1/models?page_token=p2&access_token=s3cr3t"
    assert Scrubber().url(url) == (
        "https://api.example/v1/models?page_token=p2&access_token=%3Credacted%3E"
    )


def test_a_camel_case_header_is_read_word_by_word() -> None:
    request = RecordedRequest(method="POST", uri=CHAT_URL, headers=[("accessToken", "v4lu3")])
    assert Scrubber().request(request).headers == [("accessToken", "<redacted>")]  # type: ignore[union-attr]


def test_only_a_bodys_top_level_fields_are_read_as_credentials() -> None:
    """Deeper, a tool call's arguments or metadata may name a field token for no secret."""
    body = {
        "client_secret": "cs-1",
        "metadata": {"token": "trace-7"},
        "messages": [{"role": "tool", "content": "x", "key": "k"}],
    }
    request = RecordedRequest(method="POST", uri=CHAT_URL, body=json.dumps(body).encode())
    kept = Scrubber().request(request)
    assert kept is not None and kept.body is not None
    assert json.loads(kept.body) == {**body, "client_secret": "<redacted>"}
