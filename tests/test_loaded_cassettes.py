"""Transports on the same unchanged cassette file share what reading it found (issue 14): the
cassette and its request keys are found once, and what each transport has played stays its
own. A file changed since, or too recently to tell, is read again."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmx_replay import ReplayOptions
from llmx_replay._exceptions import NoMatchingInteraction
from llmx_replay.cassette import Scrubber, load_cassette
from llmx_replay.transports import CassetteTransport, ReplayTransport, _loaded
from llmx_replay.transports._loaded import LOADED

URL = "http://llm.test/v1/chat/completions"

INTERACTION = """\
- request:
    method: POST
    uri: {url}
    body: '{{"ask": "{answer}"}}'
  response:
    status: {{code: 200, message: OK}}
    body: {{string: {answer}}}
"""


def cassette_text(*answers: str) -> str:
    """A vcrpy cassette answering each of `answers` to a request that asks for it."""
    interactions = "".join(INTERACTION.format(url=URL, answer=answer) for answer in answers)
    return f"interactions:\n{interactions}version: 1\n"


def write(path: Path, *answers: str) -> Path:
    path.write_text(cassette_text(*answers))
    return path


def ask(transport: httpx.BaseTransport, answer: str) -> str:
    with httpx.Client(transport=transport) as client:
        return client.post(URL, json={"ask": answer}).text


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A file a test writes counts as settled at once; no test sees another's kept files."""
    monkeypatch.setattr(_loaded, "SETTLED_NS", 0)
    LOADED.clear()
    yield
    LOADED.clear()


def test_a_second_transport_on_the_same_unchanged_file_reuses_the_cassette_and_its_keys(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "c.yaml", "a", "b")
    first, second = ReplayTransport(path), ReplayTransport(path)

    assert second.player.cassette is first.player.cassette
    assert second.player.index.keys is first.player.index.keys


def test_play_state_is_per_transport(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "a", "b")
    first, second = ReplayTransport(path), ReplayTransport(path)

    assert ask(first, "a") == "a"
    assert (first.unplayed, second.unplayed) == ([1], [0, 1])
    assert ask(second, "a") == "a"
    with pytest.raises(NoMatchingInteraction):
        ask(first, "a")
    assert ask(ReplayTransport(path), "a") == "a"


def test_a_cassette_transport_shares_what_a_replay_transport_read(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "a")
    replaying, cassette = ReplayTransport(path), CassetteTransport(path, "none")

    assert cassette.player.cassette is replaying.player.cassette
    assert cassette.player.index.keys is replaying.player.index.keys
    assert ask(cassette, "a") == "a"
    assert replaying.unplayed == [0]


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "a")
    first = ReplayTransport(path)
    write(path, "a", "b")

    second = ReplayTransport(path)

    assert second.player.cassette is not first.player.cassette
    assert ask(second, "b") == "b"


def test_a_file_replaced_by_another_of_the_same_size_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "a")
    ReplayTransport(path)
    os.replace(write(tmp_path / "new.yaml", "b"), path)

    assert ask(ReplayTransport(path), "b") == "b"


def test_a_file_changed_too_recently_to_tell_is_read_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewritten in place at the same size, within the file system's timestamp granularity,
    a file can look unchanged: one changed that recently is never kept."""
    monkeypatch.setattr(_loaded, "SETTLED_NS", 3_600 * 10**9)
    path = write(tmp_path / "c.yaml", "a")
    assert ask(ReplayTransport(path), "a") == "a"
    write(path, "b")

    assert ask(ReplayTransport(path), "b") == "b"


def test_a_lower_inflate_limit_reads_the_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How far a compressed body may inflate decides whether the file reads at all."""
    path = write(tmp_path / "c.yaml", "a")
    first = ReplayTransport(path)
    monkeypatch.setenv("LLMX_REPLAY_MAX_INFLATED_BYTES", "1000")

    assert ReplayTransport(path).player.cassette is not first.player.cassette


def test_other_ignored_paths_or_scrubber_find_their_own_keys_once(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "a")
    plain = ReplayTransport(path)
    ignoring = ReplayOptions(ignore=("user",))
    scrubber = Scrubber(query_params=frozenset({"session"}))

    keys = {
        "plain": plain.player.index.keys,
        "ignoring": ReplayTransport(path, ignoring).player.index.keys,
        "scrubbing": ReplayTransport(path, scrubber=scrubber).player.index.keys,
    }

    assert len({id(found) for found in keys.values()}) == 3
    assert ReplayTransport(path, ignoring).player.index.keys is keys["ignoring"]
    assert ReplayTransport(path, scrubber=scrubber).player.index.keys is keys["scrubbing"]
    assert ReplayTransport(path).player.cassette is plain.player.cassette


def test_a_scrubber_that_cannot_be_hashed_finds_the_keys_each_time(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "a")
    scrubber = Scrubber(query_params={"session"})  # type: ignore[arg-type]
    first = ReplayTransport(path, scrubber=scrubber)

    assert ReplayTransport(path, scrubber=scrubber).player.index.keys is not first.player.index.keys
    assert ask(first, "a") == "a"


def test_a_cassette_given_as_a_value_finds_its_keys_each_time(tmp_path: Path) -> None:
    cassette = load_cassette(write(tmp_path / "c.yaml", "a"))
    first = ReplayTransport(cassette)

    assert ReplayTransport(cassette).player.index.keys is not first.player.index.keys


@pytest.mark.parametrize("limit", ["MAX_FILES", "MAX_BYTES"])
def test_the_least_recently_used_file_is_forgotten_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    one, other = write(tmp_path / "one.yaml", "a"), write(tmp_path / "other.yaml", "b")
    monkeypatch.setattr(_loaded, limit, 1 if limit == "MAX_FILES" else one.stat().st_size)
    first = ReplayTransport(one)
    ReplayTransport(other)

    assert ReplayTransport(one).player.cassette is not first.player.cassette
