"""`llmx-replay serve`: cassettes served over HTTP, to clients in any language.

`CassetteServer` runs llmx-replay's ASGI application (`_app`) on uvicorn (`_server`),
answering each request from the cassette a request picks (`_cassettes`).
"""

from llmx_replay.serve._app import NO_RECORDING_STATUS
from llmx_replay.serve._cassettes import CASSETTE_HEADER
from llmx_replay.serve._server import RECORDING_GRACE_SECONDS, CassetteServer

__all__ = ["CASSETTE_HEADER", "NO_RECORDING_STATUS", "RECORDING_GRACE_SECONDS", "CassetteServer"]
