"""Start-up costs: what importing llmx_replay, and having its pytest plugin installed, add.

Every figure comes from fresh interpreters, one per measurement, against a baseline measured
in the same rounds (`_harness.rotations`):

* ``import llmx_replay`` against ``import httpx, pydantic, orjson`` (the time of the import
  statement alone, measured inside the interpreter), and the first names a test uses,
  ``from llmx_replay import ChatClient, Prompt``;
* a pytest run of one test that uses no llmx-replay fixture, with the plugin and without it
  (``-p no:llmx_replay``): the whole run's wall time, of which the difference is the plugin's.

    python benchmarks/startup.py [--rounds N]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _harness import median_difference, median_ratio, print_versions, rotations  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

IMPORTS = {
    "import httpx, pydantic, orjson": "import httpx, pydantic, orjson",
    "import llmx_replay": "import llmx_replay",
    "from llmx_replay import ChatClient, Prompt": "from llmx_replay import ChatClient, Prompt",
}


def import_time(statement: str) -> float:
    """Seconds the statement takes in a fresh interpreter, timed inside it."""
    code = (
        f"import time; start = time.perf_counter(); {statement}; print(time.perf_counter() - start)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    return float(result.stdout)


def pytest_time(folder: Path, *options: str) -> float:
    """Wall seconds of a pytest run of the folder's one test."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *options,
        str(folder),
    ]
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, env=ENV, cwd=folder)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    rounds = parser.parse_args().rounds
    print_versions(["httpx", "pydantic", "orjson", "pytest", "syrupy"])

    with tempfile.TemporaryDirectory() as folder:
        tests = Path(folder)
        (tests / "test_plain.py").write_text("def test_plain():\n    assert True\n")
        methods: dict[str, Callable[[], float]] = {
            **{name: (lambda s=statement: import_time(s)) for name, statement in IMPORTS.items()},
            "pytest, plugin off": lambda: pytest_time(tests, "-p", "no:llmx_replay"),
            "pytest, plugin on": lambda: pytest_time(tests),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for order in rotations(list(methods), rounds):
            for name in order:
                times[name].append(methods[name]())

    print(f"\n{rounds} rounds, each method once a round in rotated order; medians\n")
    print("| measured | median ms |")
    print("|---|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) * 1e3:.1f} |")
    base = times["import httpx, pydantic, orjson"]
    print()
    for name in ("import llmx_replay", "from llmx_replay import ChatClient, Prompt"):
        print(f"- {name}: {median_ratio(times[name], base):.2f}x `import httpx, pydantic, orjson`")
    added = median_difference(times["pytest, plugin on"], times["pytest, plugin off"])
    print(f"- the plugin adds {added * 1e3:+.1f} ms to a pytest run that does not use it")


if __name__ == "__main__":
    main()
