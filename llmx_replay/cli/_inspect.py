"""`llmx-replay inspect`: what a recording holds, interaction by interaction.

The facts gathered here are also those `llmx-replay diff` compares.
"""

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from llmx_replay._exceptions import SSEDecodeError
from llmx_replay.cassette import SSE_FORMAT, Cassette, Interaction, RecordedResponse, load_recording
from llmx_replay.cassette._model import model_in
from llmx_replay.cli._app import cli, format_option
from llmx_replay.cli._render import describe_moderation
from llmx_replay.harness import Playback, play_response, require_chat_completions, turns
from llmx_replay.models.events import Completed, ErrorEvent, OutputItemDone, TokenUsage
from llmx_replay.models.items import FunctionCall, Message, Reasoning
from llmx_replay.stream._sse import SSEDecoder
from llmx_replay.stream._wire import foreign_wire_format


@dataclass(frozen=True)
class Turn:
    """What the client makes of a response, played in aggregated mode."""

    text: str
    refusal: str
    reasoning: str
    tool_calls: tuple[FunctionCall, ...]
    finish_reason: str | None
    usage: TokenUsage | None
    moderation: str | None  # described, as `describe_moderation` does
    error: ErrorEvent | None


def played_turn(response: RecordedResponse) -> Turn:
    """What the client makes of `response`, played in aggregated mode."""
    text: list[str] = []
    refusal: list[str] = []
    reasoning: list[str] = []
    calls: list[FunctionCall] = []
    end: Completed | ErrorEvent | None = None
    for event in play_response(response, Playback(mode="aggregated")):
        if isinstance(event, OutputItemDone):
            item = event.item
            if isinstance(item, Message):
                text.append(item.text)
                refusal.append(item.refusal or "")
            elif isinstance(item, Reasoning):
                reasoning.append(item.text)
            elif isinstance(item, FunctionCall):
                calls.append(item)
        elif isinstance(event, Completed | ErrorEvent):
            end = event
    # An error still carries the finish reason, usage and moderation sent before it (D20).
    moderation = end.moderation if end is not None else None
    return Turn(
        text="".join(text),
        refusal="".join(refusal),
        reasoning="".join(reasoning),
        tool_calls=tuple(calls),
        finish_reason=end.finish_reason if end is not None else None,
        usage=end.token_usage if end is not None else None,
        moderation=describe_moderation(moderation) if moderation is not None else None,
        error=end if isinstance(end, ErrorEvent) else None,
    )


@dataclass(frozen=True)
class InteractionFacts:
    """One interaction as `inspect` shows it, and `diff` compares it.

    Times are in ms from the start of the request, None when the recording has no timing
    (cassettes written by other tools). An interaction in another API's wire format has
    its format in `wire_format`, and no `turn`: its events cannot be read, only its bodies
    compared.
    """

    index: int
    method: str
    uri: str
    status: int
    provider: str | None
    model: str | None
    chunk_sizes: tuple[int, ...]
    events: int
    headers_ms: float | None
    first_chunk_ms: float | None
    total_ms: float | None
    partial: str | None
    wire_format: str | None
    request_body: bytes
    response_body: bytes
    turn: Turn | None  # None for what is not a Chat Completions request
    retried_by: int | None = None  # the attempt that answered this retried one's turn

    @property
    def chunks(self) -> int:
        return len(self.chunk_sizes)


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return None
    return host or None


def _first_chunk_model(response: RecordedResponse) -> str | None:
    """The `model` of the first JSON chunk of the body (or of a JSON body)."""
    if response.body.lstrip()[:1] == b"{":
        return model_in(response.body)
    decoder = SSEDecoder()
    try:
        payloads = decoder.decode_data(response.body)
    except SSEDecodeError as error:
        payloads = error.events
    return next((model for model in map(model_in, payloads) if model is not None), None)


def _interaction_facts(
    index: int, interaction: Interaction, cassette: Cassette, retried_by: int | None
) -> InteractionFacts:
    request, response = interaction.request, interaction.response
    metadata = cassette.metadata
    chunks = response.chunks
    wire_format = foreign_wire_format(response.body, request.uri)
    # A raw SSE body comes without its request, and is read as a Chat Completions stream.
    read = request.is_chat_completions or cassette.source_format == SSE_FORMAT
    return InteractionFacts(
        index=index,
        method=request.method,
        uri=request.uri,
        status=response.status,
        provider=_host(request.uri) or _host(metadata.base_url if metadata else None),
        model=request.model or _first_chunk_model(response),
        chunk_sizes=tuple(len(data) for data, _ in response.recorded_chunks()),
        events=sum(1 for _ in response.event_chunks()),
        headers_ms=response.headers_ms,
        first_chunk_ms=chunks[0][1] if chunks else None,
        total_ms=chunks[-1][1] if chunks else response.headers_ms,
        partial=response.partial,
        wire_format=wire_format,
        request_body=request.body or b"",
        response_body=response.body,
        turn=played_turn(response) if read and wire_format is None else None,
        retried_by=retried_by,
    )


def cassette_facts(cassette: Cassette) -> list[InteractionFacts]:
    # A client retries a 429 or 5xx with the same request: the turn's last attempt answers.
    retried_by = {attempt: turn[-1] for turn in turns(cassette) for attempt in turn[:-1]}
    return [
        _interaction_facts(index, interaction, cassette, retried_by.get(index))
        for index, interaction in enumerate(cassette.interactions)
    ]


