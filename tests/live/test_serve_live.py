"""`llmx-replay serve` recording live, for clients that are not ours, then replaying alone.

A client that knows nothing of llmx-replay (the openai SDK, or Node's built-in `fetch`) is
pointed at the server as at the provider. In record mode `once` the server forwards the
request to a live upstream (aimock, or the LiteLLM proxy), streams the answer back as it
arrives and records it, scrubbed; then a fresh server in mode `none`, given no upstream at
all, serves the same answer from the cassette alone.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import yaml
from live_support import SAY_HI, SAY_HI_ANSWER, LiveServer, assert_no_secrets

from llmx_replay.cassette import Cassette
from llmx_replay.serve import CassetteServer

pytestmark = pytest.mark.live

LITELLM_CONFIG = Path(__file__).resolve().parent / "fixtures" / "litellm.yaml"
READY_SECONDS = 30.0  # a bound on waiting for the CLI's URL, not a measurement
STOP_SECONDS = 30.0


@dataclass(frozen=True)
class Upstream:
    """What a live server is asked for SAY_HI, and what it answers."""

    model: str
    answer: str


def _litellm_answer(model: str) -> str:
    """The LiteLLM proxy's `mock_response` for `model`, from its config."""
    config = yaml.safe_load(LITELLM_CONFIG.read_text())
    [answer] = [
        entry["litellm_params"]["mock_response"]
        for entry in config["model_list"]
        if entry["model_name"] == model
    ]
    return str(answer)


UPSTREAMS = {
    "aimock": Upstream("gpt-4o-mini", SAY_HI_ANSWER),  # fixtures/aimock.json answers by message
    "litellm": Upstream("mock-gpt", _litellm_answer("mock-gpt")),  # the proxy, by model
}


def openai_sdk_answer(base_url: str, api_key: str, model: str) -> str:
    """SAY_HI streamed by the openai SDK's own client from `base_url`; the joined deltas."""
    with openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0) as client:
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": SAY_HI}], stream=True
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def assert_one_streamed_interaction(cassette: Path, server: LiveServer) -> Cassette:
    """One interaction, recorded from the upstream's URL in several chunks, with no secret
    (`assert_no_secrets`: the key is not in the file, Authorization is redacted)."""
    loaded = assert_no_secrets(cassette, server)
    [interaction] = loaded.interactions
    assert interaction.request.method == "POST"
    assert interaction.request.uri == server.url + "/v1/chat/completions"
    response = interaction.response
    assert response.status == 200
    assert response.chunks is not None
    assert len(response.chunks) > 1  # as the upstream streamed it, not one buffered piece
    assert sum(size for size, _ in response.chunks) == len(response.body)
    assert response.body.rstrip().endswith(b"data: [DONE]")
    return loaded


def test_serve_records_the_openai_sdk_from_upstream_then_replays_it_without_upstream(
    server: LiveServer, tmp_path: Path
) -> None:
    upstream = UPSTREAMS[server.name]
    cassette = tmp_path / "served.yaml"

    with CassetteServer(cassette, record_mode="once", upstream=server.url) as recording:
        live = openai_sdk_answer(recording.url + "/v1", server.api_key, upstream.model)
    assert recording.misses == []
    assert live == upstream.answer
    [interaction] = assert_one_streamed_interaction(cassette, server).interactions
    # The SDK leaves at [DONE], often before the proxy ends its body: still whole.
    assert interaction.response.partial is None
    recorded = cassette.read_bytes()

    # No upstream: nothing but the cassette can answer. The client's key does not matter.
    with CassetteServer(cassette, record_mode="none") as replaying:
        replayed = openai_sdk_answer(replaying.url + "/v1", "sk-not-used", upstream.model)
        [transport] = replaying.cassettes.transports.values()
        assert transport.unplayed == []
    assert replaying.misses == []
    assert replayed == live
    assert cassette.read_bytes() == recorded


# Node's fetch streams SAY_HI and prints the status, the number of `data:` events and the
# joined deltas as one JSON line. The key comes from the environment, not the command line.
NODE_STREAM = r"""
const [url, model] = process.argv.slice(1);
(async () => {
  const response = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "authorization": "Bearer " + process.env.LLMX_LIVE_KEY,
    },
    body: JSON.stringify({model, stream: true, messages: [{role: "user", content: "Say hi"}]}),
  });
  const decoder = new TextDecoder();
  let body = "";
  for await (const chunk of response.body) body += decoder.decode(chunk, {stream: true});
  body += decoder.decode();
  let text = "", events = 0;
  for (const line of body.split("\n")) {
    if (!line.startsWith("data: ")) continue;
    events += 1;
    if (line === "data: [DONE]") continue;
    const choices = JSON.parse(line.slice("data: ".length)).choices;
    if (choices.length) text += choices[0].delta.content || "";
  }
  console.log(JSON.stringify({status: response.status, events, text}));
})().catch((error) => { console.error(error); process.exit(1); });
"""


def _url_line(process: "subprocess.Popen[str]", log: Path) -> str:
    """The first line the server prints on stdout (its URL), waited for with a bound."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], READY_SECONDS)
    line = process.stdout.readline().strip() if ready else ""
    if not line:
        pytest.fail(
            f"`llmx-replay serve` printed no URL (exit status {process.poll()}); "
            f"its standard error:\n{log.read_text(errors='replace')}",
            pytrace=False,
        )
    return line


def test_serve_cli_records_node_fetch_from_aimock_and_sigterm_exits_0(
    aimock: LiveServer, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not on PATH: the CLI's client here is Node's fetch")
    cassette, log = tmp_path / "cli.yaml", tmp_path / "serve.log"
    command = [
        *(sys.executable, "-m", "llmx_replay", "serve", str(cassette)),
        *("--upstream", aimock.url, "--record-mode", "once", "--port", "0"),
    ]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    try:
        url = _url_line(process, log)
        assert url.startswith("http://127.0.0.1:")
        fetched = subprocess.run(
            [node, "-e", NODE_STREAM, url, UPSTREAMS["aimock"].model],
            capture_output=True,
            text=True,
            env={**os.environ, "LLMX_LIVE_KEY": aimock.api_key},
            timeout=60,
            check=False,
        )
        assert fetched.returncode == 0, fetched.stderr
        streamed = json.loads(fetched.stdout)
        process.send_signal(signal.SIGTERM)
        code = process.wait(STOP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        rest = process.stdout.read()
        process.stdout.close()

    errors = log.read_text(errors="replace")
    assert code == 0, errors
    assert rest == ""  # the URL is all it prints on stdout
    assert errors.rstrip().endswith("llmx-replay serve: stopped")
    assert "had no recording" not in errors
    assert streamed["status"] == 200
    assert streamed["text"] == SAY_HI_ANSWER
    loaded = assert_one_streamed_interaction(cassette, aimock)
    assert loaded.interactions[0].response.partial is None  # fetch read the body to its end
    assert streamed["events"] == loaded.interactions[0].response.body.count(b"data: ")
