"""Chat Completions stream chunks -> `ResponseEvent`s (seed §7.4, with D4-D11 and D16-D23).

A pure state machine: it is given each SSE ``data`` string, and then told how the stream
ended. It never raises for what a provider sends; failures end the turn with an
`ErrorEvent`, after the items received so far have been emitted as finished (D8).
"""

from collections.abc import Iterable
from typing import Any

import orjson

from llmx_replay._exceptions import with_article
from llmx_replay.models.events import (
    Completed,
    ErrorEvent,
    ErrorKind,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
    TokenUsage,
)
from llmx_replay.models.items import (
    ContentItem,
    Message,
    OutputText,
    Reasoning,
    ReasoningContent,
    ReasoningText,
    SummaryText,
    refusal_parts,
    text_parts,
)
from llmx_replay.stream._provider_errors import provider_message
from llmx_replay.stream._tool_calls import ToolCallAccumulator
from llmx_replay.stream._wire import payload_wire_format

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

STREAM_CLOSED_EARLY = "stream closed before completion"
_UTF8_BOM = b"\xef\xbb\xbf"
_PREVIEW_BYTES = 200


def _text_of(value: Any) -> str | None:
    """Reasoning text sent as a string, or as an object with `text` or else `content`."""
    if type(value) is str:
        return value or None
    if type(value) is dict:
        for key in ("text", "content"):
            text = value.get(key)
            if type(text) is str and text:
                return text
    return None


def _int_at(mapping: Any, key: str) -> int | None:
    if type(mapping) is not dict:
        return None
    value = mapping.get(key)
    return value if type(value) is int else None


def _joined(pieces: list[str], whole: bool) -> list[str]:
    """The texts of an item's parts: one per piece, or one whole text when asked for."""
    return ["".join(pieces)] if whole and pieces else pieces


