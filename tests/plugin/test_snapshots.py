"""The `llmx_snapshot` fixture: syrupy snapshots of replayed events and request bodies, one
JSON file per assertion, laid out one item per line, with volatile ids masked.

The pytester tests run pytest in-process on a generated project whose upstream (an
`httpx.MockTransport`) answers a weather question with a tool call, and the call's result
with a text; ``variant.json`` says which tool call id, chunk id, ``created`` and text it
sends, so that a test can re-record the cassette with other values. The unit tests of
`EventsSnapshotExtension.serialize` are in ``tests/test_syrupy_ext.py``.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from plugin_support import not_an_xdist_worker

from llmx_replay.cassette import load_cassette
from llmx_replay.harness import Playback, play_cassette
from llmx_replay.models import FunctionCall, OutputItemDone, ResponseEvent

if TYPE_CHECKING:
    from conftest import LlmxProject

# Appended to the `llmx_project` conftest: its `llmx_config` replaces the first one.
SNAPSHOT_CONFTEST = '''

from llmx_replay.models import (
    FunctionCall, FunctionCallOutput, FunctionCallOutputPayload, InputText, Message,
    OutputItemDone,
)

QUESTION = Message(role="user", content=[InputText(text="Weather in Paris?")])


def weather_sse(variant, *deltas):
    chunks = [
        {"id": variant["chunk_id"], "object": "chat.completion.chunk",
         "created": variant["created"], "model": "m", "choices": [choice]}
        for choice in deltas
    ]
    events = "".join(f"data: {json.dumps(chunk)}\\n\\n" for chunk in chunks)
    return (events + "data: [DONE]\\n\\n").encode()


def weather(request):
    variant = json.loads((HERE / "variant.json").read_text())
    with (HERE / "upstream.log").open("a") as log:
        log.write("request\\n")
    messages = json.loads(request.content)["messages"]
    if messages[-1]["role"] == "tool":
        body = weather_sse(
            variant,
            {"index": 0, "delta": {"role": "assistant", "content": variant["text"]}},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        )
    else:
        call = {"index": 0, "id": variant["call_id"], "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}
        arguments = {"index": 0, "function": {"arguments": json.dumps({"city": "Paris"})}}
        body = weather_sse(
            variant,
            {"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}},
            {"index": 0, "delta": {"tool_calls": [arguments]}},
            {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
        )
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


@pytest.fixture
def llmx_config():
    return {"provider": PROVIDER, "model": "m", "upstream": httpx.MockTransport(weather)}


@pytest.fixture
def converse(llmx_cassette):
    """Ask the question, then send the tool call's result back."""

    def converse():
        client = llmx_cassette.client()
        first = list(client.stream(Prompt(input=[QUESTION])))
        [call] = [
            event.item for event in first
            if isinstance(event, OutputItemDone) and isinstance(event.item, FunctionCall)
        ]
        result = FunctionCallOutput(
            call_id=call.call_id, output=FunctionCallOutputPayload(content="18 C, sunny")
        )
        list(client.stream(Prompt(input=[QUESTION, call, result])))

    return converse
