"""Cassettes: recorded HTTP interactions, and reading the files other tools write."""

from llmx_replay.cassette._load import load_cassette, looks_like_sse, parse_cassette
from llmx_replay.cassette._model import Cassette, Interaction, RecordedRequest, RecordedResponse

__all__ = [
    "Cassette",
    "Interaction",
    "RecordedRequest",
    "RecordedResponse",
    "load_cassette",
    "looks_like_sse",
    "parse_cassette",
]
