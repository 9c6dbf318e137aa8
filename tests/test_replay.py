"""The replayer (issue 3, section 3): `ReplayTransport` serves recorded interactions.

Covered: recorded chunk boundaries and events (record, then replay, sync and async, through
httpx and `ChatClient` in each mode); cassettes without chunk data; pacing (a `VirtualClock`
sees the recorded gaps, the real clock really waits them, async pacing leaves the event
loop free); matching (JSON by meaning, ignored paths, the miss message, recorded order,
`unplayed`, secret query parameters filtered or redacted); non-ASCII header values; the
idle timeout; and each injected fault (also on bodies recorded without chunk data).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import vcr
import yaml

from llmx_replay import (
    AsyncChatClient,
    ChatClient,
    OptionError,
    ReplayOptions,
    StreamMode,
    VirtualClock,
    build_request,
)
from llmx_replay._exceptions import NoMatchingInteraction
from llmx_replay.cassette import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    load_cassette,
    save_cassette,
)
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
    ResponseEvent,
)
from llmx_replay.transports import Faults, RecordingTransport, ReplayTransport

JsonObject = dict[str, Any]
Flavour = Literal["sync", "async"]
FLAVOURS: tuple[Flavour, ...] = ("sync", "async")
MODES: tuple[StreamMode, ...] = ("raw", "streaming", "aggregated")

BASE_URL = "https://llm.example.com/v1"
URL = f"{BASE_URL}/chat/completions"
MODEL = "gpt-test"
PROVIDER = ProviderSettings(base_url=BASE_URL)
SSE_HEADERS: Mapping[str, str] = {"content-type": "text/event-stream"}


def prompt(text: str = "hi") -> Prompt:
    return Prompt(
        instructions="Be brief.", input=[Message(role="user", content=[InputText(text=text)])]
    )


# --------------------------------------------------------------------------------------------
# Helpers: SSE bodies and events
# --------------------------------------------------------------------------------------------


def event(payload: JsonObject | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


DONE = event("[DONE]")


def content(text: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def reasoning(text: str) -> JsonObject:
    return {"choices": [{"index": 0, "delta": {"reasoning": text}}]}


def finish(reason: str = "stop") -> JsonObject:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


USAGE: JsonObject = {
    "choices": [],
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
}

# A whole turn, cut into chunks that split events (and one holding several).
TURN_BODY = (
    event(reasoning("think"))
    + event(content("Hel"))
    + event(content("lo"))
    + event(finish())
    + event(USAGE)
    + DONE
)
TURN_CHUNKS: tuple[bytes, ...] = (
    TURN_BODY[:17],
    TURN_BODY[17:90],
    TURN_BODY[90:91],
    TURN_BODY[91:260],
    TURN_BODY[260:],
)
assert all(TURN_CHUNKS)

# One event per chunk, for the fault tests (faults count events).
WITH_FINISH = (event(content("Hel")), event(content("lo")), event(finish()), DONE)
WITHOUT_FINISH = (event(content("Hel")), event(content("lo")), DONE)

ADDED_MESSAGE = OutputItemAdded(item=Message(role="assistant", content=[]))


def td(text: str) -> OutputTextDelta:
    return OutputTextDelta(delta=text)


def done_message(text: str) -> OutputItemDone:
    return OutputItemDone(item=Message(role="assistant", content=[OutputText(text=text)]))


def assert_error(event_: ResponseEvent, kind: ErrorKind, status: int | None, message: str) -> None:
    """`event_` is an error of `kind` with `status` and exactly `message`."""
    assert isinstance(event_, ErrorEvent), event_
    assert (event_.kind, event_.status, event_.message) == (kind, status, message)


IDLE_TIMEOUT = "idle timeout waiting for SSE"


def text_of(events: Sequence[ResponseEvent]) -> str:
    return "".join(e.delta for e in events if isinstance(e, OutputTextDelta))


# --------------------------------------------------------------------------------------------
# Helpers: cassettes built with exact timing, and recorded ones
# --------------------------------------------------------------------------------------------


def chat_request(text: str = "hi") -> RecordedRequest:
    """The request `ChatClient` sends for `prompt(text)`."""
    built = build_request(prompt(text), MODEL, PROVIDER, environ={})
    return RecordedRequest(
        method="POST", uri=built.url, headers=list(built.headers), body=built.body
    )


def timed(
    pieces: Sequence[tuple[bytes, float]],
    *,
    headers_ms: float = 0.0,
    status: int = 200,
    headers: Mapping[str, str] = SSE_HEADERS,
) -> RecordedResponse:
    """A response whose chunks arrived at the given offsets (ms from the request)."""
    return RecordedResponse(
        status=status,
        reason="OK",
        headers=list(headers.items()),
        body=b"".join(data for data, _ in pieces),
        headers_ms=headers_ms,
        chunks=tuple((len(data), offset) for data, offset in pieces),
    )


def instant(chunks: Sequence[bytes]) -> RecordedResponse:
    return timed([(chunk, 1.0 + index) for index, chunk in enumerate(chunks)], headers_ms=0.5)


def write(path: Path, *interactions: Interaction) -> Path:
    save_cassette(path, Cassette(interactions=list(interactions), source_format="llmx-replay"))
    return path


def chat_cassette(path: Path, response: RecordedResponse, text: str = "hi") -> Path:
    return write(path, Interaction(request=chat_request(text), response=response))


class PacedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A live body that really sleeps `gap` seconds before each chunk."""

    def __init__(self, chunks: Sequence[bytes], gap: float) -> None:
        self.chunks = chunks
        self.gap = gap

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            time.sleep(self.gap)
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await asyncio.sleep(self.gap)
            yield chunk


