"""Per-test overhead of the ``llmx_cassette`` pytest fixture, against a bare
``httpx.MockTransport`` test and against vcrpy through pytest-recording.

The requirement: a fixture test that replays a 50-event cassette costs at most 1 ms more than
the same test over a bare ``httpx.MockTransport`` (vcrpy with pytest-recording adds about
1.3 ms, ``shared/notes/performance-baseline.md``).

What is measured: whole ``python -m pytest`` runs, wall clock, of generated test modules of N
parametrized tests each (``--tests``, default 400). Every test streams one turn through
``llmx_replay.ChatClient`` and checks its events: 48 text deltas joining into the expected
text, which holds the test's own 4-digit tag (so a test can only pass on its own answer), and
a ``Completed`` event with finish reason ``stop``. The answer is one streamed Chat Completions
text turn of 50 SSE events (48 content deltas, the finish chunk, ``[DONE]``) of about 200 B
each, with id, object, created and model, served event by event. The arms differ only in
where that answer comes from:

* ``bare``: ``ChatClient(provider, model, transport=httpx.MockTransport(handler))``, the
  handler serving the events. The baseline.
* ``llmx``: the ``llmx_cassette`` fixture, ``with llmx_cassette.client() as client``, each test
  replaying its own cassette ``cassettes/test_llmx/test_turn[<tag>].yaml``. The cassette
  was recorded once through ``RecordingTransport(path, inner=httpx.MockTransport(handler))``
  and copied per test with the tag changed.
* ``vcrpy``: ``@pytest.mark.vcr`` (pytest-recording), the ChatClient over httpx's network
  transport, ``httpx.HTTPTransport(verify=SSL_CONTEXT)``, which vcrpy patches; each test
  replays the same llmx-replay cassette file (vcrpy-compatible YAML) from pytest-recording's
  default place, ``cassettes/test_vcrpy/test_turn[<tag>].yaml``. The TLS context is
  built once per process, in every arm, as a suite with a shared client would.
* ``vcrpy-default``: the same, with ``ChatClient(provider, model)`` and so httpx's default
  transport built per test, which builds a new TLS context each time (about 20 ms here). It
  is what a suite that builds its client per test pays; ``--skip-default-transport`` leaves
  it out. It is not the figure compared with llmx: its extra cost is httpx's, not vcrpy's.

``--app-imports requests,aiohttp`` has every arm's tests import those modules, as a project
on LiteLLM does: the fixture then patches their clients too (buffered, by vcrpy's patching),
which it does not for a process that never imported them.

Every arm runs with the same command line, so that only the fixture differs::

    PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q -p no:cacheprovider
        -p syrupy -p llmx_replay.pytest_plugin -p pytest_recording.plugin
        --llmx-record-mode=none --llmx-cassette-dir=cassettes
        --record-mode=none --block-network test_<arm>.py

The test modules sit in the project's root folder (its rootdir), where both plugins put a
test's cassette under ``cassettes/<module name>/<test name>.yaml``.

``--block-network`` (pytest-recording) blocks sockets in every test, and the base URL's host
is under ``.invalid``: no arm can reach a network, and a vcrpy test that did not replay would
fail. Each arm first runs once untimed, and must pass all N tests (a failing arm stops the
benchmark with its output). Then R rounds (``--rounds``, default 5) run every arm once, in
an order rotated by one each round (``benchmarks/_harness.py``), because the machine is
shared and noisy. The subprocesses keep their bytecode under the project folder
(``PYTHONPYCACHEPREFIX``), so no run recompiles what an earlier one compiled, and nothing is
written beside the sources.

Figures: per arm, the medians over rounds of the whole pytest process's wall time, its CPU
time (user + system, less sensitive to other load) and pytest's own reported duration;
per-test overhead = (median(arm) - median(bare)) / N in ms, for each of the three (the wall
figure is the one held to the target), and the median over rounds of the per-round wall
differences; the ratio vcrpy / llmx of the overheads; a verdict against the 1 ms target.

When the llmx overhead is above the target (or with ``--profile``), the script shows where
the time goes: (1) pytest's phases per test, from hook wrappers in a generated plugin
(``bench_probe``, loaded only in these extra runs), for bare, llmx and vcrpy; (2) the
fixture's pieces timed in-process on one cassette (YAML parse, cassette models, transport,
session, client, the closing check); (3) cProfile over one in-process ``pytest.main`` run of
the llmx arm, the fixture's own functions by cumulative time.

Run from the repository root (the subprocesses import the working tree's ``llmx_replay``)::

    python benchmarks/fixture_overhead.py [--tests 400] [--rounds 5]
        [--skip-default-transport] [--profile] [--keep DIR]
"""

