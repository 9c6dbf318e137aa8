"""The fast writers of the recording path mean what PyYAML's and the regexes do: the YAML
emitter reads back as the same document, and the key scan finds the same keys."""

import string
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llmx_replay._exceptions import KEY_SHAPES
from llmx_replay.cassette import _yaml
from llmx_replay.cassette._load import parse_cassette
from llmx_replay.cassette._model import Interaction, RecordedRequest, RecordedResponse
from llmx_replay.cassette._save import _interaction, cassette_yaml, interaction_yaml
from llmx_replay.cassette._scrub import _kinds_of_key, _may_hold_key, _scan, _scan_message

# Strings of the kinds that make YAML quote, resolve to another type, or escape.
_TRICKY = st.sampled_from(
    [
        "",
        " ",
        "true",
        "no",
        "~",
        "null",
        "12",
        "1.5",
        "0x1f",
        ".inf",
        "2026-12-04",
        "12:30:00",
        "=",
        "<<",
        "-",
        "---",
        "a: b",
        "a #b",
        "a:",
        "'quoted'",
        '"double"',
        "[flow]",
        "{flow}",
        "*alias",
        "&anchor",
        "!tag",
        "%directive",
        "@at",
        "`tick",
        "| block",
        "> folded",
        "? key",
        "trailing ",
        "tab\there",
        "line\nbreak",
        "cr\rhere",
        "emoji 😀",
        "café",
        "\x85next",
        "\u2028sep",
        "gzip, deflate",
        "x" * 1100,
    ]
)
_TEXT = st.one_of(_TRICKY, st.text(max_size=30), st.text(string.printable, max_size=30))


def _block_text() -> st.SearchStrategy[str]:
    line = st.one_of(st.text(max_size=20), st.sampled_from(["", " lead", "trail ", "data: {}"]))
    return st.lists(line, max_size=6).map("\n".join) | st.sampled_from(["", "\n", "x\n\n\n"])


@st.composite
def documents(draw: st.DrawFn) -> list[Any]:
    scalars = st.one_of(
        _TEXT,
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.none(),
    )
    headers = st.dictionaries(_TEXT, st.lists(_TEXT, max_size=3), max_size=4)
    body = st.one_of(st.none(), _block_text().map(lambda text: _yaml.Block(text.encode())), _TEXT)
    return [
        {
            "request": {
                "method": draw(_TEXT),
                "uri": draw(_TEXT),
                "headers": draw(headers),
                "body": draw(body),
            },
            "response": {
                "status": {"code": draw(scalars), "message": draw(_TEXT)},
                "headers": draw(headers),
                "body": {"string": draw(body)},
                "llmx_replay": draw(st.dictionaries(_TEXT, scalars, max_size=3)),
            },
        }
    ]


def _blocks_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _blocks_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blocks_as_text(item) for item in value]
    return value.text if isinstance(value, _yaml.Block) else value


@settings(max_examples=400, deadline=None)
@given(documents())
def test_the_fast_emitter_reads_back_as_the_document_pyyaml_writes(document: list[Any]) -> None:
    fast = _yaml.dump_fast(document)
    if fast is None:
        return
    assert yaml.load(fast, Loader=yaml.CSafeLoader) == _blocks_as_text(document)
    assert yaml.load(fast, Loader=yaml.CSafeLoader) == yaml.load(
        _yaml.dump_fragment(document), Loader=yaml.CSafeLoader
    )


def test_the_fast_emitter_writes_a_recorded_interaction_as_pyyaml_does() -> None:
    body = b'data: {"choices":[{"delta":{"content":"caf\xc3\xa9 \xf0\x9f\x98\x80"}}]}\n\n'
    interaction = Interaction(
        request=RecordedRequest(
            method="POST",
            uri="https://api.example.com/v1/chat/completions?api-version=2024-10-21",
            headers=[("content-type", "application/json"), ("accept", "text/event-stream")],
            body=b'{"model":"gpt-4o","messages":[{"role":"user","content":"2026-12-04?"}]}',
        ),
        response=RecordedResponse(
            status=200,
            reason="OK",
            headers=[("date", "Fri, 04 Dec 2026 21:00:00 GMT"), ("x-request-id", "123")],
            body=body,
            headers_ms=12.3456,
            chunks=((len(body), 20.5),),
            partial="the body broke off: ReadError: peer closed: 'x'",
        ),
    )
    document = [_interaction(interaction)]
    assert _yaml.dump_fast(document) == _yaml.dump_fragment(document)


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(_block_text().map(str.encode), min_size=1, max_size=3),
    reason=_TEXT,
    header=_TEXT,
)
def test_a_cassette_written_fast_reads_as_one_written_by_pyyaml(
    bodies: list[bytes], reason: str, header: str
) -> None:
    interactions = [
        Interaction(
            request=RecordedRequest(method="POST", uri="http://x/v1/chat/completions", body=body),
            response=RecordedResponse(
                status=200, reason=reason, headers=[("x-h", header)], body=body
            ),
        )
        for body in bodies
    ]
    fast = cassette_yaml([interaction_yaml(i) for i in interactions], None)
    slow = cassette_yaml([_yaml.dump_fragment([_interaction(i)]) for i in interactions], None)
    assert parse_cassette(fast, "fast.yaml") == parse_cassette(slow, "slow.yaml")


_KEY_TEXT = st.text(
    st.sampled_from([*"skantAIzagsk_AKIASIAbearerBEARER-_ .=+/%\\u00", "é", "\n"]),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(_KEY_TEXT, *(st.from_regex(shape.pattern) for shape in KEY_SHAPES)),
        max_size=4,
    ).map("".join)
)
def test_the_key_scan_finds_what_the_patterns_find_and_its_body_filter_lets_them_through(
    text: str,
) -> None:
    expected = [shape.what for shape in KEY_SHAPES if shape.pattern.search(text)]
    assert _kinds_of_key(text) == expected
    if _scan(text, "body"):  # a body is read whole only when its bytes may hold a key
        assert _may_hold_key(text.encode())


def test_the_literal_block_check_agrees_with_the_character_class_on_every_code_point() -> None:
    def by_class(text: str) -> bool:
        return _yaml._NOT_PRINTABLE.search(text) is None

    for first in range(0, 0x110000, 0x1000):
        points = [p for p in range(first, first + 0x1000) if not 0xD800 <= p <= 0xDFFF]
        text = "".join(f"x{chr(point)}y" for point in points if chr(point) not in " \t\n")
        if by_class(text) and _yaml.literal_exact(text.encode()):
            continue
        for point in points:
            sample = f"x{chr(point)}y é"
            if chr(point) not in " \t\n":
                assert _yaml.literal_exact(sample.encode()) == by_class(sample), hex(point)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["authorization", "x-trace"]),
            st.one_of(_KEY_TEXT, *(st.from_regex(shape.pattern) for shape in KEY_SHAPES)),
        ),
        max_size=4,
    )
)
def test_headers_scanned_together_find_what_each_scanned_alone_finds(
    headers: list[tuple[str, str]],
) -> None:
    message = RecordedResponse(status=200, headers=headers)
    alone = [found for name, value in headers for found in _scan(value, f"r.headers.{name}")]
    assert _scan_message(message, "r", None) == alone
