"""Recording appends: one more interaction writes its own text, earlier ones are never
written again, and a writer killed mid-append costs only the interaction it was writing."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vcr.serialize import deserialize as vcrpy_deserialize  # type: ignore[import-untyped]
from vcr.serializers import yamlserializer  # type: ignore[import-untyped]

from llmx_replay import TornCassetteWarning
from llmx_replay.cassette import (
    CassetteWriter,
    Scrubber,
    _layout,
    _load,
    load_cassette,
    save_cassette,
)
from llmx_replay.cassette._layout import end_line
from llmx_replay.cassette._match import BodyCanonicalizer
from llmx_replay.cassette._model import Cassette, Interaction, RecordedRequest, RecordedResponse
from llmx_replay.cassette._save import dumps, interaction_yaml


def interaction(number: int, body_events: int = 3) -> Interaction:
    body = b"".join(
        b'data: {"choices":[{"delta":{"content":"%d-%d"}}]}\n\n' % (number, event)
        for event in range(body_events)
    )
    return Interaction(
        request=RecordedRequest(
            method="POST",
            uri="http://llm.test/v1/chat/completions",
            headers=[("content-type", "application/json")],
            body=b'{"model":"m","messages":[{"role":"user","content":"ask %d"}]}' % number,
        ),
        response=RecordedResponse(
            status=200,
            reason="OK",
            headers=[("content-type", "text/event-stream")],
            body=body + b"data: [DONE]\n\n",
            headers_ms=1.0,
            chunks=((len(body) + 14, 2.0),),
        ),
    )


def writer(path: Path, **options: bool) -> CassetteWriter:
    return CassetteWriter(path, scrubber=Scrubber(), canonicalizer=BodyCanonicalizer(), **options)


def bodies(path: Path) -> list[bytes]:
    return [recorded.response.body for recorded in load_cassette(path).interactions]


def vcrpy_bodies(path: Path) -> list[bytes]:
    _, responses = vcrpy_deserialize(path.read_text(), yamlserializer)
    return [response["body"]["string"] for response in responses]


def test_each_interaction_is_appended_and_earlier_bytes_are_never_rewritten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.yaml"
    recording = writer(path)
    recording.add(interaction(0))
    inode = path.stat().st_ino
    for number in range(1, 5):
        before = path.read_bytes()
        recording.add(interaction(number))
        after = path.read_bytes()
        assert after.startswith(before)
        assert after.endswith(end_line(number + 1).encode())
    assert path.stat().st_ino == inode  # the same file, never replaced
    assert bodies(path) == [interaction(number).response.body for number in range(5)]


def test_an_appended_cassette_is_what_saving_it_whole_writes(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    recording = writer(path)
    for number in range(3):
        recording.add(interaction(number))
    cassette = load_cassette(path)
    assert path.read_text() == dumps(cassette)


def test_plain_vcrpy_reads_an_appended_cassette(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    recording = writer(path)
    for number in range(3):
        recording.add(interaction(number))
    assert vcrpy_bodies(path) == bodies(path)
    assert len(bodies(path)) == 3


def test_a_file_in_the_older_layout_is_written_whole_once_then_appended_to(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.yaml"
    metadata_last = dumps(Cassette(interactions=[interaction(0)], source_format="llmx-replay"))
    head, _, listed = metadata_last.partition("interactions:\n")
    # The layout before appends: interactions first, metadata and version after them.
    path.write_text(
        head.split("\n", 1)[0]
        + "\ninteractions:\n"
        + listed.split("# end")[0]
        + (
            "llmx_replay:\n  format: 1\n  toolkit: 0.0.9\n  recorded_at: '2026-01-01T00:00:00'\n"
            "  note: kept\nversion: 1\n"
        )
    )
    recording = writer(path)
    recording.add(interaction(1))
    converted = path.read_bytes()
    assert converted.endswith(end_line(2).encode())
    recording.add(interaction(2))
    assert path.read_bytes().startswith(converted)
    cassette = load_cassette(path)
    assert [i.response.body for i in cassette.interactions] == [
        interaction(number).response.body for number in range(3)
    ]
    assert cassette.metadata is not None and cassette.metadata.note == "kept"


def test_the_metadata_says_when_the_cassette_was_started_and_stays(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(interaction(0))
    first = load_cassette(path).metadata
    assert first is not None and first.model == "m"
    # Another run adds a new episode, asking another model.
    other = interaction(1)
    body = (other.request.body or b"").replace(b'"model":"m"', b'"model":"other"')
    writer(path).add(
        other.model_copy(update={"request": other.request.model_copy(update={"body": body})})
    )
    assert load_cassette(path).metadata == first


@settings(max_examples=60, deadline=None)
@given(cut=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_a_cut_off_append_is_left_out_by_readers_and_cut_off_by_the_next_writer(
    tmp_path_factory: pytest.TempPathFactory, cut: float
) -> None:
    path = tmp_path_factory.mktemp("torn") / "chat.yaml"
    recording = writer(path)
    recording.add(interaction(0))
    recording.add(interaction(1))
    whole = path.read_bytes()
    recording.add(interaction(2, body_events=40))
    appended = path.read_bytes()[len(whole) :]
    path.write_bytes(whole + appended[: int(len(appended) * cut)])

    if cut * len(appended) >= 1:
        with pytest.warns(TornCassetteWarning, match="chat.yaml: left out its last"):
            assert len(bodies(path)) == 2
    else:
        assert len(bodies(path)) == 2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornCassetteWarning)
        writer(path).add(interaction(3))
    assert path.read_bytes().startswith(whole)
    expected = [interaction(number).response.body for number in (0, 1, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bodies(path) == expected
    assert vcrpy_bodies(path) == expected


def test_the_writer_says_when_it_cuts_off_a_torn_interaction(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(interaction(0))
    with path.open("ab") as stream:
        stream.write(b"- request:\n    method: POST\n    uri: http://llm.te")
    with pytest.warns(TornCassetteWarning, match="cut off its last 50 bytes"):
        writer(path).add(interaction(1))
    assert len(bodies(path)) == 2


def test_a_comment_added_by_hand_at_the_end_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(interaction(0))
    with path.open("ab") as stream:
        stream.write(b"# checked by hand")  # no line break after it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        writer(path).add(interaction(1))
        assert len(bodies(path)) == 2
    assert b"# checked by hand\n- request:" in path.read_bytes()


def test_a_full_disk_mid_append_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(interaction(0))
    before = path.read_bytes()
    real_write = os.write
    cassette = path.stat().st_ino

    def half_then_full(descriptor: int, data: bytes) -> int:
        if os.fstat(descriptor).st_ino != cassette:
            return real_write(descriptor, data)
        if len(data) > 10:
            return real_write(descriptor, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError) as caught:
        writer(path).add(interaction(1, body_events=20))
    assert caught.value.filename == str(path)
    assert path.read_bytes() == before


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per `os.fsync` from here on (each still syncs)."""
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: calls.append(real_fsync(descriptor)))
    return calls


