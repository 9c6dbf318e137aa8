"""Interception in pytest: a test's own clients go through its cassette, unwired.

The inner tests build `ChatClient(PROVIDER, MODEL)` with no transport, as application code
does: httpx's own HTTP transport underneath is routed through the test's cassette, for a
test that asks for `llmx_cassette` and for one that is only marked.
"""

from typing import TYPE_CHECKING

import pytest
from plugin_support import failures

if TYPE_CHECKING:
    from conftest import LlmxProject

UNWIRED = """
import pytest
from conftest import MODEL, PROVIDER, prompt, text_of

from llmx_replay import ChatClient


# No retries: a request that reaches no server fails at once.
APP_PROVIDER = PROVIDER.model_copy(update={"request_max_retries": 0})


def ask(text):
    with ChatClient(APP_PROVIDER, MODEL) as client:  # its own httpx client, as an app's
        return text_of(client.stream(prompt(text)))
"""


def test_a_marked_test_replays_its_own_clients_without_asking_for_the_fixture(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("test_it/test_marked.yaml", "a")
    llmx_project.record("test_it/test_with_fixture.yaml", "b")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        UNWIRED
        + """

@pytest.mark.llmx_cassette(record_mode="none")
def test_marked():
    assert ask("a") == "a v1"


def test_with_fixture(llmx_cassette):
    assert ask("b") == "b v1"
    assert [request.url.host for request in llmx_cassette.requests] == ["llm.test"]


def test_unmarked_is_left_alone():
    assert ask("c") == "<error connection_failed>"
"""
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(passed=3)
    assert llmx_project.upstream_calls() == []


def test_a_miss_the_apps_client_swallowed_still_fails_the_test(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record("test_it/test_swallowed.yaml", "a")
    llmx_project.write(
        UNWIRED
        + """

@pytest.mark.llmx_cassette(record_mode="none", allow_unplayed=True)
def test_swallowed():
    try:
        ask("not recorded")
    except Exception:
        pass
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    assert failures(result) == {"test_swallowed"}
    result.stdout.fnmatch_lines(["*no recorded interaction matches POST http://llm.test/v1*"])


def test_intercept_false_leaves_the_tests_own_clients_alone(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record("test_it/test_alone.yaml", "a")
    llmx_project.write(
        UNWIRED
        + """

@pytest.mark.llmx_cassette(record_mode="none", intercept=False, allow_unplayed=True)
def test_alone(llmx_cassette):
    assert ask("a") == "<error connection_failed>"
    assert llmx_cassette.requests == []
"""
    )

    llmx_project.run().assert_outcomes(passed=1)


def test_a_miss_a_buffered_client_swallowed_still_fails_the_test(
    llmx_project: "LlmxProject",
) -> None:
    """requests goes through the cassette by vcrpy's patching: its misses count too."""
    llmx_project.record("test_it/test_swallowed_by_requests.yaml", "a")
    llmx_project.write(
        """
import pytest
import requests


@pytest.mark.llmx_cassette(record_mode="none", allow_unplayed=True)
def test_swallowed_by_requests():
    try:
        requests.post("http://llm.test/v1/chat/completions", json={"model": "other"})
    except Exception:
        pass
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    assert failures(result) == {"test_swallowed_by_requests"}
    result.stdout.fnmatch_lines(["*no recorded interaction matches POST http://llm.test/v1*"])
