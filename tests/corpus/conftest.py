"""Where the corpus of real recorded cassettes is, and which cassettes it holds.

The corpus lives outside the repository. Its folder comes from the command-line option
``--llmx-corpus PATH`` or, when that is not given, the environment variable
``LLMX_REPLAY_CORPUS``. Without either (or with a folder that holds no cassette) the corpus
tests are left out and `test_corpus_location.py` is skipped, saying what to do, so that the
README's test command passes on a machine without the corpus; `.ci/run` sets it and checks
that it is there. Leaving the corpus tests out, rather than skipping each of them, also
keeps ``--snapshot-update`` from deleting their snapshots as unused.

pytest only takes ``pytest_addoption`` from plugins and from the conftest files it loads
before parsing the command line (the root one, and those of folders named as arguments), so
the option is registered in the root ``conftest.py``: one here would not be seen by
``pytest --llmx-corpus PATH`` run from the root ("unrecognized arguments"), and would clash
with the root's. Reading the option with a default works whether or not it is registered.

Every file under the folder is a cassette, except hidden ones and the corpus's own notes and
tools (``*.md``, ``*.py``), so a cassette added to the corpus is covered without a change here.
"""

import os
from pathlib import Path

import pytest

ENV_VAR = "LLMX_REPLAY_CORPUS"
NOT_CASSETTES = frozenset({".md", ".py"})


def corpus_root(config: pytest.Config) -> Path | None:
    """The corpus folder given on the command line, else in the environment, if any."""
    value = config.getoption("llmx_corpus", default=None) or os.environ.get(ENV_VAR)
    return Path(value) if value else None


def cassette_names(root: Path) -> list[str]:
    """The cassettes under `root`, as sorted POSIX paths relative to it."""
    names = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or path.suffix.lower() in NOT_CASSETTES:
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        names.append(relative.as_posix())
    return sorted(names)


def corpus_problem(config: pytest.Config) -> str | None:
    """Why the corpus cannot be played, or None when it can."""
    root = corpus_root(config)
    if root is None:
        return (
            "no corpus of real cassettes: pass --llmx-corpus PATH or set "
            f"{ENV_VAR}=PATH (.ci/run sets it; the corpus is ../shared/corpus)"
        )
    if not root.is_dir():
        return f"the cassette corpus {root} is not a folder"
    if not cassette_names(root):
        return f"the cassette corpus {root} holds no cassettes"
    return None


CORPUS_TESTS = frozenset({"test_corpus.py", "test_peers.py"})


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without a corpus, the corpus tests are not collected (see the module docstring)."""
    if collection_path.name in CORPUS_TESTS and corpus_problem(config) is not None:
        return True
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `cassette_name` runs once per cassette of the corpus."""
    if "cassette_name" in metafunc.fixturenames:
        root = corpus_root(metafunc.config)
        assert root is not None
        names = cassette_names(root)
        ids = [name.replace("/", "--") for name in names]
        metafunc.parametrize("cassette_name", names, ids=ids)


@pytest.fixture(scope="session")
def corpus_missing(pytestconfig: pytest.Config) -> str | None:
    """Why the corpus cannot be played (what to do), or None when it can."""
    return corpus_problem(pytestconfig)


@pytest.fixture(scope="session")
def corpus_dir(pytestconfig: pytest.Config) -> Path:
    """The corpus folder; a test that uses it fails with what to do when there is none."""
    problem = corpus_problem(pytestconfig)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    root = corpus_root(pytestconfig)
    assert root is not None
    return root
