"""Adding recorded interactions to a cassette file, safely across processes."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from llmx_replay._exceptions import InputError, SecretInCassette
from llmx_replay._version import __version__
from llmx_replay.cassette._load import load_cassette
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import CassetteMetadata, Interaction
from llmx_replay.cassette._save import (
    cassette_yaml,
    directory_lock,
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

    Each write takes a lock on the folder; the file is read again only when another writer
    (a pytest-xdist worker) changed it since this one wrote it, so adding an interaction
    costs that interaction. `fresh` (record mode ``rewrite``): the first write starts the
    file anew, unless `ledger` says another writer of the same run (another test sharing the
    cassette) already did: then it adds to it. `replace`: a recording replaces the first
    interaction recorded for the same request, which it was made to renew (record mode
    ``all``); otherwise it is appended. The file's `note` is kept when recordings are only
    added (it may say why the others were written by hand), and dropped when they renew it.
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
        self._interactions: list[Interaction] = []
        self._texts: list[str] = []
        self._written: tuple[int, int, int] | None = None
        self._note: str | None = None  # kept from the file added to
        self.added = 0
        """How many interactions this writer has written."""
        self.last_status: int | None = None
        """The HTTP status of the last interaction it wrote."""

    def add(self, interaction: Interaction) -> None:
        kept = self._scrubber.interaction(interaction)
        if kept is None:
            return  # a hook left it out
        interaction = kept
        text = interaction_yaml(interaction)
        with directory_lock(self.path.parent):
            remove_stale_temporaries(self.path)
            if self._fresh and self._ledger is not None and self._ledger.renewed(self.path):
                self._fresh = False
            self._catch_up()
            position = self._renewable(interaction) if self._replace else None
            index = len(self._interactions) if position is None else position
            secrets = find_interaction_secrets(interaction, index)
            if secrets:
                raise SecretInCassette(str(self.path), secrets)
            if position is None:
                self._interactions.append(interaction)
                self._texts.append(text)
            else:
                self._interactions[position] = interaction
                self._texts[position] = text
            # What this writer recorded is new: a later recording never renews it.
            self._renewed.add(index)
            write_atomically(
                self.path, cassette_yaml(self._texts, _metadata(interaction, self._note)).encode()
            )
            self._written = _stamp(self.path)
            self.added += 1
            self.last_status = interaction.response.status
            if self._fresh and self._ledger is not None:
                self._ledger.note_renewed(self.path)
            self._fresh = False

    def _catch_up(self) -> None:
        """Take the file as it is now.

        Nothing is taken when it is what this writer last wrote, or is to be started anew.
        """
        if self._fresh:
            return
        stamp = _stamp(self.path)
        if stamp is None or stamp == self._written:
            return
        cassette = load_cassette(self.path)
        if cassette.source_format not in _WRITABLE_FORMATS or self.path.suffix == ".json":
            raise InputError(
                str(self.path),
                f"written by another tool ({cassette.source_format}); llmx-replay records "
                "only into its own YAML or vcrpy's, so that the tool can still read its file: "
                "record into another cassette",
            )
        self._interactions = list(cassette.interactions)
        self._note = None if self._replace or cassette.metadata is None else cassette.metadata.note
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
