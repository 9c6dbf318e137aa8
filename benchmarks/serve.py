"""`llmx-replay serve` over HTTP: first event while recording, and replay under 64 streams.

Three processes on 127.0.0.1: aimock (the live upstream, started as ``tests/live/conftest.py``
starts it), ``python -m llmx_replay serve`` (this working tree's), and this script, the
client: one ``httpx.AsyncClient`` for every target, its pool raised to keep ``--concurrency``
connections to each of two servers. aimock serves a generated fixture: one answer of
``--events`` content deltas of ``--chunk-chars`` characters, unpaced, so a stream is the role
chunk, the deltas, the finish chunk and ``data: [DONE]``, each written on its own.

a. First event while recording: the same streaming request (a distinct user message each
   time, so each one is new to the cassette) sent directly to aimock and through
   ``serve --record-mode new_episodes --upstream AIMOCK``, which forwards it, streams it back
   as it arrives and records it. Time to first event: from sending to the first body bytes
   holding ``data:``. Two spacings, each request on a warm keep-alive connection: ``idle``
   (nothing sent for ``--idle-ms`` before it) and ``back-to-back`` (sent ``--gap-ms`` after
   an untimed request to the same server, as a client asks again once an answer ends). Each
   pair's two paths run in an order rotated every pair, ``gc.collect()`` before each. Figures:
   median and p90 of each path, the median of the per-pair differences (and ratios), and the
   difference of the p90s.
b. Replay under load: the cassette recorded in (a), synced by the SIGTERM that stopped its
   server (which must exit 0), served by ``serve --record-mode none`` (instant pacing, in
   the recorded chunks: one per event, as aimock wrote them), against aimock answering the
   same request from its fixture: the same stream. Each round, ``--concurrency`` workers
   each stream ``--streams-per-worker`` requests one after the other; per stream, time to the
   first event and to the whole body; per round, streams/s and events/s over its wall time,
   and the CPU time of the server process (``/proc/PID/stat``, all its threads) and of this
   client per stream. Rounds alternate which server goes first; ``gc.collect()`` before
   each. Figures: medians over rounds of each round's median (and p90) and rates; serve /
   aimock ratios are medians of the per-round ratios. Every stream's status and event count
   are checked, and (once, untimed) the answer's text.

At 64 streams the client is the bottleneck: httpcore's pool scans every connection on each
request (``_assign_requests_to_connections``), so this one Python process spends more CPU
per stream than either server, on the same two cores; it is the same for both servers, and
the server CPU per stream is the figure that tells the servers apart. Read the ratios.

Run from the repository root (needs aimock: ``.ci/live-servers.sh install aimock``); about a
minute::

    python benchmarks/serve.py [--pairs 40] [--idle-ms 100] [--gap-ms 10] [--rounds 7]
        [--concurrency 64] [--streams-per-worker 8] [--events 100] [--chunk-chars 6]
        [--keep DIR]
"""

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _harness import median_difference, median_ratio, print_versions, rotations  # noqa: E402

from llmx_replay.cassette import load_cassette  # noqa: E402

AIMOCK_PACKAGE = ROOT / ".live" / "aimock" / "node_modules" / "@copilotkit" / "aimock"
AIMOCK_CLI = AIMOCK_PACKAGE / "dist" / "cli.js"
MODEL = "gpt-4o-mini"
MATCH = "llmx serve benchmark"  # aimock matches a substring of the last user message
READY_SECONDS = 30.0
STOP_SECONDS = 35.0  # above serve's grace for recordings (RECORDING_GRACE_SECONDS, 30 s)
DATA = b"data:"


