"""What a killed or starved writer leaves: stray temporary files are cleaned by the next write,
and a full disk is an error naming the cassette."""

import errno
import os
from pathlib import Path

import pytest

from llmx_replay.cassette import CassetteWriter, Scrubber
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import Interaction, RecordedRequest, RecordedResponse

INTERACTION = Interaction(
    request=RecordedRequest(method="POST", uri="http://x/v1/chat/completions", body=b"{}"),
    response=RecordedResponse(status=200, body=b"data: [DONE]\n\n"),
)


def writer(path: Path) -> CassetteWriter:
    return CassetteWriter(path, scrubber=Scrubber(), canonicalizer=BodyCanonicalizer())


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    killed = [tmp_path / ".chat.yaml.k1ll3d.tmp", tmp_path / ".chat.yaml.x9.tmp"]
    for stale in killed:
        stale.write_bytes(b"half a cassette")
    someone_elses = tmp_path / ".other.yaml.a1.tmp"
    someone_elses.write_bytes(b"")
    writer(path).add(INTERACTION)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.yaml.a1.tmp", "chat.yaml"]


def test_a_full_disk_is_an_error_naming_the_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    path = tmp_path / "chat.yaml"
    recording = writer(path)
    recording.add(INTERACTION)
    with pytest.raises(OSError) as caught:
        recording.close()
    assert caught.value.filename == str(path)
    assert caught.value.errno == errno.ENOSPC


def test_a_full_disk_replacing_a_cassette_leaves_the_old_one_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(INTERACTION)
    before = path.read_bytes()

    def disk_full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    fresh = CassetteWriter(path, scrubber=Scrubber(), canonicalizer=BodyCanonicalizer(), fresh=True)
    with pytest.raises(OSError) as caught:
        fresh.add(INTERACTION)
    assert caught.value.filename == str(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
