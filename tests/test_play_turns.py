"""`turns` and `play_cassette`: a request answered with 429 or 5xx and sent again unchanged is
one turn, retried as recorded on a virtual clock; anything else starts a new turn.

Cassettes are built by hand from the cassette models; every playback runs on a
`VirtualClock`, so a recorded ``Retry-After`` shows up in the clock's `sleeps`, not as a wait.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from llmx_replay import ReplayOptions, VirtualClock
from llmx_replay.cassette import Cassette, Interaction, RecordedRequest, RecordedResponse
from llmx_replay.harness import Playback, play_cassette, play_response, turns
from llmx_replay.models import Completed, ErrorEvent, OutputTextDelta, ResponseEvent
from llmx_replay.models.prompt import MAX_REQUEST_RETRIES

CHAT_URL = "http://llm.test/v1/chat/completions"
START = datetime(2026, 1, 1, tzinfo=UTC)


def chat_request(question: str = "hi") -> RecordedRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": question}], "stream": True}
    return RecordedRequest(method="POST", uri=CHAT_URL, body=json.dumps(body).encode())


def success(text: str) -> RecordedResponse:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return RecordedResponse(
        status=200,
        reason="OK",
        headers=[("content-type", "text/event-stream")],
        body=body.encode(),
    )


def failure(status: int, reason: str, **headers: str) -> RecordedResponse:
    return RecordedResponse(
        status=status,
        reason=reason,
        headers=[("content-type", "application/json")]
        + [(name.replace("_", "-"), value) for name, value in headers.items()],
        body=json.dumps({"error": {"message": f"{reason}, said the provider"}}).encode(),
    )


def too_many(retry_after: str = "2") -> RecordedResponse:
    return failure(429, "Too Many Requests", retry_after=retry_after)


def cassette(*interactions: tuple[RecordedRequest, RecordedResponse]) -> Cassette:
    return Cassette(
        interactions=[Interaction(request=req, response=resp) for req, resp in interactions],
        source_format="llmx-replay",
    )


def played(recorded: Cassette) -> tuple[list[ResponseEvent], VirtualClock]:
    clock = VirtualClock(START)
    events = list(play_cassette(recorded, Playback(replay=ReplayOptions(clock=clock))))
    return events, clock


def texts(events: list[ResponseEvent]) -> list[str]:
    return [event.delta for event in events if isinstance(event, OutputTextDelta)]


def errors(events: list[ResponseEvent]) -> list[ErrorEvent]:
    return [event for event in events if isinstance(event, ErrorEvent)]


# --------------------------------------------------------------------------------------------
# Retries of one request are one turn
# --------------------------------------------------------------------------------------------


def test_a_429_then_a_200_for_the_same_request_is_one_turn_with_the_successes_events() -> None:
    recorded = cassette((chat_request(), too_many("2")), (chat_request(), success("Hello")))

    assert turns(recorded) == [[0, 1]]
    events, clock = played(recorded)

    assert events == list(play_response(success("Hello"), Playback()))
    assert texts(events) == ["Hello"]
    assert isinstance(events[-1], Completed)
    assert errors(events) == []
    # The client waited as the 429 asked, on virtual time only.
    assert clock.sleeps == [2.0]
    assert clock.now() - START == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Busy")]
)
def test_a_5xx_then_a_200_for_the_same_request_is_one_turn(status: int, reason: str) -> None:
    recorded = cassette(
        (chat_request(), failure(status, reason, retry_after="7")),
        (chat_request(), success("Back")),
    )

    assert turns(recorded) == [[0, 1]]
    events, clock = played(recorded)
    assert texts(events) == ["Back"]
    assert errors(events) == []
    assert clock.sleeps == [7.0]


def test_several_failures_then_a_success_wait_as_each_failure_asked() -> None:
    recorded = cassette(
        (chat_request(), too_many("1")),
        (chat_request(), failure(503, "Busy", retry_after_ms="1500")),
        # An HTTP date is read against the clock: 10 s after the virtual start.
        (chat_request(), too_many("Thu, 01 Jan 2026 00:00:10 GMT")),
        (chat_request(), success("Finally")),
    )

    assert turns(recorded) == [[0, 1, 2, 3]]
    events, clock = played(recorded)
    assert texts(events) == ["Finally"]
    assert clock.sleeps == [1.0, 1.5, pytest.approx(10 - 2.5)]
    assert clock.now() - START == timedelta(seconds=10)


def test_a_recorded_wait_longer_than_the_providers_maximum_is_capped() -> None:
    recorded = cassette((chat_request(), too_many("3600")), (chat_request(), success("ok")))

    events, clock = played(recorded)
    assert texts(events) == ["ok"]
    assert clock.sleeps == [60.0]  # ProviderSettings.max_retry_delay_ms defaults to 60 s


def test_a_429_alone_is_one_turn_ending_in_a_retry_limit_error_without_waiting() -> None:
    recorded = cassette((chat_request(), too_many("30")))

    assert turns(recorded) == [[0]]
    events, clock = played(recorded)

    assert len(events) == 1
    error = events[0]
    assert isinstance(error, ErrorEvent)
    assert error.kind == "retry_limit"
    assert error.status == 429
    assert "429" in error.message
    assert "Too Many Requests, said the provider" in error.message
    # Nothing was recorded after the 429, so there is nothing to wait for.
    assert clock.sleeps == []


def test_the_last_of_several_failures_is_reported_as_the_retry_limit() -> None:
    recorded = cassette(
        (chat_request(), too_many("1")),
        (chat_request(), failure(502, "Bad Gateway", retry_after="1")),
    )

    assert turns(recorded) == [[0, 1]]
    events, clock = played(recorded)
    assert [(e.kind, e.status) for e in errors(events)] == [("retry_limit", 502)]
    assert clock.sleeps == [1.0]


def test_one_turn_holds_at_most_the_clients_maximum_number_of_retries() -> None:
    failures = [(chat_request(), too_many("0"))] * (MAX_REQUEST_RETRIES + 1)

    within = cassette(*failures[:-1], (chat_request(), success("made it")))
    assert turns(within) == [list(range(MAX_REQUEST_RETRIES + 1))]
    events, _ = played(within)
    assert texts(events) == ["made it"]
    assert errors(events) == []

    beyond = cassette(*failures, (chat_request(), success("made it")))
    assert turns(beyond) == [
        list(range(MAX_REQUEST_RETRIES + 1)),
        [MAX_REQUEST_RETRIES + 1],
    ]
    events, _ = played(beyond)
    assert [(e.kind, e.status) for e in errors(events)] == [("retry_limit", 429)]
    assert texts(events) == ["made it"]


# --------------------------------------------------------------------------------------------
# What starts a new turn
# --------------------------------------------------------------------------------------------


def test_two_successes_for_the_same_request_are_two_turns() -> None:
    recorded = cassette((chat_request(), success("first")), (chat_request(), success("second")))

    assert turns(recorded) == [[0], [1]]
    events, clock = played(recorded)
    assert texts(events) == ["first", "second"]
    assert sum(isinstance(event, Completed) for event in events) == 2
    assert clock.sleeps == []


def test_a_429_then_a_200_for_a_different_request_are_two_turns() -> None:
    recorded = cassette((chat_request("one"), too_many("2")), (chat_request("two"), success("B")))

    assert turns(recorded) == [[0], [1]]
    events, clock = played(recorded)
    # The first turn was never retried: it ends in its error, and the second turn follows.
    assert [(e.kind, e.status) for e in errors(events)] == [("retry_limit", 429)]
    assert events.index(errors(events)[0]) < events.index(
        next(e for e in events if isinstance(e, OutputTextDelta))
    )
    assert texts(events) == ["B"]
    assert clock.sleeps == []


def test_a_retry_to_another_url_is_another_turn() -> None:
    other = RecordedRequest(
        method="POST",
        uri="http://other.test/v1/chat/completions",
        body=chat_request().body,
    )
    recorded = cassette((chat_request(), too_many()), (other, success("elsewhere")))

    assert turns(recorded) == [[0], [1]]


def test_a_400_then_a_200_are_two_turns_because_400_is_not_retried() -> None:
    recorded = cassette(
        (chat_request(), failure(400, "Bad Request")), (chat_request(), success("fine"))
    )

    assert turns(recorded) == [[0], [1]]
    events, clock = played(recorded)
    [error] = errors(events)
    assert error.kind == "unexpected_status"
    assert error.status == 400
    assert "Bad Request, said the provider" in error.message
    assert texts(events) == ["fine"]
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------------
# Interactions that are not Chat Completions
# --------------------------------------------------------------------------------------------


def models_listing() -> tuple[RecordedRequest, RecordedResponse]:
    request = RecordedRequest(method="GET", uri="http://llm.test/v1/models")
    response = RecordedResponse(
        status=200,
        reason="OK",
        headers=[("content-type", "application/json")],
        body=b'{"object": "list", "data": [{"id": "m", "object": "model"}]}',
    )
    return request, response


def test_non_chat_interactions_are_skipped() -> None:
    recorded = cassette(models_listing(), (chat_request(), success("chat")), models_listing())

    assert turns(recorded) == [[1]]
    events, _ = played(recorded)
    assert texts(events) == ["chat"]
    assert errors(events) == []


def test_a_cassette_with_no_chat_interaction_has_no_turns_and_plays_nothing() -> None:
    recorded = cassette(models_listing())

    assert turns(recorded) == []
    assert played(recorded)[0] == []


def test_a_non_chat_interaction_between_a_failure_and_its_retry_does_not_split_the_turn() -> None:
    recorded = cassette(
        (chat_request(), too_many("3")), models_listing(), (chat_request(), success("ok"))
    )

    assert turns(recorded) == [[0, 2]]
    events, clock = played(recorded)
    assert texts(events) == ["ok"]
    assert clock.sleeps == [3.0]
