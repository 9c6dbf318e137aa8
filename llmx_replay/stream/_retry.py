"""When to retry a failed request, and how long to wait first (seed §4, with D13)."""

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from llmx_replay.models.events import ErrorEvent
from llmx_replay.stream._provider_errors import read_error_body


def backoff(attempt: int, rng: random.Random) -> float:
    """The seed's exponential backoff in seconds: 200 ms doubled per attempt, ±10 % jitter."""
    base_ms = 200 * 2 ** (max(attempt, 1) - 1)
    return int(base_ms * rng.uniform(0.9, 1.1)) / 1000


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """The wait a response asks for, or None when it asks for nothing readable.

    The wait is `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date (D13).
    """
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates name no zone; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def _seconds(value: str | None) -> float | None:
    """A non-negative finite number, or None (`nan` and `inf` are no waits)."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(number, 0.0) if math.isfinite(number) else None


def is_retryable(status: int) -> bool:
    """429 and 5xx are retried; other failures are final."""
    return status == 429 or status >= 500


def retry_delay(
    attempt: int,
    headers: Mapping[str, str],
    *,
    now: datetime,
    rng: random.Random,
    cap: float,
) -> float:
    """How long to wait before the next attempt, capped at the provider's maximum (D13)."""
    asked = retry_after(headers, now)
    return min(backoff(attempt, rng) if asked is None else asked, cap)


def _status_error(
    kind: Literal["unexpected_status", "retry_limit"], status: int, text: str, body: bytes
) -> ErrorEvent:
    text = text.rstrip()
    message, provider_error = read_error_body(body)
    return ErrorEvent(
        kind=kind,
        status=status,
        message=f"{text}: {message}" if message else text,
        provider_error=provider_error,
    )


def failed_status_error(
    attempt: int, status: int, reason: str, body: bytes, *, max_retries: int
) -> ErrorEvent | None:
    """The error that ends a turn after a failed attempt, or None when it is retried.

    Attempt number `attempt` was answered with the failed `status`; the error quotes the
    provider's message in `body`.
    """
    if not is_retryable(status):
        return _status_error(
            "unexpected_status", status, f"unexpected status {status} {reason}", body
        )
    if attempt > max_retries:
        text = f"exceeded retry limit, last status: {status} {reason}"
        return _status_error("retry_limit", status, text, body)
    return None
