"""What the live tests share: the servers' turns, recording and replaying a turn, and timing
the first chunk with and without the recorder."""

import asyncio
import gc
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llmx_replay import (
    AsyncChatClient,
    ChatClient,
    StreamMode,
    VirtualClock,
    build_request,
    use_cassette,
)
from llmx_replay.cassette import REDACTED, Cassette, find_secrets, load_cassette
from llmx_replay.models import ChatRequest, InputText, Message, Prompt, ProviderSettings
from llmx_replay.models.events import ResponseEvent
from llmx_replay.transports import RecordingTransport, ReplayTransport

MODES: tuple[StreamMode, ...] = ("raw", "streaming", "aggregated")

SAY_HI = "Say hi"
SAY_HI_ANSWER = (  # fixtures/aimock.json's answer to SAY_HI
    "Hello! This is a deterministic reply streamed by aimock, recorded live and replayed by "
    "llmx-replay."
)


def records_then_replays_offline(
    server: "LiveServer",
    ask: Callable[["LiveServer"], str],
    cassette: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ask` (code that builds its own client) records `SAY_HI` from `server` with no wiring,
    then replays it as CI replays: record mode `none` by default under `CI`, network closed.
    """
    with use_cassette(cassette, "once") as recording:
        live = ask(server)
    assert live == SAY_HI_ANSWER
    assert len(recording.requests) == 1
    monkeypatch.setenv("CI", "1")
    with use_cassette(cassette) as replaying:
        assert replaying.record_mode == "none"
        replayed = ask(server)
    assert replayed == live
    assert replaying.misses == []
    assert replaying.transport.unplayed == []


def user(text: str) -> Prompt:
    return Prompt(input=[Message(role="user", content=[InputText(text=text)])])


@dataclass(frozen=True)
class Turn:
    """One request to a live server: the model, the prompt, and whether to ask for usage."""

    model: str
    prompt: Prompt
    include_usage: bool = False

    def request(self, provider: ProviderSettings) -> ChatRequest:
        """The request `ChatClient` sends, with ``stream_options.include_usage`` if asked."""
        request = build_request(self.prompt, self.model, provider, environ={})
        if not self.include_usage:
            return request
        body = orjson.loads(request.body)
        body["stream_options"] = {"include_usage": True}
        return request.model_copy(update={"body": orjson.dumps(body)})


# What each server is asked for each scenario. aimock answers by the last user message (its
# fixtures), the LiteLLM proxy by the model (each has its own `mock_response`).
_AIMOCK_MODEL = "gpt-4o-mini"
_AIMOCK_MESSAGES = {
    "text": "Say hi",
    "paced": "Stream paced",
    "usage": "Count my tokens",
    "rate_limit": "Rate limit me",
    "server_error": "Server error",
    "slow": "Slow first token",
}
_LITELLM_MODELS = {
    "text": "mock-gpt",
    "paced": "mock-gpt",
    "usage": "mock-gpt",
    "rate_limit": "mock-429",
    "server_error": "mock-500",
    "slow": "mock-gpt-slow",
}


@dataclass(frozen=True)
class LiveServer:
    """A running server: its root URL and the key clients send as a bearer token."""

    name: str
    url: str
    api_key: str
    ready_after: float | None = None

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def provider(self, **overrides: Any) -> ProviderSettings:
        """Settings for this server. Each call gets its own ``x-test-id``: aimock counts
        sequenced fixtures per test id, so a test sees them from the start."""
        settings: dict[str, Any] = {
            "name": self.name,
            "base_url": self.base_url,
            "experimental_bearer_token": self.api_key,
            "http_headers": {"x-test-id": uuid.uuid4().hex},
            "stream_idle_timeout_ms": 30_000,
        }
        return ProviderSettings(**(settings | overrides))

    def turn(self, scenario: str, *, include_usage: bool = False) -> Turn:
        if self.name == "aimock":
            return Turn(_AIMOCK_MODEL, user(_AIMOCK_MESSAGES[scenario]), include_usage)
        return Turn(_LITELLM_MODELS[scenario], user("Say hi"), include_usage)


@dataclass
class Run:
    """What one turn gave: its events, and the waits its client asked its clock for."""

    events: list[ResponseEvent]
    clock: VirtualClock = field(default_factory=VirtualClock)

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps


def run_turn(
    provider: ProviderSettings,
    turn: Turn,
    transport: httpx.BaseTransport,
    *,
    mode: StreamMode = "streaming",
    seed: int = 0,
    on_event: Callable[[ResponseEvent], None] | None = None,
) -> Run:
    """One `ChatClient` turn. Retry waits go to a `VirtualClock`, so none is really waited."""
    clock = VirtualClock()
    events: list[ResponseEvent] = []
    with ChatClient(
        provider,
        turn.model,
        transport=transport,
        mode=mode,
        clock=clock,
        rng=random.Random(seed),
        environ={},
    ) as client:
        for event in client.stream_request(turn.request(provider)):
            events.append(event)
            if on_event is not None:
                on_event(event)
    return Run(events, clock)


def arun_turn(
    provider: ProviderSettings,
    turn: Turn,
    transport: httpx.AsyncBaseTransport,
    *,
    mode: StreamMode = "streaming",
    seed: int = 0,
) -> Run:
    """One `AsyncChatClient` turn, run to its end in a new event loop."""
    clock = VirtualClock()

    async def stream() -> list[ResponseEvent]:
        async with AsyncChatClient(
            provider,
            turn.model,
            transport=transport,
            mode=mode,
            clock=clock,
            rng=random.Random(seed),
            environ={},
        ) as client:
            return [event async for event in client.stream_request(turn.request(provider))]

    return Run(asyncio.run(stream()), clock)


def record(
    provider: ProviderSettings,
    turn: Turn,
    cassette: Path,
    *,
    mode: StreamMode = "streaming",
    seed: int = 0,
) -> Run:
    """A live turn through `RecordingTransport` into `cassette`."""
    transport = RecordingTransport(cassette, inner=httpx.HTTPTransport())
    return run_turn(provider, turn, transport, mode=mode, seed=seed)


def replay(
    provider: ProviderSettings,
    turn: Turn,
    cassette: Path,
    *,
    mode: StreamMode = "streaming",
    seed: int = 0,
) -> Run:
    """The same turn served by `ReplayTransport` from `cassette`; every interaction must play."""
    transport = ReplayTransport(cassette)
    run = run_turn(provider, turn, transport, mode=mode, seed=seed)
    assert transport.unplayed == [], f"recorded interactions never replayed: {transport.unplayed}"
    return run


def assert_no_secrets(cassette: Path, server: LiveServer) -> Cassette:
    """The key sent never reached the file, and the authorization header is redacted."""
    text = cassette.read_text()
    assert server.api_key not in text
    assert server.api_key[len("sk-") :] not in text
    loaded = load_cassette(cassette)
    assert find_secrets(loaded) == []
    for interaction in loaded.interactions:
        headers = {name.lower(): value for name, value in interaction.request.headers}
        assert headers.get("authorization") == REDACTED
    return loaded


def stream_chunks(transport: httpx.BaseTransport, request: ChatRequest) -> tuple[int, list[bytes]]:
    """The status and the `iter_bytes()` chunks of a plain httpx streaming request."""
    with (
        httpx.Client(transport=transport, timeout=30.0) as client,
        client.stream("POST", request.url, headers=request.headers, content=request.body) as r,
    ):
        return r.status_code, list(r.iter_bytes())


@dataclass
class Timing:
    """Times to first chunk (ms) of the same request, direct and through the recorder,
    taken in interleaved pairs."""

    label: str
    direct_ms: list[float] = field(default_factory=list)
    recorded_ms: list[float] = field(default_factory=list)

    @property
    def direct_median(self) -> float:
        return statistics.median(self.direct_ms)

    @property
    def recorded_median(self) -> float:
        return statistics.median(self.recorded_ms)

    @property
    def added_median(self) -> float:
        """The median of the paired differences: what the recorder adds."""
        return statistics.median(
            r - d for r, d in zip(self.recorded_ms, self.direct_ms, strict=True)
        )

    def summary(self) -> str:
        return (
            f"{self.label}: {len(self.direct_ms)} pairs; median direct "
            f"{self.direct_median:.2f} ms, through the recorder {self.recorded_median:.2f} ms, "
            f"added (median of pairs) {self.added_median:+.2f} ms; direct range "
            f"{min(self.direct_ms):.2f}-{max(self.direct_ms):.2f} ms, recorded range "
            f"{min(self.recorded_ms):.2f}-{max(self.recorded_ms):.2f} ms"
        )


# Before each measured request: let the server finish what it does after a response (LiteLLM
# runs its logging callbacks), and collect garbage, which stays off until the first chunk.
_SETTLE_SECONDS = 0.01


def _first_chunk_ms(client: httpx.Client, request: ChatRequest) -> float:
    """Milliseconds from sending to the first body chunk; the rest is read to the end."""
    time.sleep(_SETTLE_SECONDS)
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        with client.stream("POST", request.url, headers=request.headers, content=request.body) as r:
            chunks = r.iter_bytes()
            next(chunks)
            elapsed = (time.perf_counter() - started) * 1000
            gc.enable()
            for _ in chunks:
                pass
    finally:
        gc.enable()
    return elapsed


async def _afirst_chunk_ms(client: httpx.AsyncClient, request: ChatRequest) -> float:
    await asyncio.sleep(_SETTLE_SECONDS)
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        async with client.stream(
            "POST", request.url, headers=request.headers, content=request.body
        ) as r:
            chunks = r.aiter_bytes()
            await anext(chunks)
            elapsed = (time.perf_counter() - started) * 1000
            gc.enable()
            async for _ in chunks:
                pass
    finally:
        gc.enable()
    return elapsed


def time_first_chunk(label: str, request: ChatRequest, cassette: Path, pairs: int) -> Timing:
    """Sync clients, each with its own connection pool, warmed up; pairs alternate order."""
    timing = Timing(label)
    with (
        httpx.Client(transport=httpx.HTTPTransport(), timeout=30.0) as direct,
        httpx.Client(
            transport=RecordingTransport(cassette, inner=httpx.HTTPTransport()), timeout=30.0
        ) as recording,
    ):
        _first_chunk_ms(direct, request)
        _first_chunk_ms(recording, request)
        for pair in range(pairs):
            if pair % 2:
                timing.recorded_ms.append(_first_chunk_ms(recording, request))
                timing.direct_ms.append(_first_chunk_ms(direct, request))
            else:
                timing.direct_ms.append(_first_chunk_ms(direct, request))
                timing.recorded_ms.append(_first_chunk_ms(recording, request))
    return timing


def atime_first_chunk(label: str, request: ChatRequest, cassette: Path, pairs: int) -> Timing:
    """`time_first_chunk` with async clients."""
    timing = Timing(label)

    async def measure() -> None:
        async with (
            httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(), timeout=30.0) as direct,
            httpx.AsyncClient(
                transport=RecordingTransport(cassette, inner=httpx.AsyncHTTPTransport()),
                timeout=30.0,
            ) as recording,
        ):
            await _afirst_chunk_ms(direct, request)
            await _afirst_chunk_ms(recording, request)
            for pair in range(pairs):
                if pair % 2:
                    timing.recorded_ms.append(await _afirst_chunk_ms(recording, request))
                    timing.direct_ms.append(await _afirst_chunk_ms(direct, request))
                else:
                    timing.direct_ms.append(await _afirst_chunk_ms(direct, request))
                    timing.recorded_ms.append(await _afirst_chunk_ms(recording, request))

    asyncio.run(measure())
    return timing
