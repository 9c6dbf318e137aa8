"""The pytest plugin under pytest-xdist: workers record, replay and share cassettes safely.

Each test runs pytest in a subprocess with ``-n 2`` on a generated project whose upstream is
an `httpx.MockTransport`. The upstream answers the last user message ``X`` with ``X <version>``
(the ``LLMX_TEST_VERSION`` variable), so a replayed answer (an older version) can be told
from a live one, and it logs each request that reaches it, with the worker that sent it. The
inner tests write what they were answered, and by which worker, to ``results/<test>.json``.
"""

import json
from pathlib import Path

import pytest
from plugin_support import (
    BASE_URL,
    PROVIDER,
    exchanges,
    failures,
    not_an_xdist_worker,
    prompt,
    record_cassette,
    text_of,
    upstream_calls,
)

from llmx_replay import CassetteOptions, CassetteSession
from llmx_replay.cassette import load_cassette
from llmx_replay.transports import RecordMode

MODEL = "m"  # the inner conftest's

INNER_CONFTEST = '''
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from llmx_replay.models import (
    ErrorEvent, InputText, Message, OutputTextDelta, Prompt, ProviderSettings,
)

HERE = Path(__file__).parent


def prompt(question):
    return Prompt(input=[Message(role="user", content=[InputText(text=question)])])


def sse(text):
    chunks = [
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": text}}]},
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    events = "".join(f"data: {json.dumps(chunk)}\\n\\n" for chunk in chunks)
    return (events + "data: [DONE]\\n\\n").encode()


def worker():
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def wait_for_the_other_worker():
    """Hold the first request of each sharing test until both are in flight, so that both
    recordings are written at about the same time."""
    (HERE / f"ready-{worker()}").touch()
    deadline = time.monotonic() + 10
    while len(list(HERE.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)


def answer(request):
    asked = json.loads(request.content)["messages"][-1]["content"]
    with (HERE / "upstream.log").open("a") as log:
        log.write(f"{worker()} {asked}\\n")
    if asked.startswith("shared") and asked.endswith(" 1"):
        wait_for_the_other_worker()
    text = f"{asked} {os.environ['LLMX_TEST_VERSION']}"
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(text))


def text_of(events):
    parts = []
    for event in events:
        if isinstance(event, OutputTextDelta):
            parts.append(event.delta)
        elif isinstance(event, ErrorEvent):
            parts.append(f"<error {event.kind}>")
    return "".join(parts)


@pytest.fixture
def llmx_config():
    return {
        "provider": ProviderSettings(base_url="http://llm.test/v1"),
        "model": "m",
        "upstream": httpx.MockTransport(answer),
    }


@pytest.fixture
def ask(llmx_cassette, request):
    def ask(*questions):
        client = llmx_cassette.client()
        answers = [text_of(client.stream(prompt(question))) for question in questions]
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        (results / f"{request.node.name}.json").write_text(
            json.dumps({"worker": worker(), "answers": answers})
        )
        return answers

    return ask
'''

WORKERS_MODULE = """
import pytest


def test_alpha(ask):
    ask("alpha")


def test_beta(ask):
    ask("beta")


def test_gamma(ask):
    ask("gamma")


@pytest.mark.llmx_cassette(allow_unplayed=True)
def test_two_turns(ask):
    ask("one", "two")


def test_fresh(ask):
    ask("fresh")
"""

# A test whose session starts after the other wrote the cassette replays nothing of what it
# loaded: sharing a cassette takes allow_unplayed.
SHARED_MODULE = """
import pytest

pytestmark = pytest.mark.llmx_cassette(name="shared", record_mode=MODE, allow_unplayed=True)


def test_left(ask):
    ask("shared left 1", "shared left 2", "shared left 3")


def test_right(ask):
    ask("shared right 1", "shared right 2", "shared right 3")
"""


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def results(root: Path) -> dict[str, dict[str, object]]:
    """What each inner test that got its answers was answered, and by which worker."""
    folder = root / "results"
    if not folder.exists():
        return {}
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def answers(root: Path) -> dict[str, object]:
    return {name: result["answers"] for name, result in results(root).items()}


def questions_sent_upstream(root: Path) -> set[str]:
    """The questions of the upstream log, whose lines here are ``<worker> <question>``."""
    return {line.split(" ", 1)[1] for line in upstream_calls(root)}


