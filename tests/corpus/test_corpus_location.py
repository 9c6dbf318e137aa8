"""The corpus tests need the corpus: without it `test_corpus.py` and `test_peers.py` are left
out, and this says why in the test summary. `.ci/run` sets the corpus and checks that it is
there, so CI never runs without it."""

import pytest


def test_the_corpus_is_given(corpus_missing: str | None) -> None:
    if corpus_missing is not None:
        pytest.skip(corpus_missing)
