"""Keeping secrets off disk: scrubbing known credential fields, then a last scan for keys."""

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from llmx_replay._exceptions import KEY_SHAPES
from llmx_replay.cassette._match import is_secret_name, redacted_fields, redacted_secret_fields
from llmx_replay.cassette._model import Cassette, Interaction, RecordedRequest, RecordedResponse

REDACTED = "<redacted>"

DEFAULT_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "x-auth-token",
        "x-amz-security-token",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
    }
)
DEFAULT_SECRET_QUERY_PARAMS = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "sig"}
)
# Besides those named, any header or query parameter whose name says it holds a secret
# (`is_secret_name`: Ocp-Apim-Subscription-Key, cf-aig-authorization, X-Amz-Signature...).
# Response headers that hold a URL, whose query may carry a secret.
_URL_HEADERS = frozenset({"location", "content-location"})

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class Scrubber:
    """What of an exchange is changed, or left out, before a cassette keeps it.

    * `headers`, `query_params`: names (any case) whose values become `REDACTED`, in
      requests and responses alike; a password in a URL is always redacted.
    * `body_fields`: paths in a JSON request body (``user``, ``messages[*].content``) whose
      values become `REDACTED`: a prompt's personal data, a key sent in a body.
    * `secret_names`: besides those, redact every header and query parameter whose name
      says it holds a secret (a word of it is key, token, secret, signature, auth, password
      or credential: ``Ocp-Apim-Subscription-Key``, ``X-Amz-Signature``; token counts in
      headers only, so that a query's ``page_token`` stays), and every top-level string
      field of a JSON request body so named (``api_key``, ``client_secret``).
    * `before_record_request`, `before_record_response`: vcrpy's hooks, with its meaning:
      each gets the request (or response) as it would be kept, after the scrubbing above,
      and returns it, changed or not, or None to keep the exchange out of the cassette.

    Matching compares a request in the form a cassette keeps it (body fields redacted,
    the request hook applied), so that a scrubbed recording still answers it.
    """

    headers: frozenset[str] = DEFAULT_SECRET_HEADERS
    query_params: frozenset[str] = DEFAULT_SECRET_QUERY_PARAMS
    body_fields: tuple[str, ...] = ()
    secret_names: bool = True
    before_record_request: Callable[[RecordedRequest], RecordedRequest | None] | None = None
    before_record_response: Callable[[RecordedResponse], RecordedResponse | None] | None = None

    @property
    def changes_requests(self) -> bool:
        """Whether a request's body or hook decides its kept form, and so its match."""
        return bool(self.body_fields) or self.before_record_request is not None

    def _is_secret_param(self, name: str) -> bool:
        return name.lower() in self._params or (
            self.secret_names and is_secret_name(name, token=False)
        )

    @functools.cached_property
    def _params(self) -> frozenset[str]:
        return frozenset(name.lower() for name in self.query_params)

    def url(self, url: str) -> str:
        """`url` with its user information and secret query parameters redacted."""
        parts = urlsplit(url)
        if "@" in parts.netloc:
            parts = parts._replace(netloc=f"{REDACTED}@{parts.netloc.rpartition('@')[2]}")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(self._is_secret_param(name) for name, _ in pairs):
            query = urlencode(
                [(name, REDACTED if self._is_secret_param(name) else v) for name, v in pairs]
            )
            parts = parts._replace(query=query)
        return urlunsplit(parts)

    def matchable_url(self, url: str) -> str:
        """`url` without its user information and secret query parameters.

        Which key a request carried, or whether the recording tool kept it at all (or
        redacted it), does not decide a match.
        """
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        kept = [(name, value) for name, value in pairs if not self._is_secret_param(name)]
        if len(kept) == len(pairs) and host == parts.netloc:
            return url
        query = parts.query if len(kept) == len(pairs) else urlencode(kept)
        return urlunsplit(parts._replace(netloc=host, query=query))

    def header_pairs(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        secret = frozenset(name.lower() for name in self.headers)
        pairs: list[tuple[str, str]] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered in secret or (self.secret_names and is_secret_name(name)):
                value = REDACTED
            elif lowered in _URL_HEADERS:
                value = self.url(value)
            pairs.append((name, value))
        return pairs

    def request(self, request: RecordedRequest) -> RecordedRequest | None:
        """`request` as a cassette keeps it, or None when the hook leaves it out."""
        body = request.body
        if body and self.body_fields:
            body = redacted_fields(body, self.body_fields, REDACTED)
        if body and self.secret_names:
            body = redacted_secret_fields(body, REDACTED)
        kept = request.model_copy(
            update={
                "uri": self.url(request.uri),
                "headers": self.header_pairs(request.headers),
                "body": body,
            }
        )
        hook = self.before_record_request
        return kept if hook is None else hook(kept)

    def interaction(self, interaction: Interaction) -> Interaction | None:
        """`interaction` as a cassette keeps it, or None when a hook leaves it out."""
        request = self.request(interaction.request)
        if request is None:
            return None
        response: RecordedResponse | None = interaction.response.model_copy(
            update={"headers": self.header_pairs(interaction.response.headers)}
        )
        hook = self.before_record_response
        if hook is not None and response is not None:
            response = hook(response)
        return None if response is None else Interaction(request=request, response=response)


def _scan(text: str, where: str) -> list[str]:
    """Look in the text as written, and as a URL or JSON string would read it."""
    seen = {text, unquote_plus(text)}
    if "\\u" in text:
        seen.add(_JSON_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text))
    kinds = {what for variant in seen for what in _kinds_of_key(variant)}
    return [f"{where}: holds {shape.what}" for shape in KEY_SHAPES if shape.what in kinds]


