"""Cassettes: recorded HTTP interactions.

They are read from the files many tools write, and written in llmx-replay's
vcrpy-compatible YAML.
"""

from llmx_replay.cassette._load import (
    FORMAT,
    SSE_FORMAT,
    load_cassette,
    load_recording,
    looks_like_sse,
    parse_cassette,
)
from llmx_replay.cassette._match import BodyCanonicalizer, InteractionIndex, RequestKey
from llmx_replay.cassette._model import (
    Cassette,
    CassetteMetadata,
    Interaction,
    RecordedRequest,
    RecordedResponse,
)
from llmx_replay.cassette._save import dumps, save_cassette, write_atomically
from llmx_replay.cassette._scrub import REDACTED, Scrubber, find_secrets
from llmx_replay.cassette._writer import CassetteWriter

__all__ = [
    "FORMAT",
    "REDACTED",
    "SSE_FORMAT",
    "BodyCanonicalizer",
    "Cassette",
    "CassetteMetadata",
    "CassetteWriter",
    "Interaction",
    "InteractionIndex",
    "RecordedRequest",
    "RecordedResponse",
    "RequestKey",
    "Scrubber",
    "dumps",
    "find_secrets",
    "load_cassette",
    "load_recording",
    "looks_like_sse",
    "parse_cassette",
    "save_cassette",
    "write_atomically",
]
