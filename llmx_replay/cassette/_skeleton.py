"""Reading the skeleton of a cassette this package wrote, without PyYAML's constructor.

Once its bodies are cut out, a cassette written here is small, block-style YAML: mappings,
sequences, and one-line scalars. PyYAML's Python constructor still spent most of a small
cassette's load time on it (every header is a mapping entry holding a list), which a test
that replays its own cassette pays each time. This reader takes that shape line by line
and resolves plain scalars with PyYAML's own resolver, so that it reads them as PyYAML
does; anything else (flow collections, anchors, other tags, escapes, multi-line scalars,
timestamps, unusual numbers) makes it give up, and the caller parses the file with PyYAML.
"""

import functools
import re
from typing import Any, NamedTuple

import yaml

_RESOLVER = yaml.resolver.Resolver()
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*([eE][-+][0-9]+)?")
_SINGLE_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_BLOCK_REFERENCE = re.compile(r"!llmx-replay/block (\d+)")
_SPECIAL_START = frozenset("[]{}&*!|>%@`?#\"'")
# Characters PyYAML reads by rules this reader does not follow: tabs (separators, or not),
# line breaks other than \n, a byte order mark, and what it refuses as not printable.
_NOT_SIMPLE_CHARACTER = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# What follows a line's indent: the "- " opening a sequence item, then either a key with the
# text after its colon, or the whole text. A key has no colon or "#", and starts as a plain
# scalar may.
_CONTENT = re.compile(
    r"(- )?(?:([^\s'\"\[\]{}#&*!|>%@`?,:-][^:#]*|-[^\s:#][^:#]*):(?: (.*))?|(.*))"
)


class NotSimple(Exception):
    """The skeleton uses YAML this reader does not take; parse it with PyYAML."""


class _Line(NamedTuple):
    """A line of the skeleton that holds something, its scalar already read."""

    indent: int
    item: bool
    """Whether it opens a sequence item (``- ``)."""
    key: str | None
    """The key, or None when the line holds a scalar alone."""
    value: Any
    """The scalar: after the key's colon (`_NOTHING` when there is none), or the line's."""


_NOTHING = object()
"""The value of a key line with nothing after its colon: what follows, or null."""


class _Empty(NamedTuple):
    """``[]`` or ``{}``, made anew at each place it is read.

    A document's values are its own to change.
    """

    make: type[list[Any]] | type[dict[str, Any]]


def load_skeleton(text: str, blocks: list[bytes]) -> Any:
    """The document in `text`, with each ``!llmx-replay/block N`` taken from `blocks`."""
    if _NOT_SIMPLE_CHARACTER.search(text):
        raise NotSimple
    text_lines = text.split("\n")
    # Most lines come back in every interaction (a method, a header): each different line
    # is read once. Blank lines and comments read as None, and are left out.
    read = {text_line: _line(text_line, blocks) for text_line in set(text_lines)}
    lines = list(filter(None, map(read.__getitem__, text_lines)))
    if not lines or lines[0].indent != 0:
        raise NotSimple
    return _document(lines)


def _line(text: str, blocks: list[bytes]) -> _Line | None:
    """`text` read as a line of the skeleton; None for a blank line or a comment."""
    content = text.lstrip(" ")
    if not content or content[0] == "#":
        return None
    match = _CONTENT.fullmatch(content)
    if match is None:
        raise NotSimple
    dash, key, after_key, alone = match.groups()
    indent = len(text) - len(content)
    if key is None:
        return _Line(indent, dash is not None, None, _value(alone, blocks))
    if not _simple_key(key):
        raise NotSimple
    value = _NOTHING if not after_key else _value(after_key, blocks)
    return _Line(indent, dash is not None, key, value)


def _value(text: str, blocks: list[bytes]) -> Any:
    if text[:1] == "!":
        reference = _BLOCK_REFERENCE.fullmatch(text)
        if reference is None or int(reference.group(1)) >= len(blocks):
            raise NotSimple
        return blocks[int(reference.group(1))]
    if text == "[]":
        return _Empty(list)
    if text == "{}":
        return _Empty(dict)
    return _scalar(text)


def _document(lines: list[_Line]) -> Any:
    """The mapping or sequence that `lines` hold, read in one pass and one call.

    A call for each mapping and sequence cost more than reading their lines.

    `container` is the mapping or sequence the current line goes in, at `indent`; the ones
    enclosing it wait in `enclosing`. A sequence may sit at the indent of the mapping whose
    key holds it (``key:`` then ``- item``): it ends at that mapping's next key.
    """
    root: Any = [] if lines[0].item else {}
    container, indent = root, 0
    enclosing: list[tuple[Any, int]] = []
    waiting: str | None = None  # a key of `container` whose value starts on the next line
    for line_indent, item, key, value in lines:
        if waiting is not None:
            if line_indent > indent or (line_indent == indent and item):
                child: Any = [] if item else {}
                container[waiting] = child
                enclosing.append((container, indent))
                container, indent = child, line_indent
            else:
                container[waiting] = None
            waiting = None
        while line_indent < indent:
            container, indent = enclosing.pop()
        if line_indent != indent:
            raise NotSimple  # a scalar continued, or a line indented by no rule
        if type(container) is list:
            if not item:
                if not enclosing or enclosing[-1][1] != indent:
                    raise NotSimple
                container, indent = enclosing.pop()  # a key after its same-indent sequence
            elif key is None:
                container.append(value.make() if type(value) is _Empty else value)
                continue
            else:
                # "- key: value": a mapping whose first line shares the dash's.
                mapping: dict[str, Any] = {}
                container.append(mapping)
                enclosing.append((container, indent))
                container, indent = mapping, indent + 2
        elif item:
            raise NotSimple
        if key is None or key in container:
            raise NotSimple
        if value is _NOTHING:
            waiting = key
        else:
            container[key] = value.make() if type(value) is _Empty else value
    if waiting is not None:
        container[waiting] = None
    return root


@functools.lru_cache(maxsize=4096)
def _simple_key(key: str) -> bool:
    """Whether PyYAML reads `key` as this very string."""
    return key == key.strip() and _plain(key) is str


@functools.lru_cache(maxsize=4096)
def _scalar(text: str) -> Any:
    """What PyYAML makes of a one-line scalar that is no block and no empty container.

    The same texts come back in every interaction (a method, a host, a status): each is
    worked out once.
    """
    if not text or text[0] == " " or text[-1] in " :" or " #" in text or text.startswith("- "):
        raise NotSimple
    quoted = _SINGLE_QUOTED.fullmatch(text)
    if quoted is not None:
        return quoted.group(1).replace("''", "'")
    if text[0] in _SPECIAL_START or ": " in text or text == "-":
        raise NotSimple
    kind = _plain(text)
    if kind is str:
        return text
    if kind is int and _INT.fullmatch(text):
        return int(text)
    if kind is float and _FLOAT.fullmatch(text):
        return float(text)
    if kind is bool:
        return _BOOLS[text.lower()]
    if kind is type(None):
        return None
    raise NotSimple


_TYPES = {
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": bool,
    "tag:yaml.org,2002:null": type(None),
}


# The first characters PyYAML looks further at; a plain scalar starting otherwise is a string.
_RESOLVED_STARTS = frozenset(key for key in _RESOLVER.yaml_implicit_resolvers if key)


@functools.lru_cache(maxsize=4096)
def _plain(text: str) -> type:
    """What PyYAML makes of a plain scalar: its type, or `object`.

    `object` stands for the types (timestamps, merge keys) this reader leaves to PyYAML.
    """
    if text[:1] not in _RESOLVED_STARTS:
        return str
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return _TYPES.get(tag, object)