import argparse
import contextlib
import cProfile
import gc
import io
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

# Benchmark the working tree, whether or not the package is installed in the environment;
# and import the shared harness from beside this script, however it is started.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import median_difference, print_versions, rotations, timed

from llmx_replay import CassetteOptions, CassetteSession, ChatClient, ReplayOptions, VirtualClock
from llmx_replay.cassette import _yaml, load_cassette, parse_cassette
from llmx_replay.models.events import Completed, OutputTextDelta, ResponseEvent
from llmx_replay.models.prompt import Prompt, ProviderSettings
from llmx_replay.transports import CassetteTransport, RecordingTransport, RecordMode

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TESTS = 400
DEFAULT_ROUNDS = 5
TARGET_MS = 1.0
PEER_NOTE_MS = 1.3
# syrupy first: llmx_replay's plugin imports it, and pytest only rewrites a plugin's asserts
# when it is the first to import it.
PLUGINS = ("syrupy", "llmx_replay.pytest_plugin", "pytest_recording.plugin")
BASE_URL = "https://llm-replay.invalid/v1"
MODEL = "gpt-4o-mini"
PLACEHOLDER = "QQQQ"  # the tag's place in the answer; each test's copy has its own tag
CONTENT_DELTAS = 48
BARE, LLMX, VCRPY, VCRPY_DEFAULT = "bare", "llmx", "vcrpy", "vcrpy-default"

_WORDS = (
    "the", "stream", "replays", "a", "recorded", "turn", "of", "tokens", "and", "checks",
    "each", "event", "naïve", "café", "parse", "fast", "offline", "test", "cassette", "it",
)  # fmt: skip


# --------------------------------------------------------------------------- the answer


def answer_events() -> tuple[list[bytes], str]:
    """The 50 SSE events of the answer (with `PLACEHOLDER` in the first delta) and its text."""
    envelope = {
        "id": "chatcmpl-BxK3c9Zr7Qm2LwTfYp4sVd8nHa1Ej",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "gpt-4o-mini-2024-07-18",
    }
    texts = [f"Answer {PLACEHOLDER}:"]
    texts += [f" {_WORDS[(index * 7) % len(_WORDS)]}" for index in range(CONTENT_DELTAS - 1)]
    deltas: list[dict[str, object]] = [{"role": "assistant", "content": texts[0]}]
    deltas += [{"content": text} for text in texts[1:]]
    choices: list[dict[str, object]] = [
        {"index": 0, "delta": delta, "finish_reason": None} for delta in deltas
    ]
    choices.append({"index": 0, "delta": {}, "finish_reason": "stop"})
    events = [b"data: " + orjson.dumps({**envelope, "choices": [c]}) + b"\n\n" for c in choices]
    events.append(b"data: [DONE]\n\n")
    return events, "".join(texts)


