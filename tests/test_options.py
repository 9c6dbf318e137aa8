"""`ReplayOptions` and `RecordPolicy`: checked once where they are built, and one kind of
error (`OptionError`, naming the option) whichever way an option arrives."""

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llmx_replay import (
    CassetteOptions,
    Faults,
    OptionError,
    RecordMode,
    RecordPolicy,
    ReplayOptions,
    SystemClock,
    VirtualClock,
)
from llmx_replay.cli import cli
from llmx_replay.harness import Playback


@pytest.mark.parametrize(
    ("options", "option", "problem"),
    [
        ({"pacing": "slow"}, "pacing", "'slow' is not one of instant, recorded"),
        ({"speed": 0}, "speed", "must be a positive number, not 0"),
        ({"speed": -2.5}, "speed", "must be a positive number, not -2.5"),
        ({"speed": math.inf}, "speed", "must be a positive number, not inf"),
        ({"speed": math.nan}, "speed", "must be a positive number, not nan"),
        ({"speed": "2"}, "speed", "a number, not '2'"),
        ({"speed": True}, "speed", "a number, not True"),
        ({"faults": {"cut_after": 1}}, "faults", "a Faults value, not {'cut_after': 1}"),
        ({"ignore": "user"}, "ignore", "a sequence of body paths, not 'user'"),
        ({"ignore": ["user", 3]}, "ignore", "a sequence of body paths, not ['user', 3]"),
    ],
)
def test_replay_options_refuse_a_bad_value_naming_the_option(
    options: dict[str, Any], option: str, problem: str
) -> None:
    with pytest.raises(OptionError) as caught:
        ReplayOptions(**options)

    assert (caught.value.option, caught.value.problem) == (option, problem)
    assert str(caught.value) == f"{option}: {problem}"


def test_replay_options_defaults_and_ignore_paths_as_a_tuple() -> None:
    options = ReplayOptions(ignore=["user", "metadata.trace_id"])

    assert (options.pacing, options.speed, options.faults) == ("instant", 1.0, Faults())
    assert options.ignore == ("user", "metadata.trace_id")
    assert isinstance(options.clock, SystemClock)


def test_replacing_the_clock_keeps_the_other_options() -> None:
    options = ReplayOptions(pacing="recorded", speed=2, faults=Faults(cut_after=1))
    clock = VirtualClock()

    replaced = dataclasses.replace(options, clock=clock)

    assert replaced == ReplayOptions(
        pacing="recorded", speed=2, faults=Faults(cut_after=1), clock=clock
    )


# (mode, existed) -> (replays, records, fresh, renews, loads)
POLICIES = [
    (RecordMode.NONE, True, (True, False, False, False, True)),
    (RecordMode.NONE, False, (True, False, False, False, False)),
    (RecordMode.ONCE, True, (True, False, False, False, True)),
    (RecordMode.ONCE, False, (False, True, False, False, False)),
    (RecordMode.NEW_EPISODES, True, (True, True, False, False, True)),
    (RecordMode.NEW_EPISODES, False, (True, True, False, False, False)),
    (RecordMode.ALL, True, (False, True, False, True, True)),
    (RecordMode.ALL, False, (False, True, False, True, False)),
    (RecordMode.REWRITE, True, (False, True, True, False, False)),
    (RecordMode.REWRITE, False, (False, True, True, False, False)),
]


@pytest.mark.parametrize(("mode", "existed", "expected"), POLICIES)
def test_the_record_policy_of_each_mode(
    mode: RecordMode, existed: bool, expected: tuple[bool, ...]
) -> None:
    policy = RecordPolicy.decide(mode.value, existed=existed)

    assert policy.mode is mode
    assert (policy.replays, policy.records, policy.fresh, policy.renews, policy.loads) == expected


@pytest.mark.parametrize(
    ("ci", "mode"), [("", "once"), ("0", "once"), ("false", "once"), ("1", "none"), ("yes", "none")]
)
def test_no_mode_means_the_default_by_the_ci_variable(
    monkeypatch: pytest.MonkeyPatch, ci: str, mode: str
) -> None:
    monkeypatch.setenv("CI", ci)

    assert RecordPolicy.decide(None, existed=True).mode == mode


@pytest.mark.parametrize(
    ("mode", "existed", "why"),
    [
        ("none", True, "record mode 'none' never records"),
        ("none", False, "record mode 'none' never records, and the cassette does not exist"),
        ("once", True, "record mode 'once' does not record into an existing cassette"),
    ],
)
def test_the_policy_says_why_a_request_was_not_recorded(mode: str, existed: bool, why: str) -> None:
    assert RecordPolicy.decide(mode, existed=existed).why_not_recorded() == why


def test_an_unknown_record_mode_is_an_option_error_listing_the_modes() -> None:
    with pytest.raises(OptionError) as caught:
        RecordPolicy.decide("sometimes", existed=True)

    assert str(caught.value) == (
        "record_mode: 'sometimes' is not one of none, once, new_episodes, all, rewrite"
    )


# One bad option, four ways in: Python, the marker or llmx_config (CassetteOptions), the CLI.


