"""Which recorded interaction answers a request: method, URL and JSON body by meaning.

Recorded interactions are indexed by a canonical key, so a lookup costs one canonical dump
of the request whatever the cassette's size. Identical requests are answered in recorded
order (a recorded 429 then 200 replays as a retry).
"""

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from llmx_replay._exceptions import Absence, FieldDifference, NoMatchingInteraction
from llmx_replay.cassette._model import Interaction

_ANY_ITEM = "*"
_SHOWN_DIFFERENCES = 5


@dataclass(frozen=True, slots=True)
class RequestKey:
    method: str
    url: str
    body: bytes


def path_and_query(url: str) -> str:
    """`url` without its scheme and host: what a server's clients ask of any origin."""
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path or "/", parts.query, ""))


def canonical_url(url: str) -> str:
    """The URL without its fragment, with its query parameters sorted."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))


def _parse_path(path: str) -> list[str]:
    return [part for part in path.replace("[", ".").replace("]", "").split(".") if part]


def _each_leaf(value: Any, path: Sequence[str], act: Callable[[Any, Any], None]) -> None:
    """Call `act(container, key)` for each place `path` names in `value`.

    A path part is a key, an index, or ``*`` for every item of a list.
    """
    if not path:
        return
    head, rest = path[0], path[1:]
    keys: Iterable[Any] = ()
    if isinstance(value, dict):
        keys = (head,) if head in value else ()
    elif isinstance(value, list):
        if head == _ANY_ITEM:
            keys = range(len(value))
        elif head.isdigit() and int(head) < len(value):
            keys = (int(head),)
    for key in keys:
        if rest:
            _each_leaf(value[key], rest, act)
        else:
            act(value, key)


def _drop(value: Any, path: Sequence[str]) -> None:
    def pop(container: Any, key: Any) -> None:
        if isinstance(container, dict):
            container.pop(key)

    _each_leaf(value, path, pop)


def redacted_fields(body: bytes, paths: Sequence[str], replacement: str) -> bytes:
    """A JSON `body` with the values at `paths` replaced; any other body as it is."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body

    def replace(container: Any, key: Any) -> None:
        container[key] = replacement

    for path in paths:
        _each_leaf(value, _parse_path(path), replace)
    return _redacted_json(value)


_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "signature",
        "auth",
        "authorization",
        "password",
        "passwd",
        "credential",
        "credentials",
        "cookie",
    }
)
_SECRET_FIELD_ENDINGS = ("api_key", "apikey", "_token", "secret", "_secret_key", "password")


_WORD_BREAKS = re.compile(r"[-_]+|(?<=[a-z])(?=[A-Z])")


def is_secret_name(name: str, *, token: bool = True) -> bool:
    """Whether a header or query parameter's name says it holds a secret.

    A word of the name (split at ``-``, ``_`` and camelCase) is key, token, secret,
    signature, auth, password or credential: ``Ocp-Apim-Subscription-Key``,
    ``cf-aig-authorization``, ``X-Amz-Signature``, ``accessToken``; not
    ``x-ratelimit-remaining-tokens``, nor ``keep-alive``. Without `token`, a name whose only
    such word is token does not count (a query's ``page_token`` pages; it is no secret).
    """
    words = {word.lower() for word in _WORD_BREAKS.split(name)} & _SECRET_WORDS
    return bool(words - ({"token"} if not token else set()))


def is_secret_field(name: str) -> bool:
    """Whether a JSON body field's name says it holds a secret.

    ``api_key``, ``access_token``, ``client_secret``, ``password``; not ``prompt_cache_key``.
    """
    lowered = name.lower().replace("-", "_")
    return lowered in ("key", "token", "authorization") or lowered.endswith(_SECRET_FIELD_ENDINGS)


