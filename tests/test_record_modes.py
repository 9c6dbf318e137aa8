"""Record modes (issue 3, section 3): `CassetteTransport` replays or records as its mode says.

The live side is an `httpx.MockTransport` that counts the requests reaching it and answers
each with the prompt it was asked and a version label, so a test can tell a replayed answer
(an older version) from a live one.
"""

import json
from pathlib import Path

import httpx
import pytest

from llmx_replay import InputError
from llmx_replay._exceptions import NoMatchingInteraction, SecretInCassette
from llmx_replay.cassette import load_cassette, save_cassette
from llmx_replay.transports import CassetteTransport, RecordMode

URL = "https://llm.example.com/v1/chat/completions"


class Upstream:
    """The live server: answers ``{"answer": "<prompt> <version>"}`` and counts requests."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.prompts: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["prompt"]
        self.prompts.append(asked)
        return httpx.Response(200, json={"answer": f"{asked} {self.version}"})

    @property
    def calls(self) -> int:
        return len(self.prompts)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def ask(transport: CassetteTransport, *prompts: str) -> list[str]:
    """Each prompt's answer, asked in order through one client over `transport`."""
    with httpx.Client(transport=transport) as client:
        return [
            client.post(URL, json={"model": "m", "prompt": asked}).json()["answer"]
            for asked in prompts
        ]


def on_disk(path: Path) -> list[tuple[str, str]]:
    """The (prompt, answer) of each interaction in the cassette at `path`, in order."""
    pairs = []
    for interaction in load_cassette(path).interactions:
        assert interaction.request.body is not None
        asked = json.loads(interaction.request.body)["prompt"]
        pairs.append((asked, json.loads(interaction.response.body)["answer"]))
    return pairs


def recorded(path: Path, *prompts: str, version: str = "v1") -> Path:
    """A cassette at `path` recorded from a live server at `version`."""
    upstream = Upstream(version)
    ask(CassetteTransport(path, record_mode="rewrite", inner=upstream.transport), *prompts)
    assert upstream.calls == len(prompts)
    assert on_disk(path) == [(p, f"{p} {version}") for p in prompts]
    return path


# --------------------------------------------------------------------------------------------
# none
# --------------------------------------------------------------------------------------------


def test_none_replays_and_never_calls_inner(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "a", "b")
    before = path.read_bytes()
    upstream = Upstream("v2")
    transport = CassetteTransport(path, record_mode="none", inner=upstream.transport)

    assert ask(transport, "b", "a") == ["b v1", "a v1"]
    with pytest.raises(NoMatchingInteraction) as caught:
        ask(transport, "c")

    assert upstream.calls == 0
    assert "record mode 'none'" in str(caught.value)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before


