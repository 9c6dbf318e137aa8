"""Adding recorded interactions to a cassette file, safely across processes."""

import hashlib
import warnings
from datetime import UTC, datetime
from pathlib import Path

from llmx_replay._exceptions import InputError, SecretInCassette, TornCassetteWarning
from llmx_replay._files import read_file
from llmx_replay._version import __version__
from llmx_replay.cassette._layout import (
    AppendPoint,
    append,
    append_point,
    directory_lock,
    end_line,
    flush_to_disk,
    without_torn_tail,
)
from llmx_replay.cassette._load import parse_cassette
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import Cassette, CassetteMetadata, Interaction
from llmx_replay.cassette._save import (
    cassette_yaml,
    interaction_yaml,
    remove_stale_temporaries,
    write_atomically,
)
from llmx_replay.cassette._scrub import Scrubber, find_interaction_secrets


def _metadata(interaction: Interaction, note: str | None) -> CassetteMetadata:
    uri = interaction.request.uri.split("?", 1)[0]
    base_url = uri.removesuffix("/chat/completions") if uri.endswith("/chat/completions") else None
    return CassetteMetadata(
        toolkit=__version__,
        recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        base_url=base_url,
        model=interaction.request.model,
        note=note,
    )


class CassetteWriter:
    """Writes each recorded interaction to the cassette at `path` as soon as it is complete.

    Each write takes a lock on the folder, so that writers in other processes (pytest-xdist
    workers) take turns. An interaction is appended after the file's last (`_layout`): it
    costs its own size, whatever the cassette holds. A file in another layout (vcrpy's,
    an older llmx-replay's) is written whole once, in this one. `fresh` (record mode
    ``rewrite``): the first write starts the file anew, unless `ledger` says another writer
    of the same run (another test sharing the cassette) already did: then it adds to it.
    `replace`: a recording replaces the first interaction recorded for the same request,
    which it was made to renew (record mode ``all``), and the file is written whole; one
    that renews none is appended. The file's `note` is kept when recordings are only added
    (it may say why the others were written by hand), and dropped when they renew it (the
    file is then written whole once).

    Appends are not synced to the disk one by one (a killed process loses nothing the
    system was given): `close` syncs them.
    """

    def __init__(
        self,
        path: Path,
        *,
        scrubber: Scrubber,
        canonicalizer: BodyCanonicalizer,
        fresh: bool = False,
        ledger: "RunLedger | None" = None,
        replace: bool = False,
    ) -> None:
        self.path = path
        self._scrubber = scrubber
        self._canonicalizer = canonicalizer
        self._fresh = fresh
        self._ledger = ledger
        self._replace = replace
        self._renewed: set[int] = set()
        # Record mode `all` only: the file's interactions, and their text, as last seen.
        self._interactions: list[Interaction] = []
        self._texts: list[bytes] = []
        self._note: str | None = None
        # The file as this writer last left it, and how many interactions it held then.
        self._written: tuple[int, int, int] | None = None
        self._interactions_written = 0
        self._unsynced = False
        self.added = 0
        """How many interactions this writer has written."""
        self.last_status: int | None = None
        """The HTTP status of the last interaction it wrote."""

    def add(self, interaction: Interaction) -> None:
        kept = self._scrubber.interaction(interaction)
        if kept is None:
            return  # a hook left it out
        text = interaction_yaml(kept)
        with directory_lock(self.path.parent):
            if not self.added:
                # Under the lock, no other writer is writing one: they are a killed one's.
                remove_stale_temporaries(self.path)
            if self._fresh and self._ledger is not None and self._ledger.renewed(self.path):
                self._fresh = False
            if self._fresh:
                self._write_with([], kept, text, note=None)
            elif self._replace:
                self._renew(kept, text)
            else:
                self._append(kept, text)
            self.added += 1
            self.last_status = kept.response.status
            if self._fresh and self._ledger is not None:
                self._ledger.note_renewed(self.path)
            self._fresh = False

    def close(self) -> None:
        """Sync what was appended to the disk."""
        if self._unsynced:
            self._unsynced = False
            flush_to_disk(self.path)

    def _append(self, interaction: Interaction, text: bytes) -> None:
        point = self._own_end() or append_point(self.path)
        if point is None:
            cassette = self._on_disk()
            earlier = cassette.interactions if cassette is not None else []
            note = cassette.metadata.note if cassette and cassette.metadata else None
            texts = [interaction_yaml(recorded) for recorded in earlier]
            self._write_with(texts, interaction, text, note=note)
            return
        _refuse_secrets(self.path, interaction, point.interactions)
        append(self.path, point, text + end_line(point.interactions + 1).encode())
        self._wrote(point.interactions + 1)
        if point.torn:
            warnings.warn(
                f"{self.path}: cut off its last {point.torn:,} bytes, an interaction cut off "
                "mid-write (its recording process was stopped while writing it)",
                TornCassetteWarning,
                stacklevel=2,
            )

    def _renew(self, interaction: Interaction, text: bytes) -> None:
        self._catch_up()
        position = self._renewable(interaction)
        if position is None and self._note is None:
            self._append(interaction, text)
            self._interactions.append(interaction)
            self._texts.append(text)
            position = len(self._interactions) - 1
        else:
            # Renewed, the file no longer holds what its note says (written by hand, say).
            if position is None:
                position = len(self._interactions)
                _refuse_secrets(self.path, interaction, position)
                self._interactions.append(interaction)
                self._texts.append(text)
            else:
                _refuse_secrets(self.path, interaction, position)
                self._interactions[position] = interaction
                self._texts[position] = text
            self._write(self._texts, interaction, note=None)
            self._note = None
        # What this writer recorded is new: a later recording never renews it.
        self._renewed.add(position)

    def _write_with(
        self, texts: list[bytes], interaction: Interaction, text: bytes, note: str | None
    ) -> None:
        """Write the file whole: the interactions in `texts`, then `interaction` (`text`)."""
        _refuse_secrets(self.path, interaction, len(texts))
        self._write([*texts, text], interaction, note)

    def _write(self, texts: list[bytes], interaction: Interaction, note: str | None) -> None:
        text = cassette_yaml(texts, _metadata(interaction, note))
        # A file that replaces another is synced first, so that a power cut keeps one of
        # them; a new one is synced at `close`, with what is appended to it.
        write_atomically(self.path, text, sync=self.path.exists())
        self._wrote(len(texts))

    def _wrote(self, interactions: int) -> None:
        self._written = _stamp(self.path)
        self._interactions_written = interactions
        self._unsynced = True

    def _own_end(self) -> AppendPoint | None:
        """The file's end, when the file is as this writer left it (nothing to read)."""
        stamp = _stamp(self.path)
        if stamp is None or stamp != self._written:
            return None
        return AppendPoint(self._interactions_written, stamp[1], 0, needs_line_break=False)

    def _on_disk(self) -> Cassette | None:
        """The cassette at `path`, if any, refused when another tool's file format."""
        if not self.path.exists():
            return None
        # Read under the writers' lock, which `load_cassette` would wait for: a torn end is
        # left out quietly, as `_append` cuts it off and says so.
        data, _ = without_torn_tail(read_file(self.path))
        cassette = parse_cassette(data, str(self.path))
        if cassette.source_format not in _WRITABLE_FORMATS or self.path.suffix == ".json":
            raise InputError(
                str(self.path),
                f"written by another tool ({cassette.source_format}); llmx-replay records "
                "only into its own YAML or vcrpy's, so that the tool can still read its file: "
                "record into another cassette",
            )
        return cassette

    def _catch_up(self) -> None:
        """Take the file as it is now, unless it is what this writer last wrote."""
        stamp = _stamp(self.path)
        if stamp == self._written:
            return
        cassette = self._on_disk() if stamp is not None else None
        self._interactions = list(cassette.interactions) if cassette is not None else []
        self._note = cassette.metadata.note if cassette and cassette.metadata else None
        self._texts = [interaction_yaml(interaction) for interaction in self._interactions]

    def _renewable(self, interaction: Interaction) -> int | None:
        request = interaction.request
        key = self._canonicalizer.key(request.method, request.uri, request.body)
        for position, candidate in enumerate(self._interactions):
            recorded = candidate.request
            same = self._canonicalizer.key(recorded.method, recorded.uri, recorded.body) == key
            if same and position not in self._renewed:
                return position
        return None


def _refuse_secrets(path: Path, interaction: Interaction, index: int) -> None:
    secrets = find_interaction_secrets(interaction, index)
    if secrets:
        raise SecretInCassette(str(path), secrets)


_WRITABLE_FORMATS = frozenset({"llmx-replay", "vcrpy"})


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells one version of a file from another: inode, size and change time."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)


class RunLedger:
    """The cassettes one run (a pytest session and its xdist workers) has started anew.

    They are kept as empty files in `folder`: every process of the run sees them, and no
    file time (coarse, or from another machine's clock on a network mount) is trusted.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _entry(self, path: Path) -> Path:
        return self.folder / hashlib.sha256(str(path.resolve()).encode()).hexdigest()

    def renewed(self, path: Path) -> bool:
        return self._entry(path).exists()

    def note_renewed(self, path: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._entry(path).touch()
