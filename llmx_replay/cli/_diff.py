"""`llmx-replay diff`: two recordings of the same conversation compared at the event level.

They are compared interaction by interaction, paired by position. A pair in which one side
is in another API's wire format is compared by its raw request and response bodies, since
its events cannot be read.
"""

import json
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from llmx_replay._exceptions import UnsupportedWireFormat
from llmx_replay.cassette import load_recording
from llmx_replay.cli._app import CommandError, FiniteFloat, cli, format_option
from llmx_replay.cli._inspect import InteractionFacts, Turn, cassette_facts, chunk_size_summary
from llmx_replay.cli._render import describe_usage
from llmx_replay.models.events import ErrorEvent

CATEGORIES = (
    "request",
    "status",
    "text",
    "reasoning",
    "tool_calls",
    "finish",
    "usage",
    "chunking",
    "timing",
    "body",
)
"""What `--ignore` can leave out: `text` covers the answer's text and its refusal; `finish`
the finish reason, errors, the moderation report and partial recordings; `request` the URI,
the model, interactions present in one recording only and the raw request body; `body` the
raw response body (both bodies are compared only where the events cannot be)."""

DEFAULT_TIMING_TOLERANCE = 25.0
"""Percent of the longer time within which two timings count as equal."""

_CONTEXT = 20  # characters shown on each side of the first difference between two texts


@dataclass(frozen=True)
class Difference:
    """One thing that differs; `a` and `b` are JSON-ready.

    For texts, `character` is where they first differ (1-based, as `cmp` counts).
    """

    category: str
    field: str
    a: Any
    b: Any
    interaction: int | None = None
    character: int | None = None

    def line(self) -> str:
        where = "" if self.interaction is None else f"interaction {self.interaction}: "
        if self.field == "interaction":
            side, present = ("A", self.a) if self.b is None else ("B", self.b)
            return f"{where}only in {side}: {present}"
        if self.character is not None:
            at = self.character - 1
            return (
                f"{where}{self.field} differs at character {self.character}: "
                f"{_excerpt(self.a, at)} -> {_excerpt(self.b, at)}"
            )
        return f"{where}{self.field}: {_shown(self.a)} -> {_shown(self.b)}"

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "interaction": self.interaction,
            "category": self.category,
            "field": self.field,
            "a": self.a,
            "b": self.b,
        }
        if self.character is not None:
            document["character"] = self.character
        return document


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items())
    return str(value)


def _excerpt(text: str, at: int) -> str:
    start, end = max(at - _CONTEXT, 0), at + _CONTEXT
    quoted = json.dumps(text[start:end], ensure_ascii=False)
    return f"{'...' if start else ''}{quoted}{'...' if end < len(text) else ''}"


