"""Loading many-interaction cassettes: llmx_replay against vcrpy and cassetter, in one run.

Cassettes of 10, 100, 1,000 and 10,000 interactions, as ``record_replay.py`` makes them
(``make_exchanges``: distinct ~5 KB JSON prompts to one URL, each answered by a ~5 KB SSE
stream), recorded once by each tool:

* ours through ``RecordingTransport`` (one file, appended to as each exchange ends);
* vcrpy through its httpx patching (``record_mode="all"``);
* cassetter, when it is installed, by ``Cassette.record`` per exchange and one ``save``:
  recorded through its httpx interception, 2,000 interactions took 26 s (1,000 took 4.8 s),
  growing faster than the count. It keeps the same headers as through its interception,
  the request's less the secrets it drops. cassetter 0.16.1 cannot load the file of 10,000
  it writes (its YAML parser stops at 250,000 nodes): that size has no cassetter row.

Rows, each timed once a round:

* ``ours: parse``: ``load_cassette(path)``, which keeps nothing.
* ``ours: ReplayTransport(path), first``: the process's kept cassettes cleared first (untimed):
  reading the file, parsing it and finding each recorded request's key.
* ``ours: ReplayTransport(path), again``: the same unchanged file, read by a transport before.
* ``before: ...``: with ``--before TREE`` (a checkout of the code before, such as ``git worktree
  add /tmp/load-before HEAD``), ``load_cassette`` and ``ReplayTransport`` of that tree's
  ``llmx_replay``, imported beside the working tree's.
* ``vcrpy: deserialize``: ``vcr.serialize.deserialize(path.read_text(), yamlserializer)``.
* ``cassetter: load``: ``cassetter.Cassette(path, record_mode=NONE).load()``.

The method of ``benchmarks/_harness.py``: each round times every row once, in an order rotated
by one each round; ``gc.collect()`` runs before each timed call, outside the timing, and GC
stays enabled. A row's figure is its median over rounds; its ratio to another row is the
median of the per-round ratios. What each row loads is checked once, outside the timing.
Files are left to settle before timing (``llmx_replay.transports._loaded.SETTLED_NS``): a
file changed within it is never kept.

Run from the repository root, with the ``bench`` extra, and cassetter (0.16.1) in an
environment of its own (its pytest plugin and pytest-recording's cannot load together)::

    python benchmarks/load_cassettes.py [--sizes 10 100 1000 10000] [--quick]
        [--before /tmp/load-before]
"""

import argparse
import contextlib
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import vcr  # type: ignore[import-untyped]
from vcr.serialize import deserialize as vcr_deserialize  # type: ignore[import-untyped]
from vcr.serializers import yamlserializer  # type: ignore[import-untyped]

# The shared harness and record_replay's cassettes, from beside this script; the working
# tree's llmx_replay (record_replay puts the repository root first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Method, median_ratio, print_versions, rotations, timed
from record_replay import JSON_HEADERS, URL, Answers, Exchange, make_exchanges, send_all

from llmx_replay.cassette import load_cassette
from llmx_replay.transports import RecordingTransport, ReplayTransport
from llmx_replay.transports._loaded import LOADED, SETTLED_NS

try:
    import cassetter  # type: ignore[import-not-found]
except ImportError:
    cassetter = None

SIZES = (10, 100, 1_000, 10_000)
ROUNDS = {10: 21, 100: 11, 1_000: 7, 10_000: 3}
QUICK_ROUNDS = {10: 3, 100: 3, 1_000: 2, 10_000: 1}
TARGET_SIZE = 1_000


@dataclass
class Files:
    count: int
    ours: Path
    vcrpy: Path
    cassetter: Path | None
    notes: list[str] = field(default_factory=list)


def record_files(folder: Path, count: int) -> Files:
    exchanges = make_exchanges(count)
    answers = Answers(exchanges)
    ours = folder / f"{count}-ours.yaml"
    recording = RecordingTransport(ours, inner=httpx.MockTransport(answers.by_body))
    with httpx.Client(transport=recording) as client:
        send_all(client, exchanges)
    vcrpy = folder / f"{count}-vcrpy.yaml"
    recorder = vcr.VCR(serializer="yaml", decode_compressed_response=True, record_mode="all")
    with recorder.use_cassette(str(vcrpy)):
        send_all(httpx.Client(transport=httpx.MockTransport(answers.by_body)), exchanges)
    files = Files(count, ours, vcrpy, None)
    if cassetter is not None:
        path = folder / f"{count}-cassetter.yaml"
        record_cassetter(path, exchanges)
        try:
            cassetter_load(path)
        except cassetter.CassetteLoadError as error:
            refusal = str(error).splitlines()[0].removeprefix(f"could not parse cassette {path}: ")
            files.notes.append(f"cassetter cannot load the file it wrote ({refusal}): no row")
        else:
            files.cassetter = path
    return files


