"""Recording costs: llmx_replay vs vcrpy and cassetter, every ratio from one run.

1. Many interactions: N distinct ~5 KB JSON prompts to one URL, each answered with a ~5 KB
   SSE stream in 1.4 KB pieces (record_replay.py's `make_exchanges`), sent in order through
   ``httpx.Client.stream`` and read to the end, recorded into a new cassette: ours through
   ``RecordingTransport`` and through ``CassetteTransport`` in record mode ``once`` (what the
   pytest fixture uses), each closed at the end; vcrpy and cassetter through
   ``use_cassette(record_mode="all")``, which write when the cassette is left. The baseline
   is the same client over the same ``httpx.MockTransport`` recording nothing.
2. One long response: one request answered by a generated stream of 100k or 1M events
   (replay_throughput's generator, ~325 B/event, in 1-4 KB pieces), recorded the same ways.

Every row ends with its file on disk; the time is from the first request to the file
written. A figure is the median over rounds, a ratio the median of per-round ratios (the
method of ``benchmarks/_harness.py``: each round times every row once, in rotated order,
``gc.collect()`` before each, outside the timing). What each tool recorded is checked once,
outside the timing. cassetter's rows are left out when it is not importable (its pytest
plugin and pytest-recording's clash, so it is installed apart from the ``bench`` extra),
and above ``--cassetter-up-to`` interactions (1,000: its recording grows faster than the
count, 26 s for 2,000 as ``load_cassettes.py`` notes).

Run from the repository root::

    python benchmarks/recording.py                       # 10, 100, 1,000 and 10,000; 100k, 1M
    python benchmarks/recording.py --sizes 10 100 --events 100000
"""

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import vcr  # type: ignore[import-untyped]
from vcr.serialize import deserialize as vcr_deserialize  # type: ignore[import-untyped]
from vcr.serializers import yamlserializer  # type: ignore[import-untyped]

# The shared harness and the other scripts' generators, from beside this script; the
# working tree's llmx_replay (replay_throughput puts the repository root first on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import median_ratio, print_versions, rotations, timed
from record_replay import Answers, Exchange, make_exchanges, send_all
from replay_throughput import Body, Server, generate_body

from llmx_replay import CassetteTransport, RecordingTransport, ReplayTransport

try:
    cassetter: Any = importlib.import_module("cassetter")
except ImportError:
    cassetter = None

SIZES = (10, 100, 1_000, 10_000)
EVENTS = (100_000, 1_000_000)


@dataclass
class Row:
    """A tool: `record(path)` sends the requests, leaving a file at path; `replay(path)`
    sends them again answered by the file alone, or reads the file as the tool does (for
    the check). Both return the response bodies."""

    name: str
    record: Callable[[Path], list[bytes]]
    replay: Callable[[Path], list[bytes]] | None
    times: list[float] = field(default_factory=list)
    unreadable: str | None = None
    """Why the tool could not read back the file it wrote, if it could not."""


Send = Callable[[httpx.Client], list[bytes]]


def _through(transport: httpx.BaseTransport, send: Send) -> list[bytes]:
    with httpx.Client(transport=transport) as client:
        return send(client)


