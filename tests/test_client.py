"""The HTTP clients, `ChatClient` and `AsyncChatClient`, over an `httpx.MockTransport`.

Covers seed-behaviour.md §3.3-3.4 (URL, headers, auth), §4.1-4.2 (backoff and the retry
loop), §6 (error kinds), §7.1 (pre-flight checks), and decisions.md D6, D8, D13, D15 and the
error-kind paragraph. Every test asserts how many requests the transport saw, the waits the
client asked its `VirtualClock` for, and the events the stream ended with. No test really
sleeps except `test_async_real_idle_timeout`.
"""

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from llmx_replay import AsyncChatClient, ChatClient, MissingEnvVarError, StreamMode, VirtualClock
from llmx_replay.models import (
    Completed,
    ErrorEvent,
    ErrorKind,
    InputText,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    OutputTextDelta,
    Prompt,
    ProviderSettings,
    Reasoning,
    ReasoningContentDelta,
    ReasoningText,
    ResponseEvent,
    TokenUsage,
)

JsonObject = dict[str, Any]

MODEL = "test-model"
BASE_URL = "https://llm.example.com/v1"
URL = f"{BASE_URL}/chat/completions"
KEY_VAR = "TEST_API_KEY"
API_KEY = "sk-test-123"
ENV: Mapping[str, str] = {KEY_VAR: API_KEY}
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PROMPT = Prompt(
    instructions="Be brief.",
    input=[Message(role="user", content=[InputText(text="hi")])],
)
MODES: tuple[StreamMode, ...] = ("raw", "streaming", "aggregated")

# seed-behaviour.md §4.1: the backoff range, in seconds, of attempts 1 to 4.
BACKOFF_RANGES = ((0.180, 0.219), (0.360, 0.439), (0.720, 0.879), (1.440, 1.759))


# --------------------------------------------------------------------------------------------
# Helpers: provider settings, SSE bodies, events
# --------------------------------------------------------------------------------------------


def settings(**overrides: Any) -> ProviderSettings:
    """The test provider (base URL, key variable), with `overrides`."""
    values: dict[str, Any] = {"name": "test", "base_url": BASE_URL, "env_key": KEY_VAR}
    return ProviderSettings(**(values | overrides))


def sse_block(payload: JsonObject | str) -> bytes:
    """One `data:` event; a string payload is sent as it is (for `[DONE]`)."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


DONE = sse_block("[DONE]")


def sse(*payloads: JsonObject) -> bytes:
    """An event-stream body: one `data: <json>` event per payload, then `data: [DONE]`."""
    return b"".join(sse_block(payload) for payload in payloads) + DONE


def content(text: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def reasoning(text: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {"reasoning": text}}]}


def finish(reason: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


USAGE_CHUNK: JsonObject = {
    "choices": [],
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
}
USAGE = TokenUsage(
    input_tokens=10,
    cached_input_tokens=0,
    output_tokens=2,
    reasoning_output_tokens=0,
    total_tokens=12,
)

ADDED_MESSAGE = OutputItemAdded(item=Message(role="assistant", content=[]))
ADDED_REASONING = OutputItemAdded(item=Reasoning(summary=[], content=[]))


def td(text: str) -> OutputTextDelta:
    return OutputTextDelta(delta=text)


def rd(text: str) -> ReasoningContentDelta:
    return ReasoningContentDelta(delta=text)


def done_message(*parts: str) -> OutputItemDone:
    return OutputItemDone(
        item=Message(role="assistant", content=[OutputText(text=part) for part in parts])
    )


def done_reasoning(*parts: str) -> OutputItemDone:
    return OutputItemDone(
        item=Reasoning(summary=[], content=[ReasoningText(text=part) for part in parts])
    )


# A whole turn: reasoning, text in two deltas, a finish reason, a late usage chunk, [DONE].
TURN: tuple[JsonObject, ...] = (
    reasoning("think"),
    content("Hel"),
    content("lo"),
    finish("stop"),
    USAGE_CHUNK,
)
TURN_EVENTS: dict[StreamMode, list[ResponseEvent]] = {
    "raw": [
        ADDED_REASONING,
        rd("think"),
        ADDED_MESSAGE,
        td("Hel"),
        td("lo"),
        done_reasoning("think"),
        done_message("Hel", "lo"),
        Completed(token_usage=USAGE, finish_reason="stop"),
    ],
    "streaming": [
        ADDED_REASONING,
        rd("think"),
        ADDED_MESSAGE,
        td("Hel"),
        td("lo"),
        done_reasoning("think"),
        done_message("Hello"),
        Completed(token_usage=USAGE, finish_reason="stop"),
    ],
    "aggregated": [
        done_reasoning("think"),
        done_message("Hello"),
        Completed(token_usage=USAGE, finish_reason="stop"),
    ],
}


def assert_error(event: ResponseEvent, kind: ErrorKind, status: int | None, message: str) -> None:
    """`event` is an error of `kind` with `status` and exactly `message`."""
    assert isinstance(event, ErrorEvent), event
    assert (event.kind, event.status, event.message) == (kind, status, message)


def unexpected_status(status: int, text: str | None = None) -> str:
    """The message of an `unexpected_status` error quoting the provider's `text`."""
    head = f"unexpected status {status} {HTTPStatus(status).phrase}"
    return head if text is None else f"{head}: {text}"