def _with_secret_fields(value: Any, replacement: str) -> Any:
    """A JSON body with the string values of its top-level secret-named fields replaced.

    Only the top level: that is where a key is sent; deeper, a tool call's arguments or a
    request's metadata may name a field token for what is no credential.
    """
    if not isinstance(value, dict) or not any(
        isinstance(key, str) and isinstance(item, str) and is_secret_field(key)
        for key, item in value.items()
    ):
        return value
    return {
        key: replacement
        if isinstance(item, str) and isinstance(key, str) and is_secret_field(key)
        else item
        for key, item in value.items()
    }


def redacted_secret_fields(body: bytes, replacement: str) -> bytes:
    """A JSON `body` with its secret-named fields' values replaced.

    A body with none (or not JSON) comes back unchanged, byte for byte.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    redacted = _with_secret_fields(value, replacement)
    return body if redacted == value else _redacted_json(redacted)


def _redacted_json(value: Any) -> bytes:
    """A redacted body as JSON, however deep (orjson writes 254 levels at most)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _dumped(value: Any, body: bytes, option: int = 0) -> bytes:
    """`value` as JSON, or the `body` it was read from when orjson cannot write it back.

    That is a body nested deeper than orjson's limit: it is handled as text.
    """
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        return body


_SECRET_PLACEHOLDER = "<secret>"


class BodyCanonicalizer:
    """Turns a request body into the bytes that matching compares.

    A JSON body is compared by meaning: key order and spacing do not count, and the
    `ignore` paths (``user``, ``metadata.trace_id``, ``messages[*].id``) are left out.
    """

    def __init__(self, ignore: Iterable[str] = ()) -> None:
        self._ignore = [_parse_path(path) for path in ignore]

    def comparable(self, body: bytes | None) -> Any:
        """What a person compares: the JSON as matching sees it, else the text."""
        parsed = self.parsed(body)
        return body.decode(errors="replace") if parsed is None and body else parsed

    def parsed(self, body: bytes | None) -> Any:
        """The body as JSON with the ignored paths dropped, or None if it is not JSON."""
        if not body:
            return None
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        for path in self._ignore:
            _drop(value, path)
        # Which key a request carried, or whether the cassette redacted it, does not count.
        return _with_secret_fields(value, _SECRET_PLACEHOLDER)

    def canonical(self, body: bytes | None) -> bytes:
        parsed = self.parsed(body)
        if parsed is None:
            return body or b""
        return _dumped(parsed, body or b"", orjson.OPT_SORT_KEYS)

    def key(self, method: str, url: str, body: bytes | None) -> RequestKey:
        return RequestKey(method.upper(), canonical_url(url), self.canonical(body))


def _differences(recorded: Any, requested: Any, path: str, found: list[FieldDifference]) -> None:
    if len(found) > _SHOWN_DIFFERENCES:
        return
    if isinstance(recorded, dict) and isinstance(requested, dict):
        for key in [*recorded, *(k for k in requested if k not in recorded)]:
            _differences(
                recorded.get(key, Absence.ABSENT),
                requested.get(key, Absence.ABSENT),
                f"{path}.{key}",
                found,
            )
    elif isinstance(recorded, list) and isinstance(requested, list):
        for index in range(max(len(recorded), len(requested))):
            _differences(
                recorded[index] if index < len(recorded) else Absence.ABSENT,
                requested[index] if index < len(requested) else Absence.ABSENT,
                f"{path}[{index}]",
                found,
            )
    elif recorded != requested or type(recorded) is not type(requested):
        found.append(FieldDifference(path, recorded, requested))


RecordedKeys = Mapping[RequestKey, tuple[int, ...]]
"""The request key of each recorded interaction, with the positions recorded for it in order."""


