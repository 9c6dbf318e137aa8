"""Frameworks that build their HTTP clients deep inside, recorded live from aimock with no
wiring, then replayed as CI replays them: record mode `none` by default, the network closed.

LiteLLM (`completion` and `acompletion`, streaming, through its `openai/` provider) and
pydantic-ai (a streaming `Agent` run on its `OpenAIChatModel`) are given aimock's base URL and
nothing else: no client, no transport. Each hands the openai SDK a client of its own, on a
different library: LiteLLM's `completion` an `httpx.Client`, its `acompletion` an
`httpx.AsyncClient` whose transport is aiohttp (`LiteLLMAiohttpTransport`: recorded and
replayed buffered, by vcrpy's patching), and pydantic-ai an `httpx2.AsyncClient`. Whatever
they build inside `use_cassette` is recorded, and replayed from the cassette alone.
"""

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from live_support import SAY_HI, LiveServer, records_then_replays_offline

# LiteLLM fetches its model cost map from GitHub when it is imported; this makes it load the
# copy it ships instead, so the import stays offline (litellm_core_utils/get_model_cost_map.py).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# LiteLLM and pydantic-ai (the `peers` extra) are imported where they are used: CI installs
# them for the newest run, whose live group runs this module, while the lowest-version run
# only collects it.

pytestmark = pytest.mark.live


def litellm_answer(server: LiveServer) -> str:
    import litellm

    # LiteLLM's `completion` emits its service events on `asyncio.get_event_loop()`: in a thread
    # that never set a loop, that creates one, left open (a ResourceWarning when it is collected).
    # It is given a loop of ours here, closed after.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        stream = litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=server.base_url,
            api_key=server.api_key,
            messages=[{"role": "user", "content": SAY_HI}],
            stream=True,
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def litellm_answer_async(server: LiveServer) -> str:
    import litellm

    async def ask() -> str:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            api_base=server.base_url,
            api_key=server.api_key,
            messages=[{"role": "user", "content": SAY_HI}],
            stream=True,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return asyncio.run(ask())


def pydantic_ai_answer(server: LiveServer) -> str:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async def ask() -> str:
        provider = OpenAIProvider(base_url=server.base_url, api_key=server.api_key)
        agent = Agent(OpenAIChatModel("gpt-4o-mini", provider=provider))
        # Entering the agent makes the provider close the HTTP client it built, on exit.
        async with agent, agent.run_stream(SAY_HI) as result:
            return "".join([delta async for delta in result.stream_text(delta=True)])

    return asyncio.run(ask())


# On its first call LiteLLM imports its GitHub Copilot modules, whatever the model; they build
# pydantic TypeAdapters over TypedDicts with `ReadOnly` items (`_DeviceCode`,
# `_CopilotTokenPayload`...), and pydantic warns that it will not enforce them. LiteLLM's
# `__init__` ignores that warning process-wide (message ".*`ReadOnly` qualifier.*"), but pytest
# resets the filters for each test and makes warnings errors, so the same is ignored here, for
# LiteLLM's calls only.
LITELLM_READONLY_WARNING = pytest.mark.filterwarnings(
    "ignore:Items? .* on TypedDict class .* using the `ReadOnly` qualifier:UserWarning"
)


# The ids spell "LiteLLM", never "litellm": conftest boots the LiteLLM proxy for every selected
# test whose id holds "litellm", and these ask aimock only.
@pytest.mark.parametrize(
    "ask",
    [
        pytest.param(litellm_answer, marks=LITELLM_READONLY_WARNING, id="LiteLLM-completion"),
        pytest.param(
            litellm_answer_async, marks=LITELLM_READONLY_WARNING, id="LiteLLM-acompletion"
        ),
        pytest.param(pydantic_ai_answer, id="pydantic-ai-Agent.run_stream"),
    ],
)
def test_a_frameworks_own_client_records_and_replays_on_a_closed_network(
    aimock: LiveServer,
    ask: Callable[[LiveServer], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records_then_replays_offline(aimock, ask, tmp_path / "peer.yaml", monkeypatch)