IDLE_TIMEOUT = "idle timeout waiting for SSE"
NO_OUTPUT_SCHEMA = "output_schema is not supported for Chat Completions API"


def assert_backoff(sleeps: list[float], first_attempt: int = 1) -> None:
    """Each wait is the §4.1 backoff of its attempt: in range, in whole milliseconds."""
    for attempt, seconds in enumerate(sleeps, start=first_attempt):
        low, high = BACKOFF_RANGES[attempt - 1]
        assert low <= seconds <= high, (attempt, sleeps)
        assert round(seconds * 1000) / 1000 == seconds, (attempt, sleeps)


# --------------------------------------------------------------------------------------------
# Helpers: the mock server
# --------------------------------------------------------------------------------------------


class ChunkStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body served piece by piece, sync or async.

    An exception among the chunks is raised when the reader reaches it. `pulled` counts the
    pieces the reader asked for; `closed` tells whether the response was closed.
    """

    def __init__(self, *chunks: bytes | Exception) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class Reply:
    """One response the mock server gives; built afresh for each request."""

    status: int = 200
    body: bytes | httpx.SyncByteStream | httpx.AsyncByteStream = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def build(self) -> httpx.Response:
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, headers=dict(self.headers), content=self.body)
        return httpx.Response(self.status, headers=dict(self.headers), stream=self.body)


def ok(*payloads: JsonObject) -> Reply:
    """A 200 event stream of `payloads`, then `[DONE]`."""
    return Reply(200, sse(*payloads), {"content-type": "text/event-stream"})


def streamed(*chunks: bytes | Exception) -> tuple[Reply, ChunkStream]:
    """A 200 event stream served as `chunks`, and the stream to inspect afterwards."""
    stream = ChunkStream(*chunks)
    return Reply(200, stream, {"content-type": "text/event-stream"}), stream


def failure(status: int, message: str = "Rate limit reached", **headers: str) -> Reply:
    """An error status with an OpenAI-style JSON error body; `headers` use `_` for `-`."""
    body = json.dumps({"error": {"message": message, "type": "error", "code": None}})
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return Reply(status, body.encode(), {"content-type": "application/json"} | named)


class Recorder:
    """An `httpx.MockTransport` handler: serves `replies` in order, the last one again once
    they run out, and records every request. An exception among them is raised instead."""

    def __init__(self, *replies: Reply | Exception) -> None:
        self.replies = replies
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply.build()

    @property
    def sends(self) -> int:
        return len(self.requests)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class ClosingTransport(httpx.MockTransport):
    """A mock transport that remembers being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def run(
    recorder: Recorder,
    *,
    provider: ProviderSettings | None = None,
    mode: StreamMode = "streaming",
    clock: VirtualClock | None = None,
    seed: int = 0,
    environ: Mapping[str, str] = ENV,
    prompt: Prompt = PROMPT,
    subagent: str | None = None,
) -> list[ResponseEvent]:
    """All events of one `ChatClient` turn against `recorder`."""
    with ChatClient(
        provider or settings(),
        MODEL,
        transport=recorder.transport,
        mode=mode,
        clock=clock or VirtualClock(start=START),
        rng=random.Random(seed),
        environ=environ,
        subagent=subagent,
    ) as client:
        return list(client.stream(prompt))


def arun(
    recorder: Recorder,
    *,
    provider: ProviderSettings | None = None,
    mode: StreamMode = "streaming",
    clock: VirtualClock | None = None,
    seed: int = 0,
    environ: Mapping[str, str] = ENV,
    prompt: Prompt = PROMPT,
) -> list[ResponseEvent]:
    """All events of one `AsyncChatClient` turn against `recorder`, run to completion."""

    async def turn() -> list[ResponseEvent]:
        async with AsyncChatClient(
            provider or settings(),
            MODEL,
            transport=recorder.transport,
            mode=mode,
            clock=clock or VirtualClock(start=START),
            rng=random.Random(seed),
            environ=environ,
        ) as client:
            return [event async for event in client.stream(prompt)]

    return asyncio.run(turn())


