"""Reading cassettes that other tools wrote.

The formats are vcrpy and pytest-recording (YAML or JSON), their older httpx layout,
pydantic-ai's `parsed_body`, Ruby VCR, and single-interaction JSON files. Bodies come out
decoded; every problem names the file and the field.
"""

import math
import os
import warnings
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

from llmx_replay._exceptions import InputError, TornCassetteWarning
from llmx_replay._files import read_file
from llmx_replay.cassette import _yaml
from llmx_replay.cassette._layout import directory_lock, without_torn_tail
from llmx_replay.cassette._model import (
    Cassette,
    CassetteMetadata,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    first_header,
    stored_headers,
)

FORMAT = 1
"""The version of llmx-replay's additions to the vcrpy format that this code reads and writes."""

_SSE_FIELD_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")


def looks_like_sse(data: bytes) -> bool:
    """True when the first non-blank line of `data` is an SSE field or comment."""
    start = data.lstrip(b"\xef\xbb\xbf").lstrip()
    return start.startswith(_SSE_FIELD_STARTS)


def parse_cassette(data: bytes, source: str) -> Cassette:
    """Parse a cassette file's bytes; `source` names the file in errors.

    An interaction cut off mid-write at the end of the file is left out, with a warning.
    """
    data, torn = without_torn_tail(data)
    if torn:
        warnings.warn(
            f"{source}: left out its last {torn:,} bytes, an interaction cut off mid-write "
            "(its recording process was stopped while writing it); record it again",
            TornCassetteWarning,
            stacklevel=2,
        )
    document = _parse_document(data, source)
    if not isinstance(document, dict):
        raise InputError(source, "neither an SSE body nor a cassette (no mapping at the top)")
    if "interactions" in document:
        raw, source_format = document["interactions"], "vcrpy"
        field = "interactions"
    elif "http_interactions" in document:
        raw, source_format = document["http_interactions"], "ruby-vcr"
        field = "http_interactions"
    elif "request" in document and "response" in document:
        raw, source_format, field = [document], "single-interaction", ""
    else:
        raise InputError(
            source,
            "neither an SSE body nor a cassette "
            "(no `interactions`, `http_interactions` or `request`/`response`)",
        )
    if not isinstance(raw, list):
        raise InputError(source, "expected a list of interactions", field)
    version = document.get("version", 1)
    if source_format == "vcrpy" and version != 1:
        raise InputError(source, f"vcrpy cassette version {version!r} is not supported", "version")
    metadata = _metadata(document.get("llmx_replay"), source)
    if metadata is not None:
        source_format = "llmx-replay"
    interactions = [
        parse_interaction(entry, source, f"{field}[{index}]" if field else "")
        for index, entry in enumerate(raw)
    ]
    return Cassette(interactions=interactions, source_format=source_format, metadata=metadata)


def _metadata(value: Any, source: str) -> CassetteMetadata | None:
    if value is None:
        return None
    value = _mapping(value, source, "llmx_replay")
    found = value.get("format")
    if not isinstance(found, int) or isinstance(found, bool):
        raise InputError(source, "missing or not a whole number", "llmx_replay.format")
    if found > FORMAT:
        raise InputError(
            source,
            f"written by a newer llmx-replay (format {found}); this version reads format "
            f"{FORMAT} and older: upgrade llmx-replay",
            "llmx_replay.format",
        )
    try:
        return CassetteMetadata(
            toolkit=str(value.get("toolkit", "")),
            recorded_at=str(value.get("recorded_at", "")),
            base_url=value.get("base_url"),
            model=value.get("model"),
            note=value.get("note"),
        )
    except ValueError as error:
        raise InputError(source, " ".join(str(error).split()), "llmx_replay") from None


def load_cassette(path: Path) -> Cassette:
    """Read and parse the cassette at `path`."""
    return parse_cassette(_read_cassette_file(path), str(path))


def _read_cassette_file(path: Path) -> bytes:
    """The bytes of the file at `path`, read again when they end in an append under way.

    Writers hold the folder's lock while they append: a reader that meets one waits for it
    and reads the whole interaction, instead of leaving it out as cut off.
    """
    data = read_file(path)
    if without_torn_tail(data)[1]:
        with directory_lock(path.parent, shared=True):
            return read_file(path)
    return data


SSE_FORMAT = "sse"
"""The `source_format` of a raw SSE body read as a cassette (`load_recording`)."""


