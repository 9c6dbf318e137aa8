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
import functools
import io
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from llmx_replay.cassette._skeleton import NotSimple, load_skeleton

MARKER = "# llmx-replay cassette"
_BLOCK_TAG = "!llmx-replay/block"
_BLOCK_HEADER = re.compile(rb"^( *)([^\s:#][^:\n]*): !llmx-replay/block (\d+)\n", re.M)
# Characters a literal block holds as they are: printable YAML characters (no CR, and not
# YAML 1.1's other line breaks).
_NOT_PRINTABLE = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n"
# In UTF-8, what starts a character a literal block cannot hold: an ASCII control, or the
# lead byte of U+0080-U+00BF (C1 controls among them) and of U+F000-U+FFFF (U+FEFF, U+FFFE,
# U+FFFF among them). Only U+2028 and U+2029 are then left to look for.
_SUSPECT = bytes([*range(0x09), *range(0x0B, 0x20), 0x7F, 0xC2, 0xEF])
_NOT_SUSPECT = bytes(byte for byte in range(256) if byte not in _SUSPECT)
# A string written as it is (a plain scalar) when PyYAML's resolver reads it as a string:
# no indicator first, no ": " or " #" in it, no space or colon last.
_PLAIN = re.compile(r"[A-Za-z0-9_./(][A-Za-z0-9 _./:;=+()<>,@%~$^&*!?'-]*")
_SINGLE_QUOTABLE = re.compile(r"[\x20-\x7e]*")
_RESOLVER = yaml.resolver.Resolver()
_LONGEST_KEY = 1000  # YAML's simple keys are at most 1024 characters
_LINE_BREAK = re.compile("[\r\n\x85\u2028\u2029]")
_LINE_START = re.compile(rb"\n(?=[^\n])")
_INDENTED_FIRST_LINE = re.compile(rb"\n*[ \t]")


@dataclass(frozen=True, slots=True)
class Block:
    """UTF-8 text to write as a literal block, when one holds it exactly."""

    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


class _Dumper(yaml.CSafeDumper):
    """Writes `Block` strings as tagged placeholders, collected in `blocks`."""

    def __init__(self, stream: io.StringIO) -> None:
        super().__init__(
            stream, allow_unicode=True, sort_keys=False, width=2**31 - 1, default_flow_style=False
        )
        self.blocks: list[bytes] = []

    def represent_text(self, text: str) -> yaml.Node:
        # A string with a line break goes on one line, escaped: no line of the file that
        # is not a block header can then look like one to `load`.
        style = '"' if _LINE_BREAK.search(text) else None
        return self.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    def represent_block(self, block: Block) -> yaml.Node:
        if not literal_exact(block.data):
            return self.represent_text(block.text)
        self.blocks.append(block.data)
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


def dump_fragment(document: Any) -> bytes:
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
    text = stream.getvalue().encode()
    return _BLOCK_HEADER.sub(lambda m: _literal(m, dumper.blocks), text)


def _literal(match: re.Match[bytes], blocks: list[bytes]) -> bytes:
    indent, key = match.group(1).decode(), match.group(2).decode()
    return literal_block(indent, key, blocks[int(match.group(3))])


def literal_exact(data: bytes) -> bool:
    """Whether a literal block reproduces `data`, valid UTF-8, exactly.

    It must hold printable characters only, and no line that is blank-looking or ends in a
    space, nor a first line that starts with one. Substring searches and a byte
    translation decide an ASCII body at a gigabyte a second; only others take a regex.
    """
    if not data or data.isspace() or b" \n" in data or b"\t\n" in data:
        return False
    if data.endswith((b" ", b"\t")) or _INDENTED_FIRST_LINE.match(data):
        return False
    if data.isascii():
        return not data.translate(None, _PRINTABLE_ASCII)
    if data.translate(None, _NOT_SUSPECT):  # a control character, or a C2 or EF lead byte
        return _NOT_PRINTABLE.search(data.decode()) is None
    # Of the characters left that a block cannot hold, only U+2028 and U+2029 remain.
    return b"\xe2\x80\xa8" not in data and b"\xe2\x80\xa9" not in data


def literal_block(indent: str, key: str, data: bytes) -> bytes:
    """``key: |`` and `data` below it, each non-empty line indented; see `literal_exact`."""
    trailing = _trailing_line_breaks(data)
    chomping = "-" if trailing == 0 else "" if trailing == 1 else "+"
    inner = indent + "  "
    # Each non-empty line indented, empty ones left bare; line breaks at the end are never
    # followed by a line, so they stay as they are.
    lines = _LINE_START.sub(b"\n" + inner.encode(), data)
    end = b"" if trailing else b"\n"
    return b"".join([f"{indent}{key}: |{chomping}\n{inner}".encode(), lines, end])


def _trailing_line_breaks(data: bytes) -> int:
    count = 0
    while count < len(data) and data[len(data) - 1 - count] == 0x0A:
        count += 1
    return count


@functools.lru_cache(maxsize=4096)
def one_line(value: str) -> str | None:
    """`value` as a one-line YAML scalar that reads back as that string, or None.

    Plain when that reads as a string, else single-quoted; None when only PyYAML's escaped
    form would do (a control or non-ASCII character).
    """
    plain = (
        _PLAIN.fullmatch(value) is not None
        and ": " not in value
        and " #" not in value
        and not value.endswith((" ", ":"))
    )
    resolved = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) if plain else None  # type: ignore[no-untyped-call]
    if resolved == _STRING_TAG:
        return value
    if _SINGLE_QUOTABLE.fullmatch(value):
        return "'" + value.replace("'", "''") + "'"
    return None


