"""Body scrubbing by path and vcrpy's hooks: what a cassette keeps, and what it still matches.

A request is kept with the values at `body_fields` paths redacted and `before_record_request`
applied; matching compares a live request in that same form, so the scrubbed recording still
answers it. A hook that returns None keeps the exchange out of the cassette.
"""

import json
from pathlib import Path

import httpx
import pytest

from llmx_replay import CassetteOptions, NoMatchingInteraction, Scrubber
from llmx_replay.cassette import load_cassette
from llmx_replay.cassette._model import RecordedRequest, RecordedResponse
from llmx_replay.cassette._scrub import REDACTED
from llmx_replay.transports import CassetteTransport
from tests.test_record_modes import URL, Upstream

PRIVATE = Scrubber(body_fields=("prompt", "user.email"))


def send(transport: CassetteTransport, body: dict[str, object]) -> str:
    with httpx.Client(transport=transport) as client:
        return str(client.post(URL, json=body).json()["answer"])


def kept_body(path: Path, index: int = 0) -> object:
    body = load_cassette(path).interactions[index].request.body
    assert body is not None
    return json.loads(body)


def test_body_fields_are_redacted_in_the_cassette_not_on_the_wire(tmp_path: Path) -> None:
    upstream = Upstream("v1")
    path = tmp_path / "c.yaml"
    transport = CassetteTransport(path, "once", inner=upstream.transport, scrubber=PRIVATE)
    body = {"model": "m", "prompt": "my card is 4111", "user": {"email": "a@b.c", "id": 7}}

    assert send(transport, body) == "my card is 4111 v1"

    assert kept_body(path) == {
        "model": "m",
        "prompt": REDACTED,
        "user": {"email": REDACTED, "id": 7},
    }
    # The response is kept as it came (here the upstream echoes the prompt): hook it to change it.
    assert "4111" in load_cassette(path).interactions[0].response.body.decode()


def test_a_scrubbed_recording_still_answers_the_request(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    recording = CassetteTransport(path, "once", inner=Upstream("v1").transport, scrubber=PRIVATE)
    send(recording, {"model": "m", "prompt": "first secret"})

    replay = CassetteTransport(path, "none", scrubber=PRIVATE)
    assert send(replay, {"model": "m", "prompt": "first secret"}) == "first secret v1"
    with pytest.raises(NoMatchingInteraction, match=r"request\.body\.model"):
        send(CassetteTransport(path, "none", scrubber=PRIVATE), {"model": "x", "prompt": "p"})
    # Without the scrubbing, the live request is compared with its secret in it: no match.
    with pytest.raises(NoMatchingInteraction, match=r"request\.body\.prompt"):
        send(CassetteTransport(path, "none"), {"model": "m", "prompt": "first secret"})


def test_a_request_hook_changes_what_is_kept_and_what_is_compared(tmp_path: Path) -> None:
    def without_trace(request: RecordedRequest) -> RecordedRequest:
        return request.model_copy(update={"uri": request.uri.split("?", 1)[0]})

    hooked = Scrubber(before_record_request=without_trace)
    path = tmp_path / "c.yaml"
    upstream = Upstream("v1")
    with httpx.Client(
        transport=CassetteTransport(path, "once", inner=upstream.transport, scrubber=hooked)
    ) as client:
        client.post(f"{URL}?trace=1", json={"model": "m", "prompt": "a"})
    assert load_cassette(path).interactions[0].request.uri == URL

    with httpx.Client(transport=CassetteTransport(path, "none", scrubber=hooked)) as client:
        answer = client.post(f"{URL}?trace=2", json={"model": "m", "prompt": "a"}).json()
    assert answer == {"answer": "a v1"}
    assert upstream.calls == 1


@pytest.mark.parametrize("hook", ["before_record_request", "before_record_response"])
def test_a_hook_that_returns_none_keeps_the_exchange_out(tmp_path: Path, hook: str) -> None:
    upstream = Upstream("v1")
    path = tmp_path / "c.yaml"
    scrubber = Scrubber(**{hook: lambda message: None})
    transport = CassetteTransport(path, "once", inner=upstream.transport, scrubber=scrubber)

    assert send(transport, {"model": "m", "prompt": "a"}) == "a v1"  # the caller still gets it

    assert upstream.calls == 1
    assert not path.exists() or load_cassette(path).interactions == []


def test_a_response_hook_changes_what_is_kept(tmp_path: Path) -> None:
    def tagged(response: RecordedResponse) -> RecordedResponse:
        return response.model_copy(update={"headers": [*response.headers, ("x-kept", "yes")]})

    path = tmp_path / "c.yaml"
    transport = CassetteTransport(
        path,
        "once",
        inner=Upstream("v1").transport,
        scrubber=Scrubber(before_record_response=tagged),
    )
    send(transport, {"model": "m", "prompt": "a"})
    assert load_cassette(path).interactions[0].response.header("x-kept") == "yes"


def test_the_options_add_to_the_scrubbers_fields_and_hooks() -> None:
    def hook(request: RecordedRequest) -> RecordedRequest:
        return request

    options = CassetteOptions(
        scrubber=Scrubber(body_fields=("user",)),
        scrub_body=("messages[*].content",),
        before_record_request=hook,
    )
    assert options.scrubbing.body_fields == ("user", "messages[*].content")
    assert options.scrubbing.before_record_request is hook
    assert CassetteOptions().scrubbing == Scrubber()