# --------------------------------------------------------------------------------------------
# A successful turn: the request sent and the events in each mode
# --------------------------------------------------------------------------------------------


def test_success_sends_one_streaming_post() -> None:
    recorder = Recorder(ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert recorder.sends == 1
    assert clock.sleeps == []
    assert events == TURN_EVENTS["streaming"]
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers.get_list("authorization") == [f"Bearer {API_KEY}"]
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "max_tokens": 8192,
    }


@pytest.mark.parametrize("mode", MODES)
def test_success_events_in_each_mode(mode: StreamMode) -> None:
    recorder = Recorder(ok(*TURN))
    clock = VirtualClock(start=START)
    assert run(recorder, mode=mode, clock=clock) == TURN_EVENTS[mode]
    assert recorder.sends == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("base_url", "query_params", "url"),
    [
        (BASE_URL, None, URL),
        (BASE_URL + "/", None, URL),  # D15: no `//chat/completions`
        (BASE_URL, {"z": "1", "api-version": "a&b"}, URL + "?z=1&api-version=a%26b"),
    ],
    ids=["plain", "trailing-slash", "query-in-order"],
)
def test_request_url(base_url: str, query_params: dict[str, str] | None, url: str) -> None:
    recorder = Recorder(ok(content("x")))
    run(recorder, provider=settings(base_url=base_url, query_params=query_params))
    assert recorder.sends == 1
    assert str(recorder.requests[0].url) == url


def test_static_and_env_headers_are_added() -> None:
    """§3.4: `http_headers` always; `env_http_headers` only when the variable is not blank."""
    provider = settings(
        http_headers={"x-static": "yes"},
        env_http_headers={"OpenAI-Organization": "ORG_VAR", "OpenAI-Project": "PROJECT_VAR"},
    )
    environ = {KEY_VAR: API_KEY, "ORG_VAR": "org-1", "PROJECT_VAR": "   "}
    recorder = Recorder(ok(content("x")))
    run(recorder, provider=provider, environ=environ)

    headers = recorder.requests[0].headers
    assert headers["x-static"] == "yes"
    assert headers["openai-organization"] == "org-1"
    assert "openai-project" not in headers
    assert headers["authorization"] == f"Bearer {API_KEY}"


def test_subagent_header() -> None:
    recorder = Recorder(ok(content("x")))
    run(recorder, subagent="review")
    assert recorder.requests[0].headers["x-openai-subagent"] == "review"


def test_idle_timeout_is_the_read_timeout() -> None:
    """The transport is told the idle timeout (300 s unless configured) as its read timeout."""
    default = Recorder(ok(content("x")))
    run(default)
    configured = Recorder(ok(content("x")))
    run(configured, provider=settings(stream_idle_timeout_ms=1500))

    assert default.requests[0].extensions["timeout"]["read"] == 300.0
    assert configured.requests[0].extensions["timeout"]["read"] == 1.5


def test_stops_reading_after_done() -> None:
    """After `[DONE]` the client neither reads the rest of the body nor emits anything."""
    reply, stream = streamed(
        sse_block(content("a")),
        DONE,
        sse_block(content("late")),
        DONE,
    )
    recorder = Recorder(reply)
    events = run(recorder)

    assert events == [ADDED_MESSAGE, td("a"), done_message("a"), Completed()]
    assert stream.pulled == 2
    assert stream.closed
    assert recorder.sends == 1


def test_data_after_done_in_the_same_chunk_is_ignored() -> None:
    body = sse_block(content("a")) + DONE + sse_block(content("late")) + sse_block(finish("stop"))
    recorder = Recorder(Reply(200, body, {"content-type": "text/event-stream"}))
    assert run(recorder) == [ADDED_MESSAGE, td("a"), done_message("a"), Completed()]


