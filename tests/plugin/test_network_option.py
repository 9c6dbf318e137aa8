"""The closed network in pytest: a replaying cassette test, or every test of a run with
``--llmx-block-network``, fails when anything reaches beyond loopback and the allowed hosts,
even when the code swallowed the error.

The inner tests open raw sockets to TEST-NET-1 (never routed). The outer suite's own guard
(conftest.py's `network_guard`) sits under the plugin's: what the plugin lets through, that
guard refuses and notes; a test that lets something through checks and clears its list.
"""

from typing import TYPE_CHECKING, Any

from plugin_support import failures

if TYPE_CHECKING:
    from conftest import LlmxProject

SWALLOWING = """
import socket

import pytest


def reach(host="192.0.2.1"):
    try:
        socket.create_connection((host, 443), timeout=1).close()
    except OSError:
        pass  # swallowed, as code under test may
"""


def test_a_replaying_cassette_test_fails_for_a_swallowed_connection(
    llmx_project: "LlmxProject",
) -> None:
    llmx_project.record("test_it/test_replaying.yaml", "a")
    llmx_project.write(
        SWALLOWING
        + """

@pytest.mark.llmx_cassette(record_mode="none", allow_unplayed=True)
def test_replaying():
    reach()
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(failed=1)
    assert failures(result) == {"test_replaying"}
    result.stdout.fnmatch_lines(
        ["*test_it.py::test_replaying may not reach the network; refused: 192.0.2.1:443*"]
    )


def test_block_network_closes_it_for_every_test_of_the_run(
    llmx_project: "LlmxProject", network_guard: list[Any]
) -> None:
    llmx_project.write(
        SWALLOWING
        + """

def test_plain():
    reach()
"""
    )

    llmx_project.run().assert_outcomes(passed=1)
    assert network_guard == [("192.0.2.1", 443)]  # open: it reached the outer guard
    network_guard.clear()
    result = llmx_project.run("--llmx-block-network")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_plain may not reach the network; refused: 192.0.2.1:443*"])


def test_the_ini_key_closes_it_and_allowed_hosts_go_through(
    llmx_project: "LlmxProject", network_guard: list[Any]
) -> None:
    llmx_project.pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "llmx_block_network = true\nllmx_allowed_hosts = 192.0.2.1\n"
    )
    llmx_project.write(
        SWALLOWING
        + """

def test_allowed():
    reach("192.0.2.1")


def test_not_allowed():
    reach("192.0.2.2")
"""
    )

    result = llmx_project.run()

    result.assert_outcomes(passed=1, failed=1)
    assert failures(result) == {"test_not_allowed"}
    assert network_guard == [("192.0.2.1", 443)]  # let through, then the outer guard's
    network_guard.clear()


def test_the_option_overrides_the_ini_keys_allowed_hosts(
    llmx_project: "LlmxProject", network_guard: list[Any]
) -> None:
    llmx_project.pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nllmx_allowed_hosts = 192.0.2.1\n"
    )
    llmx_project.write(
        SWALLOWING
        + """

def test_reach():
    reach("192.0.2.3")
"""
    )

    llmx_project.run("--llmx-block-network", "--llmx-allowed-hosts=192.0.2.3, 192.0.2.4")
    assert network_guard == [("192.0.2.3", 443)]
    network_guard.clear()


def test_block_network_false_leaves_a_replaying_test_open(
    llmx_project: "LlmxProject", network_guard: list[Any]
) -> None:
    llmx_project.record("test_it/test_open.yaml", "a")
    llmx_project.write(
        SWALLOWING
        + """

@pytest.mark.llmx_cassette(record_mode="none", allow_unplayed=True, block_network=False)
def test_open():
    reach()
"""
    )

    llmx_project.run().assert_outcomes(passed=1)
    assert network_guard == [("192.0.2.1", 443)]
    network_guard.clear()
