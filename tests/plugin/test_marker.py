"""The `llmx_cassette` marker: its keywords (name, record_mode, faults, pacing and speed,
match_ignore, and allow_unplayed in test_unplayed_and_missing.py), which marker wins between
function, class and module, what a wrong marker does, and its registration."""

from typing import TYPE_CHECKING

import pytest

from llmx_replay.cassette import load_cassette, save_cassette

if TYPE_CHECKING:
    from conftest import LlmxProject


def test_name_places_the_cassette_under_the_folder_adding_yaml_when_it_has_no_suffix(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("shared.yaml", "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        import pytest

        @pytest.mark.llmx_cassette(name="sub/dir/turn")
        def test_in_subfolders(ask):
            assert ask("b") == ["b v2"]

        @pytest.mark.llmx_cassette(name="kept.yml")
        def test_with_suffix(ask):
            assert ask("c") == ["c v2"]

        @pytest.mark.llmx_cassette(name="shared")
        def test_shared_one(ask):
            assert ask("a") == ["a v1"]

        @pytest.mark.llmx_cassette(name="shared")
        def test_shared_two(ask):
            assert ask("a") == ["a v1"]
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=4)
    assert llmx_project.upstream_calls() == ["b", "c"]
    assert llmx_project.exchanges("sub/dir/turn.yaml") == [("b", "b v2")]
    assert llmx_project.exchanges("kept.yml") == [("c", "c v2")]
    assert not (llmx_project.cassettes / "kept.yml.yaml").exists()
    assert not (llmx_project.cassettes / "test_it").exists()


def test_a_json_named_cassette_is_replayed_but_never_recorded_into(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.write(
        """
        import pytest

        @pytest.mark.llmx_cassette(name="turn.json")
        def test_turn(ask):
            ask("a")
        """
    )

    result = llmx_project.run("--llmx-record-mode=once")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*turn.json: name: llmx-replay records cassettes as YAML*"])
    assert llmx_project.upstream_calls() == []
    assert not (llmx_project.cassettes / "turn.json").exists()


def test_record_mode_in_the_marker_overrides_the_default(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    llmx_project.record("test_it/test_turn.yaml", "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        import pytest

        @pytest.mark.llmx_cassette(record_mode="new_episodes")
        def test_turn(ask):
            assert ask("a", "b") == ["a v1", "b v2"]
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1)
    assert llmx_project.upstream_calls() == ["b"]
    assert llmx_project.exchanges("test_it/test_turn.yaml") == [("a", "a v1"), ("b", "b v2")]


def test_faults_break_the_replayed_stream(llmx_project: "LlmxProject") -> None:
    llmx_project.record("test_it/test_cut.yaml", "a")
    llmx_project.record("test_it/test_status.yaml", "a")
    llmx_project.write(
        """
        import pytest
        from llmx_replay.transports import Faults

        @pytest.mark.llmx_cassette(faults=Faults(cut_after=1))
        def test_cut(ask):
            assert ask("a") == ["a v1<error stream>"]

        @pytest.mark.llmx_cassette(faults=Faults(status=400))
        def test_status(ask):
            assert ask("a") == ["<error unexpected_status>"]
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(passed=2)


def test_pacing_and_speed_replay_the_recorded_gaps(llmx_project: "LlmxProject") -> None:
    # A 2 s gap before the second chunk, against a 1.5 s idle timeout: replayed at the
    # recorded pace it stalls the stream; twice as fast, or instantly, it does not.
    path = llmx_project.record("paced.yaml", "a")
    cassette = load_cassette(path)
    response = cassette.interactions[0].response
    sizes = [len(piece) for piece in response.event_chunks()]
    gapped = response.model_copy(
        update={"chunks": tuple((size, 10.0 if i == 0 else 2010.0) for i, size in enumerate(sizes))}
    )
    interaction = cassette.interactions[0].model_copy(update={"response": gapped})
    save_cassette(path, cassette.model_copy(update={"interactions": [interaction]}))
    llmx_project.write(
        """
        import pytest
        from conftest import PROVIDER, prompt, text_of

        IMPATIENT = PROVIDER.model_copy(update={"stream_idle_timeout_ms": 1500})

        def ask(llmx_cassette):
            with llmx_cassette.client(IMPATIENT) as client:
                return text_of(client.stream(prompt("a")))

        @pytest.mark.llmx_cassette(name="paced", pacing="recorded")
        def test_recorded_pace(llmx_cassette):
            assert ask(llmx_cassette).endswith("<error idle_timeout>")

        @pytest.mark.llmx_cassette(name="paced", pacing="recorded", speed=2.0)
        def test_twice_as_fast(llmx_cassette):
            assert ask(llmx_cassette) == "a v1"

        @pytest.mark.llmx_cassette(name="paced")
        def test_instant(llmx_cassette):
            assert ask(llmx_cassette) == "a v1"
        """
    )

    result = llmx_project.run("--llmx-record-mode=none")

    result.assert_outcomes(passed=3)


def test_match_ignore_leaves_a_body_field_out_of_matching(llmx_project: "LlmxProject") -> None:
    llmx_project.record("turn.yaml", "a")
    llmx_project.write(
        """
        import pytest
        from conftest import PROVIDER, prompt, text_of

        SMALLER = PROVIDER.model_copy(update={"max_tokens": 100})

        @pytest.mark.llmx_cassette(name="turn", match_ignore=("max_tokens",))
        def test_ignored(llmx_cassette):
            client = llmx_cassette.client(SMALLER)
            assert text_of(client.stream(prompt("a"))) == "a v1"

        @pytest.mark.llmx_cassette(name="turn", allow_unplayed=True)
        def test_compared(llmx_cassette):
            list(llmx_cassette.client(SMALLER).stream(prompt("a")))
        """
    )

    result = llmx_project.run("--llmx-record-mode=none", "-rA")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_compared _*",
            "*no recorded interaction matches POST http://llm.test/v1/chat/completions*",
            "*request.body.max_tokens*",
        ]
    )
    assert llmx_project.upstream_calls() == []


def test_the_closest_marker_wins_over_its_class_and_module(llmx_project: "LlmxProject") -> None:
    module_cassette = llmx_project.record("module.yaml", "a")
    before = module_cassette.read_bytes()
    llmx_project.write(
        """
        import pytest

        pytestmark = pytest.mark.llmx_cassette(name="module", record_mode="none")

        def test_module(ask):
            assert ask("a") == ["a v1"]

        @pytest.mark.llmx_cassette(name="klass", record_mode="once")
        class TestClass:
            def test_class(self, ask):
                assert ask("b") == ["b v1"]

            @pytest.mark.llmx_cassette(name="function")
            def test_function(self, ask):
                assert ask("c") == ["c v1"]
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=3)
    assert llmx_project.upstream_calls() == ["b", "c"]
    assert module_cassette.read_bytes() == before
    assert llmx_project.exchanges("klass.yaml") == [("b", "b v1")]
    assert llmx_project.exchanges("function.yaml") == [("c", "c v1")]


def test_an_unknown_keyword_or_a_positional_argument_fails_that_test_only(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.write(
        """
        import pytest

        @pytest.mark.llmx_cassette(record_mod="none")
        def test_misspelt(llmx_cassette):
            pass

        @pytest.mark.llmx_cassette("none")
        def test_positional(llmx_cassette):
            pass

        @pytest.mark.llmx_cassette(record_mode="sometimes")
        def test_wrong_value(llmx_cassette):
            pass

        def test_fine(ask):
            assert ask("a") == ["a v1"]
        """
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*test_it.py::test_misspelt: llmx_cassette options (*): record_mod: Extra inputs*",
            "*test_it.py::test_positional: the llmx_cassette marker takes keyword arguments only*",
            "*test_it.py::test_wrong_value: llmx_cassette options (*): record_mode: *'none'*",
        ]
    )


def test_the_marker_is_registered(llmx_project: "LlmxProject") -> None:
    llmx_project.write(
        """
        import pytest

        @pytest.mark.llmx_cassette(name="turn")
        def test_turn(ask):
            assert ask("a") == ["a v1"]
        """
    )

    result = llmx_project.run("--strict-markers")

    result.assert_outcomes(passed=1)
    assert llmx_project.exchanges("turn.yaml") == [("a", "a v1")]
