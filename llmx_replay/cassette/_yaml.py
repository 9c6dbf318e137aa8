"""Cassette YAML: writing readable files fast, and reading them back fast.

libyaml (PyYAML's C extension) does the work, with two exceptions that measurement forced:

* Bodies are written as literal blocks by this module, one SSE line per YAML line. libyaml's
  emitter will not write a literal block holding a character outside the Basic Multilingual
  Plane (an emoji, common in model output) and falls back to one escaped line; PyYAML's
  pure-Python emitter takes seconds for a long stream.
* Reading a file written here, the literal blocks are cut out before libyaml parses the rest,
  which is small. A 10k-event stream then loads several times faster than libyaml alone
  (see benchmarks/). Files from elsewhere, or edited so that the first line no longer marks
  them, go through libyaml whole; both ways give the same document. What remains of a
  file written here is read by `_skeleton` when it can, faster than PyYAML's constructor.
"""

import base64
import binascii
import io
import re
from dataclasses import dataclass
from typing import Any

import yaml

from llmx_replay.cassette._skeleton import NotSimple, load_skeleton

MARKER = "# llmx-replay cassette"
_BLOCK_TAG = "!llmx-replay/block"
_BLOCK_HEADER = re.compile(r"^( *)([^\s:#][^:\n]*): !llmx-replay/block (\d+)\n", re.M)
# Text a literal block reproduces exactly: printable YAML characters (no CR, and not
# YAML 1.1's other line breaks), no blank-looking or space-ended lines, no leading space.
_NOT_LITERAL = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    "|[ \t]\n|[ \t]$|^\n*[ \t]"
)
_LINE_BREAK = re.compile("[\r\n\x85\u2028\u2029]")
_LINE_START = re.compile(r"\n(?=[^\n])")


@dataclass(frozen=True, slots=True)
class Block:
    """A string to write as a literal block, when it can be written as one exactly."""

    text: str


class _Dumper(yaml.CSafeDumper):
    """Writes `Block` strings as tagged placeholders, collected in `blocks`."""

    def __init__(self, stream: io.StringIO) -> None:
        super().__init__(
            stream, allow_unicode=True, sort_keys=False, width=2**31 - 1, default_flow_style=False
        )
        self.blocks: list[str] = []

    def represent_text(self, text: str) -> yaml.Node:
        # A string with a line break goes on one line, escaped: no line of the file that
        # is not a block header can then look like one to `load`.
        style = '"' if _LINE_BREAK.search(text) else None
        return self.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    def represent_block(self, block: Block) -> yaml.Node:
        if _NOT_LITERAL.search(block.text) or not block.text.strip():
            return self.represent_text(block.text)
        self.blocks.append(block.text)
        return self.represent_scalar(_BLOCK_TAG, str(len(self.blocks) - 1))


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader, plus the tags real cassettes carry."""


class _BlockLoader(_Loader):
    """Reads the skeleton left by `_cut_blocks`, taking block texts from `blocks`."""

    def __init__(self, stream: bytes, blocks: list[bytes]) -> None:
        super().__init__(stream)
        self.blocks = blocks

    def construct_block(self, node: yaml.ScalarNode) -> bytes:
        index = str(self.construct_scalar(node))
        if not index.isdigit() or int(index) >= len(self.blocks):
            raise yaml.constructor.ConstructorError(
                None, None, f"{_BLOCK_TAG} {index} refers to no block", node.start_mark
            )
        return self.blocks[int(index)]


def _ruby_binary(loader: yaml.BaseLoader, node: yaml.Node) -> bytes:
    # Ruby VCR writes bodies that are not valid UTF-8 as `!binary` base64.
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    try:
        return base64.b64decode("".join(str(text).split()), validate=True)
    except binascii.Error as error:
        raise yaml.constructor.ConstructorError(
            None, None, f"!binary holds invalid base64 ({error})", node.start_mark
        ) from None


def _python_object(loader: yaml.BaseLoader, suffix: str, node: yaml.Node) -> Any:
    # dd-trace-py writes header names as `!!python/object/apply:multidict._multidict.istr
    # [Accept]`; only plain values are taken from such tags, nothing is imported or run.
    if isinstance(node, yaml.SequenceNode):
        values = loader.construct_sequence(node, deep=True)
        return values[0] if len(values) == 1 else tuple(values)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Dumper.add_representer(str, _Dumper.represent_text)
_Dumper.add_representer(Block, _Dumper.represent_block)
_BlockLoader.add_constructor(_BLOCK_TAG, _BlockLoader.construct_block)
_Loader.add_constructor("!binary", _ruby_binary)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _python_object)


def dump(document: Any) -> str:
    """`document` as a cassette file's text, marked for the fast reader."""
    return MARKER + "\n" + dump_fragment(document)


def dump_fragment(document: Any) -> str:
    """`document` as YAML, its `Block` strings as literal blocks where that is exact.

    Fragments can be put together: a one-item list dumps as that item of a top-level list.
    """
    stream = io.StringIO()
    dumper = _Dumper(stream)
    try:
        dumper.open()
        dumper.represent(document)
        dumper.close()
    finally:
        dumper.dispose()
    text = stream.getvalue()
    return _BLOCK_HEADER.sub(lambda m: _literal(m, dumper.blocks), text)


