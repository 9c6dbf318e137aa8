"""The `llmx_config` fixture: overridden in a conftest or a test module, it gives the
defaults of every `llmx_cassette` in its scope, which the marker overrides; a wrong key or
value fails the test naming the key."""

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LlmxProject

OFFLINE_CONFTEST = """
import pytest

@pytest.fixture
def llmx_config(llmx_config):
    return {**llmx_config, "record_mode": "none"}
"""


def test_a_conftest_llmx_config_applies_to_its_folder_and_the_marker_overrides_it(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.write(OFFLINE_CONFTEST, "offline/conftest")
    llmx_project.write(
        """
        import pytest

        def test_default(ask):
            ask("a")

        @pytest.mark.llmx_cassette(record_mode="once")
        def test_marked(ask):
            assert ask("b") == ["b v1"]
        """,
        "offline/test_offline",
    )
    llmx_project.write(
        """
        def test_default(ask):
            assert ask("c") == ["c v1"]
        """,
        "test_online",
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*record mode 'none' never records*", "FAILED offline/test_offline.py::test_default*"]
    )
    assert sorted(llmx_project.upstream_calls()) == ["b", "c"]
    assert llmx_project.exchanges("test_offline/test_marked.yaml") == [("b", "b v1")]
    assert llmx_project.exchanges("test_online/test_default.yaml") == [("c", "c v1")]
    assert not (llmx_project.cassettes / "test_offline" / "test_default.yaml").exists()


def test_a_module_llmx_config_applies_to_its_tests_and_the_marker_overrides_it(
    llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    for cassette in ("test_all/test_default", "test_all/test_marked", "test_plain/test_default"):
        llmx_project.record(f"{cassette}.yaml", "a")
    monkeypatch.setenv("LLMX_TEST_VERSION", "v2")
    llmx_project.write(
        """
        import pytest

        @pytest.fixture
        def llmx_config(llmx_config):
            return {**llmx_config, "record_mode": "all"}

        def test_default(ask):
            assert ask("a") == ["a v2"]

        @pytest.mark.llmx_cassette(record_mode="none")
        def test_marked(ask):
            assert ask("a") == ["a v1"]
        """,
        "test_all",
    )
    llmx_project.write(
        """
        def test_default(ask):
            assert ask("a") == ["a v1"]
        """,
        "test_plain",
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=3)
    assert llmx_project.upstream_calls() == ["a"]
    assert llmx_project.exchanges("test_all/test_default.yaml") == [("a", "a v2")]


def test_a_wrong_key_or_value_type_fails_the_test_naming_the_key(
    llmx_project: "LlmxProject",
) -> None:
    for module, config in {
        "test_mode": '{"record_mode": 3}',
        "test_speed": '{"speed": "fast"}',
        "test_skip": '{"match_ignore": "user"}',
        "test_unknown": '{"recordmode": "none"}',
    }.items():
        llmx_project.write(
            f"""
            import pytest

            @pytest.fixture
            def llmx_config():
                return {config}

            def test_it(llmx_cassette):
                pass
            """,
            module,
        )

    result = llmx_project.run()

    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines_random(
        [
            "*test_mode.py::test_it: llmx_cassette options (llmx_config and markers): "
            "record_mode: *",
            "*test_speed.py::test_it: llmx_cassette options (*): speed: *number*",
            "*test_skip.py::test_it: llmx_cassette options (*): match_ignore: *tuple*",
            "*test_unknown.py::test_it: llmx_cassette options (*): recordmode: *",
        ]
    )