def _cassetter(path: Path, record_mode: Any) -> Any:
    return cassetter.Cassette(
        path,
        record_mode=record_mode,
        match_config=cassetter.MatchConfig(match_on=["method", "uri", "json_body"]),
    )


def record_cassetter(path: Path, exchanges: Sequence[Exchange]) -> None:
    recording = _cassetter(path, cassetter.RecordMode.ALL)
    recording.load()
    for exchange in exchanges:
        request = httpx.Request("POST", URL, content=exchange.body, headers=JSON_HEADERS)
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.multi_items():
            headers.setdefault(name, []).append(value)
        answer = b"".join(exchange.answer)
        recording.record(
            "POST",
            URL,
            headers,
            exchange.body,
            200,
            {"content-type": ["text/event-stream"]},
            answer,
        )
    recording.save()


def cassetter_load(path: Path) -> Any:
    loaded = _cassetter(path, cassetter.RecordMode.NONE)
    loaded.load()
    return loaded


def vcrpy_load(path: Path) -> Any:
    return vcr_deserialize(path.read_text(), yamlserializer)


@contextlib.contextmanager
def _package_from(tree: Path) -> Iterator[None]:
    """Import ``llmx_replay`` from `tree` meanwhile, then give the working tree's back."""
    ours = {name: module for name, module in sys.modules.items() if _in_package(name)}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    try:
        yield
    finally:
        sys.path.remove(str(tree))
        for name in [name for name in sys.modules if _in_package(name)]:
            del sys.modules[name]
        sys.modules.update(ours)


def _in_package(name: str) -> bool:
    return name == "llmx_replay" or name.startswith("llmx_replay.")


def import_before(tree: Path) -> tuple[ModuleType, ModuleType]:
    """`tree`'s ``llmx_replay.cassette._load`` and ``llmx_replay.transports._replay``."""
    with _package_from(tree.resolve()):
        load = importlib.import_module("llmx_replay.cassette._load")
        replay = importlib.import_module("llmx_replay.transports._replay")
    for module in (load, replay):
        if not Path(str(module.__file__)).resolve().is_relative_to(tree.resolve()):
            raise AssertionError(f"{module.__name__} came from {module.__file__}, not {tree}")
    return load, replay


@dataclass
class Row:
    """One timed row: `run()` is timed, after `setup()`, untimed."""

    name: str
    run: Method
    setup: Callable[[], object] = lambda: None
    times: list[float] = field(default_factory=list)


def rows_for(files: Files, before: tuple[ModuleType, ModuleType] | None) -> dict[str, Row]:
    path = files.ours
    rows = {
        "parse": Row("ours: parse", lambda: load_cassette(path)),
        "first": Row(
            "ours: ReplayTransport(path), first", lambda: ReplayTransport(path), LOADED.clear
        ),
        "again": Row(
            "ours: ReplayTransport(path), again",
            lambda: ReplayTransport(path),
            lambda: ReplayTransport(path),
        ),
    }
    if before is not None:
        before_load, before_replay = before
        rows["before parse"] = Row("before: parse", lambda: before_load.load_cassette(path))
        rows["before transport"] = Row(
            "before: ReplayTransport(path)", lambda: before_replay.ReplayTransport(path)
        )
    rows["vcrpy"] = Row("vcrpy: deserialize", lambda: vcrpy_load(files.vcrpy))
    if files.cassetter is not None:
        cassetter_path = files.cassetter
        rows["cassetter"] = Row("cassetter: load", lambda: cassetter_load(cassetter_path))
    return rows


