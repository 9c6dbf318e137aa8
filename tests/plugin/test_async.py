"""Async tests with the pytest plugin: `llmx_cassette.async_client()` records and replays
under anyio's pytest plugin and under pytest-asyncio, and a miss fails the async test.

Each test runs pytest in-process on a generated project whose upstream is an
`httpx.MockTransport` answering the last user message ``X`` with ``X <version>`` (the
``LLMX_TEST_VERSION`` variable) and logging every request that reaches it, so that a
replayed answer (an older version) can be told from a live one.
"""

from typing import TYPE_CHECKING

import pytest
from plugin_support import failures, not_an_xdist_worker

if TYPE_CHECKING:
    from conftest import LlmxProject

# Appended to the `llmx_project` conftest: its `llmx_config` and `ask` replace the first ones.
ASYNC_CONFTEST = '''


async def async_answer(request):
    """`answer`, as an async upstream: only an async client can call it."""
    return answer(request)


@pytest.fixture
def llmx_config():
    return {"upstream": httpx.MockTransport(async_answer), "provider": PROVIDER, "model": MODEL}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def async_text_of(events):
    return text_of([event async for event in events])


@pytest.fixture
def ask(llmx_cassette):
    """Stream each question through one async client of the cassette; their texts."""

    async def ask(*questions):
        async with llmx_cassette.async_client() as client:
            return [await async_text_of(client.stream(prompt(question))) for question in questions]

    return ask


@pytest.fixture
def expected():
    """Each question answered at the version the outer test expects."""

    def expected(*questions):
        return [f"{question} {os.environ['LLMX_EXPECTED_VERSION']}" for question in questions]

    return expected
'''

RECORD_THEN_REPLAY = """
import pytest


@pytest.mark.anyio
async def test_with_anyio(llmx_cassette, ask, expected):
    assert await ask("anyio one", "anyio two") == expected("anyio one", "anyio two")
    assert len(llmx_cassette.requests) == 2


@pytest.mark.asyncio
async def test_with_pytest_asyncio(llmx_cassette, ask, expected):
    assert await ask("asyncio one") == expected("asyncio one")
    assert llmx_cassette.request_body()["messages"][-1]["content"] == "asyncio one"
"""

MISSES = """
import pytest

from llmx_replay import NoMatchingInteraction
from llmx_replay.models import InputText, Message, Prompt

pytestmark = pytest.mark.llmx_cassette(name="known", record_mode="none", allow_unplayed=True)


@pytest.mark.anyio
async def test_miss_under_anyio(ask):
    await ask("unknown under anyio")


@pytest.mark.asyncio
async def test_miss_under_pytest_asyncio(ask):
    await ask("unknown under pytest-asyncio")


@pytest.mark.anyio
async def test_miss_swallowed(llmx_cassette):
    question = Prompt(input=[Message(role="user", content=[InputText(text="swallowed")])])
    async with llmx_cassette.async_client() as client:
        with pytest.raises(NoMatchingInteraction):
            async for _ in client.stream(question):
                pass


@pytest.mark.asyncio
async def test_hit(ask):
    assert await ask("known") == ["known v0"]


@pytest.mark.anyio
@pytest.mark.llmx_cassette(allow_unplayed=False)
async def test_unplayed(ask):
    assert await ask() == []
"""


@pytest.fixture
def project(llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch) -> "LlmxProject":
    not_an_xdist_worker(monkeypatch)
    llmx_project.extend_conftest(ASYNC_CONFTEST)
    return llmx_project


def run(
    project: "LlmxProject",
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    version: str,
    expected: str,
) -> pytest.RunResult:
    """pytest in-process with the upstream at `version`, the inner tests expecting answers at
    `expected`, and the upstream log emptied first."""
    monkeypatch.setenv("LLMX_TEST_VERSION", version)
    monkeypatch.setenv("LLMX_EXPECTED_VERSION", expected)
    return project.run(*args)