'''

FORECAST = """
def test_weather(llmx_cassette, llmx_snapshot, converse):
    converse()
    assert llmx_cassette.play() == llmx_snapshot
    assert llmx_cassette.request_body() == llmx_snapshot
"""

VARIANT_ABC = {"call_id": "call_abc", "chunk_id": "chatcmpl-1", "created": 1, "text": "Sunny"}
VARIANT_XYZ = {"call_id": "call_xyz", "chunk_id": "chatcmpl-9", "created": 999, "text": "Sunny"}


@pytest.fixture
def project(llmx_project: "LlmxProject", monkeypatch: pytest.MonkeyPatch) -> "LlmxProject":
    not_an_xdist_worker(monkeypatch)
    llmx_project.extend_conftest(SNAPSHOT_CONFTEST)
    llmx_project.write(FORECAST, "test_forecast")
    use_variant(llmx_project, VARIANT_ABC)
    return llmx_project


def use_variant(project: "LlmxProject", variant: dict[str, Any]) -> None:
    (project.path / "variant.json").write_text(json.dumps(variant))


def snapshots(project: "LlmxProject") -> dict[str, str]:
    """The snapshot files under ``__snapshots__``, by path relative to it."""
    folder = project.path / "__snapshots__"
    return {
        path.relative_to(folder).as_posix(): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def cassette_path(project: "LlmxProject") -> Path:
    return project.cassettes / "test_forecast" / "test_weather.yaml"


def recorded_events(project: "LlmxProject") -> list[ResponseEvent]:
    return list(play_cassette(load_cassette(cassette_path(project)), Playback()))


def masked_as_json(value: Any, *ids: str) -> Any:
    """`value` in JSON with each of `ids` replaced by its placeholder, in the order given."""
    text = json.dumps(value)
    for number, masked in enumerate(ids, start=1):
        text = text.replace(json.dumps(masked), json.dumps(f"<id {number}>"))
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# Writing and checking snapshots
# --------------------------------------------------------------------------------------------


def test_snapshot_update_writes_one_file_per_assertion_with_one_event_per_line(
    project: "LlmxProject",
) -> None:
    result = project.run("--snapshot-update", "--llmx-record-mode=once")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 snapshots generated*"])
    written = snapshots(project)
    assert sorted(written) == [
        "test_forecast/test_weather.1.json",
        "test_forecast/test_weather.json",
    ]

    # The first assertion: the played events, one per line, the tool call and response ids
    # masked in order of appearance.
    events = recorded_events(project)
    assert any(isinstance(e, OutputItemDone) and isinstance(e.item, FunctionCall) for e in events)
    expected = masked_as_json(
        [event.model_dump(mode="json") for event in events], "call_abc", "chatcmpl-1"
    )
    text = written["test_forecast/test_weather.json"]
    assert json.loads(text) == expected
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert len(lines) == len(expected) + 2
    for line, event in zip(lines[1:-1], expected, strict=True):
        assert line.startswith("  {")
        assert json.loads(line.strip().removesuffix(",")) == event
    assert "call_abc" not in text
    assert '"call_id": "<id 1>"' in text
    assert '"delta": "Sunny"' in text

    # The second: the last request body, one key per line and one message per line.
    sent = json.loads(load_cassette(cassette_path(project)).interactions[-1].request.body or b"")
    text = written["test_forecast/test_weather.1.json"]
    assert json.loads(text) == masked_as_json(sent, "call_abc")
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    message_lines = lines[lines.index('  "messages": [') + 1 : lines.index("  ],")]
    assert [json.loads(line.strip().removesuffix(",")) for line in message_lines] == (
        masked_as_json(sent["messages"], "call_abc")
    )
    assert [line.split(":")[0].strip() for line in lines[1:-1] if line.startswith('  "')] == [
        json.dumps(key) for key in sent
    ]
    # A call and its result keep the same placeholder.
    assistant, tool = message_lines[-2], message_lines[-1]
    assert '"id": "<id 1>"' in assistant
    assert '"tool_call_id": "<id 1>"' in tool
    assert "call_abc" not in text


def test_after_snapshot_update_a_plain_run_passes_and_replays(
    project: "LlmxProject", monkeypatch: pytest.MonkeyPatch
) -> None:
    project.run("--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    written = snapshots(project)
    assert len(project.upstream_calls()) == 2

    monkeypatch.setenv("CI", "true")  # record mode "none"
    result = project.run()

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 snapshots passed*"])
    assert project.upstream_calls() == []
    assert snapshots(project) == written


def test_a_rerecording_that_differs_only_in_ids_and_created_matches_the_same_snapshot(
    project: "LlmxProject",
) -> None:
    project.run("--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    written = snapshots(project)
    before = cassette_path(project).read_text()
    assert "call_abc" in before and "chatcmpl-1" in before

    use_variant(project, VARIANT_XYZ)
    result = project.run("--llmx-record-mode=rewrite")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 snapshots passed*"])
    after = cassette_path(project).read_text()
    assert "call_xyz" in after and "chatcmpl-9" in after and '"created": 999' in after
    assert "call_abc" not in after
    assert snapshots(project) == written


def test_a_changed_cassette_fails_the_snapshot_assertion_with_a_diff(
    project: "LlmxProject",
) -> None:
    project.run("--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    written = snapshots(project)

    use_variant(project, {**VARIANT_ABC, "text": "Rainy"})
    result = project.run("--llmx-record-mode=rewrite")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 snapshot failed*"])
    # The diff shows the changed event lines, each side on its own line.
    result.stdout.fnmatch_lines(['*- *"delta": "Sunny"*'])
    result.stdout.fnmatch_lines(['*+ *"delta": "Rainy"*'])
    assert snapshots(project) == written  # a plain run does not rewrite snapshots


def test_unused_snapshots_are_reported_then_deleted_by_snapshot_update(
    project: "LlmxProject",
) -> None:
    project.run("--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    # The test no longer snapshots the request body.
    project.write(
        """
        def test_weather(llmx_cassette, llmx_snapshot, converse):
            converse()
            assert llmx_cassette.play() == llmx_snapshot
        """,
        "test_forecast",
    )

    result = project.run()

    result.stdout.fnmatch_lines(["*1 snapshot passed. 1 snapshot unused.*"])
    assert result.ret != 0
    assert "test_forecast/test_weather.1.json" in snapshots(project)

    cleaned = project.run("--snapshot-update")

    cleaned.stdout.fnmatch_lines(["*1 unused snapshot deleted*"])
    assert cleaned.ret == 0
    assert sorted(snapshots(project)) == ["test_forecast/test_weather.json"]


def test_an_iterator_of_events_fails_with_a_type_error_asking_for_a_list(
    project: "LlmxProject",
) -> None:
    project.write(
        """
        def test_iterator(llmx_cassette, llmx_snapshot, converse):
            converse()
            assert iter(llmx_cassette.play()) == llmx_snapshot

        def test_generator(llmx_cassette, llmx_snapshot, converse):
            converse()
            assert (event for event in llmx_cassette.play()) == llmx_snapshot
        """,
        "test_forecast",
    )

    result = project.run("--snapshot-update", "--llmx-record-mode=once")

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*TypeError: EventsSnapshotExtension snapshots events, not an iterator of them: "
            "pass list(events)",
        ]
    )
    assert result.stdout.str().count("pass list(events)") >= 2
    assert snapshots(project) == {}