def live(chunks: Sequence[bytes] = TURN_CHUNKS, gap: float = 0.003) -> httpx.MockTransport:
    """A live server streaming `chunks`, `gap` seconds apart."""
    return httpx.MockTransport(
        lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=PacedStream(chunks, gap))
    )


@pytest.fixture
def real_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every real wait asked for (`time.sleep`, `asyncio.sleep`), kept here instead of
    waited: a test on virtual time asserts it stays empty, whatever the machine's load."""
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)

    async def asleep(seconds: float, result: Any = None) -> Any:
        asked.append(seconds)
        return result

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(asyncio, "sleep", asleep)
    return asked


# --------------------------------------------------------------------------------------------
# Helpers: callers
# --------------------------------------------------------------------------------------------


def read(transport: httpx.BaseTransport, body: bytes | None = None) -> list[bytes]:
    """The chunks a plain httpx caller gets for a POST of `body` (`ChatClient`'s default)."""
    body = chat_request().body if body is None else body
    with (
        httpx.Client(transport=transport) as client,
        client.stream("POST", URL, content=body) as response,
    ):
        return list(response.iter_bytes())


async def aread(transport: httpx.AsyncBaseTransport, body: bytes | None = None) -> list[bytes]:
    body = chat_request().body if body is None else body
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("POST", URL, content=body) as response,
    ):
        return [chunk async for chunk in response.aiter_bytes()]


def read_in(flavour: Flavour, transport: ReplayTransport | RecordingTransport) -> list[bytes]:
    return read(transport) if flavour == "sync" else asyncio.run(aread(transport))


def chat(
    transport: httpx.BaseTransport,
    *,
    mode: StreamMode = "streaming",
    provider: ProviderSettings = PROVIDER,
    clock: VirtualClock | None = None,
    text: str = "hi",
) -> list[ResponseEvent]:
    with ChatClient(
        provider, MODEL, transport=transport, mode=mode, clock=clock or VirtualClock()
    ) as client:
        return list(client.stream(prompt(text)))


