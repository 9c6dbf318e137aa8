"""Exceptions raised by llmx-replay.

    LlmxReplayError
    ├── InputError          a file or value given by the user is wrong (names the file and field)
    │   ├── OptionError     an option has a value it cannot take (names the option; a ValueError)
    │   └── UnsupportedWireFormat  a recorded response is another API's, not Chat Completions
    ├── MissingEnvVarError  the provider's API key variable is not set
    ├── UnsupportedOperation  the prompt asks for what Chat Completions cannot do
    ├── SecretInCassette    a cassette about to be written still holds something like a key
    ├── NoMatchingInteraction  a replayed request matches no recorded one
    ├── SSEDecodeError      the response body is not valid UTF-8
    └── NetworkBlocked      a closed network refused a connection (a ConnectionRefusedError;
                            defined with the network block, in `harness`)

Failures of a provider or of the network are not raised: a stream ends with an
`ErrorEvent` instead, so that they can be asserted like any other event.
"""

import re
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, NamedTuple

import orjson


class LlmxReplayError(Exception):
    """The root of every exception llmx-replay raises."""


class InputError(LlmxReplayError):
    """Something the user gave us is wrong: `source` names the file, `field` the place in it."""

    def __init__(self, source: str, problem: str, field: str | None = None) -> None:
        self.source = source
        self.problem = problem
        self.field = field
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.problem, self.field))


class TornCassetteWarning(UserWarning):
    """A cassette ends in an interaction cut off mid-write, which was left out."""


class OptionError(InputError, ValueError):
    """An option was given a value it cannot take.

    `option` names it as the caller spelt it (a keyword, a field path such as
    ``faults.cut_after``, or a command-line flag).

    A problem that names other options has them in `mentions`, filling the ``{}`` of
    `template`, so that each caller can name them its own way (see `problem_naming`).
    """

    def __init__(self, option: str, template: str, mentions: Sequence[str] = ()) -> None:
        self.option = option
        self.template = template
        self.mentions = tuple(mentions)
        super().__init__(option, self.problem_naming(str))

    def problem_naming(self, name: Callable[[str], str]) -> str:
        """The problem, with each option it mentions named by `name`."""
        if not self.mentions:
            return self.template
        return self.template.format(*(name(option) for option in self.mentions))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.option, self.template, self.mentions))


class UnsupportedWireFormat(InputError):
    """A recorded response is in another API's wire format, which llmx-replay does not read.

    Attributes:
        interaction: The interaction's position in the cassette (0 for a raw SSE body); the
            error's `field` names it.
        wire_format: What the response is, such as ``Anthropic Messages stream``.
    """

    def __init__(self, source: str, interaction: int, wire_format: str) -> None:
        self.interaction = interaction
        self.wire_format = wire_format
        super().__init__(
            source,
            f"{with_article(wire_format)}, not Chat Completions; llmx-replay reads Chat "
            "Completions only",
            f"interaction {interaction}",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.interaction, self.wire_format))


def with_article(name: str) -> str:
    """``an Anthropic Messages stream``, ``a Gemini generateContent stream``."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def field_path(location: Sequence[int | str]) -> str:
    """`("input", 3, "content")` -> ``input[3].content``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


class MissingEnvVarError(LlmxReplayError):
    """The environment variable that should hold the API key is missing or blank."""

    def __init__(self, variable: str, instructions: str | None = None) -> None:
        self.variable = variable
        self.instructions = instructions
        message = f"Missing environment variable: `{variable}`."
        super().__init__(f"{message} {instructions}" if instructions else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.variable, self.instructions))


class UnsupportedOperation(LlmxReplayError):
    """The prompt asks for something the Chat Completions API cannot do."""


class SecretInCassette(LlmxReplayError):
    """A cassette still holds something shaped like an API key; it was not written."""

    def __init__(self, path: str, findings: list[str]) -> None:
        self.path = path
        self.findings = findings
        listed = "; ".join(findings)
        super().__init__(
            f"{path}: not written, it would hold a secret: {listed}. Scrub the field "
            "(see Scrubber) or remove the value."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.findings))


class Absence(Enum):
    """The value of a field one side of a `FieldDifference` does not have."""

    ABSENT = "(absent)"


class FieldDifference(NamedTuple):
    """Where a request differs from a recorded one, and the value on each side.

    `path` is such as ``request.body.model``; a side that has no value holds `Absence.ABSENT`.
    """

    path: str
    recorded: Any
    requested: Any


