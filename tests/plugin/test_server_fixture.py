"""The `llmx_server` fixture: the test's cassette over HTTP, for clients the test does not wire.

The inner tests talk to the fixture's URL with a `ChatClient` of their own, as a program in
another process or language would: nothing routes it, it only knows the URL.
"""

from typing import TYPE_CHECKING

import pytest
from plugin_support import exchanges, failures, record_cassette

from llmx_replay import CassetteServer

if TYPE_CHECKING:
    from conftest import LlmxProject

AT_THE_URL = """
import os

import pytest
from conftest import MODEL, prompt, text_of

from llmx_replay import ChatClient
from llmx_replay.models.prompt import ProviderSettings


def ask_at(url, text):
    provider = ProviderSettings(base_url=url + "/v1", request_max_retries=0)
    with ChatClient(provider, MODEL) as client:
        return text_of(client.stream(prompt(text)))
"""


def test_the_server_answers_from_the_tests_cassette_by_its_base_url(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record("test_it/test_served.yaml", "a", "b")
    llmx_project.write(
        AT_THE_URL
        + """

def test_served(llmx_server):
    assert llmx_server.startswith("http://127.0.0.1:")
    assert [ask_at(llmx_server, "b"), ask_at(llmx_server, "a")] == ["b v1", "a v1"]
"""
    )

    result = llmx_project.run("-p", "no:randomly")

    result.assert_outcomes(passed=1)
    assert not (llmx_project.path / "upstream.log").exists()


def test_a_request_with_no_recording_fails_the_test_though_the_client_took_the_error(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record("test_it/test_unrecorded.yaml", "a")
    llmx_project.write(
        AT_THE_URL
        + """

def test_unrecorded(llmx_server):
    # The client turns the 404 into an error event; the test would pass on its own.
    assert ask_at(llmx_server, "not recorded") == "<error unexpected_status>"
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    assert failures(result) == {"test_unrecorded"}
    result.stdout.fnmatch_lines(
        ["*llmx_server: *test_unrecorded.yaml: no recorded interaction matches*"]
    )
    result.stdout.fnmatch_lines(['*requested "not recorded"*'])


def test_the_server_records_through_its_upstream_origin_into_the_tests_cassette(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    provider_cassette = record_cassette(llmx_project.path / "provider.yaml", "a", version="live")
    llmx_project.write(
        AT_THE_URL
        + """

@pytest.mark.llmx_cassette(server_upstream=os.environ["PROVIDER_ORIGIN"])
def test_recorded(llmx_server):
    assert ask_at(llmx_server, "a") == "a live"
"""
    )
    # The provider: another server, replaying what it would answer.
    with CassetteServer(provider_cassette) as provider:
        monkeypatch.setenv("PROVIDER_ORIGIN", provider.url)
        recorded = llmx_project.run("--llmx-record-mode=once")

    recorded.assert_outcomes(passed=1)
    # The run's summary says what the server recorded, as for llmx_cassette.
    recorded.stdout.fnmatch_lines(["recorded: 1", "  cassettes/test_it/test_recorded.yaml"])
    cassette = llmx_project.cassettes / "test_it" / "test_recorded.yaml"
    assert exchanges(cassette, complete=True) == [("a", "a live")]
    # With the provider gone, the test replays what its server recorded.
    replayed = llmx_project.run("--llmx-record-mode=none")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["replayed: 1"])


def test_a_bad_server_upstream_fails_the_test_naming_it(llmx_project: "LlmxProject") -> None:
    llmx_project.write(
        AT_THE_URL
        + """

@pytest.mark.llmx_cassette(server_upstream="http://127.0.0.1:9/v1")
def test_bad_origin(llmx_server):
    pass
"""
    )

    result = llmx_project.run("--llmx-record-mode=once")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*llmx_server: upstream: an origin only*"])


def test_a_marked_test_with_the_server_records_once_not_through_the_cassette_too(
    llmx_project: "LlmxProject",
) -> None:
    """A marker gives a test its `llmx_cassette`, unless the test serves its cassette."""
    llmx_project.record("test_it/test_marked.yaml", "a")
    llmx_project.write(
        AT_THE_URL
        + """

@pytest.mark.llmx_cassette(record_mode="none")
def test_marked(llmx_server, request):
    assert ask_at(llmx_server, "a") == "a v1"
    assert "llmx_cassette" not in request.fixturenames
"""
    )

    llmx_project.run().assert_outcomes(passed=1)


def test_a_test_asking_for_both_fixtures_fails_saying_they_share_its_cassette(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.write(
        """
def test_both(llmx_server, llmx_cassette):
    pass
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*llmx_cassette and llmx_server both use the test's cassette*"])


def test_recordings_left_unplayed_fail_the_test_unless_allowed(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record("test_it/test_strict.yaml", "a", "b")
    llmx_project.record("test_it/test_lenient.yaml", "a", "b")
    llmx_project.write(
        AT_THE_URL
        + """

def test_strict(llmx_server):
    assert ask_at(llmx_server, "a") == "a v1"


@pytest.mark.llmx_cassette(allow_unplayed=True)
def test_lenient(llmx_server):
    assert ask_at(llmx_server, "a") == "a v1"
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1, failed=1)
    assert failures(result) == {"test_strict"}
    result.stdout.fnmatch_lines(
        ["*llmx_server: *test_strict.yaml: 1 recorded interaction(s) never played*"]
    )


def test_a_cassette_older_than_max_age_fails_the_test_saying_how_old(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = llmx_project.record("test_it/test_old.yaml", "a")
    cassette.write_text(
        cassette.read_text().replace(
            cassette.read_text().split("recorded_at: ", 1)[1].split("\n", 1)[0],
            "'2020-01-01T00:00:00+00:00'",
        )
    )
    llmx_project.write(
        AT_THE_URL
        + """

@pytest.mark.llmx_cassette(max_age=86400)
def test_old(llmx_server):
    pass
"""
    )
    monkeypatch.setenv("CI", "1")

    result = llmx_project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*llmx_server: *test_old.yaml: metadata.recorded_at: recorded*"])
