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
from typing import Any

import yaml

_RESOLVER = yaml.resolver.Resolver()
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]*([eE][-+][0-9]+)?")
_SINGLE_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_BLOCK_REFERENCE = re.compile(r"!llmx-replay/block (\d+)")
_KEY = re.compile(r"([^\s'\"\[\]{}#&*!|>%@`?,:-][^:#]*?|-[^\s:#][^:#]*?):(?: (.*))?")
_SPECIAL_START = frozenset("[]{}&*!|>%@`?#\"'")


class NotSimple(Exception):
    """The skeleton uses YAML this reader does not take; parse it with PyYAML."""


def load_skeleton(text: str, blocks: list[bytes]) -> Any:
    """The document in `text`, with each ``!llmx-replay/block N`` taken from `blocks`."""
    if "\t" in text:
        raise NotSimple  # tabs are separators (or not) by rules this reader does not follow
    lines = [
        (len(line) - len(line.lstrip(" ")), line.lstrip(" "))
        for line in text.split("\n")
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines or lines[0][0] != 0:
        raise NotSimple
    reader = _Reader(lines, blocks)
    document, position = reader.node(0, 0)
    if position != len(lines):
        raise NotSimple
    return document


class _Reader:
    """Reads `lines` (indent, content) from the top.

    Each method takes one block at a given indent and returns its value and the position
    after it.
    """

    def __init__(self, lines: list[tuple[int, str]], blocks: list[bytes]) -> None:
        self.lines = lines
        self.blocks = blocks

    def node(self, position: int, indent: int) -> tuple[Any, int]:
        """The mapping or sequence whose lines start at `position`, indented `indent`."""
        if self.lines[position][1].startswith("- ") or self.lines[position][1] == "-":
            return self.sequence(position, indent)
        return self.mapping(position, indent)

    def sequence(self, position: int, indent: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        lines = self.lines
        while position < len(lines) and lines[position][0] == indent:
            content = lines[position][1]
            if content == "-":
                raise NotSimple
            if not content.startswith("- "):
                break
            item = content[2:]
            if _KEY.fullmatch(item):
                # "- key: value": a mapping whose first line shares the dash's.
                lines[position] = (indent + 2, item)
                value, position = self.mapping(position, indent + 2)
            else:
                value = self.scalar(item)
                position += 1
            items.append(value)
        if position < len(lines) and lines[position][0] > indent:
            raise NotSimple
        return items, position

    def mapping(self, position: int, indent: int) -> tuple[dict[str, Any], int]:
        mapping: dict[str, Any] = {}
        lines = self.lines
        while position < len(lines) and lines[position][0] == indent:
            content = lines[position][1]
            if content.startswith("- "):
                break
            match = _KEY.fullmatch(content)
            if match is None:
                raise NotSimple
            key, value_text = match.group(1), match.group(2)
            if key != key.strip() or key in mapping or _plain(key) is not str:
                raise NotSimple
            position += 1
            if value_text:
                mapping[key] = self.scalar(value_text)
                if position < len(lines) and lines[position][0] > indent:
                    raise NotSimple  # a scalar continued on the next line
                continue
            following = lines[position] if position < len(lines) else None
            if following is not None and following[0] > indent:
                mapping[key], position = self.node(position, following[0])
            elif (
                following is not None and following[0] == indent and (following[1].startswith("- "))
            ):
                mapping[key], position = self.sequence(position, indent)
            else:
                mapping[key] = None
        if position < len(lines) and lines[position][0] > indent:
            raise NotSimple
        return mapping, position

    def scalar(self, text: str) -> Any:
        if (
            not text
            or text[0] == " "
            or text[-1] in " :"
            or " #" in text
            or text.startswith("- ")
            or text == "-"
        ):
            raise NotSimple
        reference = _BLOCK_REFERENCE.fullmatch(text)
        if reference is not None:
            index = int(reference.group(1))
            if index >= len(self.blocks):
                raise NotSimple
            return self.blocks[index]
        if text == "[]":
            return []
        if text == "{}":
            return {}
        quoted = _SINGLE_QUOTED.fullmatch(text)
        if quoted is not None:
            return quoted.group(1).replace("''", "'")
        if text[0] in _SPECIAL_START or ": " in text:
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