def achat(
    transport: httpx.AsyncBaseTransport,
    *,
    mode: StreamMode = "streaming",
    provider: ProviderSettings = PROVIDER,
    clock: VirtualClock | None = None,
) -> list[ResponseEvent]:
    async def turn() -> list[ResponseEvent]:
        async with AsyncChatClient(
            provider, MODEL, transport=transport, mode=mode, clock=clock or VirtualClock()
        ) as client:
            return [e async for e in client.stream(prompt())]

    return asyncio.run(turn())


def chat_in(flavour: Flavour, transport: ReplayTransport, **options: Any) -> list[ResponseEvent]:
    return chat(transport, **options) if flavour == "sync" else achat(transport, **options)


# --------------------------------------------------------------------------------------------
# Record, then replay: chunks and events
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_replayed_chunks_equal_recorded_chunks(tmp_path: Path, flavour: Flavour) -> None:
    path = tmp_path / "c.yaml"
    recorded = read_in(flavour, RecordingTransport(path, live()))
    assert recorded == list(TURN_CHUNKS)

    replayed = read_in(flavour, ReplayTransport(path))

    assert replayed == list(TURN_CHUNKS)


@pytest.mark.parametrize("mode", MODES)
def test_chat_client_events_equal_live_and_replayed(tmp_path: Path, mode: StreamMode) -> None:
    path = tmp_path / "c.yaml"
    live_events = chat(RecordingTransport(path, live()), mode=mode)
    assert isinstance(live_events[-1], Completed)
    assert live_events[-1].finish_reason == "stop"
    assert live_events[-1].token_usage is not None

    assert chat(ReplayTransport(path), mode=mode) == live_events
    assert achat(ReplayTransport(path), mode=mode) == live_events


def test_cassette_without_chunk_data_replays_one_event_per_chunk(tmp_path: Path) -> None:
    path = tmp_path / "vcrpy.yaml"
    request = chat_request()
    assert request.body is not None
    events = [event(content("Hel")), event(content("lo")), event(finish()), DONE]
    document = {
        "interactions": [
            {
                "request": {
                    "body": request.body.decode(),
                    "headers": {"Content-Type": ["application/json"]},
                    "method": "POST",
                    "uri": URL,
                },
                "response": {
                    "body": {"string": b"".join(events).decode()},
                    "headers": {"Content-Type": ["text/event-stream"]},
                    "status": {"code": 200, "message": "OK"},
                },
            }
        ],
        "version": 1,
    }
    path.write_text(yaml.safe_dump(document))

    assert read(ReplayTransport(path)) == events
    assert asyncio.run(aread(ReplayTransport(path))) == events
    assert chat(ReplayTransport(path)) == [
        ADDED_MESSAGE,
        td("Hel"),
        td("lo"),
        done_message("Hello"),
        Completed(finish_reason="stop"),
    ]


def test_replay_gives_back_a_non_ascii_header_value(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    headers = [(b"content-type", b"text/event-stream"), (b"x-name", "café".encode())]
    inner = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, stream=PacedStream(TURN_CHUNKS, 0.0))
    )
    body = chat_request().body
    with httpx.Client(transport=inner) as plain:
        assert plain.post(URL, content=body).headers["x-name"] == "café"
    read(RecordingTransport(path, inner))

    with httpx.Client(transport=ReplayTransport(path)) as client:
        response = client.post(URL, content=body)

    assert response.headers["x-name"] == "café"
    assert response.content == TURN_BODY


# --------------------------------------------------------------------------------------------
# Pacing
# --------------------------------------------------------------------------------------------

PACED = [(event(content("a")), 30.0), (event(content("b")), 80.0), (DONE, 130.0)]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("speed", "expected"),
    [(1.0, [0.020, 0.010, 0.050, 0.050]), (2.0, [0.010, 0.005, 0.025, 0.025])],
)
def test_recorded_pacing_sleeps_the_recorded_gaps(
    tmp_path: Path, flavour: Flavour, speed: float, expected: list[float], real_sleeps: list[float]
) -> None:
    path = write(
        tmp_path / "c.yaml",
        Interaction(request=chat_request(), response=timed(PACED, headers_ms=20.0)),
    )
    clock = VirtualClock()
    transport = ReplayTransport(path, ReplayOptions(pacing="recorded", speed=speed, clock=clock))

    chunks = read_in(flavour, transport)

    assert real_sleeps == []  # virtual time: no real waiting
    assert chunks == [data for data, _ in PACED]
    assert clock.sleeps == pytest.approx(expected)