@pytest.mark.parametrize(
    ("keywords", "option", "problem"),
    [
        ({"speed": 0}, "speed", "must be a positive number, not 0.0"),
        ({"pacing": "slow"}, "pacing", "Input should be 'instant' or 'recorded'"),
        ({"faults": {"cut_after": -1}}, "faults.cut_after", "a count of events, not -1"),
        (
            {"faults": {"stall_seconds": 1.0}},
            "faults.stall_seconds",
            "applies to faults.stall_after only",
        ),
        ({"match_ignore": ["user", 3]}, "match_ignore[1]", "Input should be a valid string"),
        ({"record_mode": "sometimes"}, "record_mode", "Input should be 'none', 'once', *"),
        ({"recordmode": "none"}, "recordmode", "Extra inputs are not permitted"),
        (
            {"speed": "fast", "recordmode": "none"},
            "speed",
            "Input should be a valid number, unable to parse string as a number; "
            "recordmode: Extra inputs are not permitted",
        ),
    ],
)
def test_cassette_options_raise_option_errors_naming_the_keyword(
    keywords: dict[str, Any], option: str, problem: str
) -> None:
    with pytest.raises(OptionError) as caught:
        CassetteOptions(**keywords)

    assert caught.value.option == option
    if problem.endswith("*"):
        assert caught.value.problem.startswith(problem[:-1])
    else:
        assert caught.value.problem == problem


def test_cassette_options_carry_one_replay_options_value() -> None:
    options = CassetteOptions(
        pacing="recorded", speed=3, faults={"drop_done": True}, match_ignore=["user"]
    )

    replay = options.replay
    assert (replay.pacing, replay.speed, replay.faults, replay.ignore) == (
        "recorded",
        3,
        Faults(drop_done=True),
        ("user",),
    )


def test_python_callers_get_the_same_error_as_the_marker_each_naming_it_their_way() -> None:
    with pytest.raises(OptionError) as from_python:
        Faults(stall_seconds=1.0)
    with pytest.raises(OptionError) as from_marker:
        CassetteOptions(faults={"stall_seconds": 1.0})

    assert str(from_python.value) == "stall_seconds: applies to stall_after only"
    assert str(from_marker.value) == "faults.stall_seconds: applies to faults.stall_after only"
    assert from_marker.value.template == from_python.value.template


def test_validating_a_mapping_of_options_raises_the_same_error() -> None:
    with pytest.raises(OptionError) as caught:
        CassetteOptions.model_validate({"pacing": 3})

    assert str(caught.value) == "pacing: Input should be 'instant' or 'recorded'"


def test_equal_options_compare_equal_whatever_their_clocks() -> None:
    assert CassetteOptions(speed=2) == CassetteOptions(speed=2)
    assert ReplayOptions(clock=VirtualClock()) == ReplayOptions()
    assert ReplayOptions(speed=2) != ReplayOptions()


def test_a_copy_with_other_replay_keywords_serves_them() -> None:
    copy = CassetteOptions(speed=2).model_copy(update={"speed": 5.0})

    assert copy.replay.speed == 5.0


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ({"cut_after": "3"}, "cut_after: a count of events, not '3'"),
        ({"cut_after": 1.5}, "cut_after: a count of events, not 1.5"),
        ({"stall_after": True}, "stall_after: a count of events, not True"),
        ({"drop_done": "yes"}, "drop_done: true or false, not 'yes'"),
        ({"error_message": 5}, "error_message: text, not 5"),
        ({"stall_after": 1, "stall_seconds": "2"}, "stall_seconds: not a duration: '2'"),
        ({"status": 200}, "status: an HTTP error status (400-599), not 200"),
        ({"status": 302}, "status: an HTTP error status (400-599), not 302"),
        ({"status": "503"}, "status: an HTTP error status (400-599), not '503'"),
    ],
)
def test_faults_of_the_wrong_kind_are_option_errors(faults: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        Faults(**faults)

    assert str(caught.value) == message


def test_ignore_paths_from_a_generator_are_all_kept() -> None:
    options = ReplayOptions(ignore=(path for path in ("user", "metadata")))  # type: ignore[arg-type]

    assert options.ignore == ("user", "metadata")


def test_a_clock_that_is_not_one_is_refused() -> None:
    with pytest.raises(OptionError, match=r"^clock: a Clock"):
        ReplayOptions(clock=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "5", True])
def test_a_playback_idle_timeout_must_be_a_positive_duration(timeout: Any) -> None:
    with pytest.raises(OptionError) as caught:
        Playback(idle_timeout=timeout)

    assert str(caught.value) == f"idle_timeout: a positive number of seconds, not {timeout!r}"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--stall-seconds", "1"],
            "Invalid value for '--stall-seconds': applies to --stall-after only",
        ),
        (["--speed", "2"], "Invalid value for '--speed': applies to --pacing recorded only"),
        (
            ["--error-message", "boom"],
            "Invalid value for '--error-message': applies to --error-after only",
        ),
        (
            ["--status", "500", "--cut-after", "1"],
            "Invalid value for '--status': answers without a stream, so it excludes the "
            "other faults",
        ),
        (
            ["--pacing", "recorded", "--speed", "nan"],
            "Invalid value for '--speed': expected a finite number, got nan",
        ),
    ],
)
def test_the_cli_names_the_option_as_a_flag(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    body = tmp_path / "body.sse"
    body.write_bytes(b"data: [DONE]\n\n")

    result = CliRunner().invoke(cli, ["play", str(body), *arguments])

    assert result.exit_code == 2
    assert result.stderr == f"llmx-replay: error: {message}\n"
