"""Cassette files read for replaying, kept for the next transport on the same unchanged file.

A test suite builds a transport per test, many of them on the same cassette file, and for a
large cassette reading the file and finding each recorded request's key is most of what
building one costs (over a second at 10,000 interactions). Both depend only on the file and
on how requests are matched, and the cassette's models are frozen, so transports share them;
what each transport has played stays its own (`InteractionIndex`).

A file counts as unchanged while its device, inode, size, modification and change times are.
A file changed in the last `SETTLED_NS` is not kept: rewritten again within the file
system's timestamp granularity (up to 2 s on FAT), at the same size, it would look the same.
Reading also depends on how far a compressed body may inflate (`max_inflated_bytes`), so
that is part of what a kept cassette is found by.
"""

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from llmx_replay.cassette._load import load_cassette, max_inflated_bytes
from llmx_replay.cassette._match import RecordedKeys
from llmx_replay.cassette._model import Cassette

SETTLED_NS = 2_000_000_000
"""How long ago a file must have last changed for it to be kept."""
MAX_FILES = 32
MAX_BYTES = 256 * 1024 * 1024
"""The most file bytes kept: a parsed cassette takes about the size of its file."""
MAX_MATCHINGS = 4
"""The most ways of matching (ignored paths, scrubber) whose keys are kept per file."""


class _Stamp(NamedTuple):
    """What tells a file, and whether it changed."""

    device: int
    inode: int
    size: int
    modified_ns: int
    changed_ns: int


def _stamp(path: Path) -> _Stamp | None:
    """The file's stamp; None when it cannot be told (reading it then says why)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return _Stamp(
        status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns
    )


@dataclass
class _Loaded:
    cassette: Cassette
    keys: OrderedDict[Hashable, RecordedKeys] = field(default_factory=OrderedDict)
    """By how requests are matched, the most recently used last."""


class LoadedCassettes:
    """Cassettes read from files, and their request keys by how requests are matched.

    The most recently used come last; the oldest go past `MAX_FILES` or `MAX_BYTES`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: OrderedDict[tuple[_Stamp, int], _Loaded] = OrderedDict()
        self._by_cassette: dict[int, _Loaded] = {}  # by id(cassette), for those kept
        self._bytes = 0

    def load(self, path: Path) -> Cassette:
        """The cassette at `path`: the one read before if the file is unchanged since."""
        stamp = _stamp(path)
        read_as = (stamp, max_inflated_bytes()) if stamp is not None else None
        if read_as is not None:
            with self._lock:
                loaded = self._files.get(read_as)
                if loaded is not None:
                    self._files.move_to_end(read_as)
                    return loaded.cassette
        # Read from the file as it is now: if it changed since `stamp`, that stamp is one
        # it no longer has, and never matches again.
        cassette = load_cassette(path)
        if read_as is not None and _settled(read_as[0]) and read_as[0].size <= MAX_BYTES:
            with self._lock:
                self._keep(read_as, _Loaded(cassette))
        return cassette

    def keys(
        self, cassette: Cassette, matching: Hashable, find: Callable[[], RecordedKeys]
    ) -> RecordedKeys:
        """The request keys of `cassette` for `matching`: `find()`'s, found once per file.

        `matching` is all that `find` depends on besides the cassette: equal ones must find
        the same keys.
        """
        try:
            hash(matching)
        except TypeError:  # a scrubber holding a list, say: found anew each time
            return find()
        with self._lock:
            loaded = self._by_cassette.get(id(cassette))
            if loaded is not None and matching in loaded.keys:
                loaded.keys.move_to_end(matching)
                return loaded.keys[matching]
        found = find()
        if loaded is not None:
            with self._lock:
                loaded.keys[matching] = found
                if len(loaded.keys) > MAX_MATCHINGS:
                    loaded.keys.popitem(last=False)
        return found

    def clear(self) -> None:
        """Forget every cassette read."""
        with self._lock:
            self._files.clear()
            self._by_cassette.clear()
            self._bytes = 0

    def _keep(self, read_as: tuple[_Stamp, int], loaded: _Loaded) -> None:
        if read_as in self._files:
            return  # read by another thread meanwhile
        self._files[read_as] = loaded
        self._by_cassette[id(loaded.cassette)] = loaded
        self._bytes += read_as[0].size
        while len(self._files) > MAX_FILES or self._bytes > MAX_BYTES:
            (old_stamp, _), old = self._files.popitem(last=False)
            del self._by_cassette[id(old.cassette)]
            self._bytes -= old_stamp.size


def _settled(stamp: _Stamp) -> bool:
    return time.time_ns() - max(stamp.modified_ns, stamp.changed_ns) >= SETTLED_NS


LOADED = LoadedCassettes()
"""The process's cassettes read for replaying."""