def test_instant_pacing_does_not_wait(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        Interaction(request=chat_request(), response=timed(PACED, headers_ms=20.0)),
    )
    clock = VirtualClock()
    assert read(ReplayTransport(path, ReplayOptions(clock=clock))) == [data for data, _ in PACED]
    assert sum(clock.sleeps) == 0


@pytest.mark.timing
@pytest.mark.parametrize(("speed", "low", "high"), [(1.0, 0.58, 10.0), (10.0, 0.058, 0.58)])
def test_recorded_pacing_with_the_real_clock(
    tmp_path: Path, speed: float, low: float, high: float
) -> None:
    """Real time: without a clock, recorded pacing really waits (600 ms recorded), `speed`
    times faster. The exact waits are checked on a `VirtualClock` above; the bounds here are
    wide enough for a loaded machine, and still tell speed 10 from speed 1."""
    pieces = [(event(content("a")), 200.0), (event(content("b")), 400.0), (DONE, 600.0)]
    path = chat_cassette(tmp_path / "c.yaml", timed(pieces, headers_ms=0.0))
    transport = ReplayTransport(path, ReplayOptions(pacing="recorded", speed=speed))

    started = time.perf_counter()
    chunks = read(transport)
    elapsed = time.perf_counter() - started

    assert chunks == [data for data, _ in pieces]
    assert low <= elapsed < high, elapsed


