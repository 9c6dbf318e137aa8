"""The skeleton reader reads what is left of a cassette written here, once its bodies are
cut out, exactly as PyYAML does, or gives up so that PyYAML reads it."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from llmx_replay.cassette import _yaml
from llmx_replay.cassette._skeleton import NotSimple, load_skeleton

CASSETTES = Path(__file__).parent.parent / "cassettes"

# Strings PyYAML must quote, or reads as something else when they are not.
TRICKY = st.sampled_from(
    [
        "yes",
        "No",
        "on",
        "null",
        "~",
        "",
        " ",
        "1e5",
        "0x1F",
        "1_000",
        "0o17",
        ".5",
        "1.",
        "2026-11-26",
        "12:30:00",
        "- item",
        "a: b",
        "#x",
        "a #b",
        "'q'",
        '"d"',
        "*ref",
        "&a",
        "!tag",
        "[1]",
        "{a: 1}",
        "?",
        "|",
        ">",
        "@",
        "`",
        "%",
        "http://h:1/p?q=1#f",
        "trailing ",
        " leading",
        "tab\there",
        "multi\nline",
        "é ☀ 🦀",
        "-1",
        "+2",
        "-0",
        "0",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY
    | st.text(max_size=12)
)
KEYS = TRICKY | st.text(min_size=1, max_size=10)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)


def both_ways(document: Any) -> tuple[Any, Any]:
    """What PyYAML reads from the dumped `document`, and what the skeleton reader does."""
    data = f"{_yaml.MARKER}\n{_yaml.dump_fragment(document)}".encode()
    blocks: list[bytes] = []
    skeleton = _yaml._cut_blocks(data, blocks)
    reference = _yaml._BlockLoader(skeleton, list(blocks)).get_single_data()
    try:
        fast = load_skeleton(skeleton.decode(), blocks)
    except NotSimple:
        fast = reference
    return reference, fast


@given(st.dictionaries(KEYS, DOCUMENTS, min_size=1, max_size=5))
@example({"a": {"b": [1, {"c": "yes", "d": None}], "e": []}, "f": {}})
@example({"headers": {"content-type": ["text/event-stream"], "x": ["*", "1", "on"]}})
def test_reads_any_document_as_pyyaml_does_or_gives_up(document: dict[str, Any]) -> None:
    reference, fast = both_ways(document)
    assert fast == reference
    assert [type(value) for value in fast.values()] == [type(v) for v in reference.values()]


@pytest.mark.parametrize(
    "path",
    sorted(path for path in CASSETTES.rglob("*.yaml") if path.read_bytes().startswith(b"# llmx")),
    ids=lambda path: path.name,
)
def test_cassettes_written_here_take_the_fast_way(path: Path) -> None:
    blocks: list[bytes] = []
    skeleton = _yaml._cut_blocks(path.read_bytes(), blocks)
    reference = _yaml._BlockLoader(skeleton, list(blocks)).get_single_data()
    assert load_skeleton(skeleton.decode(), blocks) == reference


@pytest.mark.parametrize(
    "text",
    [
        "a: &anchor 1\nb: *anchor\n",
        "a: [1, 2]\n",
        "a: !!binary aGk=\n",
        'a: "escaped \\t"\n',
        "a: plain\n  continued\n",
        "a: 2026-11-26\n",
        "a: 1\na: 2\n",
        "- - nested\n",
    ],
)
def test_gives_up_on_what_it_does_not_take(text: str) -> None:
    with pytest.raises(NotSimple):
        load_skeleton(text, [])
