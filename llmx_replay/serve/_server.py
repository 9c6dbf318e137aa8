"""Running the application on uvicorn: in a thread of this process, or in the foreground.

uvicorn is the HTTP server (HTTP/1.1, keep-alive, chunked bodies, back-pressure, graceful
shutdown); this module binds its socket, says when it is ready, and stops it. The socket is
bound before uvicorn starts, so that a busy port is an error here, and port 0 gets a free
port whose URL is known before the first request.
"""

import asyncio
import errno
import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx
import uvicorn

from llmx_replay._exceptions import NoMatchingInteraction, OptionError
from llmx_replay._options import RecordMode, ReplayOptions
from llmx_replay.cassette._scrub import Scrubber
from llmx_replay.cassette._writer import RunLedger
from llmx_replay.serve._app import ConnectionCut, ServeApp
from llmx_replay.serve._cassettes import ServedCassettes

_BACKLOG = 2048
"""Connections waiting to be accepted, as uvicorn's own default."""

RECORDING_GRACE_SECONDS = 30.0
"""How long a stopping server lets the responses it is recording run to their end, by
default; replays end at once."""

_UVICORN_MARGIN_SECONDS = 5.0
"""uvicorn's own shutdown timeout is the grace and this: the application ends its responses
first, so that the cassettes are closed after the last one is written."""