@pytest.mark.timing
def test_async_recorded_pacing_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Real time: while an async replay waits out its recorded gaps (300 ms), other tasks run."""
    pieces = [(event(content("a")), 100.0), (event(content("b")), 200.0), (DONE, 300.0)]
    path = chat_cassette(tmp_path / "c.yaml", timed(pieces, headers_ms=0.0))

    async def main() -> tuple[list[bytes], float, int]:
        ticks = 0
        running = True

        async def ticker() -> None:
            nonlocal ticks
            while running:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        chunks = await aread(ReplayTransport(path, ReplayOptions(pacing="recorded")))
        elapsed = time.perf_counter() - started
        during = ticks
        running = False
        await task
        return chunks, elapsed, during

    chunks, elapsed, ticks = asyncio.run(main())

    assert chunks == [data for data, _ in pieces]
    assert elapsed >= 0.29
    # ~60 ticks of 5 ms fit in 300 ms; a blocked loop would tick between chunks only.
    assert ticks >= 10, ticks


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------

SIMPLE = [event(content("ok")), event(finish()), DONE]


def raw_interaction(body: JsonObject, answer: str = "ok") -> Interaction:
    return Interaction(
        request=RecordedRequest(
            method="POST", uri=URL, body=json.dumps(body, separators=(",", ":")).encode()
        ),
        response=instant([event(content(answer)), event(finish()), DONE]),
    )


def test_json_key_order_and_spacing_do_not_matter(tmp_path: Path) -> None:
    recorded = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    path = write(tmp_path / "c.yaml", raw_interaction(recorded))
    reordered = (
        b'{\n  "stream": true,\n  "messages": [{"content": "hi", "role": "user"}],\n'
        b'  "model": "m"\n}'
    )

    assert b"".join(read(ReplayTransport(path), reordered)) == b"".join(
        [event(content("ok")), event(finish()), DONE]
    )


def test_ignored_paths_are_left_out_of_matching(tmp_path: Path) -> None:
    recorded = {"model": "m", "user": "alice", "metadata": {"trace_id": "t1", "team": "x"}}
    path = write(tmp_path / "c.yaml", raw_interaction(recorded))
    requested = json.dumps(
        {"model": "m", "user": "bob", "metadata": {"trace_id": "t2", "team": "x"}}
    ).encode()

    with pytest.raises(NoMatchingInteraction):
        read(ReplayTransport(path), requested)
    with pytest.raises(NoMatchingInteraction):
        read(ReplayTransport(path, ReplayOptions(ignore=["user"])), requested)
    chunks = read(
        ReplayTransport(path, ReplayOptions(ignore=["user", "metadata.trace_id"])), requested
    )
    assert chunks == SIMPLE

    only_user = json.dumps({**recorded, "user": "bob"}).encode()
    assert read(ReplayTransport(path, ReplayOptions(ignore=["user"])), only_user)


def test_unmatched_request_names_the_cassette_the_closest_and_the_difference(
    tmp_path: Path,
) -> None:
    path = tmp_path / "recorded.yaml"
    count_body = chat_request("Count to three").body
    assert count_body is not None
    count = chat_request("Count to three").model_copy(
        update={"body": count_body.replace(b"gpt-test", b"gpt-other")}
    )
    write(
        path,
        Interaction(request=count, response=instant(SIMPLE)),
        Interaction(request=chat_request("Say hello"), response=instant(SIMPLE)),
    )
    french = chat_request("Say hello in French").body
    assert french is not None

    with pytest.raises(NoMatchingInteraction) as caught:
        read(ReplayTransport(path), french)

    message = str(caught.value)
    assert str(path) in message
    assert "interaction 1" in message
    assert "messages[1].content" in message
    assert '"Say hello"' in message
    assert '"Say hello in French"' in message
    assert "gpt-other" not in message  # interaction 0 is not the closest

    # Through ChatClient it is raised too, not turned into an event.
    with pytest.raises(NoMatchingInteraction, match="interaction 1"):
        chat(ReplayTransport(path), text="Say hello in French")


def test_request_matches_its_recording_whose_secret_query_key_was_redacted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    key = "AIza" + "Q9w" * 11 + "XY"
    url = f"{URL}?key={key}"
    body = chat_request().body
    with httpx.Client(transport=RecordingTransport(path, live())) as client:
        assert client.post(url, content=body).content == TURN_BODY
    assert key not in path.read_text()

    with httpx.Client(transport=ReplayTransport(path)) as client:
        assert client.post(url, content=body).content == TURN_BODY


@pytest.mark.parametrize("recorded_user", ["user:pass@", "<redacted>@", ""])
def test_credentials_in_a_url_do_not_decide_a_match(tmp_path: Path, recorded_user: str) -> None:
    # vcrpy keeps a URL's user information as it was; llmx-replay redacts it.
    with_user = URL.replace("://", f"://{recorded_user}")
    request = chat_request().model_copy(update={"uri": with_user})
    path = write(tmp_path / "c.yaml", Interaction(request=request, response=instant(TURN_CHUNKS)))

    with httpx.Client(transport=ReplayTransport(path)) as client:
        sent = URL.replace("://", "://other:secret@")
        assert client.post(sent, content=chat_request().body).content == TURN_BODY


GEMINI_URL = "https://generativelanguage.example.com/v1beta/models/g:streamGenerateContent"


def vcrpy_record(path: Path, url: str, filter_query_parameters: Sequence[str]) -> None:
    """Record, with vcrpy itself, one POST of `chat_request()` answered with `TURN_BODY`."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, content=TURN_BODY)

    with (
        vcr.use_cassette(
            str(path), record_mode="once", filter_query_parameters=list(filter_query_parameters)
        ),
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
    ):
        assert client.post(url, content=chat_request().body).content == TURN_BODY


def test_replay_matches_a_live_key_against_a_cassette_with_the_key_filtered_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vcrpy.yaml"
    vcrpy_record(path, f"{GEMINI_URL}?alt=sse&key=RECORDKEY", filter_query_parameters=["key"])
    [interaction] = load_cassette(path).interactions
    assert interaction.request.uri == f"{GEMINI_URL}?alt=sse"

    with httpx.Client(transport=ReplayTransport(path)) as client:
        response = client.post(f"{GEMINI_URL}?alt=sse&key=REALKEY", content=chat_request().body)

    assert response.status_code == 200
    assert response.content == TURN_BODY


