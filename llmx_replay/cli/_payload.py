"""`llmx-replay payload`: the JSON body the client would send for a conversation file."""

from pathlib import Path

import click
import orjson

from llmx_replay._exceptions import UnsupportedOperation
from llmx_replay.cli._app import CommandError, cli, max_tokens_options, max_tokens_setting
from llmx_replay.cli._conversation import load_prompt
from llmx_replay.models.prompt import ProviderSettings
from llmx_replay.stream._request import build_body, chat_completions_url


@cli.command()
@click.argument("conversation", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", required=True, help="The model name sent in the body.")
@max_tokens_options
@click.option(
    "--base-url",
    default=None,
    help="The provider's base URL; the request line goes to standard error.",
)
@click.option(
    "--orphan-calls",
    type=click.Choice(["abort", "truncate"]),
    default="abort",
    show_default=True,
    help="Answer unanswered tool calls with 'aborted', or cut the history there "
    "as the Rust client does.",
)
@click.option("--compact", is_flag=True, help="Print the exact bytes sent, not indented JSON.")
def payload(
    conversation: Path,
    model: str,
    max_tokens: int | None,
    no_max_tokens: bool,
    base_url: str | None,
    orphan_calls: str,
    compact: bool,
) -> None:
    """Print the JSON body the client would send for CONVERSATION.json, without any network.

    CONVERSATION.json is {"instructions": "...", "input": [items], "tools": [tool specs]},
    items and tools in llmx's JSON shapes.
    """
    settings = max_tokens_setting(max_tokens, no_max_tokens)
    if base_url is not None:
        settings["base_url"] = base_url
    provider = ProviderSettings(**settings)
    prompt = load_prompt(conversation)
    try:
        body = build_body(
            prompt,
            model,
            provider,
            orphan_calls="truncate" if orphan_calls == "truncate" else "abort",
        )
    except UnsupportedOperation as error:
        raise CommandError(f"{conversation}: output_schema: {error}") from None
    option = 0 if compact else orjson.OPT_INDENT_2
    click.echo(orjson.dumps(body.model_dump(mode="json"), option=option).decode())
    if base_url is not None:
        click.echo(f"POST {chat_completions_url(provider)}", err=True)
