"""`llmx-replay play` on a long raw SSE body, against a floor process that only parses it.

What is measured, per body size (100k and 1M events by default), each a fresh process:

* ``floor``: ``python -c`` that reads the file, splits it at blank lines and runs
  ``orjson.loads`` on each event's data. It is what any player that parses the JSON must at
  least spend, interpreter start and the read included, as ``play``'s figure includes them.
* ``play --format text`` and ``play --format jsonl`` (streaming mode, instant pacing, no
  faults), stdout to ``/dev/null``, run as ``python -m llmx_replay play FILE``: the working
  tree's package (or the one in ``--after PATH``), and with ``--before PATH`` also the
  package in PATH (a git worktree of the code before a change: ``git worktree add
  /tmp/play-before HEAD``), both in one run.

How (the method of ``benchmarks/_harness.py``):

* The body is `replay_throughput.generate_body`'s (seeded, OpenAI-shaped, ~325 B/event), as
  a raw SSE file. Generating 1M events takes minutes, so bodies are kept in ``--cache``.
* Each round runs every method once, in an order rotated by one each round. A method's time
  is the median over rounds; its ``x floor`` is the median of the per-round ratios of its
  time to the floor's in the same round, for wall time and for CPU time (user + system, of
  the process).
* Before the first round, each play is run once per size with its output kept: the package
  it imported is checked, its jsonl must end with ``completed``, and the before and after
  outputs must be the same bytes.
* The processes run in the cache folder, so that ``python -m`` (which puts the working
  folder first on ``sys.path``) imports the package that ``PYTHONPATH`` names.

Run from the repository root::

    python benchmarks/play_cli.py [--sizes 100000 1000000] [--rounds N]
        [--before /tmp/play-before] [--after PATH] [--cache DIR]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _harness import median_ratio, print_versions, rotations  # noqa: E402
from replay_throughput import generate_body  # noqa: E402

DEFAULT_SIZES = (100_000, 1_000_000)
DEFAULT_ROUNDS = {100_000: 7, 1_000_000: 3}
TARGET = 2.5
TARGET_EVENTS = 1_000_000
FORMATS = ("text", "jsonl")
FLOOR = "floor: read, split, orjson.loads (python -c)"
FLOOR_CODE = """\
import sys, orjson
with open(sys.argv[1], "rb") as file:
    body = file.read()
for block in body.split(b"\\n\\n"):
    if block.startswith(b"data: {"):
        orjson.loads(block[6:])