def _literal(match: re.Match[str], blocks: list[str]) -> str:
    indent, key, index = match.group(1), match.group(2), int(match.group(3))
    text = blocks[index]
    body = text.rstrip("\n")
    trailing = text[len(body) :]
    chomping = {"": "-", "\n": ""}.get(trailing, "+")
    inner = indent + "  "
    # Each non-empty line indented; empty lines stay bare newlines.
    lines = _LINE_START.sub("\n" + inner, body)
    return f"{indent}{key}: |{chomping}\n{inner}{lines}{trailing or chr(10)}"


EXPANSION_BUDGET = 1_000_000
"""How many values a cassette's YAML may expand to once its aliases are followed."""


class AliasBomb(yaml.YAMLError):
    """YAML aliases that expand past `EXPANSION_BUDGET` values (a "billion laughs")."""


def _expanded_size(document: Any) -> int:
    """How many values `document` holds with every shared value counted where it is used.

    Each distinct container is sized once, so a bomb is measured without being expanded.
    """
    sizes: dict[int, int] = {}
    open_containers: set[int] = set()  # being sized: met again, the value holds itself
    pending: list[tuple[Any, bool]] = [(document, False)]
    while pending:
        value, children_done = pending.pop()
        if not isinstance(value, dict | list) or (id(value) in sizes and not children_done):
            continue
        children = list(value.values()) if isinstance(value, dict) else value
        if children_done:
            open_containers.discard(id(value))
            sizes[id(value)] = 1 + sum(
                min(sizes.get(id(child), 1), EXPANSION_BUDGET + 1) for child in children
            )
            continue
        if id(value) in open_containers:
            raise AliasBomb("a YAML alias refers to a value that holds it (endless nesting)")
        open_containers.add(id(value))
        pending.append((value, True))
        pending.extend((child, False) for child in children)
    return sizes.get(id(document), 1)


def load(data: bytes) -> Any:
    """Parse cassette YAML; files this module wrote take the fast way.

    There the literal blocks come back as their UTF-8 bytes (never decoded: a body stays as
    it was stored).

    Raises:
        AliasBomb: the document's aliases expand past `EXPANSION_BUDGET` values.
    """
    document = _load(data)
    # Aliases need anchors: a document without `&` shares nothing.
    if b"&" in data and _expanded_size(document) > EXPANSION_BUDGET:
        raise AliasBomb(
            f"its YAML aliases expand to more than {EXPANSION_BUDGET:,} values (an alias bomb); "
            "a cassette never needs that many"
        )
    return document


def _load(data: bytes) -> Any:
    if not data.startswith(MARKER.encode()):
        return yaml.load(data, Loader=_Loader)  # a safe loader subclass
    blocks: list[bytes] = []
    try:
        skeleton = _cut_blocks(data, blocks)
    except _NotAsWritten:
        return yaml.load(data, Loader=_Loader)  # hand-edited: libyaml reads it as it is
    try:
        return load_skeleton(skeleton.decode(), blocks)
    except (NotSimple, UnicodeDecodeError):
        pass
    loader = _BlockLoader(skeleton, blocks)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_LITERAL_HEADER = re.compile(rb"^( *)([^\s:#][^:\n]*): \|([+-]?)\n", re.M)


class _NotAsWritten(Exception):
    """A literal block `dump` would not have written: the fast reader might misread it."""


_FIRST_LINE = re.compile(rb"( *)([^ \n])")
_SPACES_ONLY = re.compile(rb" +(?:\n|\Z)")


def _check_as_written(data: bytes, start: int, end: int, inner: bytes) -> None:
    """Refuse a block whose reading depends on YAML's finer rules, as hand edits make them.

    `dump` writes a block only for text that is not blank, every line indented by exactly
    `inner`, empty lines left empty. YAML takes a block's indentation from its first line,
    and goes on past a line of spaces shorter than that (here, where the block ends): a
    first line indented otherwise, a block ending at a line of spaces, or a carriage return,
    and the file goes to libyaml instead.
    """
    # `dump` writes a text's first line, when empty, as the indent alone, and any empty
    # lines after it empty.
    blank = inner + b"\n"
    if data.startswith(blank, start):
        start += len(blank)
        while data.startswith(b"\n", start):
            start += 1
    first = _FIRST_LINE.match(data, start)
    if first is None or len(first.group(1)) != len(inner):
        raise _NotAsWritten
    if _SPACES_ONLY.match(data, end) or data.find(b"\r", start, end) >= 0:
        raise _NotAsWritten


def _cut_blocks(data: bytes, blocks: list[bytes]) -> bytes:
    """Replace each literal block written by `dump` with a tagged reference into `blocks`.

    It works on the file's bytes: spaces and line breaks are single bytes in UTF-8, and a
    body never needs a text copy (one that holds an emoji would take 4 bytes a character).
    """
    pieces: list[bytes] = []
    position = 0
    while True:
        header = _LITERAL_HEADER.search(data, position)
        if header is None:
            pieces.append(data[position:])
            return b"".join(pieces)
        indent, key, chomping = header.groups()
        inner = indent + b"  "
        start = header.end()
        end_match = re.compile(rb"\n(?!\n|" + inner + rb")").search(data, start)
        end = len(data) if end_match is None else end_match.start() + 1
        _check_as_written(data, start, end, inner)
        content = data[start:end][len(inner) :].replace(b"\n" + inner, b"\n")
        if chomping == b"-":
            content = content.rstrip(b"\n")
        elif chomping == b"":
            content = content.rstrip(b"\n") + b"\n"
        blocks.append(content)
        pieces.append(data[position : header.start()])
        pieces.append(b"%s%s: %s %d\n" % (indent, key, _BLOCK_TAG.encode(), len(blocks) - 1))
        position = end