# --------------------------------------------------------------------------------------------
# Retries: 429 and 5xx, Retry-After (D13), backoff (§4.1)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retryable_status_then_success(status: int) -> None:
    recorder = Recorder(failure(status), failure(status), ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events == run(Recorder(ok(*TURN)))
    assert recorder.sends == 3
    assert len(clock.sleeps) == 2
    assert_backoff(clock.sleeps)
    # The same request is sent on every attempt.
    first = recorder.requests[0]
    for request in recorder.requests[1:]:
        assert (request.method, request.url, request.content) == (
            first.method,
            first.url,
            first.content,
        )
        assert request.headers.multi_items() == first.headers.multi_items()


RETRY_AFTER_CASES = [
    pytest.param({"retry_after": "3"}, 3.0, id="seconds"),
    pytest.param({"retry_after": "0"}, 0.0, id="zero"),
    pytest.param({"retry_after": "1.5"}, 1.5, id="fractional"),
    pytest.param(
        {"retry_after": format_datetime(START + timedelta(seconds=7), usegmt=True)},
        7.0,
        id="http-date",
    ),
    pytest.param({"retry_after_ms": "250"}, 0.25, id="retry-after-ms"),
]


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("headers", "wait"), RETRY_AFTER_CASES)
def test_retry_after_sets_the_wait(status: int, headers: dict[str, str], wait: float) -> None:
    recorder = Recorder(failure(status, **headers), ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 2
    assert clock.sleeps == [wait]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"retry_after": "86400"}, id="seconds"),
        pytest.param({"retry_after_ms": "86400000"}, id="retry-after-ms"),
        pytest.param(
            {"retry_after": format_datetime(START + timedelta(days=1), usegmt=True)},
            id="http-date",
        ),
        pytest.param({}, id="backoff"),
    ],
)
def test_wait_is_capped_at_max_retry_delay(headers: dict[str, str]) -> None:
    """D13: any wait, asked for or computed, is capped at `max_retry_delay_ms`."""
    recorder = Recorder(failure(429, **headers), ok(*TURN))
    clock = VirtualClock(start=START)
    provider = settings(max_retry_delay_ms=5000 if headers else 100)
    events = run(recorder, provider=provider, clock=clock)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 2
    assert clock.sleeps == [5.0 if headers else 0.1]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"retry_after": "soon"}, id="word"),
        pytest.param({"retry_after": "nan"}, id="nan"),
        pytest.param({"retry_after": "inf"}, id="inf"),
        pytest.param({"retry_after_ms": "nan"}, id="ms-nan"),
        pytest.param({"retry_after": "Sun, 99 Foo 2026 99:00:00 GMT"}, id="bad-date"),
    ],
)
def test_unreadable_retry_after_falls_back_to_backoff(headers: dict[str, str]) -> None:
    """§4.2: a Retry-After that is not a number of seconds (nor, D13, a date) means backoff."""
    recorder = Recorder(failure(429, **headers), ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 2
    assert len(clock.sleeps) == 1
    assert_backoff(clock.sleeps)


@pytest.mark.parametrize("seed", range(8))
def test_backoff_doubles_per_attempt(seed: int) -> None:
    """§4.1: without Retry-After, attempt n waits 200 ms * 2^(n-1) with ±10 % jitter."""
    recorder = Recorder(*[failure(503)] * 4, ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock, seed=seed)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 5
    assert len(clock.sleeps) == 4
    assert_backoff(clock.sleeps)


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    def sleeps(seed: int) -> list[float]:
        clock = VirtualClock(start=START)
        run(Recorder(*[failure(429)] * 4, ok(*TURN)), clock=clock, seed=seed)
        return clock.sleeps

    assert sleeps(42) == sleeps(42)


# --------------------------------------------------------------------------------------------
# The retry limit (§4.2, §3.1 `request_max_retries`)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("retries", "sends"), [(0, 1), (1, 2), (2, 3)])
def test_persistent_429_ends_with_retry_limit(retries: int, sends: int) -> None:
    recorder = Recorder(failure(429, "Rate limit reached for requests", retry_after="1"))
    clock = VirtualClock(start=START)
    events = run(recorder, provider=settings(request_max_retries=retries), clock=clock)

    assert recorder.sends == sends
    assert clock.sleeps == [1.0] * retries
    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        429,
        "exceeded retry limit, last status: 429 Too Many Requests: Rate limit reached for requests",
    )


def test_persistent_5xx_ends_with_retry_limit() -> None:
    recorder = Recorder(failure(502, "upstream connect error", retry_after="2"))
    clock = VirtualClock(start=START)
    events = run(recorder, provider=settings(request_max_retries=2), clock=clock)

    assert recorder.sends == 3
    assert clock.sleeps == [2.0, 2.0]
    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        502,
        "exceeded retry limit, last status: 502 Bad Gateway: upstream connect error",
    )