# Installed plugins these runs do without: each worker starts twice as fast.
UNUSED_PLUGINS = [
    arg
    for name in ("hypothesispytest", "recording", "syrupy", "anyio", "asyncio")
    for arg in ("-p", f"no:{name}")
]


def run_with_two_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, version: str, *args: str
) -> pytest.RunResult:
    """pytest with ``-n 2``, the upstream at `version`, the results of any earlier run gone."""
    for leftover in [
        *pytester.path.glob("results/*.json"),
        *pytester.path.glob("ready-*"),
        pytester.path / "upstream.log",
    ]:
        leftover.unlink(missing_ok=True)
    monkeypatch.setenv("LLMX_TEST_VERSION", version)
    return pytester.runpytest_subprocess(
        "-n", "2", "-p", "xdist", "-p", "no:cacheprovider", *UNUSED_PLUGINS, *args, timeout=120
    )


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The record mode always comes from --llmx-record-mode or the marker here; CI is unset
    # so that nothing depends on where the outer tests run.
    monkeypatch.delenv("CI", raising=False)
    not_an_xdist_worker(monkeypatch)
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(INNER_CONFTEST)
    return pytester


# --------------------------------------------------------------------------------------------
# Every record mode, with two workers
# --------------------------------------------------------------------------------------------

