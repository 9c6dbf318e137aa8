"""The `llmx_snapshot` fixture: syrupy snapshots of replayed events and request bodies, one
JSON file per assertion, laid out one item per line, with volatile ids masked.

The pytester tests run pytest in-process on a generated project whose upstream (an
`httpx.MockTransport`) answers a weather question with a tool call, and the call's result
with a text; ``variant.json`` says which tool call id, chunk id, ``created`` and text it
sends, so that a test can re-record the cassette with other values. The last tests call
`EventsSnapshotExtension.serialize` directly.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmx_replay._play import Playback, play_cassette
from llmx_replay.cassette import load_cassette
from llmx_replay.models import (
    Completed,
    FunctionCall,
    OutputItemDone,
    OutputTextDelta,
    ResponseEvent,
)
from llmx_replay.syrupy_ext import EventsSnapshotExtension

INNER_CONFTEST = '''
import json
from pathlib import Path

import httpx
import pytest

from llmx_replay.models import (
    FunctionCall, FunctionCallOutput, FunctionCallOutputPayload, InputText, Message,
    OutputItemDone, Prompt, ProviderSettings,
)

HERE = Path(__file__).parent
QUESTION = Message(role="user", content=[InputText(text="Weather in Paris?")])


def sse(variant, *deltas):
    chunks = [
        {"id": variant["chunk_id"], "object": "chat.completion.chunk",
         "created": variant["created"], "model": "m", "choices": [choice]}
        for choice in deltas
    ]
    events = "".join(f"data: {json.dumps(chunk)}\\n\\n" for chunk in chunks)
    return (events + "data: [DONE]\\n\\n").encode()


def answer(request):
    variant = json.loads((HERE / "variant.json").read_text())
    with (HERE / "upstream.log").open("a") as log:
        log.write("request\\n")
    messages = json.loads(request.content)["messages"]
    if messages[-1]["role"] == "tool":
        body = sse(
            variant,
            {"index": 0, "delta": {"role": "assistant", "content": variant["text"]}},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        )
    else:
        call = {"index": 0, "id": variant["call_id"], "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}
        arguments = {"index": 0, "function": {"arguments": json.dumps({"city": "Paris"})}}
        body = sse(
            variant,
            {"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}},
            {"index": 0, "delta": {"tool_calls": [arguments]}},
            {"index": 0, "delta": {}, "finish_reason": "tool_calls"},
        )
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


@pytest.fixture
def llmx_config():
    return {
        "provider": ProviderSettings(base_url="http://llm.test/v1"),
        "model": "m",
        "upstream": httpx.MockTransport(answer),
    }


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
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    # When these tests run under xdist themselves, the inner run must not act as a worker.
    for variable in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(variable, raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_forecast=FORECAST)
    use_variant(pytester, VARIANT_ABC)
    return pytester


def use_variant(pytester: pytest.Pytester, variant: dict[str, Any]) -> None:
    (pytester.path / "variant.json").write_text(json.dumps(variant))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    (pytester.path / "upstream.log").unlink(missing_ok=True)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def upstream_requests(pytester: pytest.Pytester) -> int:
    log = pytester.path / "upstream.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def snapshots(pytester: pytest.Pytester) -> dict[str, str]:
    """The snapshot files under ``__snapshots__``, by path relative to it."""
    folder = pytester.path / "__snapshots__"
    return {
        path.relative_to(folder).as_posix(): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def cassette_path(pytester: pytest.Pytester) -> Path:
    return pytester.path / "cassettes" / "test_forecast" / "test_weather.yaml"


def recorded_events(pytester: pytest.Pytester) -> list[ResponseEvent]:
    return list(play_cassette(load_cassette(cassette_path(pytester)), Playback()))


def masked_as_json(value: Any, call_id: str) -> Any:
    """`value` in JSON with the tool call id replaced by the first placeholder."""
    return json.loads(json.dumps(value).replace(json.dumps(call_id), json.dumps("<id 1>")))


# --------------------------------------------------------------------------------------------
# Writing and checking snapshots
# --------------------------------------------------------------------------------------------


def test_snapshot_update_writes_one_file_per_assertion_with_one_event_per_line(
    project: pytest.Pytester,
) -> None:
    result = run(project, "--snapshot-update", "--llmx-record-mode=once")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 snapshots generated*"])
    written = snapshots(project)
    assert sorted(written) == [
        "test_forecast/test_weather.1.json",
        "test_forecast/test_weather.json",
    ]

    # The first assertion: the played events, one per line, the tool call id masked.
    events = recorded_events(project)
    assert any(isinstance(e, OutputItemDone) and isinstance(e.item, FunctionCall) for e in events)
    expected = masked_as_json([event.model_dump(mode="json") for event in events], "call_abc")
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
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project, "--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    written = snapshots(project)
    assert upstream_requests(project) == 2

    monkeypatch.setenv("CI", "true")  # record mode "none"
    result = run(project)

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 snapshots passed*"])
    assert upstream_requests(project) == 0
    assert snapshots(project) == written


def test_a_rerecording_that_differs_only_in_ids_and_created_matches_the_same_snapshot(
    project: pytest.Pytester,
) -> None:
    run(project, "--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    written = snapshots(project)
    before = cassette_path(project).read_text()
    assert "call_abc" in before and "chatcmpl-1" in before

    use_variant(project, VARIANT_XYZ)
    result = run(project, "--llmx-record-mode=rewrite")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 snapshots passed*"])
    after = cassette_path(project).read_text()
    assert "call_xyz" in after and "chatcmpl-9" in after and '"created": 999' in after
    assert "call_abc" not in after
    assert snapshots(project) == written


def test_a_changed_cassette_fails_the_snapshot_assertion_with_a_diff(
    project: pytest.Pytester,
) -> None:
    run(project, "--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    written = snapshots(project)

    use_variant(project, {**VARIANT_ABC, "text": "Rainy"})
    result = run(project, "--llmx-record-mode=rewrite")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 snapshot failed*"])
    # The diff shows the changed event lines, each side on its own line.
    result.stdout.fnmatch_lines(['*- *"delta": "Sunny"*'])
    result.stdout.fnmatch_lines(['*+ *"delta": "Rainy"*'])
    assert snapshots(project) == written  # a plain run does not rewrite snapshots


def test_unused_snapshots_are_reported_then_deleted_by_snapshot_update(
    project: pytest.Pytester,
) -> None:
    run(project, "--snapshot-update", "--llmx-record-mode=once").assert_outcomes(passed=1)
    # The test no longer snapshots the request body.
    project.makepyfile(
        test_forecast="""
        def test_weather(llmx_cassette, llmx_snapshot, converse):
            converse()
            assert llmx_cassette.play() == llmx_snapshot
        """
    )

    result = run(project)

    result.stdout.fnmatch_lines(["*1 snapshot passed. 1 snapshot unused.*"])
    assert result.ret != 0
    assert "test_forecast/test_weather.1.json" in snapshots(project)

    cleaned = run(project, "--snapshot-update")

    cleaned.stdout.fnmatch_lines(["*1 unused snapshot deleted*"])
    assert cleaned.ret == 0
    assert sorted(snapshots(project)) == ["test_forecast/test_weather.json"]


def test_an_iterator_of_events_fails_with_a_type_error_asking_for_a_list(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_forecast="""
        def test_iterator(llmx_cassette, llmx_snapshot, converse):
            converse()
            assert iter(llmx_cassette.play()) == llmx_snapshot

        def test_generator(llmx_cassette, llmx_snapshot, converse):
            converse()
            assert (event for event in llmx_cassette.play()) == llmx_snapshot
        """
    )

    result = run(project, "--snapshot-update", "--llmx-record-mode=once")

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*TypeError: EventsSnapshotExtension snapshots events, not an iterator of them: "
            "pass list(events)",
        ]
    )
    assert result.stdout.str().count("pass list(events)") >= 2
    assert snapshots(project) == {}


# --------------------------------------------------------------------------------------------
# EventsSnapshotExtension.serialize
# --------------------------------------------------------------------------------------------


def serialize(data: Any) -> str:
    text = EventsSnapshotExtension().serialize(data)
    assert isinstance(text, str)
    return text


def call_events(call_id: str) -> list[ResponseEvent]:
    call = FunctionCall(name="get_weather", arguments='{"city": "Paris"}', call_id=call_id)
    return [
        OutputItemDone(item=call),
        OutputTextDelta(delta="ok"),
        OutputItemDone(item=FunctionCall(name="again", arguments="{}", call_id=call_id)),
        Completed(finish_reason="tool_calls"),
    ]


def test_serialized_events_are_json_equal_to_their_dump_with_ids_masked() -> None:
    events = call_events("call_abc")

    text = serialize(events)

    dumped = [event.model_dump(mode="json") for event in events]
    assert json.loads(text) == masked_as_json(dumped, "call_abc")
    assert text.endswith("]\n")
    assert len(text.splitlines()) == len(events) + 2
    # The same id twice is the same placeholder; another id gets the next one.
    assert serialize(call_events("call_abc")) == serialize(call_events("call_xyz"))
    two = [*call_events("call_1")[:1], *call_events("call_2")[:1]]
    assert [event["item"]["call_id"] for event in json.loads(serialize(two))] == [
        "<id 1>",
        "<id 2>",
    ]


def test_a_tuple_of_events_and_one_event_serialize_like_a_list() -> None:
    events = call_events("call_abc")
    assert serialize(tuple(events)) == serialize(events)
    one = json.loads(serialize(events[0]))
    assert one == masked_as_json(events[0].model_dump(mode="json"), "call_abc")


def test_a_request_body_keeps_a_call_and_its_result_on_one_placeholder() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_abc", "type": "function", "function": {"name": "w"}},
                    {"id": "call_def", "type": "function", "function": {"name": "w"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_def", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_abc", "content": "sun"},
        ],
        "stream": True,
        "created": 1767225600,
        "tools": [],
    }

    text = serialize(body)

    data = json.loads(text)
    assert list(data) == list(body)  # keys keep their order
    calls = data["messages"][1]["tool_calls"]
    assert [call["id"] for call in calls] == ["<id 1>", "<id 2>"]
    assert [m["tool_call_id"] for m in data["messages"][2:]] == ["<id 2>", "<id 1>"]
    assert data["created"] == "<created>"
    assert text.splitlines() == [
        "{",
        '  "model": "m",',
        '  "messages": [',
        *(
            f"    {json.dumps(message, ensure_ascii=False)}{',' if i < 3 else ''}"
            for i, message in enumerate(data["messages"])
        ),
        "  ],",
        '  "stream": true,',
        '  "created": "<created>",',
        '  "tools": []',
        "}",
    ]


def test_what_is_not_a_volatile_value_is_left_alone() -> None:
    data = {"id": "", "call_id": None, "created": None, "tool_call_id": 7, "name": "call_abc"}
    assert json.loads(serialize(data)) == data


def test_an_iterator_is_refused_with_a_type_error_asking_for_a_list() -> None:
    events = call_events("call_abc")
    for iterator in (iter(events), (event for event in events), filter(None, events)):
        with pytest.raises(TypeError, match=r"pass list\(events\)"):
            serialize(iterator)


_MASKED_KEYS = {"id", "call_id", "tool_call_id", "created"}
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text().filter(lambda key: key not in _MASKED_KEYS), children, max_size=4
        )
    ),
    max_leaves=20,
)


def as_pairs(value: Any) -> Any:
    """`value` with each object as its list of (key, value) pairs, as `object_pairs_hook`
    gives them."""
    if isinstance(value, dict):
        return [(key, as_pairs(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [as_pairs(item) for item in value]
    return value


@given(_json_values)
def test_the_laid_out_text_is_always_the_same_json(value: Any) -> None:
    text = serialize(value)

    assert text.endswith("\n")
    assert json.loads(text) == value
    # Every object keeps its keys in their order, at any depth.
    assert json.loads(text, object_pairs_hook=list) == as_pairs(value)
    if isinstance(value, list) and value:
        # One item per line, however the items look (newlines in strings are escaped).
        assert len(text.split("\n")) == len(value) + 3
