"""A test's cassette is ``cassettes/<test module>/<test name>.yaml`` by default: a test in a
class is ``Class.test``, a parametrized test keeps its id, and what a file name cannot hold is
replaced with ``-``."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import LlmxProject


def test_cassettes_are_named_after_the_module_class_test_and_parameters(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.write(
        """
        import pytest

        def test_plain(ask):
            assert ask("plain") == ["plain v1"]

        class TestOuter:
            def test_method(self, ask):
                assert ask("method") == ["method v1"]

            class TestInner:
                def test_nested(self, ask):
                    assert ask("nested") == ["nested v1"]

        @pytest.mark.parametrize("number", [1, 2])
        def test_numbered(ask, number):
            assert ask(f"n{number}") == [f"n{number} v1"]

        @pytest.mark.parametrize("text", ["a/b", 'q?"<>|*:'], ids=lambda text: text)
        def test_unsafe(ask, text):
            assert ask(text) == [f"{text} v1"]
        """,
        "test_names",
    )
    llmx_project.write(
        """
        def test_deep(ask):
            assert ask("deep") == ["deep v1"]
        """,
        "sub/folder/test_deeper",
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=8)
    written = sorted(
        path.relative_to(llmx_project.cassettes).as_posix()
        for path in llmx_project.cassettes.rglob("*")
        if path.is_file()
    )
    assert written == [
        "test_deeper/test_deep.yaml",
        "test_names/TestOuter.TestInner.test_nested.yaml",
        "test_names/TestOuter.test_method.yaml",
        "test_names/test_numbered[1].yaml",
        "test_names/test_numbered[2].yaml",
        "test_names/test_plain.yaml",
        "test_names/test_unsafe[a-b].yaml",
        "test_names/test_unsafe[q-------].yaml",
    ]
    assert llmx_project.exchanges("test_names/test_unsafe[a-b].yaml") == [("a/b", "a/b v1")]


def test_same_named_modules_of_two_packages_get_their_own_cassettes(
    llmx_project: "LlmxProject",
) -> None:
    for package, text in (("alpha", "a"), ("beta", "b")):
        llmx_project.write("", f"{package}/__init__")
        llmx_project.write(
            f"""
            def test_turn(ask):
                assert ask("{text}") == ["{text} v1"]
            """,
            f"{package}/test_same",
        )

    result = llmx_project.run()

    result.assert_outcomes(passed=2)
    assert llmx_project.upstream_calls() == ["a", "b"]
    assert llmx_project.exchanges("alpha/test_same/test_turn.yaml") == [("a", "a v1")]
    assert llmx_project.exchanges("beta/test_same/test_turn.yaml") == [("b", "b v1")]


def test_under_import_mode_importlib_modules_are_named_by_their_path(
    llmx_project: "LlmxProject",
) -> None:
    for folder, text in (("alpha", "a"), ("beta", "b")):
        llmx_project.write(
            f"""
            def test_turn(ask):
                assert ask("{text}") == ["{text} v1"]
            """,
            f"{folder}/test_same",
        )

    result = llmx_project.run("--import-mode=importlib")

    result.assert_outcomes(passed=2)
    assert llmx_project.exchanges("alpha/test_same/test_turn.yaml") == [("a", "a v1")]
    assert llmx_project.exchanges("beta/test_same/test_turn.yaml") == [("b", "b v1")]
