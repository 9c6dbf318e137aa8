"""What only the LiteLLM proxy shows: its 400 for a context-window error, and that its
master key, sent as a bearer token on every request, never reaches a cassette."""

from pathlib import Path

import pytest
from live_support import LiveServer, Turn, assert_no_secrets, record, replay, user

from llmx_replay.models import ErrorEvent

pytestmark = pytest.mark.live


def test_context_window_error_is_a_400(litellm: LiveServer, tmp_path: Path) -> None:
    """A 400 is final: one request, one recorded interaction, the same error on replay."""
    provider, cassette = litellm.provider(), tmp_path / "400.yaml"
    turn = Turn("mock-ctx", user("Say hi"))

    live = record(provider, turn, cassette)
    replayed = replay(provider, turn, cassette)

    assert replayed.events == live.events
    assert live.sleeps == []
    [error] = live.events
    assert isinstance(error, ErrorEvent)
    assert (error.kind, error.status) == ("unexpected_status", 400)
    assert "ContextWindowExceededError" in error.message
    [interaction] = assert_no_secrets(cassette, litellm).interactions
    assert interaction.response.status == 400


def test_master_key_is_scrubbed_everywhere(litellm: LiveServer, tmp_path: Path) -> None:
    """The proxy checks the master key (a wrong one is refused), and the recordings of
    both the refusal and a success hold neither key."""
    cassette = tmp_path / "keys.yaml"
    wrong = litellm.provider(experimental_bearer_token="sk-llmx-wrong-" + "0" * 32)
    turn = Turn("mock-gpt", user("Say hi"))

    refused = record(wrong.model_copy(update={"request_max_retries": 0}), turn, cassette)
    served = record(litellm.provider(), turn, cassette)

    assert isinstance(refused.events[-1], ErrorEvent)
    assert not isinstance(served.events[-1], ErrorEvent)
    text = cassette.read_text()
    assert "sk-llmx-wrong-" not in text
    loaded = assert_no_secrets(cassette, litellm)
    assert [i.response.status for i in loaded.interactions][-1] == 200
    assert loaded.interactions[0].response.status >= 400