# Before the run, test_alpha's cassette holds "alpha" and test_two_turns's holds "one" and
# "stale" (which the test no longer asks), all answered at v0; the others have none. The
# upstream is at v1. For each mode: what each test was answered (absent: it failed), the
# questions that reached the upstream, and what each cassette holds after the run.
EXPECTED: dict[str, tuple[dict[str, list[str]], set[str], dict[str, list[tuple[str, str]]]]] = {
    "once": (
        {"test_alpha": ["alpha v0"], "test_beta": ["beta v1"], "test_gamma": ["gamma v1"]},
        {"beta", "gamma"},
        {
            "test_alpha": [("alpha", "alpha v0")],
            "test_beta": [("beta", "beta v1")],
            "test_gamma": [("gamma", "gamma v1")],
            "test_two_turns": [("one", "one v0"), ("stale", "stale v0")],
        },
    ),
    "new_episodes": (
        {
            "test_alpha": ["alpha v0"],
            "test_beta": ["beta v1"],
            "test_gamma": ["gamma v1"],
            "test_two_turns": ["one v0", "two v1"],
        },
        {"beta", "gamma", "two"},
        {
            "test_alpha": [("alpha", "alpha v0")],
            "test_beta": [("beta", "beta v1")],
            "test_gamma": [("gamma", "gamma v1")],
            "test_two_turns": [("one", "one v0"), ("stale", "stale v0"), ("two", "two v1")],
        },
    ),
    "all": (
        {
            "test_alpha": ["alpha v1"],
            "test_beta": ["beta v1"],
            "test_gamma": ["gamma v1"],
            "test_two_turns": ["one v1", "two v1"],
        },
        {"alpha", "beta", "gamma", "one", "two"},
        {
            "test_alpha": [("alpha", "alpha v1")],
            "test_beta": [("beta", "beta v1")],
            "test_gamma": [("gamma", "gamma v1")],
            # Renewed in place; what was not asked again is kept.
            "test_two_turns": [("one", "one v1"), ("stale", "stale v0"), ("two", "two v1")],
        },
    ),
    "rewrite": (
        {
            "test_alpha": ["alpha v1"],
            "test_beta": ["beta v1"],
            "test_gamma": ["gamma v1"],
            "test_two_turns": ["one v1", "two v1"],
        },
        {"alpha", "beta", "gamma", "one", "two"},
        {
            "test_alpha": [("alpha", "alpha v1")],
            "test_beta": [("beta", "beta v1")],
            "test_gamma": [("gamma", "gamma v1")],
            "test_two_turns": [("one", "one v1"), ("two", "two v1")],
        },
    ),
}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_workers_record_in_each_mode_then_replay_in_mode_none(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    expected_answers, expected_upstream, expected_files = EXPECTED[mode]
    project.makepyfile(test_workers=WORKERS_MODULE)
    cassettes = project.path / "cassettes" / "test_workers"
    record_cassette(cassettes / "test_alpha.yaml", "alpha", version="v0", model=MODEL)
    record_cassette(cassettes / "test_two_turns.yaml", "one", "stale", version="v0", model=MODEL)

    # Record (test_fresh is left out: its cassette stays missing).
    result = run_with_two_workers(
        project, monkeypatch, "v1", "--llmx-record-mode", mode, "-k", "not fresh"
    )

    recorded = results(project.path)
    assert {name: got["answers"] for name, got in recorded.items()} == expected_answers
    assert {got["worker"] for got in recorded.values()} == {"gw0", "gw1"}
    assert questions_sent_upstream(project.path) == expected_upstream
    assert len(upstream_calls(project.path)) == len(expected_upstream)  # each asked once
    assert sorted(path.stem for path in cassettes.glob("*.yaml")) == sorted(expected_files)
    for name, pairs in expected_files.items():
        assert exchanges(cassettes / f"{name}.yaml", replayed=True) == pairs, name
    if mode == "once":
        result.assert_outcomes(passed=3, failed=1)
        assert failures(result) == {"test_two_turns"}
        result.stdout.fnmatch_lines(
            [
                "E *.NoMatchingInteraction: */test_two_turns.yaml: no recorded interaction "
                "matches * (record mode 'once' does not record into an existing cassette)*"
            ]
        )
    else:
        result.assert_outcomes(passed=4)
    files = {path.name: path.read_bytes() for path in cassettes.glob("*.yaml")}

    # Replay everything with the upstream at v2, which no request may reach.
    replay = run_with_two_workers(project, monkeypatch, "v2", "--llmx-record-mode", "none")

    assert upstream_calls(project.path) == []
    assert answers(project.path) == {
        name: [answered for _, answered in pairs if not answered.startswith("stale")]
        for name, pairs in expected_files.items()
        if name in expected_answers
    }
    assert {path.name: path.read_bytes() for path in cassettes.glob("*.yaml")} == files
    failed = ["test_fresh"] if mode != "once" else ["test_fresh", "test_two_turns"]
    replay.assert_outcomes(passed=5 - len(failed), failed=len(failed))
    replay.stdout.fnmatch_lines(
        [
            "E *.NoMatchingInteraction: */test_fresh.yaml: no recorded interaction matches * "
            "(record mode 'none' never records, and the cassette does not exist)*"
        ]
    )
    assert failures(replay) == set(failed)


# --------------------------------------------------------------------------------------------
# One cassette shared by tests on different workers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["new_episodes", "rewrite"])
def test_two_workers_recording_into_one_cassette_keep_both_recordings(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # `rewrite` starts the cassette anew once in a run, not once per test: the stale
    # recording goes, and neither worker's recordings do.
    record_cassette(project.path / "cassettes" / "shared.yaml", "stale", version="v0", model=MODEL)
    project.makepyfile(test_shared=SHARED_MODULE.replace("MODE", repr(mode)))

    result = run_with_two_workers(project, monkeypatch, "v1")

    result.assert_outcomes(passed=2)
    recorded = results(project.path)
    assert recorded["test_left"]["answers"] == [f"shared left {n} v1" for n in (1, 2, 3)]
    assert recorded["test_right"]["answers"] == [f"shared right {n} v1" for n in (1, 2, 3)]
    # Really on two workers at once: both first requests were held until the other came.
    assert recorded["test_left"]["worker"] != recorded["test_right"]["worker"]
    assert len(list(project.path.glob("ready-*"))) == 2

    path = project.path / "cassettes" / "shared.yaml"
    assert sorted(project.path.glob("cassettes/**/*.yaml")) == [path]
    pairs = exchanges(path, replayed=True)
    kept = [("stale", "stale v0")] if mode == "new_episodes" else []
    assert pairs[: len(kept)] == kept
    assert sorted(pairs[len(kept) :]) == sorted(
        (f"shared {side} {n}", f"shared {side} {n} v1")
        for side in ("left", "right")
        for n in (1, 2, 3)
    )
    # Each test's recordings keep their order among the other's.
    for side in ("left", "right"):
        asked = [question for question, _ in pairs if f" {side} " in question]
        assert asked == [f"shared {side} {n}" for n in (1, 2, 3)]
    cassette = load_cassette(path)
    assert cassette.metadata is not None
    assert cassette.metadata.base_url == BASE_URL
    assert cassette.metadata.model == MODEL

    # The merged cassette replays every recording, to either test.
    options = CassetteOptions(provider=PROVIDER, model=MODEL)
    with CassetteSession(path, options, RecordMode.NONE) as session:
        client = session.client()
        for question, answered in reversed(pairs):
            assert text_of(list(client.stream(prompt(question)))) == answered
        assert session.misses == []
        assert session.problems() == []