class NoMatchingInteraction(LlmxReplayError):
    """A request matches no recorded interaction.

    Attributes:
        cassette: The cassette's name (its path, for a file).
        method: The request's method.
        url: The request's URL, scrubbed as a cassette would keep it.
        body: The request's body.
        closest: The position of the closest recorded interaction, None if there is none.
        differences: Where the request differs from the closest recording (the first few).
        more_differences: Whether there are differences beyond `differences`.
        reason: Why the request was not recorded either, when that is the transport's choice.
    """

    def __init__(
        self,
        cassette: str,
        method: str,
        url: str,
        body: bytes,
        closest: int | None,
        differences: Sequence[FieldDifference] = (),
        more_differences: bool = False,
        reason: str | None = None,
    ) -> None:
        self.cassette = cassette
        self.method = method
        self.url = url
        self.body = body
        self.closest = closest
        self.differences = tuple(differences)
        self.more_differences = more_differences
        self.reason = reason
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"{cassette}: no recorded interaction matches {named_request(method, url, body)}"
            f"{why}; "
            f"{self.explanation}"
        )

    @property
    def explanation(self) -> str:
        """Which recorded request comes closest, and where it differs, in words."""
        if self.closest is None:
            return "the cassette holds no interaction"
        if not self.differences:
            return (
                f"interaction {self.closest} is recorded for this request, but every recording "
                "of it was already played"
            )
        shown = "\n  ".join(
            f"{difference.path}: recorded {_shown(difference.recorded)}, "
            f"requested {_shown(difference.requested)}"
            for difference in self.differences
        )
        more = " (and more)" if self.more_differences else ""
        return f"the closest is interaction {self.closest}, which differs at{more}:\n  {shown}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self.cassette,
                self.method,
                self.url,
                self.body,
                self.closest,
                self.differences,
                self.more_differences,
                self.reason,
            ),
        )


_SHOWN_VALUE = 80


class KeyShape(NamedTuple):
    """What one kind of API key or token looks like."""

    what: str
    pattern: re.Pattern[str]
    starts: tuple[str, ...]
    """What every match starts with, exactly (in any case when the pattern ignores case):
    a text without it holds no such key, which a substring search tells fast."""


KEY_SHAPES: tuple[KeyShape, ...] = (
    KeyShape(
        "an Anthropic API key",
        re.compile(r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{16,}"),
        ("sk-ant-",),
    ),
    KeyShape(
        "an OpenAI-style API key",
        re.compile(r"(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,}"),
        ("sk-",),
    ),
    KeyShape("a Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}"), ("AIza",)),
    KeyShape("a Groq API key", re.compile(r"(?<![A-Za-z0-9_])gsk_[A-Za-z0-9]{20,}"), ("gsk_",)),
    KeyShape(
        "an AWS access key id",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
        ("AKIA", "ASIA"),
    ),
    KeyShape(
        "a bearer token",
        re.compile(r"bearer\s+[A-Za-z0-9._~+/-]{16,}=*", re.IGNORECASE),
        ("bearer",),
    ),
)
"""What API keys and tokens look like: never written to a cassette, never shown in a message."""


def mask_secrets(text: str) -> str:
    """`text` with whatever looks like a key or token cut to its first characters."""
    for shape in KEY_SHAPES:
        text = shape.pattern.sub(lambda found: found.group(0)[:6] + "…<redacted>", text)
    return text


def _shown(value: Any) -> str:
    if value is Absence.ABSENT:
        return str(value.value)
    text = mask_secrets(orjson.dumps(value).decode())
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 1] + "…"


class SSEDecodeError(LlmxReplayError):
    """The event stream is not valid UTF-8.

    `events` holds what was complete before the offending byte (events, or their data from
    `SSEDecoder.decode_data`), so that the caller loses nothing that was received intact.
    """

    def __init__(self, message: str, events: list[Any] | None = None) -> None:
        self.events = events or []
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.events))


_SHOWN_TEXT = 60


def named_request(method: str, url: str, body: bytes | None) -> str:
    """A request as messages name it: ``POST <url> asking "<its last user message>"``."""
    text = _last_user_text(body)
    asking = f" asking {mask_secrets(orjson.dumps(text).decode())}" if text else ""
    return f"{method} {url}{asking}"


def _last_user_text(data: bytes | None) -> str | None:
    """The last user message of a Chat Completions body, shortened to a line; None if none."""
    try:
        document = orjson.loads(data or b"")
    except orjson.JSONDecodeError:
        return None
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(
                    part["text"]
                    for part in content
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                )
            line = " ".join(content.split()) if isinstance(content, str) else ""
            return line if len(line) <= _SHOWN_TEXT else line[: _SHOWN_TEXT - 1] + "…"
    return None