_STRING_TAG = "tag:yaml.org,2002:str"


class _NotFast(Exception):
    """A value `dump_fast` leaves to PyYAML."""


def dump_fast(document: Any) -> bytes | None:
    """`document` in the block style `dump_fragment` writes, or None when PyYAML must.

    It takes mappings, lists, `Block`s a literal block holds exactly, strings `one_line`
    writes, whole numbers, finite floats and None: a recorded interaction, nearly always.
    PyYAML's representer, in Python, cost more than the rest of a recording.
    """
    lines: list[str | bytes] = []
    try:
        _emit(document, "", lines)
    except _NotFast:
        return None
    return b"".join(line if isinstance(line, bytes) else line.encode() for line in lines)


def _emit(value: Any, indent: str, lines: list[str | bytes]) -> None:
    """A mapping or list, in block style at `indent`: a list's items at the same indent."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _emit_entry(_key(key), item, indent, lines)
    elif isinstance(value, list) and value:
        for item in value:
            if isinstance(item, dict) and item:
                # The item's first key goes on the line of its dash.
                start = len(lines)
                _emit(item, indent + "  ", lines)
                first = lines[start]
                dash = indent + "- "
                lines[start] = (
                    dash.encode() + first[len(dash) :]
                    if isinstance(first, bytes)
                    else dash + first[len(dash) :]
                )
            else:
                lines.append(f"{indent}- {_scalar(item)}\n")
    else:
        raise _NotFast


def _emit_entry(key: str, value: Any, indent: str, lines: list[str | bytes]) -> None:
    if isinstance(value, Block):
        if not literal_exact(value.data):
            raise _NotFast
        lines.append(literal_block(indent, key, value.data))
    elif isinstance(value, dict | list) and value:
        lines.append(f"{indent}{key}:\n")
        _emit(value, indent + "  " if isinstance(value, dict) else indent, lines)
    elif isinstance(value, dict | list):
        lines.append(f"{indent}{key}: {'{}' if isinstance(value, dict) else '[]'}\n")
    else:
        lines.append(f"{indent}{key}: {_scalar(value)}\n")


def _key(value: Any) -> str:
    if isinstance(value, str) and len(value) > _LONGEST_KEY:
        raise _NotFast
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        text = one_line(value)
        if text is None:
            raise _NotFast
        return text
    if value is None:
        return "null"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        # As PyYAML writes a float: repr, with a point before an exponent.
        text = repr(value).lower()
        return text if "." in text or "e" not in text else text.replace("e", ".0e", 1)
    raise _NotFast


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
    document, may_share = _load(data)
    if may_share and _expanded_size(document) > EXPANSION_BUDGET:
        raise AliasBomb(
            f"its YAML aliases expand to more than {EXPANSION_BUDGET:,} values (an alias bomb); "
            "a cassette never needs that many"
        )
    return document


def _load(data: bytes) -> tuple[Any, bool]:
    """The document, and whether it may share values: YAML aliases, which need anchors (`&`).

    Of a file written here, only the skeleton can hold anchors (the literal blocks are
    text), and the skeleton reader takes none.
    """
    if not data.startswith(MARKER.encode()):
        return yaml.load(data, Loader=_Loader), b"&" in data  # a safe loader subclass
    blocks: list[bytes] = []
    try:
        skeleton = _cut_blocks(data, blocks)
    except _NotAsWritten:
        # Hand-edited: libyaml reads it as it is.
        return yaml.load(data, Loader=_Loader), b"&" in data
    try:
        return load_skeleton(skeleton.decode(), blocks), False
    except (NotSimple, UnicodeDecodeError):
        pass
    loader = _BlockLoader(skeleton, blocks)
    try:
        return loader.get_single_data(), b"&" in skeleton
    finally:
        loader.dispose()


_LITERAL_HEADER = re.compile(rb"^( *)([^\s:#][^:\n]*): \|([+-]?)\n", re.M)


def _literal_header(data: bytes, position: int) -> re.Match[bytes] | None:
    """The first header of a literal block (``key: |``) at or after `position`, a line start.

    Only lines holding ``: |`` are tried: `_LITERAL_HEADER`, anchored at line starts, would
    be tried at every byte, a search for three bytes is many times faster.
    """
    while (found := data.find(b": |", position)) >= 0:
        header = _LITERAL_HEADER.match(data, data.rfind(b"\n", 0, found) + 1)
        if header is not None:
            return header
        position = found + 3
    return None


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
    block_ends: dict[bytes, re.Pattern[bytes]] = {}  # by the indent of the block's lines
    while True:
        header = _literal_header(data, position)
        if header is None:
            pieces.append(data[position:])
            return b"".join(pieces)
        indent, key, chomping = header.groups()
        inner = indent + b"  "
        start = header.end()
        block_end = block_ends.get(inner)
        if block_end is None:
            block_end = block_ends[inner] = re.compile(rb"\n(?!\n|" + inner + rb")")
        end_match = block_end.search(data, start)
        end = len(data) if end_match is None else end_match.start() + 1
        _check_as_written(data, start, end, inner)
        # Split and joined: one pass over the body where `replace` takes two.
        content = b"\n".join(data[start + len(inner) : end].split(b"\n" + inner))
        if chomping == b"-":
            content = content.rstrip(b"\n")
        elif chomping == b"":
            content = content.rstrip(b"\n") + b"\n"
        blocks.append(content)
        pieces.append(data[position : header.start()])
        pieces.append(b"%s%s: %s %d\n" % (indent, key, _BLOCK_TAG.encode(), len(blocks) - 1))
        position = end
