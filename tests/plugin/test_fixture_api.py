"""What the `llmx_cassette` fixture offers a test: its transport for the test's own httpx
client, the requests sent and their bodies, clients whose provider and model default to the
cassette's, a placeholder key when only replaying, ``play()``; and the plugin's ``--help``."""

import json
from typing import TYPE_CHECKING

import pytest

from llmx_replay.models.prompt import ProviderSettings

if TYPE_CHECKING:
    from conftest import LlmxProject

TURN = "test_it/test_turn.yaml"
PROVIDER_ELSEWHERE = ProviderSettings(base_url="http://other.test/v9")


def test_the_transport_serves_the_tests_own_httpx_client_and_keeps_its_requests(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.write(
        """
        import httpx
        import pytest

        URL = "http://llm.test/v1/chat/completions"
        BODY = {"model": "m", "messages": [{"role": "user", "content": "a"}], "stream": True}

        def test_turn(llmx_cassette):
            with pytest.raises(LookupError):
                llmx_cassette.request_body()
            with httpx.Client(transport=llmx_cassette.transport) as client:
                first = client.post(URL, json=BODY)
                second = client.post(URL, content=b"plain")
            assert "a v1" in first.text
            assert "plain v1" in second.text
            assert [str(request.url) for request in llmx_cassette.requests] == [URL, URL]
            assert llmx_cassette.request_bodies() == [BODY, "plain"]
            assert llmx_cassette.request_body() == "plain"
            assert llmx_cassette.request_body(0) == BODY
        """
    )

    recording = llmx_project.run()
    recording.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["a", "plain"]
    recorded = [
        interaction.request.body for interaction in llmx_project.cassette(TURN).interactions
    ]
    assert len(recorded) == 2
    assert recorded[0] is not None
    assert json.loads(recorded[0]) == {
        "model": "m",
        "messages": [{"role": "user", "content": "a"}],
        "stream": True,
    }
    assert recorded[1] == b"plain"

    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    replaying = llmx_project.run("--llmx-record-mode=none")
    replaying.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == []


def test_provider_and_model_default_to_the_cassettes_when_replaying(
    llmx_project: "LlmxProject",
) -> None:
    other = llmx_project.record(TURN, "a", provider=PROVIDER_ELSEWHERE, model="m-9")
    before = other.read_bytes()
    llmx_project.write(
        """
        import pytest
        from conftest import prompt, text_of
        from llmx_replay import InputError
        from llmx_replay.models import ProviderSettings

        @pytest.fixture
        def llmx_config():
            return {}

        def test_turn(llmx_cassette):
            with llmx_cassette.client() as client:
                assert text_of(client.stream(prompt("a"))) == "a v1"
            assert str(llmx_cassette.requests[0].url) == "http://other.test/v9/chat/completions"
            assert llmx_cassette.request_body()["model"] == "m-9"

        def test_no_cassette(llmx_cassette):
            with pytest.raises(InputError, match="no provider given"):
                llmx_cassette.client()
            with pytest.raises(InputError, match="no model given"):
                llmx_cassette.client(ProviderSettings(base_url="http://llm.test/v1"))
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=2)
    assert other.read_bytes() == before
    assert not (llmx_project.cassettes / "test_it" / "test_no_cassette.yaml").exists()


def test_an_unset_key_variable_is_a_placeholder_when_replaying_and_required_when_recording(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMX_TEST_KEY", raising=False)
    llmx_project.record("test_it/test_replayed.yaml", "a")
    llmx_project.write(
        """
        import os

        import pytest
        from conftest import PROVIDER, prompt, text_of
        from llmx_replay import MissingEnvVarError

        KEYED = PROVIDER.model_copy(update={"env_key": "LLMX_TEST_KEY"})

        def test_replayed(llmx_cassette):
            client = llmx_cassette.client(KEYED)
            assert text_of(client.stream(prompt("a"))) == "a v1"
            assert "LLMX_TEST_KEY" not in os.environ

        def test_recorded(llmx_cassette):
            client = llmx_cassette.client(KEYED)
            with pytest.raises(MissingEnvVarError, match="LLMX_TEST_KEY"):
                list(client.stream(prompt("a")))
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=2)
    assert llmx_project.upstream_calls() == []
    assert not (llmx_project.cassettes / "test_it" / "test_recorded.yaml").exists()


def test_play_replays_every_turn_in_the_mode_asked(llmx_project: "LlmxProject") -> None:
    llmx_project.record(TURN, "a", "b")
    llmx_project.write(
        """
        from llmx_replay.models.events import OutputItemDone

        def test_turn(llmx_cassette):
            aggregated = llmx_cassette.play(mode="aggregated")
            assert [event.type for event in aggregated] == ["output_item_done", "completed"] * 2
            texts = [
                event.item.content[0].text
                for event in aggregated
                if isinstance(event, OutputItemDone)
            ]
            assert texts == ["a v1", "b v1"]
            streamed = llmx_cassette.play()
            turn = ["output_item_added", "output_text_delta", "output_item_done", "completed"]
            assert [event.type for event in streamed] == turn * 2
            assert [e.delta for e in streamed if e.type == "output_text_delta"] == ["a v1", "b v1"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(passed=1)


def test_play_without_a_cassette_raises_input_error_naming_the_path(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.write(
        """
        import pytest
        from llmx_replay import InputError

        def test_turn(llmx_cassette):
            with pytest.raises(InputError, match="does not exist") as caught:
                llmx_cassette.play()
            assert caught.value.source == str(llmx_cassette.path)
            assert llmx_cassette.path.as_posix().endswith("/cassettes/test_it/test_turn.yaml")
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1)


def test_help_shows_the_llmx_replay_option_group(llmx_project: "LlmxProject") -> None:
    result = llmx_project.run("--help")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "llmx-replay: record and replay LLM streams:",
            "  --llmx-record-mode={none,once,new_episodes,all,rewrite}",
            "*--llmx-cassette-dir=DIR*",
        ]
    )
