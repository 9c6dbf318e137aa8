"""The seed's two aggregation modes over a raw event sequence (seed §7.6, with D5 and D14).

* ``streaming``: deltas pass through as they come; each finished assistant message is
  replaced by one whole message (its text whole, its refusal whole), where the raw stream
  closed it (D5, D23).
* ``aggregated``: only finished items, `Completed` and errors, each reasoning once and whole
  (its text and its summary) (D14, D18).
"""

from typing import Any, Literal

from llmx_replay.models.events import (
    Completed,
    Created,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    RefusalDelta,
    ResponseEvent,
)
from llmx_replay.models.items import (
    ContentItem,
    Message,
    OutputText,
    Reasoning,
    ReasoningText,
    Refusal,
    SummaryText,
)

AggregateMode = Literal["streaming", "aggregated"]

_SWALLOWED = (Created, ReasoningSummaryDelta, ReasoningSummaryPartAdded)


def _whole_reasoning(text: str) -> OutputItemDone:
    return OutputItemDone(item=Reasoning(summary=[], content=[ReasoningText(text=text)]))


def _remade(event: OutputItemDone, item: Message | Reasoning, **update: Any) -> OutputItemDone:
    """`event`, or the same item with its parts made whole when they were not.

    Everything else the item carries (annotations, encrypted content) is kept.
    """
    if all(getattr(item, key) == value for key, value in update.items()):
        return event
    return OutputItemDone(item=item.model_copy(update=update))


def _whole_content(text: str, refusal: str | None) -> list[ContentItem]:
    content: list[ContentItem] = [OutputText(text=text)] if text else []
    if refusal is not None:
        content.append(Refusal(refusal=refusal))
    return content


class Aggregator:
    """Rewrites a raw event sequence for one of the two consumer modes."""

    __slots__ = ("_aggregated", "_reasoning", "_refusal", "_text")

    def __init__(self, mode: AggregateMode) -> None:
        self._aggregated = mode == "aggregated"
        self._text: list[str] = []
        self._refusal: list[str] = []
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
            elif type(event) is RefusalDelta:
                self._refusal.append(event.delta)
                if not aggregated:
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
            refusal = "".join(self._refusal) if self._refusal else item.refusal
            self._refusal.clear()
            if not text and refusal is None:
                # No deltas: the seed's streaming mode forwards the item as it is.
                if self._aggregated and len(item.content) > 1:
                    return _remade(event, item, content=[OutputText(text=item.text)])
                return event
            return _remade(event, item, content=_whole_content(text, refusal))
        if isinstance(item, Reasoning) and self._aggregated:
            text = "".join(self._reasoning) or item.text
            self._reasoning.clear()
            summary = "".join(part.text for part in item.summary)
            return _remade(
                event,
                item,
                content=[ReasoningText(text=text)] if text else [],
                summary=[SummaryText(text=summary)] if summary else [],
            )
        return event

    def _drain(self, out: list[ResponseEvent]) -> None:
        """Deltas that no finished item closed become whole items before `Completed`."""
        if self._reasoning:
            out.append(_whole_reasoning("".join(self._reasoning)))
            self._reasoning.clear()
        if self._text or self._refusal:
            refusal = "".join(self._refusal) if self._refusal else None
            content = _whole_content("".join(self._text), refusal)
            out.append(OutputItemDone(item=Message(role="assistant", content=content)))
            self._text.clear()
            self._refusal.clear()
