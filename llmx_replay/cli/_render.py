"""Events as output: for a person (streamed text as text, the rest as marked lines), or JSON."""

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from llmx_replay.models.events import (
    Completed,
    ErrorEvent,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    RefusalDelta,
    ResponseEvent,
    TokenUsage,
)
from llmx_replay.models.items import FunctionCall, Message, Reasoning

# The events a stream is made of, one per chunk: dumped without pydantic, which would
# cost more than reading the chunk did.
_DELTAS = (OutputTextDelta, ReasoningContentDelta, RefusalDelta, ReasoningSummaryDelta)


def jsonl_line(event: ResponseEvent) -> bytes:
    """The event as one line of JSON, newline included: `model_dump(mode="json")`'s."""
    if isinstance(event, _DELTAS):
        dumped: Any = {"type": event.type, "delta": event.delta}
    else:
        dumped = event.model_dump(mode="json")
    return orjson.dumps(dumped, option=orjson.OPT_APPEND_NEWLINE)


def _quoted(text: str) -> str:
    return orjson.dumps(text).decode()


def _item_summary(item: Any) -> str:
    if isinstance(item, Message):
        parts = f"[{len(item.content)} part{'s' if len(item.content) != 1 else ''}] "
        return f"{item.type} {item.role} {parts}{_quoted(item.text)}"
    if isinstance(item, Reasoning):
        return f"{item.type} {_quoted(item.text)}"
    if isinstance(item, FunctionCall):
        return f"{item.type} {item.name}({item.arguments}) [{item.call_id}]"
    return str(getattr(item, "type", type(item).__name__))


def raw_event_line(event: ResponseEvent) -> str:
    """One processor event on one line, for ``play --mode raw``: its type, then its content.

    A finished message shows its parts, one per delta in this mode.
    """
    if isinstance(event, OutputTextDelta | ReasoningContentDelta | RefusalDelta):
        return f"{event.type} {_quoted(event.delta)}"
    if isinstance(event, OutputItemAdded | OutputItemDone):
        return f"{event.type} {_item_summary(event.item)}"
    return event.type


def describe_usage(usage: TokenUsage) -> str:
    return (
        f"input {usage.input_tokens} (cached {usage.cached_input_tokens}), "
        f"output {usage.output_tokens} (reasoning {usage.reasoning_output_tokens}), "
        f"total {usage.total_tokens}"
    )


def describe_moderation(moderation: dict[str, Any]) -> str:
    """``flagged (output: violence)``, or ``not flagged``, from OpenAI's moderation report."""
    flags = []
    for side in ("input", "output"):
        report = moderation.get(side)
        results = report.get("results") if isinstance(report, dict) else None
        for result in results if isinstance(results, list) else []:
            categories = result.get("categories") if isinstance(result, dict) else None
            if isinstance(categories, dict):
                flags += [f"{side}: {name}" for name, flagged in categories.items() if flagged]
    return f"flagged ({', '.join(flags)})" if flags else "not flagged"


def _outcome(
    finish_reason: str | None, usage: TokenUsage | None, moderation: dict[str, Any] | None
) -> list[str]:
    details = []
    if finish_reason is not None:
        details.append(f"finish_reason: {finish_reason}")
    if usage is not None:
        details.append(f"usage: {describe_usage(usage)}")
    if moderation is not None:
        details.append(f"moderation: {describe_moderation(moderation)}")
    return details


def _cited(kind: str, title: Any, url: Any) -> str:
    return f"[{kind}] {title} <{url}>" if title else f"[{kind}] <{url}>"


def _source_lines(message: Message) -> list[str]:
    """A line per source an answer cites: annotations, or Perplexity's citations."""
    lines = []
    for annotation in message.annotations or ():
        cited = annotation.get("url_citation")
        if isinstance(cited, dict):
            lines.append(_cited("citation", cited.get("title"), cited.get("url")))
        else:
            lines.append(f"[annotation] {annotation.get('type')}")
    if message.citations:
        lines += [_cited("citation", None, url) for url in message.citations]
    else:
        for found in message.search_results or ():
            lines.append(_cited("search result", found.get("title"), found.get("url")))
    return lines


