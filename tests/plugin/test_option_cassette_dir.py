"""``--llmx-cassette-dir``: a relative folder is taken from the invocation folder, an
absolute one as it is; without it cassettes live in ``<rootdir>/cassettes``; a conftest
can override the `llmx_cassette_dir` fixture instead."""

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LlmxProject

RECORDING_TEST = """
def test_turn(ask):
    assert ask("a") == ["a v1"]
"""
TURN = "test_it/test_turn.yaml"


def test_a_relative_dir_is_taken_from_the_invocation_dir(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    test_file = llmx_project.write(RECORDING_TEST)
    invoked_in = llmx_project.path / "elsewhere"
    invoked_in.mkdir()
    monkeypatch.chdir(invoked_in)

    result = llmx_project.run("--llmx-cassette-dir=tapes", str(test_file))

    result.assert_outcomes(passed=1)
    assert llmx_project.exchanges(invoked_in / "tapes" / TURN) == [("a", "a v1")]
    assert not (llmx_project.path / "tapes").exists()
    assert not llmx_project.cassettes.exists()


def test_an_absolute_dir_is_used_as_it_is(
    llmx_project: "LlmxProject", tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("absolute") / "tapes"
    llmx_project.write(RECORDING_TEST)

    result = llmx_project.run(f"--llmx-cassette-dir={folder}")

    result.assert_outcomes(passed=1)
    assert llmx_project.exchanges(folder / TURN) == [("a", "a v1")]
    assert not llmx_project.cassettes.exists()


def test_the_default_is_cassettes_under_the_rootdir_wherever_pytest_runs(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    test_file = llmx_project.write(RECORDING_TEST, "suite/test_it")
    monkeypatch.chdir(test_file.parent)

    result = llmx_project.run(str(test_file))

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"rootdir: {llmx_project.path}"])
    assert llmx_project.exchanges(TURN) == [("a", "a v1")]
    assert not (test_file.parent / "cassettes").exists()


def test_a_conftest_can_override_the_llmx_cassette_dir_fixture(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = llmx_project.path / "suite" / "recorded"
    llmx_project.record(recorded / "test_it" / "test_replayed.yaml", "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        from pathlib import Path

        import pytest

        @pytest.fixture
        def llmx_cassette_dir():
            return Path(__file__).parent / "recorded"
        """,
        "suite/conftest",
    )
    llmx_project.write(
        """
        def test_replayed(ask):
            assert ask("a") == ["a v1"]

        def test_recorded(ask):
            assert ask("b") == ["b v2"]
        """,
        "suite/test_it",
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=2)
    assert llmx_project.upstream_calls() == ["b"]
    assert llmx_project.exchanges(recorded / "test_it" / "test_recorded.yaml") == [("b", "b v2")]
    assert not llmx_project.cassettes.exists()
