"""What the benchmarks share: rounds in rotated order, medians, per-round ratios, versions.

The method (that of ``shared/notes/performance-baseline.md``): the machines are shared and
noisy, so every figure is stated against a baseline measured in the same run.

* Each round runs every method once, in an order rotated by one each round (`rotations`),
  so that no method always runs first, or always right after the same other one.
* In-process timings (`timed`, `run_rounds`) leave GC enabled, as in real tests, and run
  ``gc.collect()`` before each timed call, outside the timing, so that no method pays for
  another's garbage.
* A method's figure is the median over rounds; a ratio (or difference) between two methods
  is the median of the per-round ratios (`median_ratio`, `median_difference`), each round's
  pair measured under the same load.

The scripts run as ``python benchmarks/<name>.py`` from the repository root; each puts the
repository root first on ``sys.path`` (to benchmark the working tree's ``llmx_replay``) and
this folder next, and imports this module as ``_harness``.
"""

import gc
import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

__all__ = [
    "Method",
    "cpus",
    "median_difference",
    "median_ratio",
    "print_versions",
    "rotations",
    "run_rounds",
    "timed",
]

Method = Callable[[], object]
"""One timed call of a benchmarked method; what it returns is ignored."""

_T = TypeVar("_T")


def rotations(items: Sequence[_T], rounds: int) -> Iterator[list[_T]]:
    """The order of each of `rounds` rounds: `items`, rotated left by one more each round."""
    for index in range(rounds):
        shift = index % len(items) if items else 0
        yield [*items[shift:], *items[:shift]]


def timed(method: Method) -> float:
    """The seconds one call of `method` takes; ``gc.collect()`` runs first, untimed."""
    gc.collect()
    start = time.perf_counter()
    method()
    return time.perf_counter() - start


def run_rounds(
    methods: Mapping[str, Method], rounds: int, limits: Mapping[str, int] | None = None
) -> dict[str, list[float]]:
    """Each method's time in each round (`timed`), every method once a round, in `rotations`.

    A method named in `limits` runs in that many first rounds only (a slow one, capped), so
    its list is shorter: its i-th time still pairs with the others' i-th (`median_ratio`
    with ``strict=False``).
    """
    limits = limits or {}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for index, order in enumerate(rotations(list(methods), rounds)):
        for name in order:
            if index < limits.get(name, rounds):
                times[name].append(timed(methods[name]))
    return times


def median_ratio(
    numerators: Sequence[float], denominators: Sequence[float], *, strict: bool = True
) -> float:
    """The median over rounds of numerator / denominator, the i-th of each from round i.

    With ``strict=False`` one side may hold fewer rounds (see `run_rounds`' `limits`): the
    rounds that both have are paired.
    """
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=strict))


def median_difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> float:
    """The median over rounds (or pairs) of minuend - subtrahend, the i-th of each paired."""
    return statistics.median(a - b for a, b in zip(minuends, subtrahends, strict=True))


def cpus() -> int:
    """The CPUs this process may run on (all the machine's where that cannot be told)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def print_versions(dists: Iterable[str], *, libyaml: bool = False) -> None:
    """Print the run's date, Python, the benchmarked ``llmx_replay`` (and its folder: it must
    be the working tree's), each of `dists`' versions, and the machine; with `libyaml`,
    whether PyYAML has its C extension.
    """
    import llmx_replay  # imported here: the script has put the working tree on sys.path

    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"python {platform.python_version()} ({platform.python_implementation()})")
    print(f"llmx_replay {llmx_replay.__version__} ({Path(llmx_replay.__file__).parent})")
    for dist in dists:
        print(f"{dist} {_version(dist)}")
    yaml_note = ""
    if libyaml:
        import yaml

        yaml_note = f"libyaml: {yaml.__with_libyaml__}; "
    print(f"{yaml_note}gc enabled: {gc.isenabled()}; machine: {platform.machine()}, {cpus()} CPUs")
