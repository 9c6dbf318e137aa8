"""Prompt + provider -> the Chat Completions request llmx would send (seed §7.2, §7.3, §5).

Where llmx-replay deliberately differs from the seed, the decision is named (D1-D3, D12,
D15 in `decisions.md`).
"""

from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlencode

import orjson

from llmx_replay._exceptions import MissingEnvVarError, UnsupportedOperation
from llmx_replay.models.items import (
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    FunctionCallOutputPayload,
    InputImage,
    LocalShellCall,
    Message,
    Reasoning,
    Refusal,
    ResponseItem,
)
from llmx_replay.models.prompt import Prompt, ProviderSettings
from llmx_replay.models.request import (
    CacheControl,
    ChatCompletionsBody,
    ChatMessage,
    ChatRequest,
    ChatTool,
    ContentPart,
    CustomCallBody,
    CustomChatToolCall,
    FunctionCallBody,
    FunctionDefinition,
    FunctionToolCall,
    ImagePart,
    ImageUrl,
    LocalShellToolCall,
    TextPart,
)
from llmx_replay.models.tools import FunctionTool, ToolSpec

OrphanCallPolicy = Literal["abort", "truncate"]
"""What to do with a tool call that has no output: answer it with ``"aborted"`` (D1), or
cut the history at the first such function call, as the seed does."""

_ABORTED = "aborted"


def build_request(
    prompt: Prompt,
    model: str,
    provider: ProviderSettings,
    *,
    environ: Mapping[str, str],
    orphan_calls: OrphanCallPolicy = "abort",
    subagent: str | None = None,
) -> ChatRequest:
    """The URL, headers and JSON body of the streaming request for `prompt`.

    Raises `UnsupportedOperation` for an output schema and `MissingEnvVarError` when the
    provider's key variable is missing or blank.
    """
    body = build_body(prompt, model, provider, orphan_calls=orphan_calls)
    headers = _auth_headers(provider, environ)
    headers += list((provider.http_headers or {}).items())
    headers += provider.env_headers(environ)
    if subagent is not None:
        headers.append(("x-openai-subagent", subagent))
    headers += [("accept", "text/event-stream"), ("content-type", "application/json")]
    return ChatRequest(
        url=chat_completions_url(provider),
        headers=headers,
        body=orjson.dumps(body.model_dump(mode="json")),
    )


def build_body(
    prompt: Prompt,
    model: str,
    provider: ProviderSettings,
    *,
    orphan_calls: OrphanCallPolicy = "abort",
) -> ChatCompletionsBody:
    """The JSON body: model, messages, ``stream: true``, tools if any (D12), max_tokens."""
    if prompt.output_schema is not None:
        raise UnsupportedOperation("output_schema is not supported for Chat Completions API")
    tools = build_tools(prompt.tools)
    return ChatCompletionsBody(
        model=model,
        messages=build_messages(prompt, orphan_calls=orphan_calls),
        tools=tools or None,
        max_tokens=provider.max_tokens,
    )


def chat_completions_url(provider: ProviderSettings) -> str:
    """`base_url` + ``/chat/completions`` without a double slash, query in order (D15)."""
    url = provider.base_url.rstrip("/") + "/chat/completions"
    if provider.query_params:
        url += "?" + urlencode(list(provider.query_params.items()))
    return url


