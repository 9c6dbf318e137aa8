"""A test's cassette: clients wired to it, the requests they sent, and its replayed events.

This is what the pytest fixture `llmx_cassette` hands to a test; it needs no pytest, so a
unittest case or a script can use it the same way.
"""

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from llmx_replay._client import AsyncChatClient, ChatClient
from llmx_replay._clock import Clock, SystemClock, VirtualClock
from llmx_replay._exceptions import (
    InputError,
    NoMatchingInteraction,
    OptionError,
    field_path,
)
from llmx_replay._options import Faults, Pacing, RecordMode, ReplayOptions
from llmx_replay.cassette._load import load_cassette
from llmx_replay.cassette._model import RecordedRequest, RecordedResponse
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.cassette._writer import RunLedger
from llmx_replay.harness._network import NetworkBlock
from llmx_replay.harness._playback import (
    Playback,
    play_cassette,
    require_chat_completions,
    turns,
)
from llmx_replay.models.events import ResponseEvent
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.stream._pipeline import StreamMode
from llmx_replay.stream._request import OrphanCallPolicy
from llmx_replay.transports._cassette import CassetteTransport
from llmx_replay.transports._intercept import intercepting

# Replays never send the key, but building a request asks for it.
_REPLAY_KEY = "llmx-replay-no-key-needed"


