"""Expiry: a cassette older than `max_age` (by its metadata's ``recorded_at``) is recorded
anew in record mode ``once``, and refused, saying how old it is, in mode ``none``."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmx_replay import CassetteOptions, InputError, OptionError, RecordPolicy
from llmx_replay.cassette import load_cassette, save_cassette
from llmx_replay.cassette._model import CassetteMetadata
from llmx_replay.transports import CassetteTransport
from tests.test_record_modes import Upstream, ask, on_disk, recorded

MONTH = timedelta(days=30)


def aged(path: Path, recorded_at: datetime | None) -> Path:
    """The cassette at `path`, its metadata saying it was recorded at `recorded_at`."""
    cassette = load_cassette(path)
    metadata = (
        None
        if recorded_at is None
        else CassetteMetadata(toolkit="0.1.0", recorded_at=recorded_at.isoformat())
    )
    save_cassette(path, cassette.model_copy(update={"metadata": metadata}))
    return path


def old(path: Path) -> Path:
    return aged(recorded(path, "a"), datetime(2020, 1, 1, tzinfo=UTC))


def test_an_expired_cassette_is_recorded_anew_in_mode_once(tmp_path: Path) -> None:
    path = old(tmp_path / "c.yaml")
    upstream = Upstream("v2")

    answers = ask(CassetteTransport(path, "once", inner=upstream.transport, max_age=MONTH), "a")

    assert answers == ["a v2"]
    assert upstream.calls == 1
    assert on_disk(path) == [("a", "a v2")]  # started anew: the old recording is gone
    metadata = load_cassette(path).metadata
    assert metadata is not None
    assert datetime.now(UTC) - datetime.fromisoformat(metadata.recorded_at) < MONTH


def test_a_young_cassette_is_replayed_in_mode_once(tmp_path: Path) -> None:
    path = aged(recorded(tmp_path / "c.yaml", "a"), datetime.now(UTC) - timedelta(days=29))
    upstream = Upstream("v2")

    answers = ask(CassetteTransport(path, "once", inner=upstream.transport, max_age=MONTH), "a")

    assert (answers, upstream.calls) == (["a v1"], 0)


def test_an_expired_cassette_is_refused_in_mode_none_saying_how_old_it_is(
    tmp_path: Path,
) -> None:
    path = old(tmp_path / "c.yaml")

    with pytest.raises(InputError) as raised:
        CassetteTransport(path, "none", max_age=MONTH)

    assert raised.value.source == str(path)
    assert raised.value.field == "metadata.recorded_at"
    assert "ago (2020-01-01 00:00 UTC), longer ago than max_age (30 days)" in str(raised.value)
    assert "record mode 'once'" in str(raised.value)


def test_without_max_age_an_old_cassette_replays(tmp_path: Path) -> None:
    path = old(tmp_path / "c.yaml")
    assert ask(CassetteTransport(path, "none"), "a") == ["a v1"]


def test_a_cassette_that_does_not_say_when_it_was_recorded_never_expires(tmp_path: Path) -> None:
    path = aged(recorded(tmp_path / "c.yaml", "a"), None)
    assert ask(CassetteTransport(path, "none", max_age=MONTH), "a") == ["a v1"]


@pytest.mark.parametrize("mode", ["new_episodes", "all", "rewrite"])
def test_modes_that_record_anyway_are_not_changed_by_expiry(mode: str) -> None:
    fresh = RecordPolicy.decide(mode, existed=True, expired=True)
    kept = RecordPolicy.decide(mode, existed=True)
    assert (fresh.replays, fresh.records, fresh.fresh, fresh.loads) == (
        kept.replays,
        kept.records,
        kept.fresh,
        kept.loads,
    )


def test_max_age_takes_durations_as_pydantic_reads_them() -> None:
    assert CassetteOptions(max_age="P30D").max_age == MONTH
    assert CassetteOptions(max_age=3600).max_age == timedelta(hours=1)
    with pytest.raises(OptionError, match="max_age: must be a positive duration"):
        CassetteOptions(max_age=-5)
    with pytest.raises(OptionError, match="max_age"):
        CassetteOptions(max_age="soon")