def _first_difference(a: str, b: str) -> int:
    return next(
        (position for position, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
        min(len(a), len(b)),
    )


class _Comparison:
    def __init__(self, index: int, timing_tolerance: float) -> None:
        self.index = index
        self.timing_tolerance = timing_tolerance
        self.found: list[Difference] = []

    def value(self, category: str, field: str, a: Any, b: Any) -> None:
        if a != b:
            self.found.append(Difference(category, field, a, b, self.index))

    def text(self, category: str, field: str, a: str, b: str) -> None:
        if a != b:
            at = _first_difference(a, b)
            self.found.append(Difference(category, field, a, b, self.index, at + 1))

    def time(self, field: str, a: float | None, b: float | None) -> None:
        # No two live recordings take exactly the same time: only a change beyond the
        # tolerance (a percentage of the longer time) counts.
        if a is None or b is None:
            self.value("timing", field, a, b)
        elif abs(a - b) > max(a, b) * self.timing_tolerance / 100:
            self.found.append(Difference("timing", field, a, b, self.index))


def _error(error: ErrorEvent | None) -> str | None:
    return None if error is None else f"{error.kind}: {error.message}"


def _turns(compare: _Comparison, a: Turn, b: Turn) -> None:
    compare.text("text", "text", a.text, b.text)
    compare.text("text", "refusal", a.refusal, b.refusal)
    compare.text("reasoning", "reasoning", a.reasoning, b.reasoning)
    # Call ids are left out: providers make new ones on every run.
    compare.value("tool_calls", "tool_calls", len(a.tool_calls), len(b.tool_calls))
    for position, (call_a, call_b) in enumerate(zip(a.tool_calls, b.tool_calls, strict=False)):
        field = f"tool_calls[{position}]"
        compare.value("tool_calls", f"{field}.name", call_a.name, call_b.name)
        compare.text("tool_calls", f"{field}.arguments", call_a.arguments, call_b.arguments)
    compare.value("finish", "finish_reason", a.finish_reason, b.finish_reason)
    compare.value("finish", "error", _error(a.error), _error(b.error))
    compare.value("finish", "moderation", a.moderation, b.moderation)
    if a.usage is None or b.usage is None:
        shown = [None if usage is None else describe_usage(usage) for usage in (a.usage, b.usage)]
        compare.value("usage", "usage", *shown)
    else:
        usage_b = b.usage.model_dump()
        for name, count in a.usage.model_dump().items():
            compare.value("usage", f"usage.{name}", count, usage_b[name])


def _interactions(
    a: InteractionFacts, b: InteractionFacts, timing_tolerance: float
) -> list[Difference]:
    compare = _Comparison(a.index, timing_tolerance)
    compare.value("request", "uri", a.uri, b.uri)
    compare.value("request", "model", a.model, b.model)
    compare.value("status", "status", a.status, b.status)
    if a.turn is not None and b.turn is not None:
        _turns(compare, a.turn, b.turn)
    if a.wire_format is not None or b.wire_format is not None:
        compare.text("request", "request_body", _text(a.request_body), _text(b.request_body))
        compare.text("body", "response_body", _text(a.response_body), _text(b.response_body))
    compare.value("finish", "partial", a.partial, b.partial)
    compare.value("chunking", "chunks", a.chunks, b.chunks)
    compare.value("chunking", "events", a.events, b.events)
    compare.value(
        "chunking",
        "chunk_bytes",
        chunk_size_summary(a.chunk_sizes),
        chunk_size_summary(b.chunk_sizes),
    )
    compare.time("first_chunk_ms", a.first_chunk_ms, b.first_chunk_ms)
    compare.time("total_ms", a.total_ms, b.total_ms)
    return compare.found


def _text(body: bytes) -> str:
    return body.decode(errors="replace")


def _summary(facts: InteractionFacts) -> str:
    return f"{facts.method} {facts.uri or '-'} -> {facts.status}"


def diff_recordings(
    facts_a: list[InteractionFacts],
    facts_b: list[InteractionFacts],
    *,
    timing_tolerance: float = DEFAULT_TIMING_TOLERANCE,
    ignore: Collection[str] = (),
) -> list[Difference]:
    """What differs between two recordings' facts, leaving out the `ignore` categories."""
    found: list[Difference] = []
    if len(facts_a) != len(facts_b):
        found.append(Difference("request", "interactions", len(facts_a), len(facts_b)))
    for one, other in zip(facts_a, facts_b, strict=False):
        found += _interactions(one, other, timing_tolerance)
    found += [
        Difference("request", "interaction", _summary(facts), None, facts.index)
        for facts in facts_a[len(facts_b) :]
    ]
    found += [
        Difference("request", "interaction", None, _summary(facts), facts.index)
        for facts in facts_b[len(facts_a) :]
    ]
    return [difference for difference in found if difference.category not in ignore]


_DIFFERENT = 1


@cli.command("diff")
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False))
@format_option
@click.option(
    "--ignore",
    type=click.Choice(CATEGORIES),
    multiple=True,
    help="Leave out one kind of difference (repeatable).",
)
@click.option(
    "--timing-tolerance",
    type=FiniteFloat(min=0),
    default=DEFAULT_TIMING_TOLERANCE,
    show_default=True,
    metavar="PERCENT",
    help="Timings within this percentage of the longer one count as equal.",
)
def diff_command(
    a: Path, b: Path, output_format: str, ignore: tuple[str, ...], timing_tolerance: float
) -> None:
    """Compare two recordings of the same conversation, interaction by interaction.

    It compares text, reasoning, tool calls (not their ids), finish reason, usage, chunking
    and timing. An interaction in another API's wire format (Anthropic Messages, OpenAI
    Responses, Gemini) has its raw request and response bodies compared instead of its
    events.

    Exit status 0 when they are alike, 1 when they differ, 2 when events could not be
    compared (after the differences found in what could).
    """
    facts_a, facts_b = cassette_facts(load_recording(a)), cassette_facts(load_recording(b))
    differences = diff_recordings(
        facts_a, facts_b, timing_tolerance=timing_tolerance, ignore=ignore
    )
    unsupported = [
        UnsupportedWireFormat(str(path), facts.index, facts.wire_format)
        for path, all_facts in ((a, facts_a), (b, facts_b))
        for facts in all_facts
        if facts.wire_format is not None
    ]
    if output_format == "json":
        document = {
            "a": str(a),
            "b": str(b),
            "equal": not differences,
            "differences": [difference.as_json() for difference in differences],
            "unsupported_wire_formats": [
                {
                    "file": error.source,
                    "interaction": error.interaction,
                    "wire_format": error.wire_format,
                }
                for error in unsupported
            ],
        }
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    else:
        for difference in differences:
            click.echo(difference.line())
        if not differences:
            click.echo("no differences")
    if unsupported:
        raise CommandError(f"events not compared: {unsupported[0]}")
    if differences:
        sys.exit(_DIFFERENT)
