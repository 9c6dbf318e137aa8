"""The cassette library still comes from the server it was recorded from: every cassette of
tests/test_library.py without a `note` in its metadata is recorded again from a fresh aimock,
into a scratch folder, by running that file's tests in record mode ``rewrite``; their
snapshot assertions then check that the new recordings give the committed events and
request bodies."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from live_support import LiveServer, assert_no_secrets

from llmx_replay.cassette import load_cassette

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "cassettes" / "test_library"


def recorded_from_aimock() -> list[str]:
    """The library's tests whose cassette was recorded from aimock, not written by hand or
    recorded through another server (those say so in their metadata's note)."""
    names = []
    for path in sorted(LIBRARY.glob("*.yaml")):
        metadata = load_cassette(path).metadata
        if metadata is not None and metadata.note is None:
            names.append(path.stem)
    return names


def test_most_of_the_library_is_recorded_from_aimock() -> None:
    recorded = recorded_from_aimock()
    assert len(recorded) >= 10
    assert "test_reasoning_field" not in recorded  # written by hand: see its note


def test_library_recorded_again_from_aimock_gives_the_same_snapshots(
    aimock: LiveServer, tmp_path: Path
) -> None:
    tests = [f"tests/test_library.py::{name}" for name in recorded_from_aimock()]
    env = {
        **os.environ,
        "LLMX_REPLAY_LIBRARY_URL": aimock.base_url,
        "LLMX_REPLAY_LIBRARY_KEY": aimock.api_key,
    }
    env.pop("CI", None)
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", *tests),
            *("--llmx-record-mode", "rewrite", "--llmx-cassette-dir", str(tmp_path)),
            *("-p", "no:cacheprovider", "-p", "no:randomly", "--snapshot-warn-unused"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{len(tests)} passed" in run.stdout
    for name in recorded_from_aimock():
        cassette = assert_no_secrets(tmp_path / "test_library" / f"{name}.yaml", aimock)
        assert cassette.metadata is not None
        assert cassette.metadata.base_url == aimock.base_url
