"""What the pytest plugin's outer tests share, importable as ``plugin_support`` (pytest puts
this folder on ``sys.path``; a conftest is no module to import at run time).

The upstreams of the inner projects answer the last user message ``X`` with ``X <version>``
and log each request that reaches them to ``upstream.log``: `record_cassette` writes a
cassette the same way without a pytest run, `exchanges` reads one back as text, and
`upstream_calls` and `failures` read what the last inner run did.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmx_replay import CassetteOptions, CassetteSession
from llmx_replay.cassette import load_cassette
from llmx_replay.harness import Playback, play_cassette
from llmx_replay.models.events import ErrorEvent, OutputTextDelta, ResponseEvent
from llmx_replay.models.prompt import Prompt, ProviderSettings
from llmx_replay.transports import RecordMode

BASE_URL = "http://llm.test/v1"
MODEL = "gpt-test"
PROVIDER = ProviderSettings(base_url=BASE_URL)


def prompt(text: str = "hi") -> Prompt:
    """A conversation of one user message."""
    return Prompt.model_validate(
        {
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            ]
        }
    )


def sse(text: str) -> bytes:
    """A Chat Completions stream answering `text`, as the inner upstream sends it."""
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    body = b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks)
    return body + b"data: [DONE]\n\n"


def text_of(events: Sequence[ResponseEvent]) -> str:
    """The text of a turn's events, an error event as ``<error KIND>``."""
    parts = []
    for event in events:
        if isinstance(event, OutputTextDelta):
            parts.append(event.delta)
        elif isinstance(event, ErrorEvent):
            parts.append(f"<error {event.kind}>")
    return "".join(parts)


def record_cassette(
    path: Path,
    *texts: str,
    version: str = "v1",
    provider: ProviderSettings = PROVIDER,
    model: str = MODEL,
) -> Path:
    """A cassette at `path` holding one turn per text, answered ``<text> <version>``."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["messages"][-1]["content"]
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse(f"{asked} {version}")
        )

    options = CassetteOptions(upstream=httpx.MockTransport(answer), provider=provider, model=model)
    with CassetteSession(path, options, RecordMode.REWRITE) as session:
        client = session.client()
        for text in texts:
            assert text_of(list(client.stream(prompt(text)))) == f"{text} {version}"
    return path


def exchanges(
    path: Path, *, complete: bool = False, replayed: bool = False
) -> list[tuple[str, str]]:
    """The (asked, answered) text of each interaction of the cassette at `path`, in order.

    The answer is read from the recorded stream, or with `replayed` from the events the
    interaction replays as; with `complete`, every recording must have run to its end.
    """
    pairs = []
    cassette = load_cassette(path)
    for interaction in cassette.interactions:
        assert interaction.request.body is not None
        if complete:
            assert interaction.response.partial is None
        asked = json.loads(interaction.request.body)["messages"][-1]["content"]
        if replayed:
            alone = cassette.model_copy(update={"interactions": [interaction]})
            answered = text_of(list(play_cassette(alone, Playback())))
        else:
            answered = "".join(
                json.loads(line.removeprefix("data: "))["choices"][0]["delta"].get("content", "")
                for line in interaction.response.body.decode().splitlines()
                if line.startswith("data: {")
            )
        pairs.append((asked, answered))
    return pairs


def upstream_calls(root: Path) -> list[str]:
    """Each line the upstream of the project at `root` logged: one per request it got."""
    log = root / "upstream.log"
    return log.read_text().splitlines() if log.exists() else []


def failures(result: pytest.RunResult) -> set[str]:
    """The names of the inner tests listed as failed in the short summary."""
    return {
        line.split()[1].split("::")[1] for line in result.outlines if line.startswith("FAILED ")
    }


def not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the outer tests run under xdist themselves, the inner run must not act as a
    worker (syrupy, for one, tells a worker by these variables)."""
    for variable in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(variable, raising=False)
