"""Hostile cassettes are refused in one line, without taking the machine down.

A YAML alias bomb ("billion laughs": 673 bytes that expand to billions of values when a body
is re-serialized) and a compression bomb (a small gzip body that inflates to gigabytes) are
refused naming the file (and the field, for the body), quickly and in little memory, while
the anchors and aliases real tools write, and real gzip bodies, still load.
"""

import asyncio
import base64
import gzip
import zlib
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from llmx_replay import (
    AsyncChatClient,
    RecordingTransport,
    ReplayOptions,
    ReplayTransport,
    VirtualClock,
    use_cassette,
)
from llmx_replay._exceptions import InputError
from llmx_replay.cassette import _yaml, load_cassette
from llmx_replay.cli import cli
from llmx_replay.models import (
    ErrorEvent,
    OutputTextDelta,
    Prompt,
    ProviderSettings,
    ResponseEvent,
)
from llmx_replay.transports._replay import replayed_response

LEVELS = "abcdefghi"


def _level(index: int) -> str:
    """`b: &b [*a, *a, ...]`: each level nine of the one before."""
    name = LEVELS[index]
    value = f"*{LEVELS[index - 1]}" if index else "lol"
    return f"{name}: &{name} [{', '.join([value] * 9)}]\n"


ALIAS_BOMB = "".join(_level(index) for index in range(len(LEVELS))) + (
    "interactions:\n"
    '- request: {method: POST, uri: "http://x/v1/chat/completions", parsed_body: *i}\n'
    '  response: {status: {code: 200, message: *i}, body: {string: "data: [DONE]\\n\\n"}}\n'
)


def test_an_alias_bomb_behind_the_fast_readers_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(f"{_yaml.MARKER}\n{ALIAS_BOMB}")
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value).startswith(f"{path}: its YAML aliases expand to more than")


