"""`llmx-replay record`: a conversation sent to a live provider, and recorded.

The real client sends it through the recorder, and each response and each retry is reported
as it happens.
"""

import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import click
import httpx

from llmx_replay._client import ChatClient
from llmx_replay._clock import Clock, SystemClock
from llmx_replay._exceptions import UnsupportedOperation
from llmx_replay.cassette import Scrubber, load_cassette
from llmx_replay.cli._app import CommandError, cli, max_tokens_options, max_tokens_setting
from llmx_replay.cli._conversation import load_prompt
from llmx_replay.cli._render import TextRenderer
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.models.request import ChatRequest
from llmx_replay.stream._request import build_request
from llmx_replay.transports import CassetteTransport, RecordingTransport

RECORDED_A_FAILURE = 1
"""The exit status of a recording whose last response is an HTTP error (errors exit with 2)."""


class SessionReport(Protocol):
    """Where a live session tells what the event stream does not.

    It is told of each response that arrived (a retried failure yields no event) and of each
    wait before a retry.
    """

    def interaction(self, index: int, method: str, uri: str, status: int) -> None: ...

    def retry(self, seconds: float, after: str) -> None: ...


class _ReportedResponses(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, session: "LiveSession") -> None:
        self._inner = inner
        self._session = session

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._inner.handle_request(request)
        except httpx.HTTPError as error:
            self._session.failed(error)
            raise
        self._session.responded(request, response)
        return response

    def close(self) -> None:
        self._inner.close()


class _ReportedRetries:
    """A clock that reports each sleep to the session before sleeping.

    The client sleeps only before a retry, so a live server is never retried silently.
    """

    def __init__(self, inner: Clock, session: "LiveSession") -> None:
        self._inner = inner
        self._session = session

    def now(self) -> datetime:
        return self._inner.now()

    def sleep(self, seconds: float) -> None:
        self._session.retrying(seconds)
        self._inner.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self._session.retrying(seconds)
        await self._inner.asleep(seconds)


class LiveSession:
    """One turn sent to a live provider and recorded into `cassette`.

    Every response (each retry's too) is one interaction: added to the cassette (`append`),
    or replacing it once the first response ends, so that a request that gets no response
    leaves it untouched.

    `first_index` is the number of interactions the cassette already holds; `inner` is the
    network (httpx's own transport by default).
    """

    def __init__(
        self,
        cassette: Path,
        *,
        append: bool,
        first_index: int,
        report: SessionReport,
        inner: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.cassette = cassette
        self.statuses: list[int] = []
        self._append = append
        self._first_index = first_index
        self._report = report
        self._inner = inner
        self._clock = clock or SystemClock()
        self._scrubber = Scrubber()
        self._last_failure = ""

    def responded(self, request: httpx.Request, response: httpx.Response) -> None:
        uri = self._scrubber.url(str(request.url))  # as the cassette will hold it
        index = self._first_index + len(self.statuses)
        self.statuses.append(response.status_code)
        self._last_failure = f"status {response.status_code}"
        self._report.interaction(index, request.method, uri, response.status_code)

    def failed(self, error: httpx.HTTPError) -> None:
        self._last_failure = f"{type(error).__name__}: {error}"

    def retrying(self, seconds: float) -> None:
        self._report.retry(seconds, self._last_failure)

    def stream(
        self, provider: ProviderSettings, model: str, request: ChatRequest
    ) -> Iterator[ResponseEvent]:
        """Send `request` with the client's retries and yield the turn's events."""
        recording: httpx.BaseTransport = (
            RecordingTransport(self.cassette, self._inner)
            if self._append
            else CassetteTransport(self.cassette, record_mode="rewrite", inner=self._inner)
        )
        with ChatClient(
            provider,
            model,
            transport=_ReportedResponses(recording, self),
            clock=_ReportedRetries(self._clock, self),
        ) as client:
            yield from client.stream_request(request)


def _http_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parsed = httpx.URL(value)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise click.BadParameter(f"expected an http:// or https:// URL, got {value!r}")
    return value


def _set_variable(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not os.environ.get(value, "").strip():
        raise click.BadParameter(f"the environment variable {value} is not set or blank")
    return value


@cli.command()
@click.argument("conversation", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--base-url",
    required=True,
    callback=_http_url,
    help="The provider's base URL (http or https).",
)
@click.option("--model", required=True, help="The model name sent in the body.")
@click.option(
    "--api-key-env",
    metavar="VAR",
    default=None,
    callback=_set_variable,
    help="The environment variable holding the API key, sent as a bearer token.",
)
@max_tokens_options
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=None,
    help="Retries after a failed attempt (default: the provider's 4); each retry waits "
    "as the server's Retry-After asks, else backs off.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The cassette to write.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing cassette.")
@click.option("--append", is_flag=True, help="Add to an existing cassette.")
def record(
    conversation: Path,
    base_url: str,
    model: str,
    api_key_env: str | None,
    max_tokens: int | None,
    no_max_tokens: bool,
    max_retries: int | None,
    output: Path,
    overwrite: bool,
    append: bool,
) -> None:
    """Send CONVERSATION.json to a live provider and record the session into a cassette.

    The session is shown as it streams. Every response is recorded, a retried failure too, so
    the cassette replays as the session went. Nothing is written when no response arrives.
    What was written is said last, on standard error; the exit status is 1 when the last
    response is an HTTP error (it is recorded all the same).
    """
    settings = max_tokens_setting(max_tokens, no_max_tokens)
    if overwrite and append:
        raise click.UsageError("--overwrite and --append exclude each other")
    first_index = 0
    if output.exists():
        if append:
            first_index = len(load_cassette(output).interactions)
        elif not overwrite:
            raise CommandError(
                f"{output}: already exists; pass --overwrite to replace it or --append to add to it"
            )
    provider = ProviderSettings(
        name="record",
        base_url=base_url,
        env_key=api_key_env,
        request_max_retries=max_retries,
        **settings,
    )
    prompt = load_prompt(conversation)
    try:
        request = build_request(prompt, model, provider, environ=os.environ)
    except UnsupportedOperation as error:
        raise CommandError(f"{conversation}: output_schema: {error}") from None
    renderer = TextRenderer(sys.stdout)
    session = LiveSession(output, append=append, first_index=first_index, report=renderer)
    for event in session.stream(provider, model, request):
        renderer.render(event)
    if not session.statuses:
        where = Scrubber().url(request.url)  # no password of the URL on the terminal
        raise CommandError(f"{output}: not written: no response came from {where}")
    _summarize(output, session.statuses, appended=append)


def _summarize(output: Path, statuses: list[int], *, appended: bool) -> None:
    """Say on standard error what was written; exit 1 when the provider's last answer failed."""
    count = f"{len(statuses)} interaction{'s' if len(statuses) > 1 else ''}"
    written = f"{output}: {'added' if appended else 'recorded'} {count} (HTTP "
    written += f"{', '.join(str(status) for status in statuses)})"
    if statuses[-1] < 400:
        click.echo(f"llmx-replay: {written}", err=True)
        return
    click.echo(
        f"llmx-replay: {written}; the provider's last answer is an error, and the cassette "
        "replays it: check the conversation, the model and the key, then record again",
        err=True,
    )
    sys.exit(RECORDED_A_FAILURE)
