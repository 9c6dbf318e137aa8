"""Keeping secrets off disk: scrubbing known credential fields, then a last scan for keys."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from llmx_replay.cassette._model import Cassette, Interaction, RecordedRequest, RecordedResponse

REDACTED = "<redacted>"

DEFAULT_SECRET_HEADERS = frozenset(
    {
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
    }
)
DEFAULT_SECRET_QUERY_PARAMS = frozenset({"key", "api_key", "api-key"})

_KEY_SHAPES = (
    ("an Anthropic API key", re.compile(r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{16,}")),
    ("an OpenAI-style API key", re.compile(r"(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,}")),
    ("a Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("a bearer token", re.compile(r"[Bb]earer\s+[A-Za-z0-9._~+/-]{16,}=*")),
)


@dataclass(frozen=True)
class Scrubber:
    """Which header names (any case) and query parameters are replaced with `REDACTED`,
    in requests and responses alike, before a cassette is written."""

    headers: frozenset[str] = DEFAULT_SECRET_HEADERS
    query_params: frozenset[str] = DEFAULT_SECRET_QUERY_PARAMS

    def url(self, url: str) -> str:
        """`url` with its secret query parameters redacted."""
        parts = urlsplit(url)
        if not parts.query:
            return url
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if not any(name in self.query_params for name, _ in pairs):
            return url
        query = urlencode(
            [(name, REDACTED if name in self.query_params else value) for name, value in pairs]
        )
        return urlunsplit(parts._replace(query=query))

    def header_pairs(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (name, REDACTED if name.lower() in self.headers else value) for name, value in headers
        ]

    def interaction(self, interaction: Interaction) -> Interaction:
        request, response = interaction.request, interaction.response
        return Interaction(
            request=request.model_copy(
                update={"uri": self.url(request.uri), "headers": self.header_pairs(request.headers)}
            ),
            response=response.model_copy(update={"headers": self.header_pairs(response.headers)}),
        )


def _scan(text: str, where: str) -> list[str]:
    return [f"{where}: holds {what}" for what, shape in _KEY_SHAPES if shape.search(text)]


def _scan_message(
    message: RecordedRequest | RecordedResponse, where: str, body: bytes | None
) -> list[str]:
    found: list[str] = []
    for name, value in message.headers:
        found += _scan(value, f"{where}.headers.{name}")
    if body:
        found += _scan(body.decode(errors="replace"), f"{where}.body")
    return found


def find_secrets(cassette: Cassette) -> list[str]:
    """Where the cassette still holds something shaped like an API key or bearer token."""
    found: list[str] = []
    for index, interaction in enumerate(cassette.interactions):
        found += find_interaction_secrets(interaction, index)
    return found


def find_interaction_secrets(interaction: Interaction, index: int) -> list[str]:
    """`find_secrets` for the interaction at `index` of its cassette."""
    where = f"interactions[{index}]"
    request = interaction.request
    found = _scan(unquote_plus(request.uri), f"{where}.request.uri")
    found += _scan_message(request, f"{where}.request", request.body)
    found += _scan_message(interaction.response, f"{where}.response", interaction.response.body)
    return found
