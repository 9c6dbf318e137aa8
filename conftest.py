"""Shared test configuration: hypothesis profiles and the bundled cassettes' location."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs on a shared, noisy machine: no per-example deadline, and a fixed seed so that a
# failure there can be replayed here.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# The pytest plugin is tested by running pytest on generated test files.
pytest_plugins = ["pytester"]

CASSETTES = Path(__file__).parent / "cassettes"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--llmx-corpus",
        dest="llmx_corpus",
        metavar="PATH",
        default=None,
        help="folder of real recorded cassettes played by tests/corpus "
        "(default: the LLMX_REPLAY_CORPUS environment variable)",
    )


@pytest.fixture
def cassettes_dir() -> Path:
    """The folder of cassettes bundled with the project."""
    return CASSETTES
