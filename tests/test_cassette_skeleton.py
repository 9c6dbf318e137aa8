"""The skeleton reader reads what is left of a cassette written here, once its bodies are
cut out, exactly as PyYAML does, or gives up so that PyYAML reads it."""

from pathlib import Path
from typing import Any

import pytest
import yaml
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


def typed(value: Any) -> Any:
    """`value` with the type of every part spelled out: ``1``, ``1.0`` and ``True`` differ."""
    if isinstance(value, dict):
        return ("dict", [(typed(key), typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    return (type(value).__name__, repr(value))


def skeleton_of(document: Any) -> tuple[str, list[bytes]]:
    data = _yaml.MARKER.encode() + b"\n" + _yaml.dump_fragment(document)
    blocks: list[bytes] = []
    return _yaml._cut_blocks(data, blocks).decode(), blocks


def pyyaml(skeleton: str, blocks: list[bytes]) -> Any:
    return _yaml._BlockLoader(skeleton.encode(), list(blocks)).get_single_data()


@given(st.dictionaries(KEYS, DOCUMENTS, min_size=1, max_size=5))
@example({"a": {"b": [1, {"c": "yes", "d": None}], "e": []}, "f": {}})
@example({"headers": {"content-type": ["text/event-stream"], "x": ["*", "1", "on"]}})
def test_reads_any_document_as_pyyaml_does_or_gives_up(document: dict[str, Any]) -> None:
    skeleton, blocks = skeleton_of(document)
    try:
        fast = load_skeleton(skeleton, blocks)
    except NotSimple:
        return
    assert typed(fast) == typed(pyyaml(skeleton, blocks))


# Words PyYAML must quote (yes, no, on, off, true, false, null, ...) are left out.
WORDS = st.from_regex(r"[a-eg-mpqsu-xz][a-z0-9/._-]{0,15}", fullmatch=True)
SIMPLE_SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(10**9), max_value=10**9) | WORDS
)
SIMPLE_KEYS = st.from_regex(r"[a-eg-mpqsu-xz][a-z_-]{0,8}", fullmatch=True)
# What cassettes hold: mappings, and lists of scalars or mappings (never of lists).
SIMPLE_MAPPINGS = st.recursive(
    st.dictionaries(SIMPLE_KEYS, SIMPLE_SCALARS, min_size=1, max_size=3),
    lambda mappings: st.dictionaries(
        SIMPLE_KEYS,
        SIMPLE_SCALARS | mappings | st.lists(SIMPLE_SCALARS | mappings, min_size=1, max_size=3),
        min_size=1,
        max_size=3,
    ),
    max_leaves=10,
)


@given(SIMPLE_MAPPINGS)
def test_takes_the_fast_way_for_what_cassettes_hold(document: dict[str, Any]) -> None:
    skeleton, blocks = skeleton_of(document)
    assert typed(load_skeleton(skeleton, blocks)) == typed(pyyaml(skeleton, blocks))


EDITS = st.sampled_from(
    [
        " ",
        "  ",
        "\t",
        " # c",
        "#",
        "\n",
        "\n  ",
        "-",
        "- ",
        ":",
        ": ",
        "'",
        '"',
        "&a",
        "!x",
        "[",
        "~",
    ]
)


@given(SIMPLE_MAPPINGS | st.dictionaries(KEYS, DOCUMENTS, min_size=1, max_size=4), st.data())
@example({"a": 200}, ("a: 200", "a:  200"))
@example({"b": False}, ("b: false", "b: false:"))
def test_an_edited_skeleton_is_read_as_pyyaml_does_or_given_up(
    document: dict[str, Any], data: st.DataObject | tuple[str, str]
) -> None:
    """Documents that mostly take the fast way, with one edit anywhere: the reader must
    still agree with PyYAML, or give up, also on text PyYAML rejects."""
    skeleton, blocks = skeleton_of(document)
    if isinstance(data, tuple):
        edited = skeleton.replace(*data)
        assert edited != skeleton
    else:
        where = data.draw(st.integers(min_value=0, max_value=len(skeleton)))
        edited = skeleton[:where] + data.draw(EDITS) + skeleton[where:]
    try:
        fast = load_skeleton(edited, blocks)
    except NotSimple:
        return
    try:
        reference = pyyaml(edited, blocks)
    except yaml.YAMLError:
        pytest.fail(f"read a document PyYAML rejects: {edited!r}")
    assert typed(fast) == typed(reference), edited


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
        "a: b\r\nc: d\r\n",
        "a: b\u2028c\n",
        "a: b\x85c\n",
        "a: \x01\n",
        "a:\n- b\n\xa0\n",
    ],
)
def test_gives_up_on_what_it_does_not_take(text: str) -> None:
    with pytest.raises(NotSimple):
        load_skeleton(text, [])


def test_comment_lines_between_sequence_items_are_read_the_fast_way() -> None:
    text = (
        "# llmx-replay cassette\n"
        "interactions:\n"
        "- request:\n"
        "    method: POST\n"
        "  response:\n"
        "    status: 200\n"
        "# end of interaction 1\n"
        "- request:\n"
        "    method: GET\n"
        "# end of interaction 2\n"
        "version: 1\n"
    )
    assert typed(load_skeleton(text, [])) == typed(yaml.safe_load(text))


def test_each_empty_container_read_is_a_new_one() -> None:
    document = load_skeleton("a: []\nb: []\nc: {}\nd:\n- {}\n- {}\n", [])

    assert document == {"a": [], "b": [], "c": {}, "d": [{}, {}]}
    assert document["a"] is not document["b"]
    assert document["d"][0] is not document["d"][1]