def answer_text(events: int, chunk_chars: int) -> str:
    """A text that aimock cuts into `events` deltas of `chunk_chars` characters."""
    words = "Replayed streams arrive as they were recorded, chunk by chunk, to any client. "
    text = (words * (events * chunk_chars // len(words) + 1))[: events * chunk_chars]
    return text[:-1] + "."


def write_fixture(path: Path, text: str, chunk_chars: int) -> None:
    fixture = {
        "fixtures": [
            {
                "match": {"userMessage": MATCH},
                "response": {"content": text},
                "chunkSize": chunk_chars,
                "latency": 0,
            }
        ]
    }
    path.write_text(json.dumps(fixture, indent=2))


def request_body(tag: str) -> bytes:
    message = {"role": "user", "content": f"{MATCH}: {tag}"}
    return orjson.dumps({"model": MODEL, "stream": True, "messages": [message]})


HEADERS = {
    "content-type": "application/json",
    "authorization": "Bearer sk-llmx-bench-0123456789abcdef0123456789abcdef",
}


# --- processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process, stopped by its PID (SIGTERM, then SIGKILL)."""

    name: str
    process: "subprocess.Popen[bytes]"
    url: str
    log_path: Path
    log: IO[bytes]
    exit_code: int | None = None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.exit_code = self.process.returncode
        return self.exit_code

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def start_aimock(node: str, fixture: Path, folder: Path) -> Server:
    """aimock as tests/live/conftest.py starts it, on a free port; waited for on /health."""
    port = _free_port()
    log_path = folder / "aimock.log"
    log = log_path.open("wb")
    command = [
        *(node, str(AIMOCK_CLI), "-h", "127.0.0.1", "-p", str(port), "-f", str(fixture)),
        *("--validate-on-load", "--log-level", "warn"),
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=folder
    )
    server = Server("aimock", process, f"http://127.0.0.1:{port}", log_path, log)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            raise SystemExit(f"aimock exited with {process.returncode}:\n{server.tail()}")
        try:
            if httpx.get(server.url + "/health", timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise SystemExit(f"aimock was not ready after {READY_SECONDS:.0f} s")
        time.sleep(0.05)


def start_serve(cassette: Path, folder: Path, name: str, *options: str) -> Server:
    """``python -m llmx_replay serve CASSETTE --port 0 OPTIONS``; its URL read from stdout."""
    log_path = folder / f"{name}.log"
    log = log_path.open("wb")
    command = [sys.executable, "-m", "llmx_replay", "serve", str(cassette), "--port", "0"]
    process = subprocess.Popen(
        [*command, *options],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=ROOT,  # `python -m` imports the working tree's llmx_replay
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()  # printed once it accepts requests
    server = Server(name, process, url, log_path, log)
    if not url.startswith("http://"):
        server.stop()
        raise SystemExit(f"serve printed no URL (exit {server.exit_code}):\n{server.tail()}")
    return server


# --- one stream ----------------------------------------------------------------------------


@dataclass
class Stream:
    first_s: float
    whole_s: float
    events: int
    body: bytes = b""


async def stream(client: httpx.AsyncClient, url: str, body: bytes, keep: bool = False) -> Stream:
    """One streaming request: seconds to the first bytes holding ``data:``, and to the end."""
    first = 0.0
    seen = b""
    pieces: list[bytes] = []
    started = time.perf_counter()
    async with client.stream("POST", url, content=body, headers=HEADERS) as response:
        async for piece in response.aiter_raw():
            if not first:
                seen += piece
                if DATA in seen:
                    first = time.perf_counter() - started
            pieces.append(piece)
        whole = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url}: status {response.status_code}: {b''.join(pieces)[:300]!r}")
    data = b"".join(pieces)
    return Stream(first, whole, data.count(DATA), data if keep else b"")


def answer_of(body: bytes) -> str:
    """The joined content deltas of an SSE body."""
    text = []
    for line in body.splitlines():
        if line.startswith(b"data: {"):
            choices = orjson.loads(line[len(b"data: ") :])["choices"]
            if choices:
                text.append(choices[0]["delta"].get("content") or "")
    return "".join(text)


def client_for(concurrency: int) -> httpx.AsyncClient:
    """The load client. Its pool keeps `concurrency` connections to each of two servers, so
    that no round reopens connections the other server's round closed."""
    pool = 2 * concurrency + 16
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0-1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


# --- a. first event while recording ----------------------------------------------------------

SPACINGS = ("idle", "back-to-back")


@dataclass
class FirstEvents:
    """Seconds to the first event, by spacing, then by path; the i-th of each from pair i."""

    times: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {spacing: {"direct": [], "recording": []} for spacing in SPACINGS}
    )


async def first_event_while_recording(
    aimock: Server, recorder: Server, args: argparse.Namespace, expected_events: int, text: str
) -> FirstEvents:
    targets = {
        "direct": aimock.url + "/v1/chat/completions",
        "recording": recorder.url + "/v1/chat/completions",
    }
    timed = FirstEvents()

    async def one(name: str, body: bytes) -> float:
        result = await stream(client, targets[name], body)
        if result.events != expected_events:
            raise SystemExit(f"{name}: {result.events} events, not {expected_events}")
        return result.first_s

    async with client_for(4) as client:
        # Warm up: connections opened, and each side's answer checked once, untimed.
        for name, url in targets.items():
            warm = await stream(client, url, request_body(f"warm-up {name}"), keep=True)
            if warm.events != expected_events or answer_of(warm.body) != text:
                raise SystemExit(f"{name}: {warm.events} events, not {expected_events}, or text")
        for index, order in enumerate(rotations(list(targets), args.pairs)):
            # The same request both ways, new to the cassette each time.
            for name in order:  # idle: nothing sent on the connection for --idle-ms
                gc.collect()
                await asyncio.sleep(args.idle_ms / 1000)
                timed.times["idle"][name].append(await one(name, request_body(f"idle {index}")))
            for name in order:  # back-to-back: --gap-ms after a request to the same server
                gc.collect()
                await asyncio.sleep(args.idle_ms / 1000)
                await one(name, request_body(f"lead {index}"))
                await asyncio.sleep(args.gap_ms / 1000)
                first = await one(name, request_body(f"back-to-back {index}"))
                timed.times["back-to-back"][name].append(first)
    return timed


# --- b. replay under load ---------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The user + system CPU seconds of process `pid` so far, all its threads."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15


@dataclass
class Round:
    first: list[float]
    whole: list[float]
    wall_s: float
    events: int
    server_cpu_s: float
    client_cpu_s: float

    @property
    def streams_per_s(self) -> float:
        return len(self.whole) / self.wall_s

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s


async def load_round(
    client: httpx.AsyncClient,
    server: Server,
    body: bytes,
    concurrency: int,
    per_worker: int,
    expected_events: int,
) -> Round:
    url = server.url + "/v1/chat/completions"
    first: list[float] = []
    whole: list[float] = []

    async def worker() -> int:
        events = 0
        for _ in range(per_worker):
            result = await stream(client, url, body)
            if result.events != expected_events:
                raise SystemExit(f"{url}: {result.events} events, not {expected_events}")
            first.append(result.first_s)
            whole.append(result.whole_s)
            events += result.events
        return events

    gc.collect()
    server_cpu, client_cpu = cpu_seconds(server.process.pid), time.process_time()
    started = time.perf_counter()
    counts = await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    server_cpu = cpu_seconds(server.process.pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    return Round(first, whole, wall, sum(counts), server_cpu, client_cpu)


async def replay_under_load(
    servers: dict[str, Server], body: bytes, args: argparse.Namespace, expected_events: int
) -> dict[str, list[Round]]:
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    async with client_for(args.concurrency) as client:
        for server in servers.values():  # warm-up: every pooled connection opened, untimed
            await load_round(client, server, body, args.concurrency, 1, expected_events)
        for order in rotations(list(servers), args.rounds):
            for name in order:
                one = await load_round(
                    client,
                    servers[name],
                    body,
                    args.concurrency,
                    args.streams_per_worker,
                    expected_events,
                )
                rounds[name].append(one)
    return rounds


# --- report ------------------------------------------------------------------------------------


def print_environment(node: str) -> None:
    print_versions(["uvicorn", "h11", "httptools", "uvloop", "httpx", "httpcore", "orjson"])
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    aimock_version = json.loads((AIMOCK_PACKAGE / "package.json").read_text())["version"]
    print(f"node {node_version}; aimock {aimock_version} ({AIMOCK_CLI})")
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average before the run: {load}")


def report_first_event(timed: FirstEvents, args: argparse.Namespace) -> None:
    print(
        f"\n## a. time to first event while recording ({args.pairs} pairs per spacing, "
        "one request at a time)\n"
    )
    print(
        f"idle: nothing sent for {args.idle_ms:g} ms before; back-to-back: {args.gap_ms:g} ms "
        "after a request to the same server, on the same keep-alive connection.\n"
    )
    print("| spacing | path | median ms | p90 ms | min ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    labels = {"direct": "direct to aimock (baseline)", "recording": "serve, recording"}
    for spacing in SPACINGS:
        for name, label in labels.items():
            values = timed.times[spacing][name]
            print(
                f"| {spacing} | {label} | {ms(statistics.median(values))} "
                f"| {ms(percentile(values, 0.9))} | {ms(min(values))} | {ms(max(values))} |"
            )
    print()
    for spacing in SPACINGS:
        direct, recording = timed.times[spacing]["direct"], timed.times[spacing]["recording"]
        added = median_difference(recording, direct)
        p90_added = percentile(recording, 0.9) - percentile(direct, 0.9)
        ratio = median_ratio(recording, direct)
        print(
            f"- {spacing}: serve recording adds {added * 1000:+.2f} ms (median of per-pair "
            f"differences; median per-pair ratio {ratio:.2f}x); p90 difference "
            f"{p90_added * 1000:+.2f} ms."
        )


def figure_of(one: Round, figure: str) -> float:
    """One round's `figure`: a stream time's median or p90, a rate, or CPU per stream."""
    match figure:
        case "first50":
            return statistics.median(one.first)
        case "first90":
            return percentile(one.first, 0.9)
        case "whole50":
            return statistics.median(one.whole)
        case "whole90":
            return percentile(one.whole, 0.9)
        case "streams":
            return one.streams_per_s
        case "events":
            return one.events_per_s
        case "server_cpu":
            return one.server_cpu_s / len(one.whole)
        case "client_cpu":
            return one.client_cpu_s / len(one.whole)
    raise ValueError(figure)


def _median_of(rounds: list[Round], figure: str) -> float:
    return statistics.median(figure_of(one, figure) for one in rounds)


def report_load(rounds: dict[str, list[Round]], args: argparse.Namespace, events: int) -> None:
    streams = args.concurrency * args.streams_per_worker
    print(
        f"\n## b. replay under load: {args.concurrency} concurrent streams, {streams} streams a "
        f"round ({events} events each), {args.rounds} rounds per server\n"
    )
    print(
        "| server | first event median ms | first event p90 ms | whole body median ms "
        "| whole body p90 ms | streams/s | events/s | server CPU ms/stream "
        "| client CPU ms/stream |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"aimock": "aimock, fixture (baseline)", "serve": "serve, replaying (none)"}
    for name, label in labels.items():
        one = rounds[name]
        print(
            f"| {label} | {ms(_median_of(one, 'first50'))} | {ms(_median_of(one, 'first90'))} "
            f"| {ms(_median_of(one, 'whole50'))} | {ms(_median_of(one, 'whole90'))} "
            f"| {_median_of(one, 'streams'):,.0f} | {_median_of(one, 'events'):,.0f} "
            f"| {ms(_median_of(one, 'server_cpu'))} | {ms(_median_of(one, 'client_cpu'))} |"
        )
    paired = list(zip(rounds["serve"], rounds["aimock"], strict=True))

    def ratio(figure: str) -> float:
        return statistics.median(
            figure_of(serve, figure) / figure_of(aimock, figure) for serve, aimock in paired
        )

    print(
        f"\nserve / aimock, medians of per-round ratios: first event {ratio('first50'):.2f}x "
        f"(p90 {ratio('first90'):.2f}x), whole body {ratio('whole50'):.2f}x, server CPU per "
        f"stream {ratio('server_cpu'):.2f}x (lower is better); throughput "
        f"{ratio('streams'):.2f}x (higher is better)."
    )


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=40, help="(a) pairs per spacing (40)")
    parser.add_argument(
        "--idle-ms", type=float, default=100.0, help="(a) quiet time before a request (100)"
    )
    parser.add_argument(
        "--gap-ms", type=float, default=10.0, help="(a) back-to-back: gap after the lead (10)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="(b) rounds per server (7)")
    parser.add_argument("--concurrency", type=int, default=64, help="(b) concurrent streams (64)")
    parser.add_argument(
        "--streams-per-worker", type=int, default=8, help="(b) streams per worker a round (8)"
    )
    parser.add_argument("--events", type=int, default=100, help="content deltas a stream (100)")
    parser.add_argument("--chunk-chars", type=int, default=6, help="characters a delta (6)")
    parser.add_argument("--keep", type=Path, help="keep the fixture, cassette and logs here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    node = shutil.which("node")
    if node is None or not AIMOCK_CLI.is_file():
        raise SystemExit("needs node and aimock: .ci/live-servers.sh install aimock")
    started = time.perf_counter()
    print_environment(node)
    with tempfile.TemporaryDirectory(prefix="llmx-serve-bench-") as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        fixture, cassette = folder / "fixture.json", folder / "recorded.yaml"
        cassette.unlink(missing_ok=True)
        text = answer_text(args.events, args.chunk_chars)
        write_fixture(fixture, text, args.chunk_chars)
        expected_events = args.events + 3  # the role chunk, the deltas, finish, [DONE]
        print(
            f"answer: {len(text)} characters in {args.events} deltas of {args.chunk_chars}; "
            f"{expected_events} events a stream"
        )
        servers: list[Server] = []
        try:
            aimock = start_aimock(node, fixture, folder)
            servers.append(aimock)
            recording = ("--upstream", aimock.url, "--record-mode", "new_episodes")
            recorder = start_serve(cassette, folder, "serve-recording", *recording)
            servers.append(recorder)
            timed = asyncio.run(
                first_event_while_recording(aimock, recorder, args, expected_events, text)
            )
            if recorder.stop() != 0:  # SIGTERM: the cassette is synced, exit status 0
                raise SystemExit(f"serve (recording) exited {recorder.exit_code}")
            recorded = load_cassette(cassette)
            if len(recorded.interactions) != 3 * args.pairs + 1:  # idle, lead, back-to-back
                raise SystemExit(f"{len(recorded.interactions)} interactions were recorded")
            body = request_body("idle 0")
            [replayed] = [
                one.response
                for one in recorded.interactions
                if orjson.loads(one.request.body or b"{}") == orjson.loads(body)
            ]
            replayer = start_serve(cassette, folder, "serve-replaying", "--record-mode", "none")
            servers.append(replayer)
            loaded = asyncio.run(
                replay_under_load(
                    {"aimock": aimock, "serve": replayer}, body, args, expected_events
                )
            )
        finally:
            codes = {server.name: server.stop() for server in servers}
        print(
            f"cassette: {len(recorded.interactions)} interactions recorded; the one replayed in "
            f"(b): {len(replayed.body):,} B in {len(replayed.chunks or ())} recorded chunks; "
            f"stopped by PID: {', '.join(f'{name} exit {code}' for name, code in codes.items())}"
        )
        report_first_event(timed, args)
        report_load(loaded, args, expected_events)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
