"""``--llmx-record-mode``: what each mode replays, what reaches the upstream and what the
cassette holds afterwards; the option over the marker and `llmx_config`; the default, which
follows the CI variable.

Cassettes are recorded at upstream version ``v1`` and the runs happen at ``v2``, so a ``v1``
answer was replayed and a ``v2`` answer is live (see ``conftest.py``).
"""

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LlmxProject

TURN = "test_it/test_turn.yaml"


def test_none_replays_and_never_reaches_the_upstream(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    before = llmx_project.record(TURN, "a", "b").read_bytes()
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("b", "a") == ["b v1", "a v1"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == []
    assert (llmx_project.cassettes / TURN).read_bytes() == before


def test_once_records_a_missing_cassette_then_only_replays_it(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a") == ["a v1"]
        """
    )

    first = llmx_project.run("--llmx-record-mode=once")
    first.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["a"]
    assert llmx_project.exchanges(TURN) == [("a", "a v1")]

    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    second = llmx_project.run("--llmx-record-mode=once")
    second.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == []
    assert llmx_project.exchanges(TURN) == [("a", "a v1")]


def test_once_does_not_record_into_an_existing_cassette(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record(TURN, "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        def test_turn(ask):
            ask("a", "b")
        """
    )

    result = llmx_project.run("--llmx-record-mode=once")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*record mode 'once' does not record into an existing cassette*"])
    assert llmx_project.upstream_calls() == []
    assert llmx_project.exchanges(TURN) == [("a", "a v1")]


def test_new_episodes_replays_what_is_recorded_and_records_the_rest(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record(TURN, "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a", "b") == ["a v1", "b v2"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=new_episodes")

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["b"]
    assert llmx_project.exchanges(TURN) == [("a", "a v1"), ("b", "b v2")]


def test_all_sends_every_request_and_renews_its_recording_in_place(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record(TURN, "a", "b")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a", "c") == ["a v2", "c v2"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=all")

    # "b" is kept, and not reported as unplayed: nothing is replayed in this mode.
    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["a", "c"]
    assert llmx_project.exchanges(TURN) == [("a", "a v2"), ("b", "b v1"), ("c", "c v2")]


def test_rewrite_starts_the_cassette_anew(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record(TURN, "a", "b")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("c", "a") == ["c v2", "a v2"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=rewrite")

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["c", "a"]
    assert llmx_project.exchanges(TURN) == [("c", "c v2"), ("a", "a v2")]


def test_rewrite_starts_a_shared_cassette_anew_once_per_run(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("shared.yaml", "stale")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        import pytest

        pytestmark = pytest.mark.llmx_cassette(name="shared", allow_unplayed=True)

        def test_first(ask):
            assert ask("a") == ["a v2"]

        def test_second(ask):
            assert ask("b") == ["b v2"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=rewrite")

    result.assert_outcomes(passed=2)
    assert llmx_project.exchanges("shared.yaml") == [("a", "a v2"), ("b", "b v2")]


def test_the_option_overrides_the_marker_and_llmx_config(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("test_it/test_marked.yaml", "a")
    llmx_project.record("test_it/test_configured.yaml", "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        import pytest

        @pytest.fixture
        def llmx_config(llmx_config):
            return {**llmx_config, "record_mode": "rewrite"}

        @pytest.mark.llmx_cassette(record_mode="all")
        def test_marked(ask):
            assert ask("a") == ["a v1"]

        def test_configured(ask):
            assert ask("a") == ["a v1"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(passed=2)
    assert llmx_project.upstream_calls() == []


def test_an_invalid_record_mode_is_a_usage_error(llmx_project: "LlmxProject") -> None:
    llmx_project.write("def test_nothing(): pass")

    result = llmx_project.run("--llmx-record-mode=sometimes")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmx-record-mode*invalid choice*'sometimes'*"])


def test_the_default_is_none_when_ci_is_set(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    llmx_project.write(
        """
        def test_turn(llmx_cassette, ask):
            assert llmx_cassette.record_mode == "none"
            ask("a")
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*record mode 'none' never records, and the cassette does not exist*"]
    )
    assert llmx_project.upstream_calls() == []
    assert not (llmx_project.cassettes / TURN).exists()


def test_the_default_is_once_when_ci_is_unset(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    llmx_project.write(
        """
        def test_turn(llmx_cassette, ask):
            assert llmx_cassette.record_mode == "once"
            assert ask("a") == ["a v1"]
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["a"]
    assert llmx_project.exchanges(TURN) == [("a", "a v1")]