class CassetteOptions(BaseModel):
    """How a test uses its cassette.

    These are the `llmx_cassette` marker's keywords, and the keys of the `llmx_config`
    fixture that gives their defaults.

    * `name`: the cassette's path under the cassette folder (``.yaml`` added when it has no
      cassette suffix); by default ``<test module>/<test name>``.
    * `record_mode`: see `RecordMode`; the ``--llmx-record-mode`` option overrides it.
    * `pacing`, `speed`, `faults`, `match_ignore`: how replayed responses are served and
      what matching leaves out (the `ReplayOptions` `replay`, built from them).
    * `allow_unplayed`: do not fail a test that leaves recorded interactions unplayed.
    * `provider`, `model`: what the fixture's clients talk to; when replaying, by default
      the cassette's recorded base URL and model.
    * `scrubber`: what is scrubbed from recordings (see `Scrubber`).
    * `scrub_body`: paths in JSON request bodies whose values are redacted
      (``messages[*].content``); `before_record_request`, `before_record_response`:
      vcrpy's hooks (see `Scrubber`). They add to `scrubber`'s, and matching compares
      requests as the cassette keeps them.
    * `upstream`: the transport recordings of the fixture's own clients go through (default:
      the network).
    * `server_upstream`: the origin (``http://127.0.0.1:4000``) the `llmx_server` fixture
      sends requests it has no recording for to, recording them; without it, the server
      only replays.
    * `intercept`: while the cassette is in use, every httpx and httpx2 client of the process
      goes through it, those the code under test builds itself (the default); False leaves
      them alone, and only the fixture's clients and `transport` use the cassette.
    * `block_network`: close the network while the cassette is in use, so that a connection
      beyond loopback and `allowed_hosts` fails at once, whatever opened it; by default
      (None) closed when the cassette only replays (record mode ``none``).
    * `allowed_hosts`: hosts (names or addresses) a closed network still lets through.
    * `max_age`: how old a cassette may be, from the ``recorded_at`` of its metadata
      (``timedelta(days=30)``, ``"P30D"``, or seconds): in record mode ``once`` an older one
      is recorded anew, in ``none`` the test fails saying how old it is.

    A bad value raises `OptionError` naming the keyword.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str | None = None
    record_mode: RecordMode | None = None
    pacing: Pacing = "instant"
    speed: float = 1.0
    faults: Faults | None = None
    match_ignore: tuple[str, ...] = ()
    allow_unplayed: bool = False
    provider: ProviderSettings | None = None
    model: str | None = None
    scrubber: Scrubber | None = None
    scrub_body: tuple[str, ...] = ()
    before_record_request: Callable[[RecordedRequest], RecordedRequest | None] | None = None
    before_record_response: Callable[[RecordedResponse], RecordedResponse | None] | None = None
    upstream: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    server_upstream: str | None = None
    intercept: bool = True
    block_network: bool | None = None
    allowed_hosts: tuple[str, ...] = ()
    max_age: timedelta | None = None

    if not TYPE_CHECKING:
        # At run time a bad option is an `OptionError`; type checkers keep pydantic's own
        # signatures, and so the keywords' names and types.

        def __init__(self, **options: Any) -> None:
            """Check the options; a bad one raises `OptionError` naming it."""
            try:
                super().__init__(**options)
            except ValidationError as error:
                raise _option_error(error) from None

        @classmethod
        def model_validate(cls, obj: Any, **settings: Any) -> Self:
            """Check the options in `obj`; a bad one raises `OptionError` naming it."""
            try:
                return super().model_validate(obj, **settings)
            except ValidationError as error:
                raise _option_error(error) from None

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.replay  # noqa: B018  (built to be checked)
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise OptionError("max_age", f"must be a positive duration, not {self.max_age}")
        return self

    @property
    def scrubbing(self) -> Scrubber:
        """`scrubber` (or the default one) with `scrub_body` and the hooks added."""
        scrubber = self.scrubber or Scrubber()
        if not (self.scrub_body or self.before_record_request or self.before_record_response):
            return scrubber
        return dataclasses.replace(
            scrubber,
            body_fields=(*scrubber.body_fields, *self.scrub_body),
            before_record_request=self.before_record_request or scrubber.before_record_request,
            before_record_response=self.before_record_response or scrubber.before_record_response,
        )

    @property
    def replay(self) -> ReplayOptions:
        """How replayed responses are served (on the real clock), from the replay keywords."""
        return ReplayOptions(
            pacing=self.pacing,
            speed=self.speed,
            faults=self.faults or Faults(),
            ignore=self.match_ignore,
        )


# The keyword of `CassetteOptions` that gives a `ReplayOptions` field under another name.
_KEYWORDS = {"ignore": "match_ignore"}


def _problem(problem: Any) -> OptionError:
    """One problem pydantic found, as an `OptionError`.

    It names the keyword (and the field in it, for `faults` given as a mapping), and so
    the options its problem mentions.
    """
    location = field_path(problem["loc"])
    cause = problem.get("ctx", {}).get("error")
    if not isinstance(cause, OptionError):
        return OptionError(location or "options", problem["msg"])

    def named(option: str) -> str:
        name = _KEYWORDS.get(option, option)
        return f"{location}.{name}" if location else name

    return OptionError(named(cause.option), cause.template, [named(m) for m in cause.mentions])


def _literal(text: str) -> str:
    """`text` as a template that formats to itself."""
    return text.replace("{", "{{").replace("}", "}}")


def _option_error(error: ValidationError) -> OptionError:
    """Every problem pydantic found, as one `OptionError` naming the first option.

    The other problems follow in its message, each after its own option.
    """
    first, *others = (_problem(problem) for problem in error.errors(include_url=False))
    if not others:
        return first
    templates = [first.template if first.mentions else _literal(first.template)]
    for other in others:
        template = other.template if other.mentions else _literal(other.template)
        templates.append(f"{_literal(other.option)}: {template}")
    mentions = [mention for found in (first, *others) for mention in found.mentions]
    return OptionError(first.option, "; ".join(templates), mentions)


def _json_or_text(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


class CassetteSession:
    """One test's cassette, replayed or recorded according to `record_mode`.

    `client()` and `async_client()` give clients wired to it, `transport` serves any other
    httpx client, `requests` holds what was sent, and `play()` replays the whole cassette
    through the processor (and the aggregator). A session that only replays runs on a
    `VirtualClock`, so recorded retry waits and pacing take no time. `run_ledger` keeps
    what the run started anew, so that in mode ``rewrite`` sessions sharing a cassette start
    it anew only once.
    """

    def __init__(
        self,
        path: Path,
        options: CassetteOptions,
        record_mode: RecordMode | str | None = None,
        *,
        run_ledger: RunLedger | None = None,
    ) -> None:
        self.path = path
        self.options = options
        self.transport = CassetteTransport(
            path,
            record_mode,
            dataclasses.replace(options.replay, clock=VirtualClock()),
            inner=options.upstream,
            scrubber=options.scrubbing,
            run_ledger=run_ledger,
            max_age=options.max_age,
        )
        self.transport.require_yaml("name")
        # Recorded waits between chunks are replayed on virtual time; retry waits are real
        # only when a request may reach the provider.
        self.clock: Clock = SystemClock() if self.transport.records else VirtualClock()
        self._clients: list[ChatClient] = []
        self._played = False
        self._network_blocks: list[NetworkBlock] = []

    @property
    def record_mode(self) -> RecordMode:
        return self.transport.record_mode

    @property
    def requests(self) -> list[httpx.Request]:
        """Every request sent through the cassette, in order."""
        return self.transport.requests

    def request_bodies(self) -> list[Any]:
        """The JSON bodies of `requests` (a body that is not JSON, as text)."""
        return [_json_or_text(request.content) for request in self.requests]

    def request_body(self, index: int = -1) -> Any:
        """The JSON body of one request, the last by default.

        Snapshot it to see the messages built from the history.
        """
        if not self.requests:
            raise LookupError(f"{self.path}: no request was sent through the cassette")
        return _json_or_text(self.requests[index].content)

    def _target(
        self, provider: ProviderSettings | None, model: str | None
    ) -> tuple[ProviderSettings, str]:
        """The provider and model a client talks to: given, configured, else recorded."""
        metadata = self.transport.player.cassette.metadata
        provider = provider or self.options.provider
        if provider is None and metadata is not None and metadata.base_url:
            provider = ProviderSettings(name="replay", base_url=metadata.base_url)
        model = model or self.options.model or (metadata.model if metadata else None)
        if provider is None:
            raise self._unknown("provider", "base_url")
        if not model:
            raise self._unknown("model", "model")
        return provider, model

    def _unknown(self, field: str, recorded: str) -> InputError:
        return InputError(
            str(self.path),
            f"no {field} given: pass {field}=, set it in the llmx_config fixture, or replay a "
            f"cassette whose metadata has a {recorded}",
            field,
        )

    def _environ(self, provider: ProviderSettings) -> Mapping[str, str]:
        key = provider.env_key
        if key and not self.transport.records and not os.environ.get(key, "").strip():
            return {**os.environ, key: _REPLAY_KEY}
        return os.environ

    def client(
        self,
        provider: ProviderSettings | None = None,
        model: str | None = None,
        *,
        mode: StreamMode = "streaming",
        orphan_calls: OrphanCallPolicy = "abort",
    ) -> ChatClient:
        """A `ChatClient` whose requests go through the cassette; closed with the session."""
        chosen, model = self._target(provider, model)
        client = ChatClient(
            chosen,
            model,
            transport=self.transport,
            mode=mode,
            clock=self.clock,
            environ=self._environ(chosen),
            orphan_calls=orphan_calls,
        )
        self._clients.append(client)
        return client

    def async_client(
        self,
        provider: ProviderSettings | None = None,
        model: str | None = None,
        *,
        mode: StreamMode = "streaming",
        orphan_calls: OrphanCallPolicy = "abort",
    ) -> AsyncChatClient:
        """An `AsyncChatClient` whose requests go through the cassette.

        Close it with ``async with``.
        """
        chosen, model = self._target(provider, model)
        return AsyncChatClient(
            chosen,
            model,
            transport=self.transport,
            mode=mode,
            clock=self.clock,
            environ=self._environ(chosen),
            orphan_calls=orphan_calls,
        )

    def play(self, mode: StreamMode = "streaming") -> list[ResponseEvent]:
        """The events of every turn the cassette holds, with the session's pacing and faults.

        The cassette is played as it is on disk now, so with what this test recorded.

        A request answered with 429 or 5xx and then sent again is one turn, retried as
        recorded. Playing counts every recorded interaction as played.

        A cassette whose Chat Completions responses are another API's (or that holds only
        another API's interactions) raises `UnsupportedWireFormat`, rather than playing
        what it would misread.
        """
        if not self.path.exists():
            raise InputError(str(self.path), "no cassette to play: the file does not exist")
        cassette = load_cassette(self.path)
        require_chat_completions(cassette, str(self.path))
        if not turns(cassette):
            raise InputError(
                str(self.path), "holds no Chat Completions interaction to play", "interactions"
            )
        playback = Playback(mode, dataclasses.replace(self.options.replay, clock=VirtualClock()))
        events = list(play_cassette(cassette, playback))
        self._played = True
        return events

    @property
    def misses(self) -> list[NoMatchingInteraction]:
        """The requests the cassette could not answer, each with the closest recording."""
        return self.transport.misses

    def _unplayed(self) -> list[int]:
        """The recordings never played, when that fails the test."""
        return [] if self._played or self.options.allow_unplayed else self.transport.unplayed

    @property
    def stale(self) -> bool:
        """Whether the cassette no longer fits the test: a request had no recording."""
        return bool(self.misses)

    def outcome(self) -> str | None:
        """What the session did with its cassette, for the run's summary.

        ``recorded`` (interactions added), ``renewed`` (recorded anew, in record mode
        ``rewrite`` or ``all``), ``expired`` (recorded anew for being older than
        `options.max_age`), ``replayed``; None when it neither recorded nor replayed.
        """
        return self.transport.outcome(played=self._played)

    def problems(self) -> list[str]:
        """What makes the test that used this session fail.

        It fails for requests without a recording, for connections the closed network
        refused, and for recorded interactions that were never played.
        """
        found = [str(miss) for miss in self.misses]
        found += [
            f"{self.path}: {problem}"
            for problem in (block.problem() for block in self._network_blocks)
            if problem
        ]
        unplayed = self.transport.unplayed_problem() if self._unplayed() else None
        if unplayed:
            found.append(unplayed)
        return found

    @contextmanager
    def intercepting(self) -> Iterator[Self]:
        """Route every httpx and httpx2 client of the process through the cassette meanwhile.

        Unless `options.intercept` is False: then nothing is routed. See
        `llmx_replay.use_cassette`.
        """
        if not self.options.intercept:
            yield self
            return
        with intercepting(self.transport):
            yield self

    @contextmanager
    def closed_network(
        self, label: str, allowed_hosts: tuple[str, ...] = ()
    ) -> Iterator[NetworkBlock | None]:
        """Close the network meanwhile, as `options.block_network` says (see `CassetteOptions`).

        `label` names what closed it in each refusal; `allowed_hosts` adds to the option's.
        """
        closed = self.options.block_network
        if closed is False or (closed is None and self.transport.records):
            yield None
            return
        with NetworkBlock(label, (*self.options.allowed_hosts, *allowed_hosts)) as block:
            self._network_blocks.append(block)
            yield block

    def close(self) -> None:
        """Close the clients made by `client()` and the transport.

        A recording whose response was never closed is written, marked as cut short.
        """
        for client in self._clients:
            client.close()
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