def check(files: Files, before: tuple[ModuleType, ModuleType] | None) -> None:
    """What each row loads: `files.count` interactions; a second transport shares the first's."""
    count = files.count
    found = {
        "ours: parse": len(load_cassette(files.ours).interactions),
        "ours: ReplayTransport": len(ReplayTransport(files.ours).player.cassette.interactions),
        "vcrpy": len(vcrpy_load(files.vcrpy)[0]),
    }
    if before is not None:
        found["before: parse"] = len(before[0].load_cassette(files.ours).interactions)
    if files.cassetter is not None:
        found["cassetter"] = len(cassetter_load(files.cassetter))
    wrong = {tool: number for tool, number in found.items() if number != count}
    if wrong:
        raise AssertionError(f"{count} interactions recorded, loaded: {wrong}")
    if ReplayTransport(files.ours).player.cassette is not LOADED.load(files.ours):
        raise AssertionError(f"{files.ours}: a second transport read the file again")


def run_rounds(rows: Sequence[Row], rounds: int) -> None:
    for order in rotations(rows, rounds):
        for row in order:
            row.setup()
            row.times.append(timed(row.run))


def _ratio(rows: dict[str, Row], name: str, baseline: str) -> str:
    if baseline not in rows or name == baseline:
        return ""
    return f"{median_ratio(rows[name].times, rows[baseline].times):.2f}"


_SAME_CALL_BEFORE = {
    "parse": "before parse",
    "first": "before transport",
    "again": "before transport",
}


def report(files: Files, rows: dict[str, Row], rounds: int) -> list[str]:
    paths = {"ours": files.ours, "vcrpy": files.vcrpy, "cassetter": files.cassetter}
    sizes = ", ".join(
        f"{tool} {path.stat().st_size / 1e6:.1f} MB" for tool, path in paths.items() if path
    )
    print(f"\n### {files.count:,} interactions ({sizes}); {rounds} rounds\n")
    for note in files.notes:
        print(f"{note}\n")
    print("| row | median ms | / cassetter | / vcrpy | / before (same call) |")
    print("|---|---:|---:|---:|---:|")
    for key, row in rows.items():
        before = _SAME_CALL_BEFORE.get(key, "")
        print(
            f"| {row.name} | {statistics.median(row.times) * 1e3:,.1f} "
            f"| {_ratio(rows, key, 'cassetter')} | {_ratio(rows, key, 'vcrpy')} "
            f"| {_ratio(rows, key, before) if before else ''} |"
        )
    if files.count != TARGET_SIZE:
        return []
    if "cassetter" not in rows:
        return [f"load at {files.count:,}: cassetter is not installed, no verdict"]
    lines = []
    for key in ("parse", "first"):
        ratio = median_ratio(rows[key].times, rows["cassetter"].times)
        verdict = "PASS" if ratio <= 1 else "FAIL"
        lines.append(
            f"load at {files.count:,}: {rows[key].name} takes {ratio:.2f}x cassetter's "
            f"load: {verdict}"
        )
    return lines


def settle(files: Sequence[Files]) -> None:
    """Wait until every file of ours is old enough to be kept once read."""
    stats = [entry.ours.stat() for entry in files]
    newest = max(max(stat.st_mtime_ns, stat.st_ctime_ns) for stat in stats)
    wait = (newest + SETTLED_NS - time.time_ns()) / 1e9
    if wait > 0:
        time.sleep(wait + 0.1)


VERSIONS = ("httpx", "vcrpy", "PyYAML", "cassetter", "pydantic", "orjson")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="a round or two: a smoke test")
    parser.add_argument(
        "--before", type=Path, help="a checkout of the code before, timed beside the working tree"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print_versions(VERSIONS, libyaml=True)
    if cassetter is None:
        print("cassetter is not installed: its rows, and the verdicts against it, are left out")
    before = import_before(args.before) if args.before is not None else None
    if before is not None:
        print(f"before: {Path(str(before[0].__file__)).parent.parent.parent}")
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    lines = []
    with tempfile.TemporaryDirectory(prefix="llmx-replay-load-") as folder_name:
        folder = Path(folder_name)
        recorded = []
        for count in args.sizes:
            start = time.perf_counter()
            recorded.append(record_files(folder, count))
            seconds = time.perf_counter() - start
            print(f"recorded {count:,} interactions with each tool in {seconds:.0f} s")
        settle(recorded)
        print("\n## Load time: N interactions of a ~5 KB prompt and a ~5 KB SSE answer")
        for files in recorded:
            check(files, before)
            rows = rows_for(files, before)
            for row in rows.values():  # warm-up, untimed
                row.setup()
                row.run()
            count_rounds = rounds.get(files.count, 3)
            run_rounds(list(rows.values()), count_rounds)
            lines += report(files, rows, count_rounds)
            LOADED.clear()
    print("\n## Targets\n")
    for line in lines:
        print(f"- {line}")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
