"""The package's public face: what it exports, and what importing it costs."""

import ast
import inspect
import pickle
import subprocess
import sys

import pytest

import llmx_replay
import llmx_replay.models


def test_all_is_sorted_and_complete() -> None:
    for module in (llmx_replay, llmx_replay.models):
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


def test_importing_the_package_loads_no_test_or_cli_framework() -> None:
    """Only the pytest plugin, the syrupy extension and the CLI may import those.

    httpx itself imports click when it is installed (for its own CLI), so that one is
    judged against what httpx alone loads.
    """
    code = (
        "import sys, httpx; before = set(sys.modules); "
        "import llmx_replay, llmx_replay.models; "
        "print(sorted(m for m in ('click', 'pytest', 'syrupy', 'vcr', 'yaml') "
        "if m in sys.modules and m not in before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def loaded_by(statement: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` the statement loads, in a fresh interpreter."""
    code = f"import sys; {statement}; print(sorted(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return ast.literal_eval(result.stdout.strip())


HEAVY = ("pydantic.main", "yaml", "syrupy", "llmx_replay.models", "llmx_replay.cassette")


def test_importing_the_package_loads_its_names_only_on_first_use() -> None:
    """`import llmx_replay` builds no pydantic model: each name loads its module when used."""
    assert loaded_by("import llmx_replay", HEAVY) == []
    assert loaded_by("from llmx_replay import ChatClient", HEAVY) == [
        "llmx_replay.models",
        "pydantic.main",
    ]


def test_the_pytest_plugin_loads_the_cassette_machinery_only_for_a_test_that_asks() -> None:
    """pytest loads the plugin in every run; what it imports then is only what its options
    need, not the models, PyYAML or the syrupy extension."""
    assert loaded_by("import pytest; import llmx_replay.pytest_plugin", HEAVY) == []


def test_all_names_exactly_the_public_names_the_package_defines() -> None:
    """Every public name of the package is in `__all__`, and nothing else: the names its
    own imports and lazy loader give, less modules and private helpers."""
    defined = {
        name
        for name in (*vars(llmx_replay), *llmx_replay._LAZY)
        if not name.startswith("_")
        and not inspect.ismodule(getattr(llmx_replay, name))
        and name not in ("TYPE_CHECKING", "Any", "FunctionType", "importlib")
    }

    assert set(llmx_replay.__all__) - {"__version__"} == defined


def test_what_a_test_author_needs_is_exported() -> None:
    needed = {
        "ChatClient",
        "AsyncChatClient",
        "CassetteSession",
        "CassetteOptions",
        "Prompt",
        "ProviderSettings",
        "ResponseEvent",
        "ReplayTransport",
        "CassetteTransport",
        "RecordingTransport",
        "for_httpx2",
        "ReplayOptions",
        "Faults",
        "RecordMode",
        "LlmxReplayError",
        "InputError",
        "OptionError",
        "NoMatchingInteraction",
    }

    assert needed <= set(llmx_replay.__all__)


@pytest.mark.parametrize("name", llmx_replay.__all__)
def test_exported_classes_and_functions_belong_to_the_package(name: str) -> None:
    """As httpx does: `llmx_replay.ChatClient`, not `llmx_replay._client.ChatClient`."""
    value = getattr(llmx_replay, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__ == "llmx_replay"


def test_exported_errors_survive_pickling_under_their_public_name() -> None:
    error = llmx_replay.OptionError("stall_seconds", "applies to {} only", ["stall_after"])

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is llmx_replay.OptionError
    assert (copy.option, copy.mentions, str(copy)) == (
        "stall_seconds",
        ("stall_after",),
        "stall_seconds: applies to stall_after only",
    )


def test_a_miss_survives_pickling_with_its_data() -> None:
    difference = llmx_replay.FieldDifference(
        "request.body.temperature", llmx_replay.Absence.ABSENT, 0.5
    )
    miss = llmx_replay.NoMatchingInteraction(
        "c.yaml", "POST", "http://llm.test/v1", b"{}", 0, [difference], True, "why"
    )

    copy = pickle.loads(pickle.dumps(miss))

    assert (copy.closest, copy.differences, copy.more_differences, copy.reason) == (
        0,
        (difference,),
        True,
        "why",
    )
    assert copy.differences[0].recorded is llmx_replay.Absence.ABSENT
    assert str(copy) == str(miss)


def test_names_loaded_on_first_use_are_listed_before_they_are_loaded() -> None:
    code = (
        "import llmx_replay, sys; "
        "print('CassetteSession' in dir(llmx_replay), 'llmx_replay.harness' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["True", "False"]
