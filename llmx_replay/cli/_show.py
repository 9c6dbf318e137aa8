"""`llmx-replay show`: a cassette read as the conversation it records.

For each turn the client made (a retried 429 or 5xx and its retry are one), the messages
the request sent (system, user, assistant, tool calls and their results), then the answer
as the client reads it: reasoning, text, tool calls, the finish reason and usage, or the
error. Colour on a terminal, plain when piped.
"""

from pathlib import Path
from typing import Any

import click
import orjson

from llmx_replay.cassette import load_recording
from llmx_replay.cassette._model import Interaction
from llmx_replay.cli._app import CommandError, cli, format_option
from llmx_replay.cli._inspect import Turn, played_turn
from llmx_replay.harness import require_chat_completions, turns

_ROLE_COLOURS = {"system": "magenta", "developer": "magenta", "user": "green", "tool": "yellow"}


def _sent_messages(interaction: Interaction) -> list[dict[str, Any]]:
    try:
        body = orjson.loads(interaction.request.body or b"")
    except orjson.JSONDecodeError:
        return []
    messages = body.get("messages") if isinstance(body, dict) else None
    return [message for message in messages or [] if isinstance(message, dict)]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    pieces = []
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif isinstance(part, dict) and part.get("type") == "image_url":
            pieces.append("[image]")
    return "\n".join(pieces)


def _call_line(name: Any, arguments: Any, call_id: Any) -> str:
    return f"-> {name}({arguments}) [{call_id}]"


def _message_lines(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(role label, text) lines of one sent message."""
    role = str(message.get("role", "?"))
    label = f"{role} [{message.get('tool_call_id')}]" if role == "tool" else role
    lines = []
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        lines.append((f"{label} (reasoning)", reasoning))
    text = _content_text(message.get("content"))
    if text:
        lines.append((label, text))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        call = call if isinstance(call, dict) else {}
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        lines.append(
            (label, _call_line(function.get("name"), function.get("arguments"), call.get("id")))
        )
    return lines


def _answer_json(turn: Turn) -> dict[str, Any]:
    error = turn.error
    return {
        "reasoning": turn.reasoning or None,
        "text": turn.text,
        "refusal": turn.refusal or None,
        "tool_calls": [
            {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}
            for call in turn.tool_calls
        ],
        "finish_reason": turn.finish_reason,
        "usage": turn.usage.model_dump(mode="json") if turn.usage else None,
        "error": {"kind": error.kind, "message": error.message} if error else None,
    }


def _echo(label: str, text: str, colour: str | None) -> None:
    first, *rest = text.splitlines() or [""]
    click.echo(click.style(f"{label}: ", fg=colour, bold=True) + first)
    indent = " " * (len(label) + 2)
    for line in rest:
        click.echo(indent + line)


def _show_answer(turn: Turn) -> None:
    if turn.reasoning:
        _echo("answer (reasoning)", turn.reasoning, "cyan")
    if turn.text:
        _echo("answer", turn.text, "blue")
    if turn.refusal:
        _echo("answer (refusal)", turn.refusal, "red")
    for call in turn.tool_calls:
        _echo("answer", _call_line(call.name, call.arguments, call.call_id), "blue")
    if turn.error is not None:
        _echo("error", f"{turn.error.kind}: {turn.error.message}", "red")
    else:
        usage = turn.usage
        tokens = f"; tokens {usage.input_tokens}/{usage.output_tokens}" if usage else ""
        click.echo(click.style(f"[finish_reason: {turn.finish_reason}{tokens}]", dim=True))


@cli.command()
@click.argument("cassette", type=click.Path(path_type=Path, dir_okay=False))
@format_option
def show(cassette: Path, output_format: str) -> None:
    """Show a cassette as the conversation it records, turn by turn.

    Each turn's sent messages (system, user, assistant, tool calls and results), then the
    answer as the client reads it. A retried 429 or 5xx and its retry are one turn.
    """
    recording = load_recording(cassette)
    require_chat_completions(recording, str(cassette))
    played = turns(recording)
    if not played:
        raise CommandError(
            f"{cassette}: holds no Chat Completions interaction (a POST to .../chat/completions)"
        )
    shown = []
    for turn in played:
        final = recording.interactions[turn[-1]]
        shown.append((turn, final, played_turn(final.response)))
    if output_format == "json":
        document = [
            {
                "index": turn[-1],
                "retried": turn[:-1],
                "status": final.response.status,
                "model": final.request.model,
                "messages": _sent_messages(final),
                "answer": _answer_json(answer),
            }
            for turn, final, answer in shown
        ]
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        return
    for number, (turn, final, answer) in enumerate(shown):
        if number:
            click.echo()
        retried = f", after {len(turn) - 1} retried" if len(turn) > 1 else ""
        click.echo(
            click.style(
                f"== interaction {turn[-1]}: {final.request.model or '?'} -> "
                f"{final.response.status}{retried}",
                bold=True,
            )
        )
        for message in _sent_messages(final):
            for label, text in _message_lines(message):
                _echo(label, text, _ROLE_COLOURS.get(label.split(" ")[0]))
        _show_answer(answer)