def test_default_is_four_retries() -> None:
    recorder = Recorder(failure(429))
    clock = VirtualClock(start=START)
    events = run(recorder, provider=settings(), clock=clock)

    assert settings().effective_request_max_retries == 4
    assert recorder.sends == 5
    assert len(clock.sleeps) == 4
    assert_backoff(clock.sleeps)
    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        429,
        "exceeded retry limit, last status: 429 Too Many Requests: Rate limit reached",
    )


def test_retries_are_capped_at_100() -> None:
    provider = settings(request_max_retries=500)
    assert provider.effective_request_max_retries == 100
    assert settings(request_max_retries=100).effective_request_max_retries == 100
    assert settings(request_max_retries=99).effective_request_max_retries == 99

    recorder = Recorder(failure(503, "overloaded"))
    clock = VirtualClock(start=START)
    events = run(recorder, provider=provider, clock=clock)

    assert recorder.sends == 101
    assert len(clock.sleeps) == 100
    assert_backoff(clock.sleeps[:4])
    assert max(clock.sleeps) == 60.0  # the default cap, D13
    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        503,
        "exceeded retry limit, last status: 503 Service Unavailable: overloaded",
    )


# --------------------------------------------------------------------------------------------
# Statuses that are not retried
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Invalid 'tools': empty array."),
        (401, "Incorrect API key provided"),
        (404, "The model `test-model` does not exist"),
    ],
)
def test_client_error_is_not_retried(status: int, message: str) -> None:
    recorder = Recorder(failure(status, message), ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert recorder.sends == 1
    assert clock.sleeps == []
    assert len(events) == 1
    assert_error(events[0], "unexpected_status", status, unexpected_status(status, message))


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_error_with_a_text_body_quotes_the_text(status: int) -> None:
    recorder = Recorder(Reply(status, b"upstream said no", {"content-type": "text/plain"}))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert recorder.sends == 1
    assert clock.sleeps == []
    assert len(events) == 1
    assert_error(
        events[0], "unexpected_status", status, unexpected_status(status, "upstream said no")
    )


def test_client_error_whose_body_cannot_be_read() -> None:
    """§4.2 step 3: the body text is `""` when it cannot be read; the turn still ends with
    an `unexpected_status` error event rather than an exception."""
    body = ChunkStream(httpx.ReadError("connection reset while reading the body"))
    recorder = Recorder(Reply(400, body, {"content-type": "application/json"}))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert recorder.sends == 1
    assert clock.sleeps == []
    assert len(events) == 1
    assert_error(events[0], "unexpected_status", 400, unexpected_status(400))
    assert body.closed


def test_every_response_is_closed() -> None:
    error_body = ChunkStream(json.dumps({"error": {"message": "busy"}}).encode())
    reply, stream = streamed(sse(*TURN))
    recorder = Recorder(Reply(503, error_body, {"retry-after": "1"}), reply)
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 2
    assert clock.sleeps == [1.0]
    assert error_body.closed
    assert stream.closed


# --------------------------------------------------------------------------------------------
# Connection errors (§4.2 step 5)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("boom: connection refused"), httpx.ConnectTimeout("boom: timed out")],
    ids=["connect-error", "connect-timeout"],
)
def test_connection_error_is_retried_until_the_limit(error: httpx.TransportError) -> None:
    recorder = Recorder(error)
    clock = VirtualClock(start=START)
    events = run(recorder, provider=settings(request_max_retries=2), clock=clock)

    assert recorder.sends == 3
    assert len(clock.sleeps) == 2
    assert_backoff(clock.sleeps)
    assert len(events) == 1
    assert_error(events[0], "connection_failed", None, f"Connection failed: {error!r}")


def test_connection_error_then_success() -> None:
    recorder = Recorder(httpx.ConnectError("boom"), ok(*TURN))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 2
    assert len(clock.sleeps) == 1
    assert_backoff(clock.sleeps)


def test_connection_errors_and_statuses_share_the_attempt_count() -> None:
    recorder = Recorder(httpx.ConnectError("boom"), failure(429, retry_after="1"), failure(500))
    clock = VirtualClock(start=START)
    events = run(recorder, provider=settings(request_max_retries=2), clock=clock)

    assert recorder.sends == 3
    assert len(clock.sleeps) == 2
    assert_backoff(clock.sleeps[:1])
    assert clock.sleeps[1] == 1.0
    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        500,
        "exceeded retry limit, last status: 500 Internal Server Error: Rate limit reached",
    )


# --------------------------------------------------------------------------------------------
# Failures while reading a 200 body: idle timeout, transport errors, early close (D6, D8)
# --------------------------------------------------------------------------------------------


