"""The layout that lets a recording be added to a cassette by appending it.

A cassette this package writes reads, top to bottom::

    # llmx-replay cassette
    llmx_replay: {format, toolkit, recorded_at, ...}
    version: 1
    interactions:
    - request: ...
      response: ...
    # end of interaction 1
    - request: ...
    # end of interaction 2

It is plain YAML as vcrpy reads it: key order means nothing to it, and the end lines are
comments. The metadata comes first, so that one more interaction is its own text and end
line written after the last: nothing before it is written again. The end line makes an
append verifiable: a process killed while appending leaves text after the last end line,
which readers leave out and the next writer cuts off before it appends.
"""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from llmx_replay.cassette._yaml import MARKER

_END_PREFIX = b"\n# end of interaction "
_END_LINE = re.compile(rb"# end of interaction ([0-9]{1,9})\n")
_TAIL_WINDOW = 1 << 16


def end_line(number: int) -> str:
    """The line that closes the `number`-th interaction (counted from 1)."""
    return f"# end of interaction {number}\n"


def _last_end(data: bytes) -> tuple[int, int] | None:
    """Where the last whole end line of `data` ends, and the number it gives."""
    position = len(data)
    while (start := data.rfind(_END_PREFIX, 0, position)) >= 0:
        match = _END_LINE.match(data, start + 1)
        if match is not None:
            return match.end(), int(match.group(1))
        position = start
    return None


def _is_torn(tail: bytes) -> bool:
    """Whether text after the last end line holds more than blank lines and comments."""
    return any(line.strip() and not line.lstrip().startswith(b"#") for line in tail.split(b"\n"))


def without_torn_tail(data: bytes) -> tuple[bytes, int]:
    """A cassette file's bytes without an interaction cut off mid-write, and its length.

    Files in another layout come back whole.
    """
    if not data.startswith(MARKER.encode()):
        return data, 0
    found = _last_end(data)
    if found is None or not _is_torn(data[found[0] :]):
        return data, 0
    return data[: found[0]], len(data) - found[0]


class AppendPoint(NamedTuple):
    """Where a cassette file's next interaction goes."""

    interactions: int
    """How many interactions the file holds (the last end line's number)."""
    offset: int
    """The byte offset to write at: the file's end, or where its torn tail starts."""
    torn: int
    """How many bytes of a cut-off interaction that leaves out."""
    needs_line_break: bool
    """The file's last line (a comment added by hand) has no line break yet."""


def append_point(path: Path) -> AppendPoint | None:
    """Where the next interaction of the cassette at `path` goes, or None.

    None: the file is missing, or in another layout (written by vcrpy, by hand, or by an
    older llmx-replay), and must be written whole once. Only its end is read (its start
    too, for the marker), unless a cut-off interaction is longer than 64 KiB.
    """
    try:
        with path.open("rb") as stream:
            if stream.read(len(MARKER)) != MARKER.encode():
                return None
            size = os.fstat(stream.fileno()).st_size
            start = max(0, size - _TAIL_WINDOW)
            stream.seek(start)
            window = stream.read()
            found = _last_end(window)
            if found is None and start > 0:
                start = 0
                stream.seek(0)
                window = stream.read()
                found = _last_end(window)
    except FileNotFoundError:
        return None
    if found is None:
        return None
    end, count = found
    tail = window[end:]
    if _is_torn(tail):
        return AppendPoint(count, start + end, len(tail), needs_line_break=False)
    return AppendPoint(count, size, 0, needs_line_break=bool(tail) and not tail.endswith(b"\n"))


@contextmanager
def directory_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a lock on `folder`; it leaves no file behind.

    Writers hold it exclusively while they write, so that writers in other processes
    (pytest-xdist workers) take turns; a reader that finds an interaction being appended
    holds it `shared` to read the file again once the append is done.
    """
    if not shared:
        folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # Windows: writers may race, and a reader may see an append half-done
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def append(path: Path, point: AppendPoint, data: bytes) -> None:
    """Write `data` at `point` of the file at `path`, cutting off a torn tail first.

    A write that fails (a full disk, an interrupt) is undone, so that the file ends at an
    end line again.
    """
    if point.needs_line_break:
        data = b"\n" + data
    descriptor = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        os.ftruncate(descriptor, point.offset)
        os.lseek(descriptor, point.offset, os.SEEK_SET)
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.write(descriptor, view[written:])
    except BaseException as error:
        os.ftruncate(descriptor, point.offset)
        if isinstance(error, OSError) and error.filename is None:
            # A full disk fails a write with no file name: give it the cassette's.
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    finally:
        os.close(descriptor)


def flush_to_disk(path: Path) -> None:
    """Have the system put what was written to `path` on the disk (against a power cut).

    A file removed meanwhile has nothing left to keep.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY)  # Windows syncs only what is open for writing
    except FileNotFoundError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error
    finally:
        os.close(descriptor)