def test_async_tests_record_then_replay_under_anyio_and_pytest_asyncio(
    project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(RECORD_THEN_REPLAY, "test_inner")
    folder = project.cassettes / "test_inner"

    # No cassette yet, CI unset: record mode "once" records.
    recorded = run(project, monkeypatch, version="v1", expected="v1")

    recorded.assert_outcomes(passed=2)
    assert sorted(project.upstream_calls()) == ["anyio one", "anyio two", "asyncio one"]
    assert project.exchanges(folder / "test_with_anyio.yaml", complete=True) == [
        ("anyio one", "anyio one v1"),
        ("anyio two", "anyio two v1"),
    ]
    assert project.exchanges(folder / "test_with_pytest_asyncio.yaml", complete=True) == [
        ("asyncio one", "asyncio one v1")
    ]
    files = {path.name: path.read_bytes() for path in folder.iterdir()}

    # On CI (record mode "none") the same tests replay: v1 answers, nothing sent upstream.
    monkeypatch.setenv("CI", "true")
    replayed = run(project, monkeypatch, version="v2", expected="v1")

    replayed.assert_outcomes(passed=2)
    assert project.upstream_calls() == []
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == files


def test_async_tests_see_the_live_answer_when_the_cassette_is_rerecorded(
    project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(RECORD_THEN_REPLAY, "test_inner")
    run(project, monkeypatch, version="v1", expected="v1").assert_outcomes(passed=2)

    # The expectations of the replay run would be wrong if the first run had not recorded.
    stale = run(project, monkeypatch, version="v2", expected="v2")
    stale.assert_outcomes(failed=2)
    assert project.upstream_calls() == []

    rerecorded = run(project, monkeypatch, "--llmx-record-mode=all", version="v2", expected="v2")
    rerecorded.assert_outcomes(passed=2)
    assert sorted(project.upstream_calls()) == ["anyio one", "anyio two", "asyncio one"]
    assert project.exchanges("test_inner/test_with_anyio.yaml", complete=True) == [
        ("anyio one", "anyio one v2"),
        ("anyio two", "anyio two v2"),
    ]


def test_a_miss_in_mode_none_or_an_unplayed_recording_fails_the_async_test(
    project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(MISSES, "test_inner")
    known = project.cassettes / "known.yaml"
    # Recorded by a first run of test_hit alone, at v0.
    seeding = run(
        project,
        monkeypatch,
        "-k",
        "test_hit",
        "--llmx-record-mode=once",
        version="v0",
        expected="v0",
    )
    seeding.assert_outcomes(passed=1, deselected=4)
    assert project.exchanges(known, complete=True) == [("known", "known v0")]
    before = known.read_bytes()

    result = run(project, monkeypatch, version="v1", expected="v1")

    result.assert_outcomes(passed=1, failed=4)
    assert failures(result) == {
        "test_miss_under_anyio",
        "test_miss_under_pytest_asyncio",
        "test_miss_swallowed",
        "test_unplayed",
    }
    for test, question in [
        ("test_miss_under_anyio", "unknown under anyio"),
        ("test_miss_under_pytest_asyncio", "unknown under pytest-asyncio"),
    ]:
        result.stdout.fnmatch_lines(
            [
                f"*_ {test} _*",
                "E *NoMatchingInteraction: */known.yaml: no recorded interaction matches POST "
                f'http://llm.test/v1/chat/completions asking "{question}" (record mode '
                "'none' never records)*",
                f'E *recorded "known", requested "{question}"',
            ]
        )
    # The miss the test swallowed is reported by the plugin once the test has run.
    result.stdout.fnmatch_lines(
        [
            "*_ test_miss_swallowed _*",
            "*/known.yaml: no recorded interaction matches POST *(record mode 'none' never "
            "records)*",
            '*recorded "known", requested "swallowed"',
        ]
    )
    # So is an async test that leaves the recording unplayed.
    result.stdout.fnmatch_lines(
        [
            "*_ test_unplayed _*",
            "*/known.yaml: 1 recorded interaction(s) never played: #0 POST "
            'http://llm.test/v1/chat/completions asking "known"*',
        ]
    )
    assert project.upstream_calls() == []
    assert known.read_bytes() == before
