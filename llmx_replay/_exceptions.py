"""Exceptions raised by llmx-replay.

    LlmxReplayError
    ├── InputError          a file or value given by the user is wrong (names the file and field)
    ├── MissingEnvVarError  the provider's API key variable is not set
    ├── UnsupportedOperation  the prompt asks for what Chat Completions cannot do
    ├── SecretInCassette    a cassette about to be written still holds something like a key
    ├── NoMatchingInteraction  a replayed request matches no recorded one
    └── SSEDecodeError      the response body is not valid UTF-8

Failures of a provider or of the network are not raised: a stream ends with an
`ErrorEvent` instead, so that they can be asserted like any other event.
"""

from typing import Any


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


class NoMatchingInteraction(LlmxReplayError):
    """A request matches no recorded interaction (the message shows the closest one)."""


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