def recorded_keys(
    interactions: Sequence[Interaction],
    canonicalizer: BodyCanonicalizer,
    url_form: Callable[[str], str] = str,
) -> RecordedKeys:
    """The keys `interactions` are found by: `canonicalizer`'s, with URLs in `url_form`."""
    positions: dict[RequestKey, list[int]] = {}
    urls: dict[str, str] = {}  # a cassette asks few URLs, each made canonical once
    for position, interaction in enumerate(interactions):
        request = interaction.request
        url = urls.get(request.uri)
        if url is None:
            url = urls[request.uri] = canonical_url(url_form(request.uri))
        key = RequestKey(request.method.upper(), url, canonicalizer.canonical(request.body))
        positions.setdefault(key, []).append(position)
    return {key: tuple(recorded) for key, recorded in positions.items()}


class InteractionIndex:
    """Recorded interactions by request key, each key's interactions in recorded order.

    What it has played is its own; its `keys` may be shared by indexes of the same
    interactions, matched the same way.
    """

    def __init__(
        self,
        interactions: Sequence[Interaction],
        canonicalizer: BodyCanonicalizer,
        url_form: Callable[[str], str] = str,
        *,
        keys: RecordedKeys | None = None,
        repeat: bool = False,
    ) -> None:
        """`url_form` turns a URL into what matching compares (e.g. without secrets).

        `keys`, when given, must be `recorded_keys` of the same arguments. `repeat`: once
        every interaction recorded for a key is played, they are played again from the
        first (a server answers many clients, each expecting the same answers).
        """
        self._interactions = interactions
        self._repeat = repeat
        self._canonicalizer = canonicalizer
        self._url_form = url_form
        self.keys = recorded_keys(interactions, canonicalizer, url_form) if keys is None else keys
        self._unplayed: dict[RequestKey, deque[int]] = {}  # a key's, once asked for
        self.played: set[int] = set()

    def _waiting(self, key: RequestKey) -> deque[int]:
        """The positions recorded for `key` that are not played yet, in recorded order."""
        waiting = self._unplayed.get(key)
        if waiting is None:
            # Threads asking for a key at once all take from the one deque that is kept.
            waiting = self._unplayed.setdefault(key, deque(self.keys.get(key, ())))
        return waiting

    def has(self, key: RequestKey) -> bool:
        """Whether an unplayed interaction is recorded for `key` (any, when they repeat)."""
        return key in self.keys and (self._repeat or bool(self._waiting(key)))

    def take(self, key: RequestKey) -> int | None:
        """The position of the next unplayed interaction recorded for `key`, now played."""
        if key not in self.keys:
            return None
        waiting = self._waiting(key)
        if not waiting and self._repeat:
            waiting.extend(self.keys[key])
        try:
            position = waiting.popleft()
        except IndexError:
            return None
        self.played.add(position)
        return position

    def unplayed(self) -> list[int]:
        return sorted(p for p in range(len(self._interactions)) if p not in self.played)

    def miss(
        self, cassette: str, method: str, url: str, body: bytes, reason: str | None = None
    ) -> NoMatchingInteraction:
        """The error for a request that matches nothing recorded in `cassette`.

        It names the recorded request that comes closest, and where the two differ.
        """
        if not self._interactions:
            return NoMatchingInteraction(cassette, method, url, body, None, reason=reason)
        requested = {
            "method": method.upper(),
            "url": canonical_url(self._url_form(url)),
            "body": self._canonicalizer.comparable(body),
        }
        best: tuple[int, list[FieldDifference]] | None = None
        for position, interaction in enumerate(self._interactions):
            recorded_request = interaction.request
            recorded = {
                "method": recorded_request.method.upper(),
                "url": canonical_url(self._url_form(recorded_request.uri)),
                "body": self._canonicalizer.comparable(recorded_request.body),
            }
            found: list[FieldDifference] = []
            _differences(recorded, requested, "request", found)
            if best is None or len(found) < len(best[1]):
                best = (position, found)
        position, found = best or (0, [])
        return NoMatchingInteraction(
            cassette,
            method,
            url,
            body,
            position,
            found[:_SHOWN_DIFFERENCES],
            len(found) > _SHOWN_DIFFERENCES,
            reason,
        )
