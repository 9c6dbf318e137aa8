"""The pytest plugin, registered through the ``pytest11`` entry point.

Installing llmx-replay is enough to use it:

    @pytest.mark.llmx_cassette(record_mode="once")
    def test_turn(llmx_cassette: CassetteSession, llmx_snapshot: SnapshotAssertion) -> None:
        with llmx_cassette.client() as client:
            assert list(client.stream(prompt)) == llmx_snapshot
        assert llmx_cassette.request_body() == llmx_snapshot

A test's cassette is ``<cassette dir>/<test module>/<test name>.yaml``, with the module's
packages as folders (``pkg/test_it``; under ``--import-mode=importlib``, the module's path
under the rootdir). Its options come from the `llmx_config` fixture, then the
`llmx_cassette` marker, then ``--llmx-record-mode``. While a test that asks for the
fixture, or is only marked, runs, every httpx and httpx2 client of the process goes through
its cassette (unless ``intercept=False``). A test fails when it sent a request that has no
recording, or left recorded interactions unplayed.

Every pytest run loads the plugin, used or not, so it loads the cassette machinery (pydantic
models, PyYAML, the syrupy extension) only when a test asks for a fixture.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmx_replay._exceptions import OptionError
from llmx_replay._options import RecordMode

if TYPE_CHECKING:
    from syrupy.assertion import SnapshotAssertion

    from llmx_replay.cassette._writer import RunLedger
    from llmx_replay.harness._network import NetworkBlock
    from llmx_replay.harness._session import CassetteOptions, CassetteSession
    from llmx_replay.serve import CassetteServer
    from llmx_replay.transports import CassetteTransport

MARKER = "llmx_cassette"
_SESSION = pytest.StashKey["CassetteSession"]()
_SERVER: pytest.StashKey[tuple[CassetteServer, bool]] = pytest.StashKey()
"""A test's `llmx_server`, and whether it may leave recordings unplayed."""
_LEDGER_FOLDER = pytest.StashKey[str]()
_LEDGER = pytest.StashKey["RunLedger"]()
_LEDGER_KEY = "llmx_replay_run_ledger"
_RUN_BLOCK: pytest.StashKey[NetworkBlock] = pytest.StashKey()
_FAILED_BY_ITS_CASSETTE = pytest.StashKey[bool]()
# A user property: (outcome, cassette path, the HTTP error status last recorded or 0).
_OUTCOME_PROPERTY = "llmx_replay_cassette"
_UNSAFE_IN_NAMES = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the plugin's options and their ini keys."""
    group = parser.getgroup("llmx-replay", "llmx-replay: record and replay LLM streams")
    group.addoption(
        "--llmx-record-mode",
        dest="llmx_record_mode",
        choices=[mode.value for mode in RecordMode],
        default=None,
        help="record mode of every llmx_cassette, over markers and llmx_config "
        "(default: 'none' when the CI variable is set, else 'once')",
    )
    group.addoption(
        "--llmx-cassette-dir",
        dest="llmx_cassette_dir",
        metavar="DIR",
        default=None,
        help="folder of the llmx_cassette cassettes (default: <rootdir>/cassettes)",
    )
    group.addoption(
        "--llmx-block-network",
        dest="llmx_block_network",
        action="store_true",
        default=None,
        help="close the network for every test of the run: a connection beyond loopback and "
        "the allowed hosts fails the test (a cassette that only replays closes it anyway)",
    )
    group.addoption(
        "--llmx-allowed-hosts",
        dest="llmx_allowed_hosts",
        metavar="HOSTS",
        default=None,
        help="comma-separated hosts a closed network lets through, besides loopback",
    )
    parser.addini("llmx_block_network", "as --llmx-block-network", type="bool", default=False)
    parser.addini("llmx_allowed_hosts", "as --llmx-allowed-hosts", type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    """Set up the run's ledger of cassettes started anew, and declare the `llmx_cassette` marker."""
    # In record mode `rewrite`, what this run started anew: xdist workers take the
    # controller's folder, which it removes at the end (it is made on first use only).
    workerinput = getattr(config, "workerinput", None)
    folder = workerinput.get(_LEDGER_KEY) if isinstance(workerinput, dict) else None
    if folder is None:
        folder = str(Path(tempfile.gettempdir()) / f"llmx-replay-run-{uuid.uuid4().hex}")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    config.stash[_LEDGER_FOLDER] = folder
    config.pluginmanager.register(_CassetteOutcomes(config), "llmx_replay_cassette_outcomes")
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name=None, record_mode=None, pacing='instant', faults=None, "
        "match_ignore=(), allow_unplayed=False, ...): options of the test's llmx_cassette "
        "(see llmx_replay.CassetteOptions)",
    )


