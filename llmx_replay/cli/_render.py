"""Events as a person reads them: streamed text as text, the rest as marked lines."""

from collections.abc import Sequence
from typing import TextIO

from llmx_replay.models.events import (
    Completed,
    ErrorEvent,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ResponseEvent,
    TokenUsage,
)
from llmx_replay.models.items import FunctionCall, Message, Reasoning


def describe_usage(usage: TokenUsage) -> str:
    return (
        f"input {usage.input_tokens} (cached {usage.cached_input_tokens}), "
        f"output {usage.output_tokens} (reasoning {usage.reasoning_output_tokens}), "
        f"total {usage.total_tokens}"
    )


class TextRenderer:
    """Writes events to `out` as they arrive, for a terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._block: str | None = None
        self._streamed: set[str] = set()

    def render(self, event: ResponseEvent) -> None:
        if isinstance(event, ReasoningContentDelta):
            self._stream("reasoning", event.delta)
        elif isinstance(event, OutputTextDelta):
            self._stream("text", event.delta)
        elif isinstance(event, OutputItemDone):
            self._finished(event)
        elif isinstance(event, Completed):
            details = [f"finish_reason: {event.finish_reason or 'none'}"]
            if event.token_usage is not None:
                details.append(f"usage: {describe_usage(event.token_usage)}")
            if event.response_id:
                details.append(f"response_id: {event.response_id}")
            self.line(f"[completed] {'; '.join(details)}")
        elif isinstance(event, ErrorEvent):
            status = f", status {event.status}" if event.status is not None else ""
            self.line(f"[error: {event.kind}{status}] {event.message}")

    def interaction(
        self,
        index: int,
        method: str,
        uri: str,
        status: int,
        retried: Sequence[tuple[int, int]] = (),
    ) -> None:
        """The line that opens a recorded or live interaction's events.

        `retried` lists the earlier attempts of the same request (index, status), which the
        client retried.
        """
        after = ", ".join(f"#{earlier} {code}" for earlier, code in retried)
        self.line(
            f"== interaction {index}: {method} {uri} -> {status}"
            + (f" (retried after {after})" if after else "")
        )

    def retry(self, seconds: float, after: str) -> None:
        self.line(f"[retry in {seconds:g} s after {after}]")

    def line(self, text: str) -> None:
        """Write a whole line, after closing any streamed block."""
        self._close_block()
        self._out.write(text + "\n")
        self._out.flush()

    def _stream(self, block: str, text: str) -> None:
        if self._block != block:
            self._close_block()
            if block == "reasoning":
                self._out.write("[reasoning] ")
            self._block = block
        self._streamed.add(block)
        self._out.write(text)
        self._out.flush()

    def _close_block(self) -> None:
        if self._block is not None:
            self._out.write("\n")
            self._block = None

    def _finished(self, event: OutputItemDone) -> None:
        item = event.item
        if isinstance(item, Reasoning):
            if "reasoning" not in self._streamed:
                self.line(f"[reasoning] {item.text}")
            self._streamed.discard("reasoning")
        elif isinstance(item, Message):
            if "text" not in self._streamed:
                self.line(item.text)
            self._streamed.discard("text")
        elif isinstance(item, FunctionCall):
            self.line(f"[tool call] {item.name} ({item.call_id}): {item.arguments}")
        else:
            self.line(f"[item] {item.model_dump_json()}")