def _refusing(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a replay reached the network: {request.url}")


def rows_for(
    send: Send, handler: Callable[[httpx.Request], httpx.Response], *, with_cassetter: bool
) -> list[Row]:
    def mock() -> httpx.MockTransport:
        return httpx.MockTransport(handler)

    def baseline(path: Path) -> list[bytes]:
        return _through(mock(), send)

    def recording_transport(path: Path) -> list[bytes]:
        return _through(RecordingTransport(path, inner=mock()), send)

    def cassette_transport(path: Path) -> list[bytes]:
        return _through(CassetteTransport(path, record_mode="once", inner=mock()), send)

    def ours_replay(path: Path) -> list[bytes]:
        return _through(ReplayTransport(path), send)

    def vcrpy(path: Path) -> list[bytes]:
        with vcr.VCR(serializer="yaml", record_mode="all").use_cassette(str(path)):
            return _through(mock(), send)

    def vcrpy_bodies(path: Path) -> list[bytes]:
        # The bodies as vcrpy reads them: its replay scans every recording per request,
        # hours at 10,000.
        _, responses = vcr_deserialize(path.read_text(), yamlserializer)
        return [response["body"]["string"] for response in responses]

    def under_cassetter(path: Path) -> list[bytes]:
        with cassetter.use_cassette(path, record_mode="all"):
            return _through(mock(), send)

    def cassetter_replay(path: Path) -> list[bytes]:
        match_on = ["method", "uri", "json_body"]
        with cassetter.use_cassette(path, record_mode="none", match_on=match_on):
            return _through(httpx.MockTransport(_refusing), send)

    rows = [
        Row("no recording (baseline)", baseline, None),
        Row("ours: RecordingTransport", recording_transport, ours_replay),
        Row("ours: CassetteTransport, mode once", cassette_transport, ours_replay),
        Row("vcrpy: use_cassette, mode all", vcrpy, vcrpy_bodies),
    ]
    if cassetter is not None and with_cassetter:
        rows.append(Row("cassetter: use_cassette, mode all", under_cassetter, cassetter_replay))
    return rows


def run(rows: Sequence[Row], rounds: int, folder: Path, expected: list[bytes]) -> None:
    """Time each row's recording; in the first round, check what its file replays."""
    for number, order in enumerate(rotations(list(rows), rounds)):
        for row in order:
            path = folder / f"{number}-{rows.index(row)}.yaml"
            row.times.append(timed(lambda row=row, path=path: row.record(path)))  # type: ignore[misc]
            if number == 0 and row.replay is not None:
                check(row, path, expected)
            path.unlink(missing_ok=True)


def check(row: Row, path: Path, expected: list[bytes]) -> None:
    """Fail unless the file replays `expected`; a tool's own error reading it is noted."""
    assert row.replay is not None
    try:
        replayed = row.replay(path)
    except Exception as error:  # the tool's, whatever its type: reported, not fatal
        row.unreadable = " ".join(str(error).split())[:200]
        return
    if replayed != expected:
        raise AssertionError(f"{row.name}: the recording does not replay the answers")


def table(title: str, rows: Sequence[Row]) -> list[str]:
    ours = rows[1]
    lines = [
        f"### {title}",
        "",
        "| method | median s | x baseline | time / ours (RecordingTransport) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        median = statistics.median(row.times)
        lines.append(
            f"| {row.name} | {median:.3f} | {median_ratio(row.times, rows[0].times):.2f} "
            f"| {median_ratio(row.times, ours.times):.2f} |"
        )
    lines += [
        f"\n{row.name}: it could not read the file it wrote: {row.unreadable}"
        for row in rows
        if row.unreadable is not None
    ]
    return [*lines, ""]


def section_interactions(
    folder: Path, count: int, rounds: int, *, with_cassetter: bool
) -> list[str]:
    exchanges = make_exchanges(count)
    answers = Answers(exchanges)
    size = sum(len(e.body) + sum(len(piece) for piece in e.answer) for e in exchanges) / count

    def send(client: httpx.Client) -> list[bytes]:
        return send_all(client, exchanges)

    rows = rows_for(send, answers.by_body, with_cassetter=with_cassetter)
    run(rows, rounds, folder, [b"".join(exchange.answer) for exchange in exchanges])
    title = f"{count:,} interactions of {size / 1024:.1f} KB: {rounds} round(s)"
    return table(title, rows)


def section_long_response(folder: Path, events: int, rounds: int) -> list[str]:
    body: Body = generate_body(events)
    server = Server()
    server.pieces = body.pieces

    def send(client: httpx.Client) -> list[bytes]:
        exchange = Exchange("long", b'{"model":"m","stream":true}', [])
        return send_all(client, [exchange])

    rows = rows_for(send, server.httpx_handler, with_cassetter=True)
    run(rows, rounds, folder, [body.data])
    megabytes = len(body.data) / 1e6
    title = f"one response of {events:,} events ({megabytes:.0f} MB): {rounds} round(s)"
    return table(title, rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--events", type=int, nargs="*", default=list(EVENTS))
    parser.add_argument(
        "--cassetter-up-to",
        type=int,
        default=1_000,
        metavar="N",
        help="leave cassetter out above N interactions: its recording grows faster than N",
    )
    return parser.parse_args(argv)


def rounds_for(size: int) -> int:
    """Fewer rounds for bigger runs, at least one."""
    return 9 if size <= 10 else 5 if size <= 100 else 3 if size <= 100_000 else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_versions(["httpx", "vcrpy", "cassetter", "pyyaml", "orjson"], libyaml=True)
    print(f"cassetter: {'importable' if cassetter else 'not installed, its rows left out'}")
    print()
    folder = Path(tempfile.mkdtemp(prefix="llmx-replay-recording-"))
    try:
        for count in args.sizes:
            rounds = rounds_for(count) if count < 10_000 else 1
            with_cassetter = count <= args.cassetter_up_to
            if cassetter is not None and not with_cassetter:
                print(f"cassetter is left out at {count:,} (--cassetter-up-to)")
            section = section_interactions(folder, count, rounds, with_cassetter=with_cassetter)
            print("\n".join(section), flush=True)
        for events in args.events:
            print("\n".join(section_long_response(folder, events, rounds_for(events))), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