def test_read_timeout_mid_stream_flushes_then_idle_timeout() -> None:
    reply, stream = streamed(sse_block(content("par")), httpx.ReadTimeout("timed out"))
    recorder = Recorder(reply)
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events[:-1] == [ADDED_MESSAGE, td("par"), done_message("par")]
    assert_error(events[-1], "idle_timeout", None, IDLE_TIMEOUT)
    assert recorder.sends == 1
    assert clock.sleeps == []
    assert stream.closed


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_after_finish_reason_completes(mode: StreamMode) -> None:
    """D6: once a finish reason was seen, an idle timeout completes the turn normally."""
    reply, _ = streamed(
        sse_block(content("Hel")) + sse_block(content("lo")) + sse_block(finish("stop")),
        httpx.ReadTimeout("timed out"),
    )
    recorder = Recorder(reply)
    expected = {
        "raw": [ADDED_MESSAGE, td("Hel"), td("lo"), done_message("Hel", "lo")],
        "streaming": [ADDED_MESSAGE, td("Hel"), td("lo"), done_message("Hello")],
        "aggregated": [done_message("Hello")],
    }[mode]
    assert run(recorder, mode=mode) == [*expected, Completed(finish_reason="stop")]
    assert recorder.sends == 1


def test_transport_error_mid_stream_flushes_then_stream_error() -> None:
    reply, stream = streamed(
        sse_block(reasoning("a")) + sse_block(content("b")),
        httpx.RemoteProtocolError("peer closed connection without sending complete message"),
    )
    recorder = Recorder(reply)
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert events[:-1] == [
        ADDED_REASONING,
        rd("a"),
        ADDED_MESSAGE,
        td("b"),
        done_reasoning("a"),
        done_message("b"),
    ]
    assert_error(
        events[-1],
        "stream",
        None,
        "error while reading the response: "
        "RemoteProtocolError('peer closed connection without sending complete message')",
    )
    assert recorder.sends == 1
    assert clock.sleeps == []
    assert stream.closed


@pytest.mark.parametrize("mode", MODES)
def test_stream_closed_before_completion(mode: StreamMode) -> None:
    """D8: end of body without `[DONE]` or a finish reason flushes, then a stream error."""
    body = sse_block(reasoning("a")) + sse_block(content("b"))
    recorder = Recorder(Reply(200, body, {"content-type": "text/event-stream"}))
    clock = VirtualClock(start=START)
    expected = {
        "raw": [ADDED_REASONING, rd("a"), ADDED_MESSAGE, td("b")],
        "streaming": [ADDED_REASONING, rd("a"), ADDED_MESSAGE, td("b")],
        "aggregated": [],
    }[mode] + [done_reasoning("a"), done_message("b")]
    events = run(recorder, mode=mode, clock=clock)

    assert events == [
        *expected,
        ErrorEvent(kind="stream", message="stream closed before completion"),
    ]
    assert recorder.sends == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream", None], ids=str)
def test_json_error_body_with_200_is_a_stream_error(content_type: str | None) -> None:
    """D8: a 2xx JSON error body ends the turn quoting the provider's message."""
    body = json.dumps({"error": {"message": "Invalid API key", "type": "auth_error"}})
    headers = {} if content_type is None else {"content-type": content_type}
    recorder = Recorder(Reply(200, body.encode(), headers))
    clock = VirtualClock(start=START)
    events = run(recorder, clock=clock)

    assert len(events) == 1
    assert_error(
        events[0], "stream", 200, "expected an event stream, got a JSON error: Invalid API key"
    )
    assert recorder.sends == 1
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------------
# Authentication (§3.4)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("environ", [{}, {"MY_KEY": ""}, {"MY_KEY": "  \t"}], ids=repr)
def test_missing_api_key_raises_before_any_request(environ: dict[str, str]) -> None:
    recorder = Recorder(ok(*TURN))
    clock = VirtualClock(start=START)
    with ChatClient(
        settings(env_key="MY_KEY", env_key_instructions="Set MY_KEY to your key."),
        MODEL,
        transport=recorder.transport,
        clock=clock,
        environ=environ,
    ) as client:
        events = client.stream(PROMPT)
        assert recorder.sends == 0
        with pytest.raises(MissingEnvVarError, match="MY_KEY") as raised:
            next(events)

    assert raised.value.variable == "MY_KEY"
    assert str(raised.value) == "Missing environment variable: `MY_KEY`. Set MY_KEY to your key."
    assert recorder.sends == 0
    assert clock.sleeps == []


