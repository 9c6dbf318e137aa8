"""Shared fixtures of the pytest plugin's tests, which run pytest on generated test files
(the helpers a test module imports are in ``plugin_support``).

The `llmx_project` fixture lays out a pytester folder whose ``conftest.py`` gives every
inner test an `llmx_config` with an `httpx.MockTransport` upstream: recording never touches
the network, and each request that reaches the upstream is logged to ``upstream.log``. The
upstream answers the last user message ``X`` with the text ``X <version>``, the version
being the ``LLMX_TEST_VERSION`` variable (``v1`` by default), so that an outer test can tell
a replayed answer (an older version) from a live one. The inner conftest also gives the
fixture ``ask``: ``ask("a", "b")`` streams each prompt through ``llmx_cassette.client()`` and
returns each turn's text (an error event as ``<error KIND>``). An inner test module at the
folder's root may ``from conftest import PROVIDER, prompt, text_of`` (pytest imports each
conftest as ``conftest``, so a module under a folder with its own conftest must not).
`LlmxProject.extend_conftest` appends to the inner conftest, which may redefine its fixtures.

The fixture runs with the CI variable unset, so that the default record mode is ``once``
whatever the environment: a test that needs CI sets it. `LlmxProject.record` writes an
llmx-replay cassette the way the plugin records one, without a pytest run. Test modules
import `LlmxProject` only for type checking: ``conftest`` is not a name to import at run time.
"""

import textwrap
from pathlib import Path

# Imported here, before any inner run: pytester's in-process runs drop the modules they
# imported, and httpx maps httpcore's errors by the classes of the httpcore it saw first; a
# second httpcore would raise errors httpx no longer recognises.
import httpcore  # noqa: F401
import pytest
from plugin_support import MODEL, PROVIDER, exchanges, record_cassette, upstream_calls

from llmx_replay.cassette import Cassette, load_cassette
from llmx_replay.models.prompt import ProviderSettings

INNER_CONFTEST = '''
"""llmx-replay's plugin under test, with an upstream that never touches the network."""

import json
import os
from pathlib import Path

import httpx
import pytest

from llmx_replay.models.events import ErrorEvent, OutputTextDelta
from llmx_replay.models.prompt import Prompt, ProviderSettings

HERE = Path(__file__).parent
BASE_URL = "http://llm.test/v1"
MODEL = "gpt-test"
PROVIDER = ProviderSettings(base_url=BASE_URL)


def prompt(text: str = "hi") -> Prompt:
    return Prompt.model_validate(
        {"input": [{"type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": text}]}]}
    )


def sse(text: str) -> bytes:
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    return b"".join(f"data: {json.dumps(c)}\\n\\n".encode() for c in chunks) + b"data: [DONE]\\n\\n"


def answer(request: httpx.Request) -> httpx.Response:
    try:
        asked = json.loads(request.content)["messages"][-1]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        asked = request.content.decode()
    with (HERE / "upstream.log").open("a") as log:
        log.write(f"{asked}\\n")
    version = os.environ.get("LLMX_TEST_VERSION", "v1")
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=sse(f"{asked} {version}")
    )


UPSTREAM = httpx.MockTransport(answer)


def text_of(events) -> str:
    parts = []
    for event in events:
        if isinstance(event, OutputTextDelta):
            parts.append(event.delta)
        elif isinstance(event, ErrorEvent):
            parts.append(f"<error {event.kind}>")
    return "".join(parts)


@pytest.fixture
def llmx_config():
    return {"upstream": UPSTREAM, "provider": PROVIDER, "model": MODEL}


@pytest.fixture
def ask(llmx_cassette):
    def ask(*texts: str) -> list[str]:
        client = llmx_cassette.client()
        return [text_of(client.stream(prompt(text))) for text in texts]

    return ask
'''


class LlmxProject:
    """A pytester folder set up for llmx-replay (see the module's docstring)."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        pytester.makeconftest(INNER_CONFTEST)
        # pytest-asyncio warns on every run without it.
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")

    def extend_conftest(self, source: str) -> None:
        """Append `source` to the inner conftest: a fixture it defines again replaces the
        first definition."""
        self.pytester.makeconftest(INNER_CONFTEST + textwrap.dedent(source))

    @property
    def cassettes(self) -> Path:
        """The default cassette folder, ``<rootdir>/cassettes``."""
        return self.path / "cassettes"

    def write(self, source: str, name: str = "test_it") -> Path:
        """A test module called `name` (a path without ``.py``) holding `source`."""
        path = self.path / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def run(self, *args: str) -> pytest.RunResult:
        """Run pytest in-process on the folder, with the upstream log emptied first."""
        (self.path / "upstream.log").unlink(missing_ok=True)
        return self.pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)

    def upstream_calls(self) -> list[str]:
        """The user message of each request that reached the upstream in the last run."""
        return upstream_calls(self.path)

    def where(self, cassette: str | Path) -> Path:
        """A cassette's path: a `Path` as it is, a name under the default cassette folder."""
        return cassette if isinstance(cassette, Path) else self.cassettes / cassette

    def cassette(self, cassette: str | Path) -> Cassette:
        """The cassette at `cassette` (see `where`), loaded."""
        return load_cassette(self.where(cassette))

    def exchanges(self, cassette: str | Path, *, complete: bool = False) -> list[tuple[str, str]]:
        """The (asked, answered) text of each interaction of `cassette` (see `where`); with
        `complete`, every recording must have run to its end."""
        return exchanges(self.where(cassette), complete=complete)

    def record(
        self,
        cassette: str | Path,
        *texts: str,
        version: str = "v1",
        provider: ProviderSettings = PROVIDER,
        model: str = MODEL,
    ) -> Path:
        """A cassette at `cassette` (see `where`) holding one turn per text, answered
        ``<text> <version>``."""
        return record_cassette(
            self.where(cassette), *texts, version=version, provider=provider, model=model
        )


@pytest.fixture
def llmx_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> LlmxProject:
    """A pytester folder set up for llmx-replay, run with the CI variable unset (so the
    default record mode is ``once``) and the upstream at version ``v1``."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("LLMX_TEST_VERSION", "v1")
    return LlmxProject(pytester)
