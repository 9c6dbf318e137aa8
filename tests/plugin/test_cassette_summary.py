"""The run's summary says what its tests did with their cassettes: which were recorded,
renewed or recorded anew for their age (each by path), and how many were replayed. A run
that used no cassette shows no such section; under pytest-xdist the workers' count too.
"""

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LlmxProject

MODULE = """
import pytest


def test_replayed(ask):
    assert ask("a") == ["a v1"]


def test_recorded(ask):
    assert ask("b") == ["b v2"]


@pytest.mark.llmx_cassette(max_age="1 day")
def test_expired(ask):
    assert ask("c") == ["c v2"]


def test_unused(llmx_cassette):
    pass
"""


def summary(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if "llmx-replay cassettes" in line)
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"^[=-]{3,}", lines[i]))
    return lines[start + 1 : end]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_the_summary_names_what_was_recorded_and_counts_what_was_replayed(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    llmx_project.record("test_it/test_replayed.yaml", "a")
    old = llmx_project.record("test_it/test_expired.yaml", "c")
    old.write_text(old.read_text().replace("recorded_at: '20", "recorded_at: '19"))
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(MODULE)

    result = llmx_project.run("--llmx-record-mode=once", *workers)

    result.assert_outcomes(passed=4)
    assert summary(result.outlines) == [
        "recorded: 1",
        "  cassettes/test_it/test_recorded.yaml",
        "expired: 1",
        "  cassettes/test_it/test_expired.yaml",
        "replayed: 1",
    ]


def test_rewrite_is_summarized_as_renewed(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("test_it/test_turn.yaml", "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a") == ["a v2"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=rewrite")

    result.assert_outcomes(passed=1)
    assert summary(result.outlines) == ["renewed: 1", "  cassettes/test_it/test_turn.yaml"]


def test_a_run_without_cassettes_has_no_summary(llmx_project: "LlmxProject") -> None:
    llmx_project.write(
        """
        def test_plain():
            pass
        """
    )
    result = llmx_project.run()
    result.assert_outcomes(passed=1)
    assert not any("llmx-replay cassettes" in line for line in result.outlines)


def test_a_recorded_http_error_is_flagged_in_the_summary(llmx_project: "LlmxProject") -> None:
    """A 404 recorded in mode rewrite would pass as the new behaviour, snapshots and all."""
    llmx_project.extend_conftest(
        """
        def not_found(request):
            return httpx.Response(404, json={"error": {"message": "no such model"}})


        @pytest.fixture
        def llmx_config():
            upstream = httpx.MockTransport(not_found)
            return {"upstream": upstream, "provider": PROVIDER, "model": MODEL}
        """
    )
    llmx_project.write(
        """
        def test_turn(ask):
            assert ask("a") == ["<error unexpected_status>"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=rewrite")

    result.assert_outcomes(passed=1)
    assert summary(result.outlines) == [
        "renewed: 1",
        "  cassettes/test_it/test_turn.yaml (its last response is an HTTP error: 404)",
    ]