"""


@dataclass(frozen=True)
class Method:
    """One timed process: its command line; for a play, the package folder and the format."""

    command: list[str]
    package: Path | None = None
    output_format: str | None = None

    def environ(self) -> dict[str, str]:
        if self.package is None:
            return dict(os.environ)
        return {**os.environ, "PYTHONPATH": str(self.package)}


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def play_name(output_format: str, version: str) -> str:
    return f"play --format {output_format} ({version})"


def sse_file(cache: Path, events: int) -> Path:
    """The generated body of `events` events as a raw SSE file, generated once."""
    path = cache / f"body-{events}.sse"
    if not path.exists():
        print(f"generating {events:,} events into {path} ...", flush=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(generate_body(events).data)
        partial.replace(path)
    return path


def methods_for(path: Path, before: Path | None, after: Path) -> dict[str, Method]:
    methods = {FLOOR: Method([sys.executable, "-c", FLOOR_CODE, str(path)])}
    versions = {"after": after} if before is None else {"before": before, "after": after}
    for version, package in versions.items():
        for output_format in FORMATS:
            command = [sys.executable, "-m", "llmx_replay", "play", str(path)]
            methods[play_name(output_format, version)] = Method(
                [*command, "--format", output_format], package, output_format
            )
    return methods


def run_timed(method: Method, cwd: Path) -> Timing:
    """Wall and CPU seconds of one run of the process, its output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        method.command, cwd=cwd, env=method.environ(), stdout=subprocess.DEVNULL, check=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def check(methods: dict[str, Method], cwd: Path) -> None:
    """Each play imports its package, its jsonl ends with `completed`, before = after."""
    outputs: dict[str, bytes] = {}
    for name, method in methods.items():
        if method.package is None:
            continue
        imported = subprocess.run(
            [sys.executable, "-c", "import llmx_replay; print(llmx_replay.__file__)"],
            cwd=cwd,
            env=method.environ(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        expected = method.package / "llmx_replay" / "__init__.py"
        assert Path(imported) == expected, (name, imported, expected)
        output = subprocess.run(
            method.command, cwd=cwd, env=method.environ(), capture_output=True, check=True
        ).stdout
        if method.output_format == "jsonl":
            assert orjson.loads(output.splitlines()[-1])["type"] == "completed", name
        outputs[name] = output
    for output_format in FORMATS:
        before = outputs.get(play_name(output_format, "before"))
        after = outputs[play_name(output_format, "after")]
        assert before is None or before == after, f"--format {output_format}: outputs differ"


def bench_size(events: int, args: argparse.Namespace) -> dict[str, float]:
    """Run the rounds at one size and print its table; returns each play's wall x floor."""
    path = sse_file(args.cache, events)
    methods = methods_for(path, args.before, args.after)
    check(methods, args.cache)
    rounds = args.rounds or DEFAULT_ROUNDS.get(events, 3)
    times: dict[str, list[Timing]] = {name: [] for name in methods}
    for order in rotations(list(methods), rounds):
        for name in order:
            times[name].append(run_timed(methods[name], args.cache))
    floor = times[FLOOR]
    size_mb = path.stat().st_size / 1e6
    print(f"\n### {events:,} events ({size_mb:.0f} MB), {rounds} rounds\n")
    print("| method | median wall s | wall x floor | median CPU s | CPU x floor |")
    print("|---|---:|---:|---:|---:|")
    ratios: dict[str, float] = {}
    for name, timings in times.items():
        wall = statistics.median(timing.wall for timing in timings)
        cpu = statistics.median(timing.cpu for timing in timings)
        wall_ratio = median_ratio([t.wall for t in timings], [t.wall for t in floor])
        cpu_ratio = median_ratio([t.cpu for t in timings], [t.cpu for t in floor])
        ratios[name] = wall_ratio
        print(f"| {name} | {wall:.2f} | {wall_ratio:.2f} | {cpu:.2f} | {cpu_ratio:.2f} |")
    return {name: ratio for name, ratio in ratios.items() if name != FLOOR}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--rounds", type=int, help="rounds at every size (default: 7 / 3)")
    parser.add_argument(
        "--before",
        type=Path,
        help="a folder holding the package before a change (e.g. a git worktree), run too",
    )
    parser.add_argument(
        "--after",
        type=Path,
        default=ROOT,
        help="a folder holding the package after the change (default: the working tree)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "llmx-replay-play-cli",
        help="where the generated bodies are kept (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    for option in ("before", "after"):
        folder = getattr(args, option)
        if folder is not None:
            setattr(args, option, folder.resolve())
            if not (folder / "llmx_replay" / "__init__.py").exists():
                parser.error(f"--{option} {folder}: holds no llmx_replay package")
    args.cache.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print_versions(["orjson", "pydantic", "click", "httpx"])
    if args.before is not None:
        print(f"before: llmx_replay in {args.before}")
    print(f"after: llmx_replay in {args.after}")
    print(
        "\nmedian wall / CPU s: median over rounds; x floor: median of the per-round ratios"
        " to the floor process (lower is better)."
    )
    summary = []
    for events in args.sizes:
        ratios = bench_size(events, args)
        for output_format in FORMATS:
            before = ratios.get(play_name(output_format, "before"))
            line = f"{events:,} events, --format {output_format}: "
            line += f"{ratios[play_name(output_format, 'after')]:.2f}x the floor"
            line += "" if before is None else f" (before: {before:.2f}x)"
            if events == TARGET_EVENTS:
                passed = ratios[play_name(output_format, "after")] <= TARGET
                line += f"; target ≤ {TARGET:g}x: {'PASS' if passed else 'FAIL'}"
            summary.append(line)
    print(f"\n## play against the floor process (wall); target ≤ {TARGET:g}x at 1M events\n")
    for line in summary:
        print(f"- {line}")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
