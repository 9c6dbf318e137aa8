"""Writing cassettes: llmx-replay's vcrpy-compatible YAML, atomically, never with a key in it."""

import glob
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from llmx_replay._exceptions import SecretInCassette
from llmx_replay.cassette import _yaml
from llmx_replay.cassette._layout import end_line
from llmx_replay.cassette._load import FORMAT
from llmx_replay.cassette._model import (
    Cassette,
    CassetteMetadata,
    Interaction,
    RecordedRequest,
    RecordedResponse,
)
from llmx_replay.cassette._scrub import find_secrets


def _milliseconds(value: float) -> str:
    return repr(round(value, 3)).removesuffix(".0")


def _headers(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _text_or_bytes(body: bytes) -> Any:
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError:
            return body  # written as !!binary
    return _yaml.Block(body)


def _request_body(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _text_or_bytes(body)
    # Stored indented so that a reviewer can read the conversation; replay compares by meaning.
    try:
        return _yaml.Block(orjson.dumps(parsed, option=orjson.OPT_INDENT_2))
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: kept as it came
        return _text_or_bytes(body)


def _request(request: RecordedRequest) -> dict[str, Any]:
    body = _request_body(request.body)
    headers = request.headers
    if isinstance(body, _yaml.Block) and body.data != request.body:
        # The body is stored reformatted, so its recorded length no longer holds.
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
    return {
        "method": request.method,
        "uri": request.uri,
        "headers": _headers(headers),
        "body": body,
    }


def _response(response: RecordedResponse) -> dict[str, Any]:
    # A body a literal block cannot hold exactly (CRLF line breaks, say) is written as one
    # escaped string: vcrpy must replay exactly what was recorded.
    document: dict[str, Any] = {
        "status": {"code": response.status, "message": response.reason},
        "headers": _headers(response.headers),
        "body": {"string": _text_or_bytes(response.body)},
    }
    extras: dict[str, Any] = {}
    if response.headers_ms is not None:
        extras["headers_ms"] = round(response.headers_ms, 3)
    if response.chunks is not None:
        extras["chunk_bytes"] = " ".join(str(size) for size, _ in response.chunks)
        extras["chunk_ms"] = " ".join(_milliseconds(offset) for _, offset in response.chunks)
    if response.partial is not None:
        extras["partial"] = response.partial
    if extras:
        document["llmx_replay"] = extras
    return document


def _interaction(interaction: Interaction) -> dict[str, Any]:
    return {"request": _request(interaction.request), "response": _response(interaction.response)}


def interaction_yaml(interaction: Interaction) -> bytes:
    """One interaction as an item of the file's `interactions` list, without its end line."""
    document = [_interaction(interaction)]
    return _yaml.dump_fast(document) or _yaml.dump_fragment(document)


def cassette_yaml(interactions: list[bytes], metadata: CassetteMetadata | None) -> bytes:
    """The file text from its interactions' YAML (see `interaction_yaml`) and metadata.

    It holds vcrpy's `interactions` and `version`, with llmx-replay's additions beside them,
    in the layout that lets one more interaction be appended (`_layout`).
    """
    extras: dict[str, Any] = {"format": FORMAT}
    if metadata is not None:
        extras.update(metadata.model_dump(exclude_none=True))
    head = _yaml.dump_fragment({"llmx_replay": extras, "version": 1})
    if not interactions:
        return b"%s\n%sinteractions: []\n" % (_yaml.MARKER.encode(), head)
    listed = [text + end_line(number).encode() for number, text in enumerate(interactions, start=1)]
    return b"".join([_yaml.MARKER.encode(), b"\n", head, b"interactions:\n", *listed])


def dumps(cassette: Cassette) -> str:
    """The cassette's file text."""
    texts = [interaction_yaml(i) for i in cassette.interactions]
    return cassette_yaml(texts, cassette.metadata).decode()


def save_cassette(path: Path, cassette: Cassette) -> None:
    """Write `cassette` to `path` atomically, refusing if it holds something like a key."""
    secrets = find_secrets(cassette)
    if secrets:
        raise SecretInCassette(str(path), secrets)
    texts = [interaction_yaml(i) for i in cassette.interactions]
    write_atomically(path, cassette_yaml(texts, cassette.metadata))


def write_atomically(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the new one, whole.

    `sync`: put the data on the disk before it replaces the old file, so that a power cut
    cannot leave neither. Without it, the caller syncs the file later (`flush_to_disk`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), _file_mode(path))
            stream.write(data)
            stream.flush()
            if sync:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            # A full disk fails a write or fsync with no file name: give it the cassette's.
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def remove_stale_temporaries(path: Path) -> None:
    """Remove what `write_atomically` left beside `path` when a process was killed mid-write.

    Only safe under `_layout.directory_lock`, which every writer of `path` holds while writing.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


def _file_mode(path: Path) -> int:
    """The mode the file has, or a new file's usual 0644 (mkstemp would make it 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644