def test_api_key_from_the_environment_is_the_bearer_token() -> None:
    recorder = Recorder(ok(*TURN))
    events = run(recorder, provider=settings(env_key="MY_KEY"), environ={"MY_KEY": "sk-env"})

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 1
    assert recorder.requests[0].headers.get_list("authorization") == ["Bearer sk-env"]


@pytest.mark.parametrize("environ", [{"MY_KEY": "sk-env"}, {}], ids=["key-set", "key-missing"])
def test_experimental_bearer_token_wins(environ: dict[str, str]) -> None:
    recorder = Recorder(ok(*TURN))
    provider = settings(env_key="MY_KEY", experimental_bearer_token="tok-literal")
    events = run(recorder, provider=provider, environ=environ)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 1
    assert recorder.requests[0].headers.get_list("authorization") == ["Bearer tok-literal"]


def test_no_env_key_sends_no_authorization() -> None:
    recorder = Recorder(ok(*TURN))
    run(recorder, provider=settings(env_key=None), environ={})
    assert recorder.sends == 1
    assert "authorization" not in recorder.requests[0].headers


# --------------------------------------------------------------------------------------------
# Pre-flight: output_schema (§7.1 step 1)
# --------------------------------------------------------------------------------------------


def test_output_schema_is_unsupported_and_sends_nothing() -> None:
    recorder = Recorder(ok(*TURN))
    clock = VirtualClock(start=START)
    prompt = PROMPT.model_copy(update={"output_schema": {"type": "object"}})
    events = run(recorder, prompt=prompt, clock=clock)

    assert len(events) == 1
    assert_error(events[0], "unsupported_operation", None, NO_OUTPUT_SCHEMA)
    assert recorder.sends == 0
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------------
# Context managers
# --------------------------------------------------------------------------------------------


def test_sync_context_manager_closes_the_transport() -> None:
    recorder = Recorder(ok(*TURN))
    transport = ClosingTransport(recorder)
    with ChatClient(settings(), MODEL, transport=transport, environ=ENV) as client:
        assert isinstance(client, ChatClient)
        assert list(client.stream(PROMPT)) == TURN_EVENTS["streaming"]
        assert not transport.closed
    assert transport.closed
    assert recorder.sends == 1


def test_async_context_manager_closes_the_transport() -> None:
    recorder = Recorder(ok(*TURN))
    transport = ClosingTransport(recorder)

    async def turn() -> list[ResponseEvent]:
        async with AsyncChatClient(settings(), MODEL, transport=transport, environ=ENV) as client:
            assert isinstance(client, AsyncChatClient)
            events = [event async for event in client.stream(PROMPT)]
            assert not transport.closed
        return events

    assert asyncio.run(turn()) == TURN_EVENTS["streaming"]
    assert transport.closed
    assert recorder.sends == 1


# --------------------------------------------------------------------------------------------
# AsyncChatClient: the same scenarios
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_async_success(mode: StreamMode) -> None:
    recorder = Recorder(ok(*TURN))
    clock = VirtualClock(start=START)
    assert arun(recorder, mode=mode, clock=clock) == TURN_EVENTS[mode]
    assert recorder.sends == 1
    assert clock.sleeps == []
    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["accept"] == "text/event-stream"
    assert json.loads(request.content)["stream"] is True
    assert request.extensions["timeout"]["read"] == 300.0


def test_async_retry_then_success() -> None:
    recorder = Recorder(
        failure(429, retry_after="3"),
        failure(503),
        failure(500, retry_after_ms="250"),
        ok(*TURN),
    )
    clock = VirtualClock(start=START)
    events = arun(recorder, clock=clock)

    assert events == TURN_EVENTS["streaming"]
    assert recorder.sends == 4
    assert len(clock.sleeps) == 3
    assert clock.sleeps[0] == 3.0
    assert_backoff(clock.sleeps[1:2], first_attempt=2)
    assert clock.sleeps[2] == 0.25


def test_async_retry_limit() -> None:
    recorder = Recorder(failure(429, "Rate limit reached for requests", retry_after="1"))
    clock = VirtualClock(start=START)
    events = arun(recorder, provider=settings(request_max_retries=2), clock=clock)

    assert recorder.sends == 3
    assert clock.sleeps == [1.0, 1.0]
    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        429,
        "exceeded retry limit, last status: 429 Too Many Requests: Rate limit reached for requests",
    )


