"""Under CI a test records only when the command line says so: a marker or `llmx_config`
asking for a recording mode fails the test in one line, and nothing reaches the upstream."""

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LlmxProject


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all", "rewrite"])
def test_a_marker_asking_to_record_under_ci_fails_the_test_and_records_nothing(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("CI", "1")
    llmx_project.write(
        f"""
        import pytest


        @pytest.mark.llmx_cassette(record_mode="{mode}")
        def test_turn(ask):
            ask("a")
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*test_it.py::test_turn: its marker or llmx_config asks for record mode '{mode}', "
            "but CI is set and CI never records unless the command line says so "
            f"(--llmx-record-mode={mode})"
        ]
    )
    assert llmx_project.upstream_calls() == []
    assert not llmx_project.cassettes.exists()


def test_llmx_config_asking_to_record_under_ci_fails_too(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    llmx_project.extend_conftest(
        """
        @pytest.fixture
        def llmx_config():
            options = {"upstream": UPSTREAM, "provider": PROVIDER, "model": MODEL}
            return {**options, "record_mode": "once"}
        """
    )
    llmx_project.write(
        """
        def test_turn(ask):
            ask("a")
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(errors=1)
    assert llmx_project.upstream_calls() == []


def test_the_command_line_may_record_under_ci(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "1")
    llmx_project.write(
        """
        import pytest


        @pytest.mark.llmx_cassette(record_mode="once")
        def test_turn(ask):
            assert ask("a") == ["a v1"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=once")

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["a"]


def test_a_marker_asking_for_none_under_ci_replays(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("test_it/test_turn.yaml", "a")
    monkeypatch.setenv("CI", "1")
    llmx_project.write(
        """
        import pytest


        @pytest.mark.llmx_cassette(record_mode="none")
        def test_turn(ask):
            assert ask("a") == ["a v1"]
        """
    )

    llmx_project.run().assert_outcomes(passed=1)
