"""What only aimock can stream: parallel tool calls, a 429 then a success, streams that
break off. Each is recorded live, then replayed and compared."""

from pathlib import Path

import httpx
import pytest
from live_support import (
    MODES,
    LiveServer,
    Run,
    Turn,
    arun_turn,
    assert_no_secrets,
    record,
    replay,
    user,
)

from llmx_replay import StreamMode
from llmx_replay.cassette import RecordedResponse
from llmx_replay.models import (
    Completed,
    ErrorEvent,
    FunctionCall,
    FunctionTool,
    ObjectSchema,
    OutputItemDone,
    Prompt,
    StringSchema,
)
from llmx_replay.transports import RecordingTransport, ReplayTransport

pytestmark = pytest.mark.live

MODEL = "gpt-4o-mini"
WEATHER = FunctionTool(
    name="get_weather",
    description="The current weather in a city.",
    parameters=ObjectSchema(
        properties={"city": StringSchema(), "unit": StringSchema()}, required=["city"]
    ),
)


@pytest.mark.parametrize("mode", MODES)
def test_parallel_tool_calls(aimock: LiveServer, mode: StreamMode, tmp_path: Path) -> None:
    provider, cassette = aimock.provider(), tmp_path / "tools.yaml"
    turn = Turn(MODEL, Prompt(input=user("Two cities").input, tools=[WEATHER]))

    live = record(provider, turn, cassette, mode=mode)
    replayed = replay(provider, turn, cassette, mode=mode)

    assert replayed.events == live.events
    calls = [
        event.item
        for event in live.events
        if isinstance(event, OutputItemDone) and isinstance(event.item, FunctionCall)
    ]
    assert [(call.call_id, call.name) for call in calls] == [
        ("call_paris", "get_weather"),
        ("call_berlin", "get_weather"),
    ]
    assert calls[0].arguments == '{"city": "Paris", "unit": "celsius"}'
    last = live.events[-1]
    assert isinstance(last, Completed)
    assert last.finish_reason == "tool_calls"
    assert_no_secrets(cassette, aimock)


@pytest.mark.parametrize("client", ["sync", "async"])
def test_rate_limit_then_success_replays_as_a_retry(
    aimock: LiveServer, client: str, tmp_path: Path
) -> None:
    """aimock answers the first "Retry me" with a 429 (Retry-After: 1), the second with a
    stream. The client waits as asked and retries; the replay does the same."""
    provider, cassette = aimock.provider(), tmp_path / "retry.yaml"
    turn = Turn(MODEL, user("Retry me"))

    if client == "sync":
        live = record(provider, turn, cassette)
        replayed = replay(provider, turn, cassette)
    else:
        live = arun_turn(provider, turn, RecordingTransport(cassette, httpx.AsyncHTTPTransport()))
        replayer = ReplayTransport(cassette)
        replayed = arun_turn(provider, turn, replayer)
        assert replayer.unplayed == []

    assert replayed.events == live.events
    assert live.sleeps == replayed.sleeps == [1.0]
    assert isinstance(live.events[-1], Completed)
    rate_limited, served = assert_no_secrets(cassette, aimock).interactions
    assert rate_limited.response.status == 429
    assert rate_limited.response.header("retry-after") == "1"
    assert rate_limited.response.header("x-ratelimit-remaining-requests") == "0"
    assert b"Rate limit reached" in rate_limited.response.body
    assert served.response.status == 200
    assert rate_limited.request.body == served.request.body


def test_rate_limit_without_retries(aimock: LiveServer, tmp_path: Path) -> None:
    provider, cassette = aimock.provider(request_max_retries=0), tmp_path / "429.yaml"
    turn = Turn(MODEL, user("Rate limit me"))

    live = record(provider, turn, cassette)
    replayed = replay(provider, turn, cassette)

    assert replayed.events == live.events
    [error] = live.events
    assert isinstance(error, ErrorEvent)
    assert (error.kind, error.status) == ("retry_limit", 429)
    assert "Rate limit reached for requests" in error.message
    [interaction] = assert_no_secrets(cassette, aimock).interactions
    assert interaction.response.status == 429
    assert interaction.response.header("retry-after") == "2"


# Two ways a live stream breaks off: aimock closes the connection after a number of chunks
# (no finish reason, no [DONE]), or destroys it a number of milliseconds into the stream.
BROKEN = {"truncated": "Cut me off", "dropped": "Drop the connection"}


def _record_broken(
    aimock: LiveServer, scenario: str, mode: StreamMode, tmp_path: Path
) -> tuple[Run, Run, RecordedResponse]:
    provider, cassette = aimock.provider(), tmp_path / f"{scenario}.yaml"
    turn = Turn(MODEL, user(BROKEN[scenario]))
    live = record(provider, turn, cassette, mode=mode)
    replayed = replay(provider, turn, cassette, mode=mode)
    [interaction] = assert_no_secrets(cassette, aimock).interactions
    return live, replayed, interaction.response


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", BROKEN)
def test_broken_stream(aimock: LiveServer, scenario: str, mode: StreamMode, tmp_path: Path) -> None:
    """The live turn ends in a stream error; the recording keeps what arrived, is marked
    partial with the reason, and its replay ends in the same error."""
    live, replayed, response = _record_broken(aimock, scenario, mode, tmp_path)

    error = live.events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.kind == "stream"
    assert "RemoteProtocolError" in error.message
    assert response.status == 200
    assert response.partial is not None
    assert response.partial.startswith("the body broke off: RemoteProtocolError")
    assert b"[DONE]" not in response.body
    assert b'finish_reason":"' not in response.body
    assert response.chunks
    if scenario == "truncated":  # aimock destroys the socket as it writes its third chunk
        assert 2 <= response.body.count(b"data: ") <= 3
    else:  # 150 ms into chunks paced 40 ms apart: at most 4 of the reply's 16 arrived
        assert 1 <= len(response.chunks) <= 4
    assert replayed.events == live.events