class _CassetteOutcomes:
    """The run's cassettes by what their tests did with them, summarized at the end."""

    ORDER = ("recorded", "renewed", "expired", "replayed")

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._paths: dict[str, dict[str, int]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == _OUTCOME_PROPERTY and isinstance(value, list | tuple):
                outcome, path, failed = value  # a list once pytest-xdist carried it over
                self._paths.setdefault(str(outcome), {})[str(path)] = int(failed)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self._paths:
            return
        terminalreporter.write_sep("-", "llmx-replay cassettes")
        here = self._config.invocation_params.dir
        for outcome in self.ORDER:
            paths = self._paths.get(outcome, {})
            if not paths:
                continue
            terminalreporter.write_line(f"{outcome}: {len(paths)}")
            if outcome == "replayed":
                continue
            for path, failed in sorted(paths.items()):  # what changed on disk, each by name
                # A recorded failure (a 404, a 401 for a missing key) would otherwise pass
                # as the new behaviour, snapshots and all.
                warning = f" (its last response is an HTTP error: {failed})" if failed else ""
                terminalreporter.write_line(
                    f"  {_shown_path(Path(path), here)}{warning}", red=bool(failed)
                )


def _shown_path(path: Path, here: Path) -> str:
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: each worker shares the run's ledger of cassettes started anew."""
    node.workerinput[_LEDGER_KEY] = node.config.stash[_LEDGER_FOLDER]


def _ledger(config: pytest.Config) -> RunLedger:
    """The run's ledger, made on first use."""
    ledger = config.stash.get(_LEDGER, None)
    if ledger is None:
        from llmx_replay.cassette._writer import RunLedger

        ledger = config.stash[_LEDGER] = RunLedger(Path(config.stash[_LEDGER_FOLDER]))
    return ledger


@pytest.fixture
def llmx_cassette_dir(request: pytest.FixtureRequest) -> Path:
    """The folder of cassettes; override it to keep them elsewhere."""
    option: str | None = request.config.getoption("llmx_cassette_dir")
    if option:
        return request.config.invocation_params.dir / option
    return request.config.rootpath / "cassettes"


@pytest.fixture
def llmx_config() -> dict[str, Any]:
    """Default options of every `llmx_cassette` in scope (keys of `CassetteOptions`).

    Override it in a conftest.py or a test module.
    """
    return {}


def _module_name(node: pytest.Item) -> str:
    """The test module's name as pytest imports it, as a path: ``pkg/test_it``.

    The name is its packages (the folders up to the first without ``__init__.py``), then the
    file's stem. Under ``--import-mode=importlib`` two modules may share that name, so there
    it is the module's path under the rootdir.
    """
    path = node.path
    if node.config.getoption("importmode") == "importlib" and path.is_relative_to(
        node.config.rootpath
    ):
        return path.relative_to(node.config.rootpath).with_suffix("").as_posix()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder != folder.parent:
        parts.append(folder.name)
        folder = folder.parent
    return "/".join(reversed(parts))


def _default_name(node: pytest.Item) -> str:
    """``<test module>/<class>.<test name>``, with what a file name cannot hold replaced."""
    names = node.nodeid.split("::")[1:]
    test = ".".join(names) if names else node.name
    return f"{_module_name(node)}/{_UNSAFE_IN_NAMES.sub('-', test)}"


def _options(node: pytest.Item, config: dict[str, Any]) -> CassetteOptions:
    from llmx_replay.harness._session import CassetteOptions

    merged = dict(config)
    # The closest marker (the function's) wins over its class's and module's.
    for marker in reversed(list(node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"{node.nodeid}: the {MARKER} marker takes keyword arguments only", pytrace=False
            )
        merged.update(marker.kwargs)
    try:
        return CassetteOptions(**merged)
    except OptionError as error:
        pytest.fail(
            f"{node.nodeid}: {MARKER} options (llmx_config and markers): {error}", pytrace=False
        )


def _asked_mode(node: pytest.Item, options: CassetteOptions) -> RecordMode | None:
    """The record mode the test's marker or `llmx_config` asks for.

    Under `CI` a test records only when the command line says so: a mode that would record,
    asked for anywhere else, fails the test instead of reaching the network.
    """
    asked = options.record_mode
    if asked is None or asked is RecordMode.NONE or RecordMode.default() is not RecordMode.NONE:
        return asked
    pytest.fail(
        f"{node.nodeid}: its marker or llmx_config asks for record mode '{asked}', but CI is "
        "set and CI never records unless the command line says so "
        f"(--llmx-record-mode={asked})",
        pytrace=False,
    )


@pytest.fixture
def llmx_cassette(
    request: pytest.FixtureRequest, llmx_cassette_dir: Path, llmx_config: dict[str, Any]
) -> Iterator[CassetteSession]:
    """The test's cassette, with clients wired to it (see `CassetteSession`)."""
    from llmx_replay._files import cassette_path
    from llmx_replay.harness._session import CassetteSession

    node = request.node
    assert isinstance(node, pytest.Item)
    options = _options(node, llmx_config)
    # None leaves the default (by the CI variable) to the transport.
    record_mode = request.config.getoption("llmx_record_mode") or _asked_mode(node, options)
    path = cassette_path(llmx_cassette_dir, options.name or _default_name(node))
    session = CassetteSession(path, options, record_mode, run_ledger=_ledger(request.config))
    node.stash[_SESSION] = session
    try:
        with session.intercepting(), session.closed_network(node.nodeid, _allowed_hosts(request)):
            yield session
    finally:
        del node.stash[_SESSION]
        session.close()
        _report(node, path, session.transport, session.outcome())


def _report(
    node: pytest.Item, path: Path, transport: CassetteTransport, outcome: str | None
) -> None:
    """Note what a test did with its cassette for the run's summary."""
    if outcome is not None:
        # A property reaches the run's summary from pytest-xdist's workers too.
        status = transport.writer.last_status or 0
        failed = status if status >= 400 else 0
        node.user_properties.append((_OUTCOME_PROPERTY, (outcome, str(path), failed)))


@pytest.fixture
def llmx_server(
    request: pytest.FixtureRequest, llmx_cassette_dir: Path, llmx_config: dict[str, Any]
) -> Iterator[str]:
    """The test's cassette served over HTTP (see `CassetteServer`): its base URL.

    For clients in other processes and languages: point them at the URL as at the provider.
    The cassette and its options are those `llmx_cassette` would use (the marker,
    `llmx_config`, ``--llmx-record-mode``, `max_age`, the run's ledger of cassettes started
    anew); it records only through the `server_upstream` origin, and otherwise replays. A
    test fails when a request it sent had no recording, or when it left recordings
    unplayed (unless `allow_unplayed`).
    """
    from llmx_replay._exceptions import InputError
    from llmx_replay._files import cassette_path
    from llmx_replay.serve import CassetteServer

    node = request.node
    assert isinstance(node, pytest.Item)
    options = _options(node, llmx_config)
    upstream = options.server_upstream
    record_mode = (
        request.config.getoption("llmx_record_mode") or _asked_mode(node, options)
        if upstream is not None
        else RecordMode.NONE
    )
    path = cassette_path(llmx_cassette_dir, options.name or _default_name(node))
    try:
        server = CassetteServer(
            path,
            record_mode=record_mode,
            upstream=upstream,
            options=options.replay,
            scrubber=options.scrubbing,
            run_ledger=_ledger(request.config),
            max_age=options.max_age,
        ).start()
    except InputError as error:
        pytest.fail(f"{node.nodeid}: llmx_server: {error}", pytrace=False)
    node.stash[_SERVER] = (server, options.allow_unplayed)
    try:
        yield server.url
    finally:
        server.stop()
        del node.stash[_SERVER]
        for served, transport in server.cassettes.transports.items():
            _report(node, served, transport, transport.outcome())


@pytest.fixture(autouse=True)
def _llmx_cassette_of_a_marked_test(request: pytest.FixtureRequest) -> None:
    """A test marked `llmx_cassette` has its cassette, and interception, without asking.

    Not a test that serves its cassette (`llmx_server`): the server's clients are its own.
    """
    names = request.fixturenames
    if "llmx_server" in names and "llmx_cassette" in names:
        pytest.fail(
            f"{request.node.nodeid}: llmx_cassette and llmx_server both use the test's "
            "cassette: ask for one (llmx_server's clients need no interception)",
            pytrace=False,
        )
    if (
        "llmx_cassette" not in names
        and "llmx_server" not in names
        and request.node.get_closest_marker(MARKER)
    ):
        request.getfixturevalue("llmx_cassette")


def _allowed_hosts(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The run's allowed hosts: ``--llmx-allowed-hosts``, else the ini key."""
    option: str | None = request.config.getoption("llmx_allowed_hosts")
    if option is not None:
        return tuple(host.strip() for host in option.split(",") if host.strip())
    return tuple(request.config.getini("llmx_allowed_hosts"))


@pytest.fixture(autouse=True)
def _llmx_closed_network_of_the_run(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``--llmx-block-network`` (or the ini key) every test runs on a closed network."""
    config = request.config
    if not (config.getoption("llmx_block_network") or config.getini("llmx_block_network")):
        yield
        return
    from llmx_replay.harness._network import NetworkBlock

    with NetworkBlock(request.node.nodeid, _allowed_hosts(request)) as block:
        request.node.stash[_RUN_BLOCK] = block
        yield


@pytest.fixture
def llmx_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """The syrupy `snapshot`, storing events and request bodies as `EventsSnapshotExtension` does.

    Use it as ``assert llmx_cassette.play() == llmx_snapshot``.
    """
    from llmx_replay.syrupy_ext import EventsSnapshotExtension

    return snapshot.use_extension(EventsSnapshotExtension)


_RECORD_AGAIN = (
    "The cassette no longer fits the test. Where the provider is reachable, record it again:\n"
    "  --llmx-record-mode=new_episodes  adds the requests that have no recording\n"
    "  --llmx-record-mode=rewrite       records the test's cassette anew\n"
    "then review the change (git diff, or llmx-replay diff OLD NEW). --snapshot-update only\n"
    "rewrites snapshots from what was replayed: it records nothing."
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test failed by its cassette is told how to record it again.

    That is a request with no recording, or recordings left unplayed by a test that
    otherwise passed (then `pytest_runtest_call` failed it); not a test that failed on its
    own midway, leaving the rest unplayed.
    """
    report = yield
    session = item.stash.get(_SESSION, None)
    if report.when != "call" or not report.failed or session is None:
        return report
    if session.stale or item.stash.get(_FAILED_BY_ITS_CASSETTE, False):
        report.sections.append(("llmx-replay", _RECORD_AGAIN))
    return report


def _server_problems(server: CassetteServer, allow_unplayed: bool) -> list[str]:
    """What fails a test that used `llmx_server`: misses, and unplayed recordings."""
    found = [f"llmx_server: {miss}" for miss in server.misses]
    if not allow_unplayed:
        unplayed = (t.unplayed_problem() for t in server.cassettes.transports.values())
        found += [f"llmx_server: {problem}" for problem in unplayed if problem]
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a passing test that broke its cassette's rules.

    It sent a request with no recording (to its cassette or its `llmx_server`) or reached
    for a closed network (each raises, but the test's client may have swallowed the error),
    or left recordings unplayed.
    """
    yield
    session = item.stash.get(_SESSION, None)
    cassettes = session.problems() if session is not None else []
    served = item.stash.get(_SERVER, None)
    if served is not None:
        cassettes += _server_problems(*served)
    block = item.stash.get(_RUN_BLOCK, None)
    refused = block.problem() if block is not None else None
    problems = [*cassettes, refused] if refused else cassettes
    if problems:
        item.stash[_FAILED_BY_ITS_CASSETTE] = bool(cassettes)
        pytest.fail("\n".join(problems), pytrace=False)