def _auth_headers(provider: ProviderSettings, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    token = provider.experimental_bearer_token
    if token is None and provider.env_key is not None:
        token = environ.get(provider.env_key)
        if token is None or not token.strip():
            raise MissingEnvVarError(provider.env_key, provider.env_key_instructions)
    return [] if token is None else [("authorization", f"Bearer {token}")]


def build_tools(tools: Sequence[ToolSpec]) -> list[ChatTool]:
    """Function tools in Chat form; the last carries Anthropic's cache marker (seed §5).

    Local shell, web search and freeform tools have no Chat form and are left out.
    """
    chat_tools = [
        ChatTool(
            function=FunctionDefinition(
                name=tool.name,
                description=tool.description,
                strict=tool.strict,
                parameters=tool.parameters,
            )
        )
        for tool in tools
        if isinstance(tool, FunctionTool)
    ]
    if chat_tools:
        chat_tools[-1] = chat_tools[-1].model_copy(update={"cache_control": CacheControl()})
    return chat_tools


def normalize_history(items: Sequence[ResponseItem]) -> list[ResponseItem]:
    """Answer every unanswered call with ``"aborted"`` and drop outputs with no call (D1).

    This is upstream Codex's normalisation: each synthetic output goes right after its call,
    and everything else, later user messages included, is kept.
    """
    function_call_ids = {item.call_id for item in items if isinstance(item, FunctionCall)}
    function_call_ids |= {
        _shell_call_id(item) for item in items if isinstance(item, LocalShellCall)
    }
    custom_call_ids = {item.call_id for item in items if isinstance(item, CustomToolCall)}
    answered = {item.call_id for item in items if isinstance(item, FunctionCallOutput)}
    custom_answered = {item.call_id for item in items if isinstance(item, CustomToolCallOutput)}

    normalized: list[ResponseItem] = []
    for item in items:
        if isinstance(item, FunctionCallOutput) and item.call_id not in function_call_ids:
            continue
        if isinstance(item, CustomToolCallOutput) and item.call_id not in custom_call_ids:
            continue
        normalized.append(item)
        call_id = _shell_call_id(item) if isinstance(item, LocalShellCall) else None
        if isinstance(item, FunctionCall):
            call_id = item.call_id
        if call_id and call_id not in answered:
            normalized.append(
                FunctionCallOutput(
                    call_id=call_id, output=FunctionCallOutputPayload(content=_ABORTED)
                )
            )
        elif isinstance(item, CustomToolCall) and item.call_id not in custom_answered:
            normalized.append(CustomToolCallOutput(call_id=item.call_id, output=_ABORTED))
    return normalized


def _shell_call_id(call: LocalShellCall) -> str:
    """A local shell call's id for its output: `call_id`, or in Chat form only its `id`."""
    return call.call_id or call.id or ""


def _first_unanswered_function_call(items: Sequence[ResponseItem]) -> int | None:
    answered = {item.call_id for item in items if isinstance(item, FunctionCallOutput)}
    for index, item in enumerate(items):
        if isinstance(item, FunctionCall) and item.call_id not in answered:
            return index
    return None


def _is_assistant_message(item: ResponseItem) -> bool:
    return isinstance(item, Message) and item.role == "assistant"


def _reasoning_anchors(items: Sequence[ResponseItem]) -> dict[int, str]:
    """Which emitted item carries which reasoning text (seed §7.2 step 1).

    No reasoning is attached when the conversation ends with a user message; otherwise each
    reasoning after the last user message joins the assistant message before it, or else
    the call or assistant message right after it.
    """
    last_role: str | None = None
    last_user_index: int | None = None
    for index, item in enumerate(items):
        if isinstance(item, Message):
            last_role = item.role
            if item.role == "user":
                last_user_index = index
        elif isinstance(item, FunctionCall | LocalShellCall):
            last_role = "assistant"
        elif isinstance(item, FunctionCallOutput):
            last_role = "tool"
    anchors: dict[int, str] = {}
    if last_role == "user":
        return anchors
    start = 0 if last_user_index is None else last_user_index + 1
    for index in range(start, len(items)):
        item = items[index]
        if not isinstance(item, Reasoning) or item.content is None:
            continue
        text = item.text
        if not text.strip():
            continue
        if index > 0 and _is_assistant_message(items[index - 1]):
            anchor = index - 1
        elif index + 1 < len(items) and (
            isinstance(items[index + 1], FunctionCall | LocalShellCall)
            or _is_assistant_message(items[index + 1])
        ):
            anchor = index + 1
        else:
            continue
        anchors[anchor] = anchors.get(anchor, "") + text
    return anchors


def _valid_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def build_messages(
    prompt: Prompt, *, orphan_calls: OrphanCallPolicy = "abort"
) -> list[ChatMessage]:
    """The `messages` array: the system message, then the history in Chat form."""
    items: Sequence[ResponseItem] = prompt.input
    cutoff: int | None = None
    if orphan_calls == "abort":
        items = normalize_history(items)
    else:
        cutoff = _first_unanswered_function_call(items)
    anchors = _reasoning_anchors(items)

    messages = [ChatMessage(role="system", content=prompt.instructions)]
    skipped_call: dict[str, bool] = {}

    for index, item in enumerate(items):
        if cutoff is not None and index >= cutoff:
            break
        reasoning = anchors.get(index)
        if isinstance(item, Message):
            text, parts, has_image = _message_content(item)
            if not text.strip() and not has_image:
                continue
            if item.role == "assistant":
                # D2: only a message repeating the one just sent is a duplicate.
                if messages[-1].role == "assistant" and messages[-1].content == text:
                    continue
                messages.append(ChatMessage(role="assistant", content=text, reasoning=reasoning))
            else:
                messages.append(ChatMessage(role=item.role, content=parts if has_image else text))
        elif isinstance(item, FunctionCall):
            # D3: zero-argument tools stream empty arguments; they are an empty object.
            arguments = item.arguments if item.arguments.strip() else "{}"
            skipped_call[item.call_id] = not _valid_json(arguments)
            if skipped_call[item.call_id]:
                continue
            call = FunctionToolCall(
                id=item.call_id, function=FunctionCallBody(name=item.name, arguments=arguments)
            )
            messages.append(
                ChatMessage(role="assistant", content=None, tool_calls=[call], reasoning=reasoning)
            )
        elif isinstance(item, LocalShellCall):
            shell_call = LocalShellToolCall(
                id=item.id or "", status=item.status, action=item.action
            )
            messages.append(
                ChatMessage(
                    role="assistant", content=None, tool_calls=[shell_call], reasoning=reasoning
                )
            )
        elif isinstance(item, FunctionCallOutput):
            if skipped_call.get(item.call_id):
                continue
            messages.append(
                ChatMessage(
                    role="tool",
                    tool_call_id=item.call_id,
                    content=_tool_output_content(item.output),
                )
            )
        elif isinstance(item, CustomToolCall):
            custom_call = CustomChatToolCall(
                id=item.id, custom=CustomCallBody(name=item.name, input=item.input)
            )
            messages.append(ChatMessage(role="assistant", content=None, tool_calls=[custom_call]))
        elif isinstance(item, CustomToolCallOutput):
            messages.append(
                ChatMessage(role="tool", tool_call_id=item.call_id, content=item.output)
            )
    return messages


def _message_content(message: Message) -> tuple[str, list[ContentPart], bool]:
    """The message's text, its parts without blank text, and whether it has an image."""
    text = ""
    parts: list[ContentPart] = []
    has_image = False
    for content in message.content:
        if isinstance(content, InputImage):
            has_image = True
            parts.append(ImagePart(image_url=ImageUrl(url=content.image_url)))
        else:
            # A refusal goes back as the assistant's text, as it went before D23 kept it apart.
            piece = content.refusal if isinstance(content, Refusal) else content.text
            text += piece
            if piece.strip():
                parts.append(TextPart(text=piece))
    return text, parts, has_image


def _tool_output_content(output: FunctionCallOutputPayload) -> str | list[ContentPart]:
    if output.content_items is None:
        return output.content
    return [
        ImagePart(image_url=ImageUrl(url=part.image_url))
        if isinstance(part, InputImage)
        else TextPart(text=part.text)
        for part in output.content_items
    ]