class _CutsAreNotErrors(logging.Filter):
    """Leaves out uvicorn's report of a connection closed on purpose (`ConnectionCut`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionCut))


logging.getLogger("uvicorn.error").addFilter(_CutsAreNotErrors())


def upstream_origin(upstream: str) -> str:
    """`upstream` checked to be an origin (``http://127.0.0.1:4000``), without a final slash.

    Raises:
        OptionError: it is not an http(s) origin.
    """
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError("upstream", f"an http or https origin, not {upstream!r}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise OptionError(
            "upstream",
            f"an origin only (scheme, host, port), not {upstream!r}: requests keep their path",
        )
    return f"{parts.scheme}://{parts.netloc}"


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, saying when it is ready and telling the application it stops.

    Told at once (by the signal, or by `CassetteServer.stop`), the application ends its
    replays and gives its recordings their grace, before uvicorn's own timeout.
    """

    def __init__(self, config: uvicorn.Config, app: ServeApp, ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._app = app
        self._ready = ready
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started:
            self._ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.begin_stopping()

    def begin_stopping(self) -> None:
        """Tell the application it stops, from any thread (or a signal handler)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._app.begin_stopping)


def _listening(host: str, port: int) -> socket.socket:
    """A socket listening on `host` and `port`.

    Made TCP by name: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections
    whose protocol says TCP, and with it on, each small chunk after the first response of a
    connection would wait for the client's delayed acknowledgement (40 ms on Linux).

    Raises:
        OptionError: `host` is no address of this machine, or the port cannot be had.
    """
    if not host.strip():
        # The empty host would listen on every address: that must be asked for by name.
        raise OptionError("host", "an address or a name, not empty (0.0.0.0 for every one)")
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
    except socket.gaierror as error:
        raise OptionError("host", f"{host!r} cannot be resolved: {error.strerror}") from None
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":  # elsewhere it would let two servers share the port
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(_BACKLOG)
    except OSError as error:
        listening.close()
        option = "host" if error.errno == errno.EADDRNOTAVAIL else "port"
        raise OptionError(
            option, f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
    return listening


class CassetteServer:
    """Serves the cassette (or the folder of cassettes) at `source` over HTTP, on uvicorn.

    Any HTTP client, in any language, sends its requests to `url` as it would to the
    provider: each is answered from the recordings, as the transports answer (see
    `ServedCassettes`), at the recorded pace and with the faults that `options` say. With
    `upstream` (an origin such as ``http://127.0.0.1:4000``) and a recording `record_mode`,
    a request with no recording is sent on to the upstream with the same path, passed back
    chunk by chunk as it arrives, and recorded, scrubbed by `scrubber`. A folder's cassette
    is picked by the request's ``X-Llmx-Cassette`` header (its name in the folder); without
    one, the first cassette that answers does. A request nothing answers gets a 404 whose
    JSON error (in the OpenAI shape) names the closest recording and the fields that
    differ; `misses` keeps each. `run_ledger` and `max_age` are `CassetteTransport`'s. A
    stopping server ends its replays at once and lets what it records run on for
    `recording_grace` seconds; one that has not ended by then is left out of the cassette.

    As a context manager (or between `start` and `stop`) it runs in a thread of this
    process; `serve_forever` runs it in the foreground until SIGINT or SIGTERM. It listens
    on `host` (127.0.0.1 unless asked) and `port` (0: a free one).
    """

    def __init__(
        self,
        source: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_mode: RecordMode | str | None = None,
        upstream: str | None = None,
        options: ReplayOptions | None = None,
        scrubber: Scrubber | None = None,
        run_ledger: RunLedger | None = None,
        max_age: timedelta | None = None,
        recording_grace: float = RECORDING_GRACE_SECONDS,
    ) -> None:
        origin = None if upstream is None else upstream_origin(upstream)
        if record_mode is None:
            mode = RecordMode.default() if origin is not None else RecordMode.NONE
        else:
            mode = RecordMode.parse(record_mode)
        if mode is not RecordMode.NONE and origin is None:
            raise OptionError(
                "record_mode",
                f"'{mode}' records through {{}}: give the origin to record from",
                ["upstream"],
            )
        self._forwarding = (
            httpx.AsyncHTTPTransport(verify=httpx.create_ssl_context()) if origin else None
        )
        self.cassettes = ServedCassettes(
            Path(source),
            record_mode=mode,
            options=options or ReplayOptions(),
            scrubber=scrubber or Scrubber(),
            upstream=self._forwarding,
            run_ledger=run_ledger,
            max_age=max_age,
        )
        self.app = ServeApp(self.cassettes, origin, recording_grace=recording_grace)
        self._recording_grace = recording_grace
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.url = ""
        """The base URL it serves, once it is bound (``http://127.0.0.1:PORT``)."""

    @property
    def misses(self) -> list[NoMatchingInteraction]:
        """The requests no recording answered (the last 1,000; `miss_count` counts all)."""
        return list(self.app.misses)

    @property
    def miss_count(self) -> int:
        """How many requests no recording answered."""
        return self.app.miss_count

    def _bind(
        self, ready: Callable[[], None], *, in_thread: bool
    ) -> tuple[_Uvicorn, socket.socket]:
        listening = _listening(self._host, self._port)
        host, port = listening.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            # The recorded responses' own Date and Server headers are the ones served.
            server_header=False,
            date_header=False,
            access_log=False,
            proxy_headers=False,
            # The process's logging is its owner's (a test run's, the command line's).
            log_config=None,
            timeout_graceful_shutdown=math.ceil(self._recording_grace + _UVICORN_MARGIN_SECONDS),
            # In a thread of someone else's process, the process's event loop policy is
            # theirs: uvicorn would install uvloop's when it is there.
            loop="asyncio" if in_thread else "auto",
        )
        server = _Uvicorn(config, self.app, ready)
        self._server, self._socket = server, listening
        return server, listening

    def __enter__(self) -> Self:
        return self.start()

    def start(self) -> Self:
        """Serve from a thread of this process, once it accepts requests; `stop` ends it.

        Raises:
            OptionError: nothing can listen on the host and port.
        """
        server, listening = self._bind(self._ready.set, in_thread=True)
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [listening]},
            name="llmx-replay serve",
            daemon=True,
        )
        self._thread.start()
        while not self._ready.wait(0.05):
            if not self._thread.is_alive():
                listening.close()
                raise RuntimeError(f"llmx-replay's server at {self.url} stopped while starting")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and wait for the end: replays end at once, recordings within the grace."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._server.begin_stopping()
        self._thread.join()
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def serve_forever(self, ready: Callable[[str], None]) -> None:
        """Serve in this (the main) thread until SIGINT or SIGTERM; `ready(url)` when ready."""
        server, listening = self._bind(lambda: ready(self.url), in_thread=False)
        try:
            server.run(sockets=[listening])
        finally:
            listening.close()