def load_recording(path: Path) -> Cassette:
    """A cassette file, or a raw SSE body as a cassette of one successful interaction.

    That cassette has the format `SSE_FORMAT` and no request URI.
    """
    data = _read_cassette_file(path)
    if not looks_like_sse(data):
        return parse_cassette(data, str(path))
    response = RecordedResponse(
        status=200, reason="OK", headers=[("content-type", "text/event-stream")], body=data
    )
    request = RecordedRequest(method="POST", uri="")
    return Cassette(
        interactions=[Interaction(request=request, response=response)], source_format=SSE_FORMAT
    )


def _parse_document(data: bytes, source: str) -> Any:
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as error:
            if source.endswith(".json"):
                raise InputError(source, f"invalid JSON: {error}") from None
    try:
        return _yaml.load(data)
    except _yaml.AliasBomb as error:
        raise InputError(source, str(error)) from None
    except yaml.YAMLError as error:
        raise InputError(
            source, f"neither an SSE body nor a cassette: invalid YAML: {_one_line(str(error))}"
        ) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _field(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _mapping(value: Any, source: str, field: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise InputError(source, "expected a mapping", field)
    return value


def parse_interaction(entry: Any, source: str, field: str) -> Interaction:
    """One interaction of a cassette (ours, vcrpy's or another tool's), `field` naming it."""
    entry = _mapping(entry, source, field)
    request = _mapping(entry.get("request"), source, _field(field, "request"))
    response = _mapping(entry.get("response"), source, _field(field, "response"))
    return Interaction(
        request=_request(request, source, _field(field, "request")),
        response=_response(response, source, _field(field, "response")),
    )


def _request(request: dict[Any, Any], source: str, field: str) -> RecordedRequest:
    method = request.get("method")
    uri = request.get("uri", request.get("url"))
    if not isinstance(method, str):
        raise InputError(source, "missing or not a string", _field(field, "method"))
    if not isinstance(uri, str):
        raise InputError(source, "missing or not a string", _field(field, "uri"))
    try:
        urlsplit(uri)
    except ValueError as error:
        raise InputError(source, f"not a URL: {error}", _field(field, "uri")) from None
    headers = _headers(request.get("headers"), source, _field(field, "headers"))
    if "parsed_body" in request:
        body: bytes | None = _json(request["parsed_body"], source, _field(field, "parsed_body"))
    else:
        body = _body(request.get("body"), source, _field(field, "body"))
    return RecordedRequest(method=method.upper(), uri=uri, headers=headers, body=body)


def _response(response: dict[Any, Any], source: str, field: str) -> RecordedResponse:
    status_value = response.get("status", response.get("status_code"))
    reason = ""
    if isinstance(status_value, dict):
        reason = str(status_value.get("message") or "")
        status_value = status_value.get("code")
    if isinstance(status_value, str) and status_value.isdigit():
        status_value = int(status_value)
    if not isinstance(status_value, int) or isinstance(status_value, bool):
        raise InputError(source, "missing or not an HTTP status code", _field(field, "status"))
    if not 100 <= status_value <= 599:
        raise InputError(
            source, f"an HTTP status is 100 to 599, not {status_value}", _field(field, "status")
        )
    headers = _headers(response.get("headers"), source, _field(field, "headers"))
    if "parsed_body" in response:
        body = _json(response["parsed_body"], source, _field(field, "parsed_body"))
    elif "body" in response:
        body = _body(response["body"], source, _field(field, "body")) or b""
    else:
        body = _body(response.get("content"), source, _field(field, "content")) or b""
    try:
        body, decoded = _decoded(body, first_header(headers, "content-encoding"))
    except _TooLarge as error:
        raise InputError(source, str(error), _field(field, "body")) from None
    headers = stored_headers(headers, decoded=decoded)
    extras = response.get("llmx_replay")
    if extras is None:
        return RecordedResponse(status=status_value, reason=reason, headers=headers, body=body)
    extras_field = _field(field, "llmx_replay")
    extras = _mapping(extras, source, extras_field)
    partial = extras.get("partial")
    if partial is not None and not isinstance(partial, str):
        raise InputError(
            source, "expected why the recording stopped short", _field(extras_field, "partial")
        )
    return RecordedResponse(
        status=status_value,
        reason=reason,
        headers=headers,
        body=body,
        headers_ms=_number(extras.get("headers_ms"), source, _field(extras_field, "headers_ms")),
        chunks=_chunks(extras, len(body), source, extras_field),
        partial=partial,
    )


def _json(value: Any, source: str, field: str) -> bytes:
    """A body some tools store as a mapping, as the JSON bytes it stands for."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as error:
        raise InputError(source, f"not a JSON body: {error}", field) from None


MAX_RECORDED_MS = 24 * 60 * 60 * 1000
"""The longest time a recording may say it took: a day (a replay waits that long)."""
_MILLISECONDS = "expected a number of milliseconds, at most a day's (86400000)"


def _number(value: Any, source: str, field: str) -> float | None:
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and 0 <= value <= MAX_RECORDED_MS:
        return float(value)
    raise InputError(source, _MILLISECONDS, field)


def _chunks(
    extras: dict[Any, Any], body_size: int, source: str, field: str
) -> tuple[tuple[int, float], ...] | None:
    sizes_text, offsets_text = extras.get("chunk_bytes"), extras.get("chunk_ms")
    if sizes_text is None and offsets_text is None:
        return None
    try:
        sizes = list(map(int, str(sizes_text).split()))
    except ValueError:
        sizes = [-1]
    if min(sizes, default=0) < 0:
        raise InputError(source, "expected byte counts", _field(field, "chunk_bytes"))
    try:
        offsets = list(map(float, str(offsets_text).split()))
    except ValueError:
        offsets = [math.nan]
    # The sum is not finite when an offset is not (infinite, or not a number).
    if offsets and not (
        math.isfinite(sum(offsets)) and min(offsets) >= 0 and max(offsets) <= MAX_RECORDED_MS
    ):
        raise InputError(source, _MILLISECONDS, _field(field, "chunk_ms"))
    if len(sizes) != len(offsets):
        raise InputError(
            source,
            f"{len(sizes)} chunk sizes but {len(offsets)} chunk times",
            _field(field, "chunk_ms"),
        )
    if sum(sizes) != body_size:
        raise InputError(
            source,
            f"the chunks add up to {sum(sizes)} bytes but the body has {body_size}",
            _field(field, "chunk_bytes"),
        )
    return tuple(zip(sizes, offsets, strict=True))


def _headers(value: Any, source: str, field: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    pairs: list[tuple[str, str]] = []
    for name, values in _mapping(value, source, field).items():
        for item in values if isinstance(values, list) else [values]:
            # Checked for a string first: a check against the union costs several times more.
            if type(item) is not str:
                if not isinstance(item, str | int | float):
                    raise InputError(source, "a header value must be a string", f"{field}.{name}")
                item = str(item)
            pairs.append((str(name), item))
    return pairs


def _body(value: Any, source: str, field: str) -> bytes | None:
    if isinstance(value, dict) and "string" in value:
        value = value["string"]
        field = _field(field, "string")
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict | list):
        return _json(value, source, field)
    raise InputError(source, "a body must be a string, bytes or a mapping", field)


MAX_INFLATED_VARIABLE = "LLMX_REPLAY_MAX_INFLATED_BYTES"
_MAX_INFLATED_DEFAULT = 64 * 1024 * 1024


class _TooLarge(ValueError):
    """A compressed body that inflates past the limit (a gzip bomb)."""


def max_inflated_bytes() -> int:
    """The most a stored compressed body may inflate to: 64 MiB unless the variable says."""
    value = os.environ.get(MAX_INFLATED_VARIABLE, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else _MAX_INFLATED_DEFAULT


def _inflate(body: bytes, wbits: int) -> bytes:
    """`body` decompressed, refusing to grow past `max_inflated_bytes`.

    Raises:
        zlib.error: `body` is not compressed that way.
        _TooLarge: it inflates past the limit.
    """
    limit = max_inflated_bytes()
    inflated = b""
    rest = body
    while rest:  # gzip may hold several members, one after the other
        decompressor = zlib.decompressobj(wbits)
        inflated += decompressor.decompress(rest, limit + 1 - len(inflated))
        if len(inflated) > limit:
            raise _TooLarge(
                f"the compressed body inflates past {limit:,} bytes (a compression bomb?); "
                f"set {MAX_INFLATED_VARIABLE} to allow more"
            )
        if not decompressor.eof:
            raise zlib.error("the compressed body is cut short")
        rest = decompressor.unused_data
    return inflated


def _decoded(body: bytes, encoding: str | None) -> tuple[bytes, bool]:
    """The body without its gzip or deflate content encoding, and whether it is now plain.

    Some tools store the body decoded and keep the header: a body the header calls gzip but
    that is not gzip is already plain. An encoding we cannot undo (br, zstd) stays, with its
    header.
    """
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        if body[:2] == b"\x1f\x8b":
            try:
                return _inflate(body, 16 + zlib.MAX_WBITS), True
            except zlib.error:
                return body, False
        return body, True
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS), True
        except zlib.error:
            return body, True
    return body, encoding == "identity"
