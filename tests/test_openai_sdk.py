"""The openai SDK (on httpx2) records and replays through our transports via `for_httpx2`.

The SDK is not a runtime dependency; the ``test`` extra installs it.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from llmx_replay import NoMatchingInteraction, ReplayOptions, VirtualClock
from llmx_replay.cassette import load_cassette
from llmx_replay.transports import Faults, RecordingTransport, ReplayTransport, for_httpx2

BASE_URL = "http://provider.test/v1"
API_KEY = "sk-test-SECRET-0123456789abcdefghij"
PROMPT = "Say hello"


def _event(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return (
        'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,'
        f'"model":"gpt-test","choices":[{_json(choice)}]}}\n\n'
    )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


BODY = (
    _event({"role": "assistant", "content": ""})
    + _event({"content": "Bonjour"})
    + _event({"content": " à toi 😀"})
    + _event({}, "stop")
    + "data: [DONE]\n\n"
).encode()
# Network-like pieces: one ends inside an event, one holds two events and a half.
CHUNKS = [BODY[:70], BODY[70:400], BODY[400:]]


class _Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield from CHUNKS

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in CHUNKS:
            yield chunk


class Upstream:
    """A provider behind httpx.MockTransport; it counts the requests it gets."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_Pieces())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def _messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _sdk(transport: httpx.BaseTransport, **options: Any) -> Any:
    http = httpx2.Client(transport=for_httpx2(transport))
    return openai.OpenAI(base_url=BASE_URL, api_key=API_KEY, http_client=http, **options)


def _async_sdk(transport: httpx.AsyncBaseTransport, **options: Any) -> Any:
    http = httpx2.AsyncClient(transport=for_httpx2(transport))
    return openai.AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, http_client=http, **options)


def _chat(client: Any, prompt: str = PROMPT) -> list[dict[str, Any]]:
    stream = client.chat.completions.create(
        model="gpt-test", messages=_messages(prompt), stream=True
    )
    return [chunk.model_dump() for chunk in stream]


async def _achat(client: Any, prompt: str = PROMPT) -> list[dict[str, Any]]:
    stream = await client.chat.completions.create(
        model="gpt-test", messages=_messages(prompt), stream=True
    )
    return [chunk.model_dump() async for chunk in stream]


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A cassette recorded through the sync SDK, and the chunks the SDK gave while recording."""
    path = tmp_path / "sdk.yaml"
    upstream = Upstream()
    with _sdk(RecordingTransport(path, inner=upstream.transport())) as client:
        chunks = _chat(client)
    assert len(upstream.requests) == 1
    return path, chunks


def test_sync_sdk_replays_what_it_recorded(recorded: tuple[Path, list[dict[str, Any]]]) -> None:
    path, live = recorded
    assert [chunk["choices"][0]["delta"]["content"] for chunk in live] == [
        "",
        "Bonjour",
        " à toi 😀",
        None,
    ]
    with _sdk(ReplayTransport(path)) as client:
        assert _chat(client) == live


def test_async_sdk_replays_what_it_recorded(tmp_path: Path) -> None:
    path = tmp_path / "sdk.yaml"
    upstream = Upstream()

    async def record_then_replay() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with _async_sdk(RecordingTransport(path, inner=upstream.transport())) as client:
            live = await _achat(client)
        async with _async_sdk(ReplayTransport(path)) as client:
            return live, await _achat(client)

    live, replayed = asyncio.run(record_then_replay())
    assert len(upstream.requests) == 1
    assert len(live) == 4
    assert replayed == live


def test_the_api_key_never_reaches_the_cassette(
    recorded: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = recorded
    assert API_KEY not in path.read_text()
    request = load_cassette(path).interactions[0].request
    assert ("authorization", "<redacted>") in request.headers


def test_replay_keeps_the_recorded_chunk_boundaries(
    recorded: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, _ = recorded
    interaction = load_cassette(path).interactions[0]
    response = interaction.response
    assert response.chunks is not None
    assert [size for size, _ in response.chunks] == [len(chunk) for chunk in CHUNKS]

    request = interaction.request
    with httpx2.Client(transport=for_httpx2(ReplayTransport(path))) as http:
        sent = http.build_request(request.method, request.uri, content=request.body)
        replayed = http.send(sent, stream=True)
        try:
            assert list(replayed.iter_raw()) == CHUNKS
        finally:
            replayed.close()

    async def replay_async() -> list[bytes]:
        async with httpx2.AsyncClient(transport=for_httpx2(ReplayTransport(path))) as http:
            sent = http.build_request(request.method, request.uri, content=request.body)
            replayed = await http.send(sent, stream=True)
            try:
                return [chunk async for chunk in replayed.aiter_raw()]
            finally:
                await replayed.aclose()

    assert asyncio.run(replay_async()) == CHUNKS


def test_an_unrecorded_request_raises_no_matching_interaction_through_the_sdk(
    recorded: tuple[Path, list[dict[str, Any]]],
) -> None:
    """openai 3.57 passes an exception that is not an httpx2 error through unwrapped and
    does not retry it; the default retries are left on to show it."""
    path, _ = recorded
    with (
        _sdk(ReplayTransport(path)) as client,
        pytest.raises(NoMatchingInteraction, match=r'messages\[0\]\.content: recorded "Say hello"'),
    ):
        _chat(client, "Say hello in French")

    async def ask() -> None:
        async with _async_sdk(ReplayTransport(path)) as client:
            await _achat(client, "Say goodbye")

    with pytest.raises(NoMatchingInteraction):
        asyncio.run(ask())


def test_closing_the_sdk_stream_early_ends_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "sdk.yaml"
    with _sdk(RecordingTransport(path, inner=Upstream().transport())) as client:
        stream = client.chat.completions.create(model="gpt-test", messages=_messages(), stream=True)
        next(iter(stream))
        stream.close()
    response = load_cassette(path).interactions[0].response
    assert response.partial is not None
    assert response.body == b"".join(CHUNKS[: len(response.chunks or ())])


def test_a_stalled_replay_times_out_as_httpx2_read_timeout(
    recorded: tuple[Path, list[dict[str, Any]]],
) -> None:
    """The SDK's read timeout reaches the replay, whose stall the SDK sees as httpx2's own
    timeout error (it wraps that in APITimeoutError)."""
    path, _ = recorded
    clock = VirtualClock()
    replay = ReplayTransport(path, ReplayOptions(faults=Faults(stall_after=2), clock=clock))
    with _sdk(replay, timeout=httpx2.Timeout(30.0, read=7.5)) as client:
        stream = client.chat.completions.create(model="gpt-test", messages=_messages(), stream=True)
        with pytest.raises(openai.APITimeoutError) as raised:
            list(stream)
    assert isinstance(raised.value.__cause__, httpx2.ReadTimeout)
    assert clock.sleeps[-1] == 7.5