@pytest.mark.parametrize("redacted", ["<redacted>", "%3Credacted%3E"])
def test_replay_matches_another_key_against_a_cassette_with_a_redacted_key(
    tmp_path: Path, redacted: str
) -> None:
    request = chat_request().model_copy(update={"uri": f"{GEMINI_URL}?alt=sse&key={redacted}"})
    path = write(tmp_path / "c.yaml", Interaction(request=request, response=instant(TURN_CHUNKS)))

    with httpx.Client(transport=ReplayTransport(path)) as client:
        response = client.post(f"{GEMINI_URL}?alt=sse&key=REALKEY", content=chat_request().body)

    assert response.status_code == 200
    assert response.content == TURN_BODY


def test_recorded_429_then_200_replays_as_a_retry(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    answers = [
        httpx.Response(
            429,
            headers={"retry-after": "0", "content-type": "application/json"},
            json={"error": {"message": "Rate limit reached", "type": "rate_limit"}},
        ),
        httpx.Response(200, headers=SSE_HEADERS, content=b"".join(WITH_FINISH)),
    ]
    server = httpx.MockTransport(lambda request: answers.pop(0))
    live_clock = VirtualClock()
    live_events = chat(RecordingTransport(path, server), clock=live_clock)
    assert live_clock.sleeps == [0.0]
    assert isinstance(live_events[-1], Completed)
    statuses = [i.response.status for i in load_cassette(path).interactions]
    assert statuses == [429, 200]

    clock = VirtualClock()
    transport = ReplayTransport(path)
    events = chat(transport, clock=clock)

    assert events == live_events
    assert events == [
        ADDED_MESSAGE,
        td("Hel"),
        td("lo"),
        done_message("Hello"),
        Completed(finish_reason="stop"),
    ]
    assert clock.sleeps == [0.0]  # one retry, after the recorded `retry-after: 0`
    assert transport.unplayed == []


def test_unplayed_lists_interactions_never_used(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        *(Interaction(request=chat_request(t), response=instant(SIMPLE)) for t in "abc"),
    )
    transport = ReplayTransport(path)
    assert transport.unplayed == [0, 1, 2]

    assert isinstance(chat(transport, text="b")[-1], Completed)

    assert transport.unplayed == [0, 2]


# --------------------------------------------------------------------------------------------
# The idle timeout, from recorded timing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_recorded_gap_longer_than_idle_timeout_ends_with_idle_timeout(
    tmp_path: Path, flavour: Flavour, real_sleeps: list[float]
) -> None:
    pieces = [
        (event(content("Hel")), 10.0),
        (event(content("lo")), 5010.0),  # 5 s of silence
        (event(finish()), 5020.0),
        (DONE, 5030.0),
    ]
    path = chat_cassette(tmp_path / "c.yaml", timed(pieces, headers_ms=5.0))
    provider = ProviderSettings(base_url=BASE_URL, stream_idle_timeout_ms=1000)
    clock = VirtualClock()
    transport = ReplayTransport(path, ReplayOptions(pacing="recorded", clock=clock))

    events = chat_in(flavour, transport, provider=provider)

    assert real_sleeps == []
    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), done_message("Hel")]
    assert_error(events[-1], "idle_timeout", None, IDLE_TIMEOUT)
    assert clock.sleeps == pytest.approx([0.005, 0.005, 1.0])


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

IDLE_PROVIDER = ProviderSettings(base_url=BASE_URL, stream_idle_timeout_ms=2000)


def faulty(
    path: Path, chunks: Sequence[bytes], faults: Faults, clock: VirtualClock | None = None
) -> ReplayTransport:
    options = (
        ReplayOptions(faults=faults) if clock is None else ReplayOptions(faults=faults, clock=clock)
    )
    return ReplayTransport(chat_cassette(path, instant(chunks)), options)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fault_cut_after(tmp_path: Path, flavour: Flavour) -> None:
    transport = faulty(tmp_path / "c.yaml", WITH_FINISH, Faults(cut_after=1))
    events = chat_in(flavour, transport)

    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), done_message("Hel")]
    assert_error(events[-1], "stream", None, "stream closed before completion")