# Each shape, whether it ignores case, and what its matches start with (lowered, as bytes,
# for a shape that ignores case).
_SEARCHES = tuple(
    (shape, bool(shape.pattern.flags & re.IGNORECASE), [s.lower().encode() for s in shape.starts])
    for shape in KEY_SHAPES
)


def _kinds_of_key(text: str) -> list[str]:
    """What kinds of key `text` holds.

    A pattern is tried only where a key can start, found by substring search: a long body
    is then read at the speed of that search, not of the patterns.
    """
    found: list[str] = []
    lowered: bytes | None = None
    for shape, caseless, lowered_starts in _SEARCHES:
        if caseless:
            # Lowered as bytes: ASCII only, as fast as a copy.
            if lowered is None:
                lowered = text.encode(errors="replace").lower()
            for start in lowered_starts:
                if start in lowered and shape.pattern.search(text):
                    found.append(shape.what)
                    break
            continue
        for start_text in shape.starts:
            if _matches_from(shape.pattern, text, start_text):
                found.append(shape.what)
                break
    return found


def _matches_from(pattern: re.Pattern[str], text: str, start: str) -> bool:
    """Whether `pattern` matches `text` where `start` occurs."""
    position = text.find(start)
    while position >= 0:
        if pattern.match(text, position):
            return True
        position = text.find(start, position + 1)
    return False


def _scan_message(
    message: RecordedRequest | RecordedResponse, where: str, body: bytes | None
) -> list[str]:
    found: list[str] = []
    # The values scanned as one text first: most messages hold no key. Joined by line
    # breaks, they can only show more (a bearer word and the next value's token), never less.
    if _scan("\n".join(value for _, value in message.headers), where):
        for name, value in message.headers:
            found += _scan(value, f"{where}.headers.{name}")
    if body and _may_hold_key(body):
        found += _scan(body.decode(errors="replace"), f"{where}.body")
    return found


_STARTS = {start.lower().encode() for shape in KEY_SHAPES for start in shape.starts}
# A text with "sk-ant-" in it has "sk-": only the shortest of such starts is searched for.
_LOWERED_STARTS = tuple(
    start for start in _STARTS if not any(other in start for other in _STARTS - {start})
)


def _may_hold_key(data: bytes) -> bool:
    """Whether `data` holds what a key starts with, or an escape that could hide one.

    Bodies are long: a few substring searches of their bytes clear nearly all of them.
    """
    if b"%" in data or b"\\u" in data:
        return True
    lowered = data.lower()
    return any(start in lowered for start in _LOWERED_STARTS)


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
    found = _scan(request.uri, f"{where}.request.uri")
    found += _scan_message(request, f"{where}.request", request.body)
    found += _scan_message(interaction.response, f"{where}.response", interaction.response.body)
    return found
