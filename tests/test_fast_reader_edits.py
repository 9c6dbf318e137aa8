"""The fast cassette reader reads a hand-edited file exactly as libyaml does, or leaves it to
libyaml: a property over cassettes llmx-replay wrote, then edited line by line as people
edit them (indentation changed, lines of spaces, blank lines inserted)."""

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmx_replay.cassette import _yaml
from llmx_replay.cassette._model import Interaction, RecordedRequest, RecordedResponse
from llmx_replay.cassette._save import cassette_yaml, interaction_yaml

BODY = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
    b"data: [DONE]\n\n"
)
REQUEST_BODY = b'{"model":"m","messages":[{"role":"user","content":"line one\\nline two"}]}'


def written(body: bytes = BODY) -> bytes:
    interaction = Interaction(
        request=RecordedRequest(
            method="POST", uri="http://x/v1/chat/completions", body=REQUEST_BODY
        ),
        response=RecordedResponse(
            status=200, headers=[("content-type", "text/event-stream")], body=body
        ),
    )
    return cassette_yaml([interaction_yaml(interaction)], None)


EDITS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60),
        st.sampled_from(["indent", "outdent", "spaces", "blank", "space-line"]),
        st.integers(min_value=1, max_value=10),
    ),
    min_size=1,
    max_size=4,
)


def edited(data: bytes, edits: list[tuple[int, str, int]]) -> bytes:
    lines = data.split(b"\n")
    for position, edit, width in edits:
        at = position % len(lines)
        if edit == "indent":
            lines[at] = b" " * width + lines[at]
        elif edit == "outdent":
            lines[at] = lines[at][min(width, len(lines[at]) - len(lines[at].lstrip(b" "))) :]
        elif edit == "spaces":
            lines[at] = b" " * width
        elif edit == "blank":
            lines.insert(at, b"")
        else:
            lines.insert(at, b" " * width)
    return b"\n".join(lines)


def as_text(value: Any) -> Any:
    """The fast reader gives literal blocks as bytes, libyaml as text."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {key: as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_text(item) for item in value]
    return value


def test_an_unedited_file_takes_the_fast_way() -> None:
    data = written()
    assert data.startswith(_yaml.MARKER.encode())
    read = _yaml.load(data)
    assert isinstance(read["interactions"][0]["response"]["body"]["string"], bytes)  # fast
    assert as_text(read) == yaml.load(data, Loader=yaml.CSafeLoader)


def test_a_body_that_starts_with_empty_lines_takes_the_fast_way_too() -> None:
    data = written(b"\n\n<html>\n  <body>overloaded</body>\n</html>\n")
    read = _yaml.load(data)
    assert read["interactions"][0]["response"]["body"]["string"] == (
        b"\n\n<html>\n  <body>overloaded</body>\n</html>\n"
    )
    assert as_text(read) == yaml.load(data, Loader=yaml.CSafeLoader)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EDITS)
def test_an_edited_file_reads_as_libyaml_reads_it(edits: list[tuple[int, str, int]]) -> None:
    data = edited(written(), edits)
    try:
        expected = yaml.load(data, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        expected = None
    try:
        read = _yaml.load(data)
    except yaml.YAMLError:
        assert expected is None, "the fast reader refused what libyaml reads"
        return
    assert expected is not None, "the fast reader read what libyaml refuses"
    assert as_text(read) == expected
