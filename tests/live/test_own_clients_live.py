"""Clients that build their own HTTP client, recorded live from aimock with no wiring, then
replayed as CI replays them: record mode `none` by default, the network closed.

The openai SDK (sync and async streaming Chat Completions, on httpx2) and the anthropic SDK
(Messages streaming, recorded and replayed at the HTTP level: llmx-replay's own readers
refuse that wire format, D24) are built inside `use_cassette` from their base URL alone.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai
import pytest
from live_support import SAY_HI, LiveServer, records_then_replays_offline

pytestmark = pytest.mark.live


def openai_answer(server: LiveServer) -> str:
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": SAY_HI}], stream=True
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def openai_answer_async(server: LiveServer) -> str:
    async def ask() -> str:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": SAY_HI}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return asyncio.run(ask())


def anthropic_answer(server: LiveServer) -> str:
    with (
        anthropic.Anthropic(base_url=server.url, api_key=server.api_key) as client,
        client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": SAY_HI}],
        ) as stream,
    ):
        return "".join(stream.text_stream)


@pytest.mark.parametrize("ask", [openai_answer, openai_answer_async, anthropic_answer])
def test_an_sdks_own_client_records_and_replays_on_a_closed_network(
    aimock: LiveServer,
    ask: Callable[[LiveServer], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records_then_replays_offline(aimock, ask, tmp_path / "sdk.yaml", monkeypatch)