class TextOut(Protocol):
    """Where `TextRenderer` writes: a text stream, such as standard output."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class TextRenderer:
    """Writes events to `out` as they arrive.

    With `live`, each write is flushed at once, for a person watching; without, `out` is
    left to write in large pieces, and its owner flushes it at the end.
    """

    def __init__(self, out: TextOut, *, live: bool = True) -> None:
        self._out = out
        self._live = live
        self._block: str | None = None
        self._streamed: set[str] = set()

    def render(self, event: ResponseEvent) -> None:
        if isinstance(event, ReasoningContentDelta):
            self._stream("reasoning", event.delta)
        elif isinstance(event, OutputTextDelta):
            self._stream("text", event.delta)
        elif isinstance(event, RefusalDelta):
            self._stream("refusal", event.delta)
        elif isinstance(event, OutputItemDone):
            self._finished(event)
        elif isinstance(event, Completed):
            details = _outcome(event.finish_reason or "none", event.token_usage, event.moderation)
            if event.response_id:
                details.append(f"response_id: {event.response_id}")
            self.line(f"[completed] {'; '.join(details)}")
        elif isinstance(event, ErrorEvent):
            status = f", status {event.status}" if event.status is not None else ""
            code = f", code {event.code}" if event.code is not None else ""
            details = _outcome(event.finish_reason, event.token_usage, event.moderation)
            after = f" ({'; '.join(details)})" if details else ""
            self.line(f"[error: {event.kind}{status}{code}] {event.message}{after}")

    def interaction(
        self,
        index: int,
        method: str,
        uri: str,
        status: int,
        retried: Sequence[tuple[int, int]] = (),
        recorded_status: int | None = None,
    ) -> None:
        """The line that opens a recorded or live interaction's events.

        `retried` lists the earlier attempts of the same request (index, status), which the
        client retried; `recorded_status` is the recorded one when a fault replaced it.
        """
        after = ", ".join(f"#{earlier} {code}" for earlier, code in retried)
        notes = [f"retried after {after}"] if after else []
        if recorded_status is not None:
            notes.append(f"injected by --status; recorded {recorded_status}")
        self.line(
            f"== interaction {index}: {method} {uri} -> {status}"
            + (f" ({'; '.join(notes)})" if notes else "")
        )

    def retry(self, seconds: float, after: str) -> None:
        self.line(f"[retry in {seconds:g} s after {after}]")

    def line(self, text: str) -> None:
        """Write a whole line, after closing any streamed block."""
        self._close_block()
        self._out.write(text + "\n")
        if self._live:
            self._out.flush()

    def _stream(self, block: str, text: str) -> None:
        if self._block != block:
            self._close_block()
            if block != "text":
                self._out.write(f"[{block}] ")
            self._block = block
        self._streamed.add(block)
        self._out.write(text)
        if self._live:
            self._out.flush()

    def _close_block(self) -> None:
        if self._block is not None:
            self._out.write("\n")
            self._block = None

    def _finished(self, event: OutputItemDone) -> None:
        item = event.item
        if isinstance(item, Reasoning):
            if "reasoning" not in self._streamed and item.text:
                self.line(f"[reasoning] {item.text}")
            self._streamed.discard("reasoning")
            summary = "".join(part.text for part in item.summary)
            if summary:
                self.line(f"[reasoning summary] {summary}")
            if item.encrypted_content:
                self.line(f"[reasoning] (encrypted, {len(item.encrypted_content)} characters)")
        elif isinstance(item, Message):
            if "text" not in self._streamed and (item.text or item.refusal is None):
                self.line(item.text)
            if "refusal" not in self._streamed and item.refusal is not None:
                self.line(f"[refusal] {item.refusal}")
            self._streamed.difference_update(("text", "refusal"))
            for line in _source_lines(item):
                self.line(line)
        elif isinstance(item, FunctionCall):
            self.line(f"[tool call] {item.name} ({item.call_id}): {item.arguments}")
        else:
            self.line(f"[item] {item.model_dump_json()}")