def chunk_size_summary(sizes: tuple[int, ...]) -> dict[str, int] | None:
    if not sizes:
        return None
    return {"min": min(sizes), "median": statistics.median_low(sizes), "max": max(sizes)}


# --- the report ------------------------------------------------------------------------


def _usage_json(usage: TokenUsage | None) -> dict[str, int] | None:
    return None if usage is None else usage.model_dump()


def _error_json(error: ErrorEvent | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "kind": error.kind,
        "message": error.message,
        "status": error.status,
        "provider_error": error.provider_error,
    }


def _facts_json(facts: InteractionFacts) -> dict[str, Any]:
    turn = facts.turn
    return {
        "index": facts.index,
        "method": facts.method,
        "uri": facts.uri,
        "status": facts.status,
        "provider": facts.provider,
        "model": facts.model,
        "chunks": facts.chunks,
        "events": facts.events,
        "headers_ms": facts.headers_ms,
        "first_chunk_ms": facts.first_chunk_ms,
        "total_ms": facts.total_ms,
        "finish_reason": turn.finish_reason if turn else None,
        "usage": _usage_json(turn.usage if turn else None),
        "moderation": turn.moderation if turn else None,
        "error": _error_json(turn.error if turn else None),
        "partial": facts.partial,
        "retried_by": facts.retried_by,
    }


def inspect_json(cassette: Cassette, source: str) -> dict[str, Any]:
    """The whole report as one JSON-ready object."""
    metadata = cassette.metadata
    return {
        "file": source,
        "format": cassette.source_format,
        "metadata": metadata.model_dump() if metadata else None,
        "interactions": [_facts_json(facts) for facts in cassette_facts(cassette)],
    }


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _usage_cell(usage: TokenUsage | None) -> str:
    if usage is None:
        return "-"
    return f"{usage.input_tokens}/{usage.output_tokens}/{usage.total_tokens}"


_COLUMNS = (
    "#",
    "status",
    "provider",
    "model",
    "chunks",
    "headers",
    "first",
    "total",
    "finish",
    "tokens",
    "partial",
    "request",
)
_LEGEND = (
    "(headers, first, total: ms from the start of the request to the headers, the first "
    "chunk and the last; tokens: input/output/total)"
)


def _row(facts: InteractionFacts) -> list[str]:
    turn = facts.turn
    finish = "-"
    if turn is not None:
        finish = turn.finish_reason or ("-" if turn.error else "none")
    return [
        str(facts.index),
        str(facts.status),
        facts.provider or "-",
        facts.model or "-",
        str(facts.chunks),
        _milliseconds(facts.headers_ms),
        _milliseconds(facts.first_chunk_ms),
        _milliseconds(facts.total_ms),
        finish,
        _usage_cell(turn.usage if turn else None),
        "yes" if facts.partial else "-",
        f"{facts.method} {facts.uri or '-'}",
    ]


def _table(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns, two spaces apart, without trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _notes(facts: InteractionFacts) -> list[str]:
    notes: list[str] = []
    error = facts.turn.error if facts.turn else None
    if facts.retried_by is not None:
        notes.append(
            f"interaction {facts.index}: status {facts.status}, retried: interaction "
            f"{facts.retried_by} answered the turn"
        )
    elif error is not None:
        status = f", status {error.status}" if error.status is not None else ""
        code = f", code {error.code}" if error.code is not None else ""
        notes.append(
            f"interaction {facts.index}: error: {error.kind}{status}{code}: {error.message}"
        )
    if facts.turn is not None and facts.turn.moderation is not None:
        notes.append(f"interaction {facts.index}: moderation: {facts.turn.moderation}")
    if facts.partial:
        notes.append(f"interaction {facts.index}: partial: {facts.partial}")
    return notes


def inspect_text(cassette: Cassette, source: str) -> str:
    """The report for people.

    It gives the cassette's facts, a table, then errors and partial recordings in full.
    """
    lines = [f"file: {source}", f"format: {cassette.source_format}"]
    if cassette.metadata is not None:
        lines += [
            f"{name}: {value}"
            for name, value in cassette.metadata.model_dump().items()
            if value is not None
        ]
    all_facts = cassette_facts(cassette)
    lines.append(f"interactions: {len(all_facts)}")
    if all_facts:
        lines += ["", *_table([list(_COLUMNS), *(_row(facts) for facts in all_facts)]), _LEGEND]
    notes = [note for facts in all_facts for note in _notes(facts)]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


@cli.command("inspect")
@click.argument("cassette", type=click.Path(path_type=Path, dir_okay=False))
@format_option
def inspect_command(cassette: Path, output_format: str) -> None:
    """Summarize a cassette (or a raw SSE body), interaction by interaction.

    For each it shows the request, status, provider, model, chunks, timing, finish reason,
    usage and whether it is partial. A response in another API's wire format (Anthropic
    Messages, OpenAI Responses, Gemini) is refused.
    """
    recording = load_recording(cassette)
    require_chat_completions(recording, str(cassette))
    if output_format == "json":
        click.echo(orjson.dumps(inspect_json(recording, str(cassette)), option=orjson.OPT_INDENT_2))
    else:
        click.echo(inspect_text(recording, str(cassette)), nl=False)
