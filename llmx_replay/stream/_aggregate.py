"""The seed's two aggregation modes over a raw event sequence (seed §7.6, with D5 and D14).

* ``streaming``: deltas pass through as they come; each finished assistant message is
  replaced by one whole message, where the raw stream closed it (D5).
* ``aggregated``: only finished items, `Completed` and errors, each reasoning once (D14).
"""

from collections.abc import Sequence
from typing import Literal

from llmx_replay.models.events import (
    Completed,
    Created,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ResponseEvent,
)
from llmx_replay.models.items import Message, OutputText, Reasoning, ReasoningText

AggregateMode = Literal["streaming", "aggregated"]

_SWALLOWED = (Created, ReasoningSummaryDelta, ReasoningSummaryPartAdded)


def _whole_message(text: str) -> OutputItemDone:
    return OutputItemDone(item=Message(role="assistant", content=[OutputText(text=text)]))


def _whole_reasoning(text: str, like: Reasoning | None = None) -> OutputItemDone:
    return OutputItemDone(
        item=Reasoning(
            summary=like.summary if like else [],
            content=[ReasoningText(text=text)],
            encrypted_content=like.encrypted_content if like else None,
        )
    )


def _is_whole(parts: Sequence[object] | None, text: str) -> bool:
    """True when an item already holds `text` as its single part."""
    return parts is not None and len(parts) == 1 and getattr(parts[0], "text", None) == text


class Aggregator:
    """Rewrites a raw event sequence for one of the two consumer modes."""

    __slots__ = ("_aggregated", "_reasoning", "_text")

    def __init__(self, mode: AggregateMode) -> None:
        self._aggregated = mode == "aggregated"
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def feed(self, events: list[ResponseEvent]) -> list[ResponseEvent]:
        """Rewrite a batch of raw events, keeping state across batches."""
        out: list[ResponseEvent] = []
        aggregated = self._aggregated
        for event in events:
            if type(event) is OutputTextDelta:
                self._text.append(event.delta)
                if not aggregated:
                    out.append(event)
            elif type(event) is ReasoningContentDelta:
                if aggregated:
                    self._reasoning.append(event.delta)
                else:
                    out.append(event)
            elif type(event) is OutputItemDone:
                out.append(self._finished(event))
            elif type(event) is OutputItemAdded:
                if not aggregated:
                    out.append(event)
            elif type(event) is Completed:
                self._drain(out)
                out.append(event)
            elif not isinstance(event, _SWALLOWED):
                out.append(event)
        return out

    def _finished(self, event: OutputItemDone) -> OutputItemDone:
        item = event.item
        if isinstance(item, Message) and item.role == "assistant":
            text = "".join(self._text)
            self._text.clear()
            if not text:
                # No deltas: the seed's streaming mode forwards the item as it is.
                if self._aggregated and len(item.content) != 1:
                    return _whole_message(item.text)
                return event
            return event if _is_whole(item.content, text) else _whole_message(text)
        if isinstance(item, Reasoning) and self._aggregated:
            text = "".join(self._reasoning) or item.text
            self._reasoning.clear()
            return event if _is_whole(item.content, text) else _whole_reasoning(text, item)
        return event

    def _drain(self, out: list[ResponseEvent]) -> None:
        """Deltas that no finished item closed become whole items before `Completed`."""
        if self._reasoning:
            out.append(_whole_reasoning("".join(self._reasoning)))
            self._reasoning.clear()
        if self._text:
            out.append(_whole_message("".join(self._text)))
            self._text.clear()