class ChatStreamProcessor:
    """Turns the data payloads of one streamed Chat Completions turn into events.

    Only the choice with index 0 is followed; a request with ``n > 1`` is out of scope.
    """

    __slots__ = (
        "_annotations",
        "_calls",
        "_citations",
        "_encrypted",
        "_finish_reason",
        "_moderation",
        "_reasoning",
        "_refusal",
        "_response_id",
        "_search_results",
        "_summary",
        "_text",
        "_usage",
        "_usage_key",
        "_whole_reasoning",
        "_whole_text",
        "done",
    )

    def __init__(self, *, whole_text: bool = False, whole_reasoning: bool = False) -> None:
        """A finished message or reasoning has one part per delta, as in the seed.

        `whole_text` / `whole_reasoning` ask for one whole part instead: what the consumer
        modes would turn them into anyway.
        """
        self._whole_text = whole_text
        self._whole_reasoning = whole_reasoning
        # An open message holds its text and refusal pieces and the annotations sent with
        # it; an open reasoning its text, summary and encrypted pieces. None: not open.
        self._text: list[str] | None = None
        self._refusal: list[str] = []
        self._annotations: list[dict[str, Any]] = []
        self._reasoning: list[str] | None = None
        self._summary: list[str] = []
        self._encrypted: list[str] = []
        # Perplexity repeats the sources of the whole answer on every chunk: the last wins.
        self._citations: list[str] | None = None
        self._search_results: list[dict[str, Any]] | None = None
        self._moderation: dict[str, Any] | None = None
        self._calls = ToolCallAccumulator()
        self._usage: TokenUsage | None = None
        self._usage_key: tuple[int, ...] | None = None
        self._finish_reason: str | None = None
        self._response_id = ""
        self.done = False
        """True once the turn has ended (with `Completed` or an `ErrorEvent`)."""

    def process(self, data: str | bytes) -> list[ResponseEvent]:
        """Handle one SSE ``data`` payload (text, or its UTF-8 bytes)."""
        out: list[ResponseEvent] = []
        self._handle(data.encode() if isinstance(data, str) else data, out)
        return out

    def process_many(self, payloads: Iterable[bytes]) -> list[ResponseEvent]:
        """Handle several ``data`` payloads, as UTF-8 bytes, in order."""
        out: list[ResponseEvent] = []
        handle = self._handle
        for data in payloads:
            handle(data, out)
        return out

    def _handle(self, data: bytes, out: list[ResponseEvent]) -> None:
        if self.done:
            return
        if data[:1] != b"{":
            if data.strip() == b"[DONE]":
                self._complete(out)
                return
            if data.lstrip()[:1] != b"{":
                return
        try:
            chunk = _loads(data)
        except _JSONDecodeError:
            return
        if type(chunk) is not dict:
            return
        if not self._response_id:
            # D17: the response's id is the first non-empty one a chunk carries.
            response_id = chunk.get("id")
            if type(response_id) is str:
                self._response_id = response_id
        usage = chunk.get("usage")
        if usage:
            self._read_usage(usage)
        elif "x_groq" in chunk:
            # D16: Groq sends the usage inside its own `x_groq` object.
            x_groq = chunk["x_groq"]
            if type(x_groq) is dict and x_groq.get("usage"):
                self._read_usage(x_groq["usage"])
        # Keys that few chunks carry are looked for with `in`, the cheapest miss.
        if "moderation" in chunk:
            moderation = chunk["moderation"]
            if moderation and type(moderation) is dict:
                self._moderation = moderation  # D21: the last report wins, as in openai-python.
        if "citations" in chunk:
            self._read_sources(chunk)
        error = chunk.get("error")
        if error is not None:  # D10: `"error": null` is no error.
            # D19: the whole error object is kept; the status is the stream's own (seed S7).
            self._fail(out, "unexpected_status", provider_message(error), 200, error)
            return
        choices = chunk.get("choices")
        if not choices or type(choices) is not list:
            if choices is None and ("type" in chunk or "candidates" in chunk):
                self._refuse_another_api(chunk, out)
            return
        choice = choices[0]
        if type(choice) is not dict or choice.get("index", 0) not in (0, None):
            choice = self._first_choice(choices)
            if choice is None:
                return
        delta = choice.get("delta")
        if delta and type(delta) is dict:
            self._apply_delta(delta, out)
        message = choice.get("message")
        if message and type(message) is dict:
            # Some providers put reasoning only on a final `message` object.
            text = _text_of(message.get("reasoning")) or _text_of(message.get("reasoning_content"))
            if text:
                self._append_reasoning(text, out)
        finish_reason = choice.get("finish_reason")
        if finish_reason and type(finish_reason) is str:
            # D6, D7: note the reason, emit what is finished, and read on to [DONE].
            self._finish_reason = finish_reason
            self._flush(out)

    def end_of_stream(self) -> list[ResponseEvent]:
        """The body ended. Without `[DONE]` or a finish reason that is an error (D8)."""
        return self.end_abruptly("stream", STREAM_CLOSED_EARLY)

    def end_abruptly(self, kind: ErrorKind, message: str) -> list[ResponseEvent]:
        """The stream broke off (idle timeout, transport or decoding error).

        After a finish reason the turn still completes normally (D6).
        """
        out: list[ResponseEvent] = []
        if not self.done:
            self._end(out, kind, message)
        return out

    def process_json_body(self, body: bytes, status: int) -> list[ResponseEvent]:
        """Handle a successful response whose body is JSON rather than an event stream.

        A JSON error ends the turn quoting the provider's message; a complete (non-streamed)
        chat completion has its content emitted as finished items first (D8).
        """
        out: list[ResponseEvent] = []
        if self.done:
            return out
        try:
            document = _loads(body.removeprefix(_UTF8_BOM))
        except _JSONDecodeError:
            preview = body[:_PREVIEW_BYTES].decode(errors="replace")
            self._fail(out, "stream", f"expected an event stream, got: {preview}", status)
            return out
        if type(document) is dict and document.get("error") is not None:
            error = document["error"]
            message = f"expected an event stream, got a JSON error: {provider_message(error)}"
            self._fail(out, "stream", message, status, error)
            return out
        if type(document) is dict:
            if document.get("usage"):
                self._read_usage(document["usage"])
            if "citations" in document:
                self._read_sources(document)
            choices = document.get("choices")
            choice = self._first_choice(choices) if type(choices) is list else None
            if choice is not None:
                message_value = choice.get("message")
                if type(message_value) is dict:
                    self._apply_delta(message_value, out)
                finish_reason = choice.get("finish_reason")
                if finish_reason and type(finish_reason) is str:
                    self._finish_reason = finish_reason
        self._fail(
            out,
            "stream",
            "expected an event stream, got a complete JSON response "
            "(a non-streamed chat completion)",
            status,
        )
        return out

    def _refuse_another_api(self, chunk: dict[str, Any], out: list[ResponseEvent]) -> None:
        """Another API's stream is not misread as an empty Chat Completions turn."""
        found = payload_wire_format(chunk)
        if found is not None:
            message = f"expected a Chat Completions stream, got {with_article(found)}"
            self._fail(out, "stream", message)

    @staticmethod
    def _first_choice(choices: list[Any]) -> dict[str, Any] | None:
        for choice in choices:
            if type(choice) is dict and choice.get("index", 0) in (0, None):
                return choice
        return None

    def _apply_delta(self, delta: dict[str, Any], out: list[ResponseEvent]) -> None:
        # Most deltas hold `content` alone: the other keys are looked for with `in`, the
        # cheapest miss.
        text = None
        # D9: reasoning first, from `reasoning` or else `reasoning_content`, never both.
        if "reasoning" in delta:
            text = _text_of(delta["reasoning"])
        if text is None and "reasoning_content" in delta:
            text = _text_of(delta["reasoning_content"])
        if text is not None:
            self._append_reasoning(text, out)
        if "reasoning_details" in delta:
            details = delta["reasoning_details"]
            if details and type(details) is list:
                # D18: their text repeats `reasoning` when a chunk has both.
                self._apply_reasoning_details(details, text is None, out)
        content = delta.get("content")
        if content:
            if type(content) is str:
                self._append_text(content, out)
            elif type(content) is list:
                self._append_parts(content, out)
        if "refusal" in delta:
            refusal = delta["refusal"]
            if refusal and type(refusal) is str:
                self._append_refusal(refusal, out)
        if "annotations" in delta:
            annotations = delta["annotations"]
            if annotations and type(annotations) is list:
                self._annotations += (note for note in annotations if type(note) is dict)
        if "tool_calls" in delta:
            tool_calls = delta["tool_calls"]
            if tool_calls and type(tool_calls) is list:
                for fragment in tool_calls:
                    if type(fragment) is dict:
                        self._calls.add(fragment)

    def _open_message(self, out: list[ResponseEvent]) -> list[str]:
        if self._text is None:
            self._text = []
            out.append(OutputItemAdded(Message(role="assistant", content=[])))
        return self._text

    def _append_text(self, text: str, out: list[ResponseEvent]) -> None:
        pieces = self._text
        if pieces is None:  # `_open_message` inlined: this runs once per text delta
            pieces = self._open_message(out)
        pieces.append(text)
        out.append(OutputTextDelta(text))

    def _append_refusal(self, refusal: str, out: list[ResponseEvent]) -> None:
        """D23: a refusal is part of the answer's message, marked as a refusal."""
        self._open_message(out)
        self._refusal.append(refusal)
        out.append(RefusalDelta(refusal))

    def _open_reasoning(self, out: list[ResponseEvent]) -> list[str]:
        if self._reasoning is None:
            self._reasoning = []
            out.append(OutputItemAdded(Reasoning(summary=[], content=[])))
        return self._reasoning

    def _append_reasoning(self, text: str, out: list[ResponseEvent]) -> None:
        pieces = self._reasoning
        if pieces is None:  # `_open_reasoning` inlined: this runs once per reasoning delta
            pieces = self._open_reasoning(out)
        pieces.append(text)
        out.append(ReasoningContentDelta(text))

    def _apply_reasoning_details(
        self, details: list[Any], with_text: bool, out: list[ResponseEvent]
    ) -> None:
        """OpenRouter's `reasoning_details` (D18).

        Text is reasoning content; encrypted data, and the signature Anthropic puts on its
        text, are the reasoning's encrypted content; summaries are its summary.
        """
        for detail in details:
            if type(detail) is not dict:
                continue
            kind = detail.get("type")
            if kind == "reasoning.text":
                text = detail.get("text")
                if with_text and type(text) is str and text:
                    self._append_reasoning(text, out)
                signature = detail.get("signature")
                if type(signature) is str and signature:
                    self._open_reasoning(out)
                    self._encrypted.append(signature)
            elif kind == "reasoning.encrypted":
                data = detail.get("data")
                if type(data) is str and data:
                    self._open_reasoning(out)
                    self._encrypted.append(data)
            elif kind == "reasoning.summary":
                summary = detail.get("summary")
                if type(summary) is str and summary:
                    self._open_reasoning(out)
                    self._summary.append(summary)

    def _read_sources(self, chunk: dict[str, Any]) -> None:
        """Perplexity's `citations` and `search_results`, both sent whole on every chunk (D22)."""
        citations = chunk.get("citations")
        if type(citations) is list and citations:
            self._citations = [url for url in citations if type(url) is str]
        search_results = chunk.get("search_results")
        if type(search_results) is list and search_results:
            self._search_results = [found for found in search_results if type(found) is dict]

    def _append_parts(self, parts: list[Any], out: list[ResponseEvent]) -> None:
        """Array-form content (D9): text parts, and Mistral's `thinking` parts as reasoning."""
        for part in parts:
            if type(part) is not dict:
                continue
            kind = part.get("type", "text")
            if kind == "text":
                text = part.get("text")
                if type(text) is str and text:
                    self._append_text(text, out)
            elif kind == "thinking":
                thinking = part.get("thinking")
                pieces = thinking if type(thinking) is list else [thinking]
                for piece in pieces:
                    reasoning = _text_of(piece)
                    if reasoning:
                        self._append_reasoning(reasoning, out)

    def _read_usage(self, usage: Any) -> None:
        """The last complete usage wins; a missing total is the sum (D11)."""
        prompt_tokens = _int_at(usage, "prompt_tokens")
        completion_tokens = _int_at(usage, "completion_tokens")
        if prompt_tokens is None or completion_tokens is None:
            return
        total = _int_at(usage, "total_tokens")
        cached = _int_at(usage.get("prompt_tokens_details"), "cached_tokens")
        if cached is None:
            cached = _int_at(usage, "cache_read_input_tokens")
        reasoning = _int_at(usage.get("completion_tokens_details"), "reasoning_tokens")
        key = (
            prompt_tokens,
            cached or 0,
            completion_tokens,
            reasoning or 0,
            prompt_tokens + completion_tokens if total is None else total,
        )
        if key != self._usage_key:
            self._usage_key = key
            self._usage = TokenUsage(
                input_tokens=key[0],
                cached_input_tokens=key[1],
                output_tokens=key[2],
                reasoning_output_tokens=key[3],
                total_tokens=key[4],
            )

    def _flush(self, out: list[ResponseEvent]) -> None:
        """Emit the finished items in the order the model produced them (D5)."""
        if self._reasoning is not None:
            whole = self._whole_reasoning
            content: list[ReasoningContent] = []
            content += text_parts(ReasoningText, _joined(self._reasoning, whole))
            # Not validated: that would only check again each part `text_parts` built.
            reasoning = Reasoning.model_construct(
                summary=text_parts(SummaryText, _joined(self._summary, whole)),
                content=content,
                encrypted_content="".join(self._encrypted) if self._encrypted else None,
            )
            out.append(OutputItemDone(reasoning))
            self._reasoning = None
            self._summary = []
            self._encrypted = []
        if self._text is not None or self._annotations:
            self._flush_message(out)
        if self._calls:
            out.extend(OutputItemDone(call) for call in self._calls.finish())

    def _flush_message(self, out: list[ResponseEvent]) -> None:
        """The answer's message; annotations with no text still make one, not to lose them."""
        whole = self._whole_text
        content: list[ContentItem] = []
        content += text_parts(OutputText, _joined(self._open_message(out), whole))
        content += refusal_parts(_joined(self._refusal, whole))
        # Not validated: that would only check again the parts built above, and sources
        # that `_apply_delta` and `_read_sources` kept only as JSON objects and strings.
        message = Message.model_construct(
            role="assistant",
            content=content,
            annotations=self._annotations or None,
            citations=self._citations,
            search_results=self._search_results,
        )
        out.append(OutputItemDone(message))
        self._text = None
        self._refusal = []
        self._annotations = []

    def _complete(self, out: list[ResponseEvent]) -> None:
        self._flush(out)
        out.append(
            Completed(
                response_id=self._response_id,
                token_usage=self._usage,
                finish_reason=self._finish_reason,
                moderation=self._moderation,
            )
        )
        self.done = True

    def _fail(
        self,
        out: list[ResponseEvent],
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        provider_error: Any = None,
    ) -> None:
        """End with an error that still carries what the provider said before it (D20)."""
        self._flush(out)
        out.append(
            ErrorEvent(
                kind=kind,
                message=message,
                status=status,
                provider_error=provider_error,
                finish_reason=self._finish_reason,
                token_usage=self._usage,
                moderation=self._moderation,
            )
        )
        self.done = True

    def _end(self, out: list[ResponseEvent], kind: ErrorKind, message: str) -> None:
        if self._finish_reason is not None:
            self._complete(out)
        else:
            self._fail(out, kind, message)
