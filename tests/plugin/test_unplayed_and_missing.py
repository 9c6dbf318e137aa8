"""What fails a test that passed: recorded interactions it left unplayed (unless
``allow_unplayed=True``, or it called ``.play()``), and a request with no recording, which
the failure explains with the closest recording, even when the test swallowed the error; the
upstream is never called for it."""

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LlmxProject

TURN = "test_it/test_turn.yaml"


def test_a_passing_test_that_leaves_interactions_unplayed_fails_listing_them(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record(TURN, "a", "b", "c")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("b") == ["b v1"]
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cassettes/test_it/test_turn.yaml: 2 recorded interaction(s) never played: "
            '#0 POST http://llm.test/v1/chat/completions asking "a"; '
            '#2 POST http://llm.test/v1/chat/completions asking "c" (record the cassette anew '
            "with record mode 'rewrite', or pass allow_unplayed=True)",
        ]
    )
    # The failure is the plugin's own message, not a traceback into it.
    assert "pytest_plugin.py" not in result.stdout.str()


def test_allow_unplayed_lets_a_test_leave_interactions_unplayed(
    llmx_project: "LlmxProject",
) -> None:
    for module in ("test_marked", "test_configured", "test_neither"):
        llmx_project.record(f"{module}/test_it.yaml", "a", "b")
    llmx_project.write(
        """
        import pytest

        @pytest.mark.llmx_cassette(allow_unplayed=True)
        def test_it(ask):
            assert ask("a") == ["a v1"]
        """,
        "test_marked",
    )
    llmx_project.write(
        """
        import pytest

        @pytest.fixture
        def llmx_config(llmx_config):
            return {**llmx_config, "allow_unplayed": True}

        def test_it(ask):
            assert ask("b") == ["b v1"]
        """,
        "test_configured",
    )
    llmx_project.write(
        """
        def test_it(ask):
            assert ask("a") == ["a v1"]
        """,
        "test_neither",
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*1 recorded interaction(s) never played*", "FAILED test_neither.py::test_it*"]
    )


def test_play_counts_every_interaction_as_played(llmx_project: "LlmxProject") -> None:
    llmx_project.record(TURN, "a", "b")
    llmx_project.write(
        """
        from conftest import text_of

        def test_turn(llmx_cassette):
            assert text_of(llmx_cassette.play()) == "a v1b v1"
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == []


def test_a_request_without_recording_fails_with_the_closest_match_and_no_upstream_call(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record(TURN, "a", "bb")
    monkeypatch.setenv("CI", "true")
    llmx_project.write(
        """
        from conftest import PROVIDER, prompt

        def test_turn(ask, llmx_cassette):
            assert ask("a") == ["a v1"]
            smaller = PROVIDER.model_copy(update={"max_tokens": 100})
            list(llmx_cassette.client(smaller).stream(prompt("bb")))
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cassettes/test_it/test_turn.yaml: no recorded interaction matches "
            "POST http://llm.test/v1/chat/completions asking \"bb\" (record mode 'none' never "
            "records); the closest is interaction 1, which differs at:",
            "*request.body.max_tokens: recorded 8192, requested 100",
        ]
    )
    assert llmx_project.upstream_calls() == []


def test_a_miss_fails_the_test_even_when_the_test_swallows_it(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record(TURN, "a")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a") == ["a v1"]
            try:
                ask("b")
            except Exception:
                pass
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no recorded interaction matches POST http://llm.test/v1/chat/completions*",
            '*request.body.messages[[]1].content: recorded "a", requested "b"',
        ]
    )
    assert llmx_project.upstream_calls() == []


def test_a_test_its_cassette_failed_is_told_how_to_record_again(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record(TURN, "a")
    llmx_project.write(
        """
        def test_turn(ask):
            ask("changed")
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- llmx-replay -*",
            "The cassette no longer fits the test. Where the provider is reachable, record it "
            "again:",
            "  --llmx-record-mode=new_episodes  adds the requests that have no recording",
            "  --llmx-record-mode=rewrite       records the test's cassette anew",
            "*--snapshot-update only",
        ]
    )


def test_a_test_that_failed_on_its_own_gets_no_recording_hint(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record(TURN, "a")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a") == ["something else"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(failed=1)
    assert "record it again" not in result.stdout.str()


@pytest.mark.parametrize(
    ("last_line", "hinted"),
    [('assert False, "the test\'s own failure"', False), ("pass", True)],
    ids=["failed on its own midway", "failed for its unplayed recordings"],
)
def test_the_recording_hint_comes_only_when_the_cassette_failed_the_test(
    llmx_project: "LlmxProject", last_line: str, hinted: bool
) -> None:
    llmx_project.record(TURN, "a", "b")
    llmx_project.write(
        f"""
        def test_turn(ask):
            assert ask("a") == ["a v1"]
            {last_line}
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(failed=1)
    assert ("record it again" in result.stdout.str()) is hinted