def test_a_body_holding_an_ampersand_is_not_searched_for_aliases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Of a file written here, only what is left once the bodies are cut out can hold
    anchors; the fast reader takes none."""

    def never(document: object) -> int:
        raise AssertionError("sized for aliases")

    monkeypatch.setattr(_yaml, "_expanded_size", never)
    data = f"{_yaml.MARKER}\nbody: |-\n  a & b\n  *c\n".encode()

    assert _yaml.load(data) == {"body": b"a & b\n*c"}


def gzip_cassette(path: Path, body: bytes) -> Path:
    """A cassette whose response body is `body`, gzip-encoded, as `!binary` base64."""
    path.write_text(
        "interactions:\n"
        "- request: {method: POST, uri: 'http://x/v1/chat/completions'}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers: {Content-Encoding: [gzip], Content-Type: [text/event-stream]}\n"
        f"    body: {{string: !binary '{base64.b64encode(body).decode()}'}}\n"
    )
    return path


def test_an_alias_bomb_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 1000
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value).startswith(f"{path}: its YAML aliases expand to more than")
    result = CliRunner().invoke(cli, ["play", str(path)])
    assert result.exit_code == 2
    assert "alias bomb" in result.stderr


def test_the_anchors_real_tools_write_still_load(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n"
        "    method: POST\n"
        "    uri: http://x/v1/chat/completions\n"
        "    headers: &id001 {Content-Type: [application/json]}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers: *id001\n"
        '    body: {string: "data: [DONE]\\n\\n"}\n'
    )
    (interaction,) = load_cassette(path).interactions
    assert interaction.response.headers == [("Content-Type", "application/json")]


def test_a_compression_bomb_is_refused_naming_the_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMX_REPLAY_MAX_INFLATED_BYTES", str(1_000_000))
    bomb = gzip.compress(b"\0" * 5_000_000)
    path = gzip_cassette(tmp_path / "gzip-bomb.yaml", bomb)
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value) == (
        f"{path}: interactions[0].response.body: the compressed body inflates past 1,000,000 "
        "bytes (a compression bomb?); set LLMX_REPLAY_MAX_INFLATED_BYTES to allow more"
    )


def test_the_default_limit_refuses_a_body_of_gigabytes(tmp_path: Path) -> None:
    """64 MiB, far above any real response: checked without inflating past it."""
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    chunk = b"\0" * 1_000_000
    bomb = b"".join(compressor.compress(chunk) for _ in range(70)) + compressor.flush()
    with pytest.raises(InputError, match="inflates past 67,108,864 bytes"):
        load_cassette(gzip_cassette(tmp_path / "big.yaml", bomb))


def test_real_gzip_bodies_still_load_whole_and_several_members_too(tmp_path: Path) -> None:
    stream = b"data: [DONE]\n\n"
    two_members = gzip.compress(stream[:6]) + gzip.compress(stream[6:])
    (interaction,) = load_cassette(gzip_cassette(tmp_path / "ok.yaml", two_members)).interactions
    assert interaction.response.body == stream
    assert interaction.response.header("content-encoding") is None


def test_a_gzip_body_cut_short_is_kept_as_it_came(tmp_path: Path) -> None:
    cut = gzip.compress(b"data: [DONE]\n\n" * 100)[:-10]
    (interaction,) = load_cassette(gzip_cassette(tmp_path / "cut.yaml", cut)).interactions
    assert interaction.response.body == cut
    assert interaction.response.header("content-encoding") == "gzip"


def write_cassette(path: Path, response: str) -> Path:
    path.write_text(
        "interactions:\n"
        "- request: {method: POST, uri: 'http://x/v1/chat/completions'}\n"
        f"  response: {response}\n"
    )
    return path


@pytest.mark.parametrize("status", ["0", "-1", "600", str(10**30)])
def test_a_status_outside_http_is_refused_naming_it(tmp_path: Path, status: str) -> None:
    path = write_cassette(tmp_path / "s.yaml", f"{{status: {{code: {status}, message: OK}}}}")
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value) == (
        f"{path}: interactions[0].response.status: an HTTP status is 100 to 599, not {status}"
    )


@pytest.mark.parametrize("headers_ms", ["1e300", "1e11", "-1", ".nan"])
def test_a_recorded_time_past_a_day_is_refused_naming_it(tmp_path: Path, headers_ms: str) -> None:
    path = write_cassette(
        tmp_path / "t.yaml",
        "{status: {code: 200, message: OK}, body: {string: ''}, "
        f"llmx_replay: {{headers_ms: {headers_ms}}}}}",
    )
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value) == (
        f"{path}: interactions[0].response.llmx_replay.headers_ms: expected a number of "
        "milliseconds, at most a day's (86400000)"
    )


def test_bad_base64_in_a_binary_body_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write_cassette(
        tmp_path / "b.yaml", "{status: {code: 200, message: OK}, body: {string: !binary 'a$b'}}"
    )
    result = CliRunner().invoke(cli, ["play", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"llmx-replay: error: {path}: ")
    assert "!binary holds invalid base64" in result.stderr
    assert "Traceback" not in result.output


def test_a_request_nested_deeper_than_json_writers_go_is_recorded_and_replayed(
    tmp_path: Path,
) -> None:
    """orjson writes 254 levels at most: a deeper body is kept as it came, and still matches."""
    deep = "[" * 300 + "]" * 300
    body = f'{{"model": "m", "extra": {deep}}}'.encode()
    path = tmp_path / "deep.yaml"
    record_through_a_stand_in(path, body)
    (interaction,) = load_cassette(path).interactions
    assert interaction.request.body == body
    with httpx.Client(transport=ReplayTransport(path)) as client:
        assert client.post("http://x/v1/chat/completions", content=body).status_code == 200


def test_a_stored_body_nested_too_deep_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "deep-parsed.yaml"
    path.write_text(
        "interactions:\n"
        "- request: {method: POST, uri: 'http://x/v1/chat/completions', parsed_body: "
        + "[" * 300
        + "]" * 300
        + "}\n  response: {status: {code: 200, message: OK}}\n"
    )
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value).startswith(
        f"{path}: interactions[0].request.parsed_body: not a JSON body: "
    )


CANCELLED_CASSETTE = (
    "interactions:\n"
    "- request: {method: POST, uri: 'http://x/v1/chat/completions'}\n"
    "  response:\n"
    "    status: {code: 200, message: OK}\n"
    "    headers: {content-type: [text/event-stream]}\n"
    '    body: {string: "data: {\\"choices\\":[{\\"index\\":0,\\"delta\\":{\\"content\\":'
    '\\"Hel\\"}}]}\\n\\n"}\n'
    "    llmx_replay: {partial: the caller was cancelled before the end}\n"
)


def test_a_recording_its_async_caller_gave_up_on_replays_as_the_stall_it_was(
    tmp_path: Path,
) -> None:
    """An idle timeout cancels the async read: the replay stalls after the last chunk, and
    the turn ends in idle_timeout, as live, not in "stream closed before completion"."""
    path = tmp_path / "stalled.yaml"
    path.write_text(CANCELLED_CASSETTE)
    with use_cassette(path, "none") as session:
        played = session.play()
    (response,) = (interaction.response for interaction in load_cassette(path).interactions)

    async def replayed(request: httpx.Request) -> httpx.Response:
        options = ReplayOptions(clock=VirtualClock())
        return replayed_response(response, options, read_timeout=0.05)

    async def ask() -> list[ResponseEvent]:
        provider = ProviderSettings(base_url="http://x/v1", stream_idle_timeout_ms=50)
        transport = httpx.MockTransport(replayed)
        async with AsyncChatClient(provider, "m", transport=transport) as client:
            return [event async for event in client.stream(Prompt(input=[]))]

    for events in (played, asyncio.run(ask())):
        error = events[-1]
        assert isinstance(error, ErrorEvent)
        assert error.kind == "idle_timeout"
        assert [e.delta for e in events if isinstance(e, OutputTextDelta)] == ["Hel"]


def test_an_alias_that_holds_itself_is_refused_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "self.yaml"
    path.write_text("interactions: &a [*a]\n")
    with pytest.raises(InputError) as caught:
        load_cassette(path)
    assert str(caught.value) == (
        f"{path}: a YAML alias refers to a value that holds it (endless nesting)"
    )


def test_a_deep_body_is_still_redacted(tmp_path: Path) -> None:
    """Redacted bodies deeper than orjson writes are written by the standard library."""
    body = ('{"client_secret": "cs-9", "extra": ' + "[" * 300 + "]" * 300 + "}").encode()
    path = tmp_path / "deep.yaml"
    record_through_a_stand_in(path, body)
    assert "cs-9" not in path.read_text()


def record_through_a_stand_in(path: Path, body: bytes) -> None:
    """Record one POST of `body` into `path`, answered by a stand-in provider."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"data: [DONE]\n\n")

    recorder = RecordingTransport(path, inner=httpx.MockTransport(answer))
    with httpx.Client(transport=recorder) as client:
        client.post("http://x/v1/chat/completions", content=body).read()
