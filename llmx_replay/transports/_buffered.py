"""Clients on requests, urllib3, aiohttp and the other libraries vcrpy patches, into a cassette.

vcrpy's patching catches those clients; its cassette is replaced by one that asks ours, so
that they are matched, scrubbed, recorded and refused exactly as httpx clients are, into
the same file. They are buffered, as vcrpy buffers them: a request is sent whole and its
response taken whole, with no chunk boundaries or timing (replayed, the body arrives at
once, cut after each SSE event for httpx clients reading it later). httpx and httpx2 stay
with the streaming interception (`_intercept`), which patches each buffered library as the
application imports it.
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from vcr.cassette import Cassette as VcrpyCassette  # type: ignore[import-untyped]
from vcr.patch import PATCHER_NAMES, CassettePatcherBuilder  # type: ignore[import-untyped]
from vcr.request import Request as VcrpyRequest  # type: ignore[import-untyped]

from llmx_replay.cassette._load import parse_interaction
from llmx_replay.cassette._model import CANCELLED, RecordedResponse
from llmx_replay.transports._cassette import CassetteTransport
from llmx_replay.transports._replay import recorded_break


def _header_value(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _body_bytes(request: VcrpyRequest, headers: dict[str, str]) -> bytes | None:
    body = request.body_bytes
    if body is None or isinstance(body, bytes):
        return body
    # aiohttp's stub keeps `json=` and `data=` as they were passed: sent as aiohttp sends them.
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return urlencode(body, doseq=True).encode()
    try:
        return orjson.dumps(body)
    except TypeError:  # not JSON (a FormData, integer keys): matched by its text
        return str(body).encode()


def _request_entry(request: VcrpyRequest) -> dict[str, Any]:
    """A vcrpy request as a cassette entry's ``request`` mapping."""
    headers = {name: _header_value(value) for name, value in request.headers.items()}
    return {
        "method": request.method,
        "uri": request.uri,
        "headers": headers,
        "body": _body_bytes(request, headers),
    }


def _httpx_request(entry: dict[str, Any]) -> httpx.Request:
    return httpx.Request(
        entry["method"], entry["uri"], headers=entry["headers"], content=entry["body"] or b""
    )


def _vcrpy_response(response: RecordedResponse) -> dict[str, Any]:
    """A recorded response as vcrpy's stubs serve one: whole."""
    headers: dict[str, list[str]] = {}
    for name, value in response.headers:
        headers.setdefault(name, []).append(value)
    return {
        "status": {"code": response.status, "message": response.reason},
        "headers": headers,
        "body": {"string": response.body},
    }


class _CassetteForVcrpy(VcrpyCassette):  # type: ignore[misc]
    """What vcrpy's patched clients ask; every answer comes from the active cassette, `ours`.

    One lives as long as the process for each of vcrpy's patchers, as does the builder of
    its patches: vcrpy builds a class per stub class and cassette, and classes built per test
    cost a test more than all the rest of its patching, in cyclic garbage collection.
    """

    def __init__(self, patcher: str) -> None:
        others = tuple(name for name in PATCHER_NAMES if name != patcher)
        super().__init__(path=f"llmx-replay:{patcher}", skip_patchers=others)
        self.ours: CassetteTransport | None = None

    def _active(self) -> CassetteTransport:
        if self.ours is None:
            raise RuntimeError("a buffered client's request came after its cassette ended")
        return self.ours

    @property
    def write_protected(self) -> bool:
        # A request the cassette may not record is refused by `play_response`, with the
        # error an httpx client gets.
        return False

    def can_play_response_for(self, request: VcrpyRequest) -> bool:
        # vcrpy may ask more than once per request (on connecting, then for the response):
        # only `play_response` plays.
        return self._active().answers_whole(_httpx_request(_request_entry(request)))

    def play_response(self, request: VcrpyRequest) -> dict[str, Any]:
        ours = self._active()
        answer = ours.answer_whole(_httpx_request(_request_entry(request)))
        broke_off = recorded_break(answer.partial)
        if broke_off is not None:
            # A whole response cannot break off midway: the client gets the network's error.
            raise ConnectionResetError(
                f"{ours.path}: the recorded response broke off: {broke_off!r}"
            )
        if answer.partial == CANCELLED:  # the caller gave up waiting: so does its replay
            raise TimeoutError(f"{ours.path}: the recorded response stalled until cancelled")
        return _vcrpy_response(answer)

    def append(self, request: VcrpyRequest, response: dict[str, Any]) -> None:
        ours = self._active()
        entry = _request_entry(request)
        # aiohttp's stub leaves out a body that could not be read ({}): an empty one.
        whole = {**response, "body": response.get("body") or {"string": b""}}
        interaction = parse_interaction(
            {"request": entry, "response": whole}, str(ours.path), "recorded"
        )
        ours.record_whole(_httpx_request(entry), interaction)


_PATCHERS: dict[str, tuple[_CassetteForVcrpy, CassettePatcherBuilder]] = {}


@contextmanager
def buffered_through(cassette: CassetteTransport, patcher: str) -> Iterator[None]:
    """Route the clients one of vcrpy's patchers catches through `cassette` while active.

    `patcher` is one of vcrpy's names: ``urllib3``, ``aiohttp``, ``boto3``... One cassette
    at a time (interception's rule).
    """
    if patcher not in _PATCHERS:
        adapter = _CassetteForVcrpy(patcher)
        _PATCHERS[patcher] = adapter, CassettePatcherBuilder(adapter)
    adapter, builder = _PATCHERS[patcher]
    adapter.ours = cassette
    try:
        with ExitStack() as patches:
            # Built anew each time: a patch holds what it replaced, and urllib3's keeps the
            # connections to drop from their pools when the cassette ends.
            for patch in builder.build():
                patches.enter_context(patch)
            yield
    finally:
        adapter.ours = None