class _Events(httpx.SyncByteStream):
    def __init__(self, events: Sequence[bytes]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        yield from self._events


def _handler(events: Sequence[bytes]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_Events(events))

    return handle


PROVIDER = ProviderSettings(base_url=BASE_URL)
_USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
PROMPT = Prompt.model_validate({"input": [_USER_HI]})


def check_events(events: list[ResponseEvent], text: str) -> None:
    deltas = [event.delta for event in events if type(event) is OutputTextDelta]
    if len(deltas) != CONTENT_DELTAS or "".join(deltas) != text:
        raise AssertionError(f"wrong deltas: {deltas!r}")
    last = events[-1]
    if type(last) is not Completed or last.finish_reason != "stop":
        raise AssertionError(f"wrong last event: {last!r}")


# --------------------------------------------------------------------------- the project

SUPPORT = '''
"""What the generated test modules share: the prompt, the served answer and the check."""

from collections.abc import Iterator
from pathlib import Path

import httpx

from llmx_replay.models.events import Completed, OutputTextDelta
from llmx_replay.models.prompt import Prompt, ProviderSettings
{app_imports}
BASE_URL = {base_url!r}
MODEL = {model!r}
PROVIDER = ProviderSettings(base_url=BASE_URL)
PROMPT = Prompt.model_validate(
    {{"input": [{{"type": "message", "role": "user",
                 "content": [{{"type": "input_text", "text": "hi"}}]}}]}}
)
TAGS = [f"{{index:04d}}" for index in range({tests})]
PLACEHOLDER = {placeholder!r}
TEXT = {text!r}
DELTAS = {deltas}
_EVENTS = [
    event + b"\\n\\n"
    for event in (Path(__file__).parent / "answer.sse").read_bytes().split(b"\\n\\n")
    if event
]
# One TLS context per process, in every arm: what a suite with a shared client pays.
SSL_CONTEXT = httpx.create_ssl_context()


class _Events(httpx.SyncByteStream):
    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        yield from self._events


def serve(tag: str):
    """A MockTransport handler streaming the answer with `tag`, event by event."""
    events = [_EVENTS[0].replace(PLACEHOLDER.encode(), tag.encode()), *_EVENTS[1:]]

    def handle(request: httpx.Request) -> httpx.Response:
        headers = {{"content-type": "text/event-stream"}}
        return httpx.Response(200, headers=headers, stream=_Events(events))

    return handle


def check(events: list, tag: str) -> None:
    deltas = [event.delta for event in events if type(event) is OutputTextDelta]
    assert len(deltas) == DELTAS, events
    assert "".join(deltas) == TEXT.replace(PLACEHOLDER, tag), deltas
    last = events[-1]
    assert type(last) is Completed and last.finish_reason == "stop", last
'''

_TEST_HEAD = """
import httpx
import pytest
from bench_support import MODEL, PROMPT, PROVIDER, SSL_CONTEXT, TAGS, check, serve

from llmx_replay import ChatClient
"""

PROBE = """
"Where a pytest run's time goes: hook wrappers around each phase, as JSON in $LLMX_BENCH_PROBE."

import gc
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

TIMES = defaultdict(float)
COUNTS = defaultdict(int)
_GC_START = [0.0]


def _timed(name):
    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: other plugins' wrappers inside
    def hook(*args, **kwargs):
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            TIMES[name] += time.perf_counter() - start

    return hook


pytest_collection = _timed("collection")
pytest_runtest_protocol = _timed("protocol")
pytest_runtest_setup = _timed("setup")
pytest_runtest_call = _timed("call")
pytest_runtest_teardown = _timed("teardown")
pytest_runtest_makereport = _timed("reports")
pytest_runtest_logreport = _timed("reports")


def _on_gc(phase, info):
    if phase == "start":
        _GC_START[0] = time.perf_counter()
    else:
        TIMES["gc"] += time.perf_counter() - _GC_START[0]
        COUNTS["gc_collections"] += 1
        COUNTS["gc_gen2"] += info["generation"] == 2


def pytest_sessionstart(session):
    gc.callbacks.append(_on_gc)
    TIMES["session"] = -time.perf_counter()


def pytest_sessionfinish(session):
    TIMES["session"] += time.perf_counter()
    gc.callbacks.remove(_on_gc)
    result = {**TIMES, **COUNTS, "tests": session.testscollected}
    Path(os.environ["LLMX_BENCH_PROBE"]).write_text(json.dumps(result))
"""

TESTS = {
    BARE: """
@pytest.mark.parametrize("tag", TAGS)
def test_turn(tag: str) -> None:
    with ChatClient(PROVIDER, MODEL, transport=httpx.MockTransport(serve(tag))) as client:
        events = list(client.stream(PROMPT))
    check(events, tag)
""",
    LLMX: """
@pytest.mark.parametrize("tag", TAGS)
def test_turn(tag: str, llmx_cassette) -> None:
    with llmx_cassette.client() as client:
        events = list(client.stream(PROMPT))
    check(events, tag)
""",
    VCRPY: """
@pytest.mark.vcr
@pytest.mark.parametrize("tag", TAGS)
def test_turn(tag: str) -> None:
    with ChatClient(
        PROVIDER, MODEL, transport=httpx.HTTPTransport(verify=SSL_CONTEXT)
    ) as client:
        events = list(client.stream(PROMPT))
    check(events, tag)
""",
    VCRPY_DEFAULT: """
@pytest.mark.vcr
@pytest.mark.parametrize("tag", TAGS)
def test_turn(tag: str) -> None:
    with ChatClient(PROVIDER, MODEL) as client:
        events = list(client.stream(PROMPT))
    check(events, tag)
""",
}


def module_of(arm: str) -> Path:
    """The arm's test module, relative to the project folder (its rootdir)."""
    return Path(f"test_{arm.replace('-', '_')}.py")


def record_template(folder: Path, events: list[bytes]) -> bytes:
    """One llmx-replay cassette of the answer (with `PLACEHOLDER`), recorded as a user would."""
    path = folder / "template.yaml"
    transport = RecordingTransport(path, inner=httpx.MockTransport(_handler(events)))
    with ChatClient(PROVIDER, MODEL, transport=transport) as client:
        list(client.stream(PROMPT))
    data = path.read_bytes()
    path.unlink()
    if data.count(PLACEHOLDER.encode()) != 1:
        raise RuntimeError(f"the recorded cassette should hold {PLACEHOLDER!r} once")
    return data


def build_project(
    root: Path, tests: int, arms: Sequence[str], app_imports: Sequence[str] = ()
) -> tuple[bytes, str]:
    """The generated project; returns the template cassette and the answer's text.

    `app_imports` are modules every test module imports, as the application's code would.
    """
    events, text = answer_events()
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\naddopts = --strict-markers\n")
    (root / "answer.sse").write_bytes(b"".join(events))
    support = SUPPORT.format(
        base_url=BASE_URL,
        model=MODEL,
        tests=tests,
        placeholder=PLACEHOLDER,
        text=text,
        deltas=CONTENT_DELTAS,
        app_imports="".join(f"import {module}  # the application's\n" for module in app_imports),
    )
    (root / "bench_support.py").write_text(support.lstrip())
    (root / "bench_probe.py").write_text(PROBE.lstrip())
    template = record_template(root, events)
    for arm in arms:
        module = root / module_of(arm)
        module.write_text(f'"""The {arm} arm."""\n{_TEST_HEAD}\n{TESTS[arm]}')
        if arm == BARE:
            continue
        # llmx: <--llmx-cassette-dir>/<module under the rootdir>/<test>.yaml;
        # pytest-recording: <test dir>/cassettes/<module>/<test>.yaml.
        cassettes = root / "cassettes" / module.stem
        cassettes.mkdir(parents=True)
        for index in range(tests):
            tag = f"{index:04d}"
            data = template.replace(PLACEHOLDER.encode(), tag.encode())
            (cassettes / f"test_turn[{tag}].yaml").write_bytes(data)
    return template, text


# --------------------------------------------------------------------------- running


def pytest_args(arm: str) -> list[str]:
    plugins = [arg for plugin in PLUGINS for arg in ("-p", plugin)]
    return [
        "-q",
        "-p",
        "no:cacheprovider",
        *plugins,
        "--llmx-record-mode=none",
        "--llmx-cassette-dir=cassettes",
        "--record-mode=none",
        "--block-network",
        str(module_of(arm)),
    ]


def subprocess_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    # Bytecode (and pytest's rewritten test modules) cached in the project folder, so that
    # no run compiles what the previous one did, and nothing is written beside the sources.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@dataclass(frozen=True)
class Run:
    wall: float  # the whole pytest process, wall clock
    cpu: float  # its user + system CPU time: less sensitive to other load on the machine
    reported: float  # the duration pytest prints


_SUMMARY = re.compile(r"^=*\s*(?P<counts>\d+ \w+.*?) in (?P<seconds>[\d.]+)s", re.M)


def run_arm(root: Path, arm: str, tests: int, probe: Path | None = None) -> Run:
    """One whole pytest run of the arm; stops the benchmark unless all `tests` passed.

    With `probe`, the run also loads ``bench_probe`` (not in timed runs), which writes its
    per-phase times there.
    """
    command = [sys.executable, "-m", "pytest", *pytest_args(arm)]
    env = subprocess_env(root)
    if probe is not None:
        command[3:3] = ["-p", "bench_probe"]
        env["PYTHONPATH"] = os.pathsep.join([str(root), env["PYTHONPATH"]])
        env["LLMX_BENCH_PROBE"] = str(probe)
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summaries = list(_SUMMARY.finditer(done.stdout))
    counts = summaries[-1]["counts"] if summaries else ""
    if done.returncode != 0 or counts.strip() != f"{tests} passed":
        sys.stdout.write(done.stdout[-20_000:])
        sys.stderr.write(done.stderr[-5_000:])
        raise SystemExit(
            f"\narm {arm!r} did not pass all {tests} tests (exit code {done.returncode}, "
            f"summary {counts!r}): {' '.join(command)} (in {root})"
        )
    return Run(wall, cpu, float(summaries[-1]["seconds"]))


def run_rounds(root: Path, arms: Sequence[str], tests: int, rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {arm: [] for arm in arms}
    for index, order in enumerate(rotations(arms, rounds)):
        for arm in order:
            runs[arm].append(run_arm(root, arm, tests))
        walls = "  ".join(f"{arm} {runs[arm][-1].wall:.2f}s" for arm in arms)
        print(f"  round {index + 1}/{rounds}: {walls}", flush=True)
    return runs


# --------------------------------------------------------------------------- figures


METRICS = ("wall", "cpu", "reported")


@dataclass(frozen=True)
class Row:
    arm: str
    medians: dict[str, float]  # seconds, by metric: the median over rounds
    overheads: dict[str, float]  # ms/test, by metric: (median(arm) - median(bare)) / N
    paired_ms: float  # ms/test: median over rounds of (wall(arm) - wall(bare)) / N


def summarize(runs: dict[str, list[Run]], tests: int) -> list[Row]:
    def median(arm: str, metric: str) -> float:
        return statistics.median(float(getattr(run, metric)) for run in runs[arm])

    rows = []
    for arm, arm_runs in runs.items():
        medians = {metric: median(arm, metric) for metric in METRICS}
        overheads = {
            metric: (medians[metric] - median(BARE, metric)) / tests * 1e3 for metric in METRICS
        }
        walls = [run.wall for run in arm_runs]
        paired = median_difference(walls, [run.wall for run in runs[BARE]]) / tests * 1e3
        rows.append(Row(arm, medians, overheads, paired))
    return rows


def print_table(rows: list[Row], tests: int, rounds: int) -> None:
    print(f"\n### {tests} tests per arm, {rounds} rounds (medians of whole pytest runs)\n")
    print(
        "| arm | wall s | CPU s | pytest-reported s | **overhead, wall** ms/test "
        "| paired wall ms/test | overhead, CPU ms/test | overhead, pytest-reported ms/test |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        medians = " | ".join(f"{row.medians[metric]:.3f}" for metric in METRICS)
        if row.arm == BARE:
            print(f"| {row.arm} | {medians} | (baseline) | | | |")
            continue
        over = row.overheads
        print(
            f"| {row.arm} | {medians} | **{over['wall']:+.3f}** | {row.paired_ms:+.3f} "
            f"| {over['cpu']:+.3f} | {over['reported']:+.3f} |"
        )
    print(
        "\noverhead = (median of the arm - median of bare) / tests, from the whole process's"
        " wall clock (the figure held to the target), its CPU time (user + system: less"
        " sensitive to other load) or pytest's printed duration (no interpreter start-up or"
        " plugin imports, alike in every arm). paired = the median over rounds of the"
        " per-round wall difference / tests."
    )


def verdict(rows: list[Row]) -> float:
    by_arm = {row.arm: row for row in rows}
    llmx, vcr = by_arm[LLMX].overheads, by_arm[VCRPY].overheads

    def ratio(metric: str) -> str:
        if llmx[metric] <= 0:
            return "n/a (llmx's overhead is not positive)"
        return f"{vcr[metric] / llmx[metric]:.1f}x"

    print(
        f"\nvcrpy / llmx overhead: {ratio('wall')} from wall time (vcrpy {vcr['wall']:+.3f}, "
        f"llmx {llmx['wall']:+.3f} ms/test), {ratio('cpu')} from CPU time "
        f"(vcrpy {vcr['cpu']:+.3f}, llmx {llmx['cpu']:+.3f} ms/test)"
    )
    if VCRPY_DEFAULT in by_arm:
        default = by_arm[VCRPY_DEFAULT].overheads["wall"]
        print(
            f"vcrpy over httpx's default transport built per test: {default:+.3f} ms/test, "
            f"{default - vcr['wall']:+.3f} ms more than vcrpy with a shared TLS context"
        )
    ok = llmx["wall"] <= TARGET_MS
    print(
        f"\nVerdict: llmx_cassette adds {llmx['wall']:.3f} ms per test over a bare "
        f"MockTransport test (target ≤ {TARGET_MS:g} ms: {'PASS' if ok else 'FAIL'}; "
        f"{llmx['cpu']:.3f} ms from CPU time); vcrpy + pytest-recording adds "
        f"{vcr['wall']:.3f} ms in the same run (notes: ~{PEER_NOTE_MS} ms)."
    )
    return llmx["wall"]


# --------------------------------------------------------------------------- profile


def _median_us(function: Callable[[], object], reps: int) -> float:
    return statistics.median(timed(function) for _ in range(reps)) * 1e6


def time_pieces(cassette: Path, text: str, reps: int) -> None:
    """The fixture's pieces, in-process, on one test's cassette; medians of `reps` calls."""
    events, _ = answer_events()
    tagged = [events[0].replace(PLACEHOLDER.encode(), b"0000"), *events[1:]]
    expected = text.replace(PLACEHOLDER, "0000")
    options = CassetteOptions()
    none = RecordMode.NONE

    def bare_test() -> None:
        transport = httpx.MockTransport(_handler(tagged))
        with ChatClient(PROVIDER, MODEL, transport=transport) as client:
            check_events(list(client.stream(PROMPT)), expected)

    def llmx_test() -> None:
        session = CassetteSession(cassette, CassetteOptions.model_validate({}), none)
        with session.client() as client:
            check_events(list(client.stream(PROMPT)), expected)
        if session.problems():
            raise AssertionError(session.problems())
        session.close()

    def bare_client() -> ChatClient:
        return ChatClient(PROVIDER, MODEL, transport=httpx.MockTransport(_handler(tagged)))

    session = CassetteSession(cassette, options, none)
    data = cassette.read_bytes()
    pieces: list[tuple[str, Callable[[], object]]] = [
        ("bare test body: MockTransport ChatClient, stream, check, close", bare_test),
        ("llmx test body: session, client(), stream, check, problems, close", llmx_test),
        ("  read the cassette file", cassette.read_bytes),
        ("  YAML parse (cassette._yaml.load)", lambda: _yaml.load(data)),
        ("  load_cassette (read + YAML + models)", lambda: load_cassette(cassette)),
        ("  parse_cassette (YAML + models, no read)", lambda: parse_cassette(data, "c.yaml")),
        ("  CassetteOptions.model_validate({})", lambda: CassetteOptions.model_validate({})),
        (
            "  CassetteTransport(path, none) (load + player + writer)",
            lambda: CassetteTransport(cassette, none, ReplayOptions(clock=VirtualClock())),
        ),
        (
            "  CassetteSession(path, options, none)",
            lambda: CassetteSession(cassette, options, none),
        ),
        ("  session.client() (ChatClient, httpx.Client)", lambda: session.client().close()),
        ("  ChatClient(MockTransport) construction (bare)", lambda: bare_client().close()),
        ("  session.problems()", session.problems),
        ("  dict(os.environ) (session.client()'s environ)", lambda: dict(os.environ)),
    ]

    for _name, function in pieces:  # warm up
        function()
    print(f"\n#### The fixture's pieces, in-process (median of {reps} calls each)\n")
    print("| piece | median µs |")
    print("|---|---:|")
    results = {name: _median_us(function, reps) for name, function in pieces}
    for name, micros in results.items():
        print(f"| {name} | {micros:,.0f} |")
    difference = results[pieces[1][0]] - results[pieces[0][0]]
    print(
        f"\nIn-process, the llmx test body costs {difference:,.0f} µs more than the bare one"
        " (gc.collect() before each call, so no GC pauses here); the rest of the whole-run"
        " overhead is pytest's fixture machinery, the plugin's hook wrapper, GC and noise."
    )


PHASES = (
    ("collection", "collection (per test)"),
    ("setup", "runtest setup: fixtures"),
    ("call", "runtest call: test body, plugins' runtest_call wrappers"),
    ("teardown", "runtest teardown: fixture finalizers"),
    ("reports", "makereport + logreport"),
    ("protocol", "whole runtest protocol"),
    ("session_rest", "rest of the session (session start and finish hooks, summary)"),
    ("outside", "outside the session: interpreter start-up, imports, configure, exit"),
    ("wall", "whole process, wall clock"),
    ("gc", "cyclic-GC pauses (inside the phases above)"),
)


def probe_phases(root: Path, arms: Sequence[str], tests: int, runs: int) -> None:
    """Where each arm's time goes, per test, without a profiler: hook wrappers (the
    generated ``bench_probe`` plugin) around pytest's phases; medians of `runs` interleaved
    runs of each arm."""
    found: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    probe = root / "probe.json"
    for order in rotations(arms, runs):
        for arm in order:
            wall = run_arm(root, arm, tests, probe=probe).wall
            result = orjson.loads(probe.read_bytes())
            result["session_rest"] = result["session"] - result["collection"] - result["protocol"]
            result["outside"] = wall - result["session"]
            result["wall"] = wall
            found[arm].append(result)

    def median(arm: str, key: str) -> float:
        return statistics.median(result.get(key, 0.0) for result in found[arm]) / tests

    print(f"\n#### Per-phase time, µs per test (hook wrappers, median of {runs} runs)\n")
    others = [arm for arm in arms if arm != BARE]
    print("| phase | bare | " + " | ".join(f"{arm} | {arm} - bare" for arm in others) + " |")
    print("|---|---:|" + "---:|---:|" * len(others))
    for key, label in PHASES:
        bare = median(BARE, key) * 1e6
        cells = [f"{bare:,.0f}"]
        for arm in others:
            value = median(arm, key) * 1e6
            cells += [f"{value:,.0f}", f"{value - bare:+,.0f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    counts = ", ".join(
        f"{arm} {median(arm, 'gc_collections'):.2f} "
        f"({median(arm, 'gc_gen2') * tests:.0f} of generation 2 in the run)"
        for arm in arms
    )
    print(f"\nGC collections per test: {counts}.")


FIXTURE_CODE = (
    "llmx_replay/pytest_plugin",
    "llmx_replay/harness/_session",
    "llmx_replay/transports",
    "llmx_replay/cassette",
    "yaml/",
    "pydantic/",
)


def profile_pytest(root: Path, tests: int, top: int) -> None:
    """cProfile over one in-process pytest run of the llmx arm: the fixture's own functions
    (plugin, session, transports, cassette loading, YAML, pydantic) by cumulative time, per
    test."""
    import pytest

    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    cwd = Path.cwd()
    os.chdir(root)
    profiler = cProfile.Profile()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            profiler.enable()
            code = pytest.main(pytest_args(LLMX))
            profiler.disable()
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"the in-process llmx run failed with exit code {code}")
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in entries.items():
        short = re.sub(r"^.*?/(llmx_replay|yaml|pydantic)/", r"\1/", filename)
        rows.append((cumtime, tottime, calls, f"{short}:{line}({function})"))
    rows.sort(reverse=True)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"\n#### cProfile of one in-process pytest run of the llmx arm ({total:.2f} s profiled; "
        f"times inflated by the profiler)\n"
    )
    print("| function | calls/test | cumulative µs/test | own µs/test |")
    print("|---|---:|---:|---:|")
    shown = 0
    for cumtime, tottime, calls, name in rows:
        # The fixture's own code (the client and its pipeline also run in the bare arm);
        # one-off imports are not a per-test cost.
        if not any(part in name for part in FIXTURE_CODE) or "(<module>)" in name:
            continue
        print(
            f"| {name} | {calls / tests:.1f} | {cumtime / tests * 1e6:,.0f} "
            f"| {tottime / tests * 1e6:,.0f} |"
        )
        shown += 1
        if shown >= top:
            break


# --------------------------------------------------------------------------- main


VERSIONS = ("pytest", "vcrpy", "pytest-recording", "syrupy", "httpx", "pyyaml", "pydantic")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=DEFAULT_TESTS, help="tests per arm")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed rounds")
    parser.add_argument(
        "--skip-default-transport",
        action="store_true",
        help="leave out the vcrpy arm over httpx's default transport built per test",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the llmx arm even if under the target"
    )
    parser.add_argument("--profile-reps", type=int, default=300, help="calls per timed piece")
    parser.add_argument("--keep", type=Path, help="generate the project in DIR and keep it")
    parser.add_argument(
        "--app-imports",
        default="",
        metavar="MODULES",
        help="modules the test modules import, as an application would (comma-separated): "
        "`requests,aiohttp` makes the fixture patch their clients too, as in a LiteLLM project",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.tests <= 10_000 or args.rounds < 1:
        parser.error("--tests must be 1 to 10000 and --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print_versions(VERSIONS, libyaml=True)
    arms = [BARE, LLMX, VCRPY] + ([] if args.skip_default_transport else [VCRPY_DEFAULT])
    with tempfile.TemporaryDirectory(prefix="llmx-fixture-overhead-") as scratch:
        root = args.keep or Path(scratch)
        if args.keep:
            if root.exists() and any(root.iterdir()):
                raise SystemExit(f"--keep {root}: the folder exists and is not empty")
            root.mkdir(parents=True, exist_ok=True)
        app_imports = [module for module in args.app_imports.split(",") if module]
        template, text = build_project(root, args.tests, arms, app_imports)
        if app_imports:
            print(f"every test module imports {', '.join(app_imports)}")
        print(
            f"\nanswer: 50 SSE events, {len(b''.join(answer_events()[0])) / 50:.0f} B/event; "
            f"cassette {len(template):,} B; project in {root}"
        )
        print("command per arm: PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest", end=" ")
        print(" ".join(pytest_args("<arm>")))
        print("untimed check run of every arm (all tests must pass):", flush=True)
        for arm in arms:
            run = run_arm(root, arm, args.tests)
            print(f"  {arm}: {args.tests} passed, {run.wall:.2f} s")
        runs = run_rounds(root, arms, args.tests, args.rounds)
        rows = summarize(runs, args.tests)
        print_table(rows, args.tests, args.rounds)
        llmx = verdict(rows)
        if llmx > TARGET_MS or args.profile:
            print(f"\n## Where the llmx arm's time goes (its overhead: {llmx:.3f} ms/test)")
            cassette = root / "cassettes" / module_of(LLMX).stem
            probe_phases(root, [BARE, LLMX, VCRPY], args.tests, runs=3)
            time_pieces(cassette / "test_turn[0000].yaml", text, args.profile_reps)
            profile_pytest(root, args.tests, top=25)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