def test_fault_cut_after_two_keeps_two_events(tmp_path: Path) -> None:
    events = chat(faulty(tmp_path / "c.yaml", WITH_FINISH, Faults(cut_after=2)))

    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), td("lo"), done_message("Hello")]
    assert_error(events[-1], "stream", None, "stream closed before completion")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fault_drop_done_after_a_finish_reason_still_completes(
    tmp_path: Path, flavour: Flavour
) -> None:
    transport = faulty(tmp_path / "c.yaml", WITH_FINISH, Faults(drop_done=True))
    assert b"[DONE]" not in b"".join(read(transport))

    events = chat_in(flavour, faulty(tmp_path / "d.yaml", WITH_FINISH, Faults(drop_done=True)))

    # D6: a finish reason was seen, so the turn completes without [DONE].
    assert events == [
        ADDED_MESSAGE,
        td("Hel"),
        td("lo"),
        done_message("Hello"),
        Completed(finish_reason="stop"),
    ]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fault_drop_done_without_a_finish_reason_is_a_stream_error(
    tmp_path: Path, flavour: Flavour
) -> None:
    events = chat_in(flavour, faulty(tmp_path / "c.yaml", WITHOUT_FINISH, Faults(drop_done=True)))

    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), td("lo"), done_message("Hello")]
    assert_error(events[-1], "stream", None, "stream closed before completion")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fault_stall_after_triggers_the_idle_timeout_instantly(
    tmp_path: Path, flavour: Flavour, real_sleeps: list[float]
) -> None:
    clock = VirtualClock()
    transport = faulty(tmp_path / "c.yaml", WITH_FINISH, Faults(stall_after=1), clock=clock)

    events = chat_in(flavour, transport, provider=IDLE_PROVIDER)

    assert real_sleeps == []
    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), done_message("Hel")]
    assert_error(events[-1], "idle_timeout", None, IDLE_TIMEOUT)
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fault_error_after(tmp_path: Path, flavour: Flavour) -> None:
    transport = faulty(tmp_path / "c.yaml", WITH_FINISH, Faults(error_after=1))
    events = chat_in(flavour, transport)

    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), done_message("Hel")]
    assert_error(events[-1], "unexpected_status", 200, "llmx-replay injected this error")


def test_fault_error_after_with_own_message(tmp_path: Path) -> None:
    faults = Faults(error_after=2, error_message="model overloaded")
    events = chat(faulty(tmp_path / "c.yaml", WITH_FINISH, faults))

    assert events[:-1] == [ADDED_MESSAGE, td("Hel"), td("lo"), done_message("Hello")]
    assert_error(events[-1], "unexpected_status", 200, "model overloaded")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fault_status(tmp_path: Path, flavour: Flavour) -> None:
    transport = faulty(tmp_path / "c.yaml", WITH_FINISH, Faults(status=503))
    provider = ProviderSettings(base_url=BASE_URL, request_max_retries=0)

    events = chat_in(flavour, transport, provider=provider)

    assert len(events) == 1
    assert_error(
        events[0],
        "retry_limit",
        503,
        "exceeded retry limit, last status: 503 Service Unavailable: "
        "llmx-replay injected status 503",
    )


def replayed_chunks(body: bytes, faults: Faults) -> list[bytes]:
    """The chunks a plain httpx caller gets for `body` (recorded without chunk data)."""
    interaction = Interaction(
        request=RecordedRequest(method="POST", uri="http://h.test/v1/chat/completions"),
        response=RecordedResponse(
            status=200, headers=[("content-type", "text/event-stream")], body=body
        ),
    )
    cassette = Cassette(interactions=[interaction], source_format="llmx-replay")
    transport = ReplayTransport(cassette, ReplayOptions(faults=faults, clock=VirtualClock()))
    with (
        httpx.Client(transport=transport) as client,
        client.stream("POST", "http://h.test/v1/chat/completions") as response,
    ):
        return list(response.iter_bytes())


