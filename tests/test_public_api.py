"""The package's public face: what it exports, and what importing it costs."""

import subprocess
import sys

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