def test_a_recording_is_synced_to_the_disk_once_at_close(tmp_path: Path, synced: list[int]) -> None:
    path = tmp_path / "chat.yaml"
    recording = writer(path)
    for number in range(5):
        recording.add(interaction(number))
    assert synced == []  # a killed process loses nothing the system was given
    recording.close()
    assert len(synced) == 1
    recording.close()
    assert len(synced) == 1


def test_a_cassette_started_anew_is_synced_before_it_replaces_the_old_one(
    tmp_path: Path, synced: list[int]
) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(interaction(0))
    synced.clear()
    writer(path, fresh=True).add(interaction(1))  # not closed: the sync came before the rename
    assert len(synced) == 1
    assert bodies(path) == [interaction(1).response.body]


def test_a_saved_cassette_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    save_cassette(path, Cassette(interactions=[interaction(0)], source_format="llmx-replay"))
    saved = path.read_bytes()
    writer(path).add(interaction(1))
    assert path.read_bytes().startswith(saved)


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_append_layout import interaction, writer

    recording = writer(Path(sys.argv[1]))
    for number in range(10_000):
        recording.add(interaction(number, body_events=2_000 + number % 7))
    """
)


@pytest.mark.parametrize("seen", [1, 3, 6])
def test_a_writer_killed_at_any_moment_loses_only_the_interaction_it_was_writing(
    tmp_path: Path, seen: int
) -> None:
    path = tmp_path / "chat.yaml"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path), str(Path(__file__).parent)]
    )
    try:
        while not path.exists() or path.read_bytes().count(b"\n# end of interaction ") < seen:
            assert process.poll() is None, "the writer stopped by itself"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornCassetteWarning)
        recorded = bodies(path)
    assert len(recorded) >= seen
    assert recorded == [
        interaction(number, body_events=2_000 + number % 7).response.body
        for number in range(len(recorded))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornCassetteWarning)
        writer(path).add(interaction(-1))
    assert len(vcrpy_bodies(path)) == len(recorded) + 1


def test_a_reader_that_meets_an_append_in_progress_reads_it_once_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chat.yaml"
    writer(path).add(interaction(0))
    whole = path.read_bytes()
    appended = interaction_yaml(interaction(1)) + end_line(2).encode()
    first_read = threading.Event()
    real_read = _load.read_file

    def read_and_tell(read: Path) -> bytes:
        data = real_read(read)
        first_read.set()
        return data

    monkeypatch.setattr(_load, "read_file", read_and_tell)
    loaded: list[Cassette] = []
    with _layout.directory_lock(tmp_path):  # a writer, halfway through its append
        path.write_bytes(whole + appended[:100])
        reader = threading.Thread(target=lambda: loaded.append(load_cassette(path)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            reader.start()
            first_read.wait()
            path.write_bytes(whole + appended)
    reader.join()
    assert [i.response.body for i in loaded[0].interactions] == [
        interaction(number).response.body for number in range(2)
    ]
