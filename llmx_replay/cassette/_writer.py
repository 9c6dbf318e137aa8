"""Adding recorded interactions to a cassette file, safely across processes."""

from datetime import UTC, datetime
from pathlib import Path

from llmx_replay._version import __version__
from llmx_replay.cassette._load import load_cassette
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import Cassette, CassetteMetadata, Interaction
from llmx_replay.cassette._save import directory_lock, save_cassette
from llmx_replay.cassette._scrub import Scrubber


def _metadata(interaction: Interaction) -> CassetteMetadata:
    uri = interaction.request.uri.split("?", 1)[0]
    base_url = uri.removesuffix("/chat/completions") if uri.endswith("/chat/completions") else None
    model = None
    body = interaction.request.body
    if body:
        canonical = BodyCanonicalizer().parsed(body)
        if isinstance(canonical, dict) and isinstance(canonical.get("model"), str):
            model = canonical["model"]
    return CassetteMetadata(
        toolkit=__version__,
        recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        base_url=base_url,
        model=model,
    )


class CassetteWriter:
    """Writes each recorded interaction to the cassette at `path` as soon as it is complete.

    Every write re-reads the file under a lock, so recordings from other processes are kept.
    `fresh`: the first write starts the file anew (record mode ``rewrite``). `replace`: a
    recording replaces the first interaction recorded for the same request, which it was
    made to renew (record mode ``all``); otherwise it is appended.
    """

    def __init__(
        self,
        path: Path,
        *,
        scrubber: Scrubber,
        canonicalizer: BodyCanonicalizer,
        fresh: bool = False,
        replace: bool = False,
    ) -> None:
        self.path = path
        self._scrubber = scrubber
        self._canonicalizer = canonicalizer
        self._fresh = fresh
        self._replace = replace
        self._renewed: set[int] = set()

    def add(self, interaction: Interaction) -> None:
        interaction = self._scrubber.interaction(interaction)
        with directory_lock(self.path.parent):
            existing: list[Interaction] = []
            if not self._fresh and self.path.exists():
                existing = list(load_cassette(self.path).interactions)
            self._fresh = False
            position = self._renewable(existing, interaction) if self._replace else None
            if position is None:
                existing.append(interaction)
            else:
                existing[position] = interaction
                self._renewed.add(position)
            cassette = Cassette(
                interactions=existing, source_format="llmx-replay", metadata=_metadata(interaction)
            )
            save_cassette(self.path, cassette)

    def _renewable(self, existing: list[Interaction], interaction: Interaction) -> int | None:
        request = interaction.request
        key = self._canonicalizer.key(request.method, request.uri, request.body)
        for position, candidate in enumerate(existing):
            recorded = candidate.request
            same = self._canonicalizer.key(recorded.method, recorded.uri, recorded.body) == key
            if same and position not in self._renewed:
                return position
        return None