@pytest.mark.parametrize("status", [400, 401, 404])
def test_async_client_error_is_not_retried(status: int) -> None:
    recorder = Recorder(failure(status, "bad request here"), ok(*TURN))
    clock = VirtualClock(start=START)
    events = arun(recorder, clock=clock)

    assert recorder.sends == 1
    assert clock.sleeps == []
    assert len(events) == 1
    assert_error(
        events[0], "unexpected_status", status, unexpected_status(status, "bad request here")
    )


def test_async_client_error_whose_body_cannot_be_read() -> None:
    body = ChunkStream(httpx.ReadError("connection reset while reading the body"))
    recorder = Recorder(Reply(404, body, {"content-type": "application/json"}))
    clock = VirtualClock(start=START)
    events = arun(recorder, clock=clock)

    assert recorder.sends == 1
    assert clock.sleeps == []
    assert len(events) == 1
    assert_error(events[0], "unexpected_status", 404, unexpected_status(404))
    assert body.closed


def test_async_connection_failed() -> None:
    recorder = Recorder(httpx.ConnectError("boom"))
    clock = VirtualClock(start=START)
    events = arun(recorder, provider=settings(request_max_retries=1), clock=clock)

    assert recorder.sends == 2
    assert len(clock.sleeps) == 1
    assert_backoff(clock.sleeps)
    assert len(events) == 1
    assert_error(events[0], "connection_failed", None, "Connection failed: ConnectError('boom')")


def test_async_read_timeout_mid_stream() -> None:
    reply, stream = streamed(sse_block(content("par")), httpx.ReadTimeout("timed out"))
    recorder = Recorder(reply)
    clock = VirtualClock(start=START)
    events = arun(recorder, clock=clock)

    assert events[:-1] == [ADDED_MESSAGE, td("par"), done_message("par")]
    assert_error(events[-1], "idle_timeout", None, IDLE_TIMEOUT)
    assert recorder.sends == 1
    assert clock.sleeps == []
    assert stream.closed


class StallingStream(httpx.AsyncByteStream):
    """Sends one chunk, then stays silent for 30 s (really)."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        await asyncio.sleep(30)
        yield DONE

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.timing
def test_async_real_idle_timeout() -> None:
    """Real time: a silent server is given up on after `stream_idle_timeout_ms` (50 ms), not
    after its 30 s of silence. The bound is wide, for a loaded machine."""
    stream = StallingStream(sse_block(content("par")))
    recorder = Recorder(Reply(200, stream, {"content-type": "text/event-stream"}))
    clock = VirtualClock(start=START)
    provider = settings(stream_idle_timeout_ms=50)

    started = time.monotonic()
    events = arun(recorder, provider=provider, clock=clock)
    elapsed = time.monotonic() - started

    assert elapsed < 15
    assert events[:-1] == [ADDED_MESSAGE, td("par"), done_message("par")]
    assert_error(events[-1], "idle_timeout", None, IDLE_TIMEOUT)
    assert recorder.sends == 1
    assert recorder.requests[0].extensions["timeout"]["read"] == 0.05
    assert clock.sleeps == []
    assert stream.closed


def test_async_stream_closed_before_completion() -> None:
    body = sse_block(content("b"))
    recorder = Recorder(Reply(200, body, {"content-type": "text/event-stream"}))
    events = arun(recorder)
    assert events == [
        ADDED_MESSAGE,
        td("b"),
        done_message("b"),
        ErrorEvent(kind="stream", message="stream closed before completion"),
    ]
    assert recorder.sends == 1


def test_async_stops_reading_after_done() -> None:
    reply, stream = streamed(sse_block(content("a")), DONE, sse_block(content("late")), DONE)
    recorder = Recorder(reply)
    events = arun(recorder)

    assert events == [ADDED_MESSAGE, td("a"), done_message("a"), Completed()]
    assert stream.pulled == 2
    assert stream.closed


def test_async_missing_api_key_raises_before_any_request() -> None:
    recorder = Recorder(ok(*TURN))

    async def turn() -> None:
        async with AsyncChatClient(
            settings(env_key="MY_KEY"), MODEL, transport=recorder.transport, environ={}
        ) as client:
            events = client.stream(PROMPT)
            with pytest.raises(MissingEnvVarError, match="MY_KEY"):
                await anext(events)

    asyncio.run(turn())
    assert recorder.sends == 0


def test_async_output_schema_is_unsupported() -> None:
    recorder = Recorder(ok(*TURN))
    prompt = PROMPT.model_copy(update={"output_schema": {"type": "object"}})
    events = arun(recorder, prompt=prompt)

    assert len(events) == 1
    assert_error(events[0], "unsupported_operation", None, NO_OUTPUT_SCHEMA)
    assert recorder.sends == 0