def test_faults_count_events_not_keep_alive_comments() -> None:
    """OpenRouter's `: OPENROUTER PROCESSING` comments ride with the next event."""
    body = b": ping\n\n: ping\n\ndata: one\n\ndata: two\n\n"
    assert replayed_chunks(body, Faults(cut_after=1)) == [b": ping\n\n: ping\n\ndata: one\n\n"]


def test_drop_done_drops_a_done_event_that_carries_other_fields() -> None:
    body = b"data: one\n\nid: 7\ndata: [DONE]\n\n"
    assert replayed_chunks(body, Faults(drop_done=True)) == [b"data: one\n\n"]


def test_stall_after_the_last_event_stalls_the_end_of_the_body() -> None:
    with pytest.raises(httpx.ReadTimeout):
        replayed_chunks(b"data: one\n\n", Faults(stall_after=1))


# --------------------------------------------------------------------------------------------
# Async replay equals sync replay
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("faults", "text", "ending"),
    [
        (Faults(), "Hello", None),
        # Events: reasoning, "Hel", "lo", finish, usage, [DONE].
        (Faults(cut_after=3), "Hello", "stream"),
        (Faults(error_after=2), "Hel", "unexpected_status"),
        (Faults(stall_after=2), "Hel", "idle_timeout"),
    ],
    ids=["none", "cut", "error", "stall"],
)
def test_async_replay_gives_the_same_events_as_sync(
    tmp_path: Path, mode: StreamMode, faults: Faults, text: str, ending: str | None
) -> None:
    path = tmp_path / "c.yaml"
    read(RecordingTransport(path, live(gap=0.0)))

    sync_events = chat(
        ReplayTransport(path, ReplayOptions(faults=faults, clock=VirtualClock())),
        mode=mode,
        provider=IDLE_PROVIDER,
    )
    async_events = achat(
        ReplayTransport(path, ReplayOptions(faults=faults, clock=VirtualClock())),
        mode=mode,
        provider=IDLE_PROVIDER,
    )

    assert async_events == sync_events
    # Every mode ends with the text received as a finished message (D8 flushes it).
    finished = [
        e.item.text
        for e in sync_events
        if isinstance(e, OutputItemDone) and isinstance(e.item, Message)
    ]
    assert finished == [text]
    last = sync_events[-1]
    if ending is None:
        assert isinstance(last, Completed)
    else:
        assert isinstance(last, ErrorEvent)
        assert last.kind == ending


@pytest.mark.parametrize(
    ("faults", "problem"),
    [
        ({"status": 500, "cut_after": 2}, "status: answers without a stream"),
        ({"status": 500, "drop_done": True}, "status: answers without a stream"),
        ({"cut_after": -1}, "cut_after: a count of events"),
        ({"error_after": -2}, "error_after: a count of events"),
        ({"stall_seconds": 1.0}, "stall_seconds: applies to stall_after only"),
        ({"stall_after": 1, "stall_seconds": float("inf")}, "stall_seconds: not a duration"),
        ({"stall_after": 1, "stall_seconds": float("nan")}, "stall_seconds: not a duration"),
    ],
)
def test_faults_that_contradict_themselves_are_refused(
    faults: dict[str, Any], problem: str
) -> None:
    # Through the library and the pytest marker as through the command line.
    with pytest.raises(ValueError, match=problem):
        Faults(**faults)


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan"), float("inf")])
def test_a_speed_that_is_not_a_positive_number_is_refused(tmp_path: Path, speed: float) -> None:
    path = chat_cassette(tmp_path / "c.yaml", instant(TURN_CHUNKS))
    with pytest.raises(OptionError, match="speed: must be a positive number"):
        ReplayTransport(path, ReplayOptions(pacing="recorded", speed=speed))