def test_none_with_a_missing_cassette_fails_on_the_first_request(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    upstream = Upstream("v1")
    transport = CassetteTransport(path, record_mode=RecordMode.NONE, inner=upstream.transport)

    with pytest.raises(NoMatchingInteraction) as caught:
        ask(transport, "a")

    assert str(path) in str(caught.value)
    assert "none" in str(caught.value)
    assert upstream.calls == 0
    assert not path.exists()


# --------------------------------------------------------------------------------------------
# once
# --------------------------------------------------------------------------------------------


def test_once_records_when_there_is_no_cassette(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    upstream = Upstream("v1")
    transport = CassetteTransport(path, record_mode="once", inner=upstream.transport)
    assert not path.exists()

    assert ask(transport, "a", "b") == ["a v1", "b v1"]

    assert upstream.calls == 2
    assert on_disk(path) == [("a", "a v1"), ("b", "b v1")]


def test_once_with_a_cassette_only_replays(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "a")
    before = path.read_bytes()
    upstream = Upstream("v2")
    transport = CassetteTransport(path, record_mode="once", inner=upstream.transport)

    assert ask(transport, "a") == ["a v1"]
    with pytest.raises(NoMatchingInteraction) as caught:
        ask(transport, "b")

    assert "once" in str(caught.value)
    assert upstream.calls == 0
    assert path.read_bytes() == before


# --------------------------------------------------------------------------------------------
# new_episodes
# --------------------------------------------------------------------------------------------


def test_new_episodes_replays_known_and_records_unknown(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "a")
    upstream = Upstream("v2")
    transport = CassetteTransport(path, record_mode="new_episodes", inner=upstream.transport)

    assert ask(transport, "a", "b") == ["a v1", "b v2"]

    assert upstream.prompts == ["b"]
    assert on_disk(path) == [("a", "a v1"), ("b", "b v2")]
    # Both now replay without the network.
    offline = Upstream("v3")
    replay = CassetteTransport(path, record_mode="none", inner=offline.transport)
    assert ask(replay, "b", "a") == ["b v2", "a v1"]
    assert offline.calls == 0


# --------------------------------------------------------------------------------------------
# all
# --------------------------------------------------------------------------------------------


def test_all_always_calls_inner_and_renews_the_recording(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "a", "b")
    upstream = Upstream("v2")
    transport = CassetteTransport(path, record_mode="all", inner=upstream.transport)

    assert ask(transport, "a") == ["a v2"]

    assert upstream.prompts == ["a"]
    # Interaction 0 is renewed in place, not duplicated; "b" is kept.
    assert on_disk(path) == [("a", "a v2"), ("b", "b v1")]

    assert ask(transport, "c") == ["c v2"]
    assert upstream.calls == 2
    assert on_disk(path) == [("a", "a v2"), ("b", "b v1"), ("c", "c v2")]


# --------------------------------------------------------------------------------------------
# rewrite
# --------------------------------------------------------------------------------------------


def test_rewrite_replaces_the_cassette_with_the_new_recordings(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "a", "b")
    upstream = Upstream("v2")
    transport = CassetteTransport(path, record_mode="rewrite", inner=upstream.transport)

    assert ask(transport, "c", "a") == ["c v2", "a v2"]

    assert upstream.prompts == ["c", "a"]
    assert on_disk(path) == [("c", "c v2"), ("a", "a v2")]


OPENAI_KEY = "sk-proj-" + "abcdefghij" * 3


def answering(*answers: str) -> httpx.MockTransport:
    """A live server answering its n-th request with ``{"answer": answers[n]}``."""
    waiting = list(answers)
    return httpx.MockTransport(lambda request: httpx.Response(200, json={"answer": waiting.pop(0)}))


def test_rewrite_refused_recording_leaves_the_old_cassette_byte_identical(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "one", "two")
    before = path.read_bytes()
    inner = answering(f"my key is {OPENAI_KEY}")
    transport = CassetteTransport(path, record_mode="rewrite", inner=inner)

    with pytest.raises(SecretInCassette):
        ask(transport, "three")

    assert path.read_bytes() == before


def test_rewrite_after_a_refused_recording_keeps_only_the_new_interaction(tmp_path: Path) -> None:
    path = recorded(tmp_path / "c.yaml", "one", "two")
    inner = answering(f"my key is {OPENAI_KEY}", "new v2")
    transport = CassetteTransport(path, record_mode="rewrite", inner=inner)

    with httpx.Client(transport=transport) as client:
        with pytest.raises(SecretInCassette):
            client.post(URL, json={"model": "m", "prompt": "three"})
        answer = client.post(URL, json={"model": "m", "prompt": "new"}).json()["answer"]
        assert answer == "new v2"

    assert on_disk(path) == [("new", "new v2")]


# --------------------------------------------------------------------------------------------
# The default mode, and parsing
# --------------------------------------------------------------------------------------------


def test_default_mode_is_none_on_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    assert RecordMode.default() is RecordMode.NONE
    assert CassetteTransport(tmp_path / "c.yaml").record_mode is RecordMode.NONE


def test_default_mode_is_once_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert RecordMode.default() is RecordMode.ONCE
    assert CassetteTransport(tmp_path / "c.yaml").record_mode is RecordMode.ONCE


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("none", RecordMode.NONE),
        ("once", RecordMode.ONCE),
        ("new_episodes", RecordMode.NEW_EPISODES),
        ("all", RecordMode.ALL),
        ("rewrite", RecordMode.REWRITE),
    ],
)
def test_parse_valid_modes(text: str, mode: RecordMode) -> None:
    assert RecordMode.parse(text) is mode
    assert RecordMode.parse(mode) is mode


def test_parse_rejects_an_unknown_mode_listing_the_valid_ones() -> None:
    with pytest.raises(InputError) as caught:
        RecordMode.parse("bogus")

    message = str(caught.value)
    assert "bogus" in message
    for valid in ("none", "once", "new_episodes", "all", "rewrite"):
        assert valid in message


def test_unknown_mode_is_rejected_by_the_transport(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="new_episodes"):
        CassetteTransport(tmp_path / "c.yaml", record_mode="bogus")


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("true", "none"),
        ("1", "none"),
        ("yes", "none"),
        ("false", "once"),
        ("0", "once"),
        ("", "once"),
        (" False ", "once"),
        ("no", "once"),
    ],
)
def test_a_ci_variable_that_says_no_is_not_ci(
    monkeypatch: pytest.MonkeyPatch, value: str, mode: str
) -> None:
    monkeypatch.setenv("CI", value)
    assert RecordMode.default() == mode


@pytest.mark.parametrize(
    ("mode", "kept"), [("new_episodes", True), ("all", False), ("rewrite", False)]
)
def test_a_cassettes_note_is_kept_when_added_to_and_dropped_when_started_anew(
    tmp_path: Path, mode: str, kept: bool
) -> None:
    path = recorded(tmp_path / "c.yaml", "a")
    cassette = load_cassette(path)
    assert cassette.metadata is not None
    note = "written by hand: no server sends this"
    save_cassette(
        path,
        cassette.model_copy(
            update={"metadata": cassette.metadata.model_copy(update={"note": note})}
        ),
    )

    ask(CassetteTransport(path, record_mode=mode, inner=Upstream("v2").transport), "b")

    metadata = load_cassette(path).metadata
    assert metadata is not None
    assert metadata.note == (note if kept else None)


def test_all_renews_only_what_was_recorded_before_and_keeps_every_new_recording(
    tmp_path: Path,
) -> None:
    path = recorded(tmp_path / "c.yaml", "a")
    upstream = Upstream("v2")

    ask(CassetteTransport(path, record_mode="all", inner=upstream.transport), "a", "a", "a")

    assert upstream.calls == 3
    # The first renews the old recording; the two after it are new, not renewals of it.
    assert on_disk(path) == [("a", "a v2")] * 3
