"""How recorded responses are served, and when the network is used.

`ReplayOptions` says how the responses are served; a `RecordMode`, decided for a cassette as a
`RecordPolicy`, says when the network is used.

Each value is checked once, where it is built, and a bad one raises `OptionError` naming
the option; the transports, the session, playback and the command line all carry the
value as it is.
"""

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, get_args

from llmx_replay._clock import Clock, SystemClock
from llmx_replay._exceptions import OptionError

Pacing = Literal["instant", "recorded"]
"""``instant``: every recorded chunk at once; ``recorded``: with the recorded gaps."""

_PACINGS: tuple[str, ...] = get_args(Pacing)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Faults:
    """What to break in a replayed stream, counted in SSE events.

    Attributes:
        cut_after: The body ends after this many events, as if the connection dropped.
        drop_done: The ``data: [DONE]`` event is left out.
        stall_after: After this many events the stream stalls for `stall_seconds`.
        stall_seconds: How long the stall lasts (default: longer than the read timeout, so
            the client's idle timeout fires).
        error_after: An error chunk (`error_message`) is sent after this many events.
        error_message: The message of the error chunk.
        status: The request is answered with this HTTP status and a JSON error instead.
    """

    cut_after: int | None = None
    drop_done: bool = False
    stall_after: int | None = None
    stall_seconds: float | None = None
    error_after: int | None = None
    error_message: str = "llmx-replay injected this error"
    status: int | None = None

    def __post_init__(self) -> None:
        """Refuse values of the wrong kind, and faults that contradict each other."""
        for name in ("cut_after", "stall_after", "error_after"):
            count = getattr(self, name)
            if count is not None and (not _is_int(count) or count < 0):
                raise OptionError(name, f"a count of events, not {count!r}")
        if not isinstance(self.drop_done, bool):
            raise OptionError("drop_done", f"true or false, not {self.drop_done!r}")
        if not isinstance(self.error_message, str):
            raise OptionError("error_message", f"text, not {self.error_message!r}")
        if self.stall_seconds is not None:
            if self.stall_after is None:
                raise OptionError("stall_seconds", "applies to {} only", ["stall_after"])
            if not _is_number(self.stall_seconds) or not 0 <= self.stall_seconds < math.inf:
                raise OptionError("stall_seconds", f"not a duration: {self.stall_seconds!r}")
        if self.status is not None:
            if not _is_int(self.status) or not 400 <= self.status <= 599:
                raise OptionError("status", f"an HTTP error status (400-599), not {self.status!r}")
            if self.touches_events:
                raise OptionError(
                    "status", "answers without a stream, so it excludes the other faults"
                )

    @property
    def touches_events(self) -> bool:
        """Whether a fault changes the events of the body (every fault but `status`)."""
        return (
            self.cut_after is not None
            or self.drop_done
            or self.stall_after is not None
            or self.error_after is not None
        )


@dataclass(frozen=True)
class ReplayOptions:
    """How recorded responses are served, and what matching a request leaves out.

    Attributes:
        pacing: ``instant`` or ``recorded`` (the recorded gaps, divided by `speed`).
        speed: How many times faster than recorded a ``recorded`` replay runs.
        faults: What to break in each replayed response.
        ignore: Request body paths left out of matching, e.g. ``"user"``.
        clock: How waits pass: a `VirtualClock` replays recorded timing without waiting.
    """

    pacing: Pacing = "instant"
    speed: float = 1.0
    faults: Faults = field(default_factory=Faults)
    ignore: tuple[str, ...] = ()
    # Two values that differ only in their clock serve responses alike.
    clock: Clock = field(default_factory=SystemClock, compare=False)

    def __post_init__(self) -> None:
        """Refuse the values these options cannot take.

        That is an unknown pacing, a speed that is not a positive finite number, faults
        that are not `Faults`, `ignore` paths that are not text, and a clock that is not one.
        """
        if self.pacing not in _PACINGS:
            raise OptionError("pacing", f"{self.pacing!r} is not one of {', '.join(_PACINGS)}")
        if not _is_number(self.speed):
            raise OptionError("speed", f"a number, not {self.speed!r}")
        if not 0 < self.speed < math.inf:
            raise OptionError("speed", f"must be a positive number, not {self.speed}")
        if not isinstance(self.faults, Faults):
            raise OptionError("faults", f"a Faults value, not {self.faults!r}")
        given: Iterable[object] = self.ignore
        # Materialized once: a generator would be used up by the check.
        ignore = (given,) if isinstance(given, str) else tuple(given)
        if isinstance(given, str) or not all(isinstance(path, str) for path in ignore):
            raise OptionError("ignore", f"a sequence of body paths, not {given!r}")
        object.__setattr__(self, "ignore", ignore)
        if not isinstance(self.clock, Clock):
            raise OptionError("clock", f"a Clock (now, sleep, asleep), not {self.clock!r}")


class RecordMode(StrEnum):
    """When to use the network, as in vcrpy and pytest-recording.

    * ``none``: replay only; never touch the network (the default when `CI` is set).
    * ``once``: replay an existing cassette; record one that does not exist yet (the default).
    * ``new_episodes``: replay what is recorded; record what is not.
    * ``all``: always use the network; each recording renews the one made for its request.
    * ``rewrite``: start the cassette anew and record everything.
    """

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    REWRITE = "rewrite"

    @classmethod
    def parse(cls, value: "str | RecordMode") -> "RecordMode":
        """The mode named `value`; any other value is an `OptionError` listing the modes."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            raise OptionError("record_mode", f"{value!r} is not one of {choices}") from None

    @classmethod
    def default(cls) -> "RecordMode":
        """``none`` when the `CI` variable says so (set, and not empty, 0, false or no)."""
        ci = os.environ.get("CI", "").strip().lower()
        return cls.ONCE if ci in ("", "0", "false", "no") else cls.NONE


@dataclass(frozen=True)
class RecordPolicy:
    """What a record mode means for one cassette, decided in one place.

    Everything it says follows from the mode, whether the cassette existed, and whether it
    is older than its maximum age.

    Attributes:
        mode: The record mode.
        existed: Whether the cassette existed.
        expired: Whether it is older than its maximum age: in mode ``once`` it is then
            recorded anew, as if it did not exist.
    """

    mode: RecordMode
    existed: bool
    expired: bool = False

    @classmethod
    def decide(
        cls, mode: "RecordMode | str | None", *, existed: bool, expired: bool = False
    ) -> "RecordPolicy":
        """The policy of `mode` (by default `RecordMode.default()`) for a cassette."""
        parsed = RecordMode.default() if mode is None else RecordMode.parse(mode)
        return cls(parsed, existed, expired)

    @property
    def _recorded_once(self) -> bool:
        """In mode ``once``: the cassette holds a recording still young enough to replay."""
        return self.existed and not self.expired

    @property
    def replays(self) -> bool:
        """Requests are answered from the recordings when one matches."""
        return self.mode in (RecordMode.NONE, RecordMode.NEW_EPISODES) or (
            self.mode is RecordMode.ONCE and self._recorded_once
        )

    @property
    def records(self) -> bool:
        """Requests with no recording to answer them reach the network, and are recorded."""
        return self.mode in (RecordMode.NEW_EPISODES, RecordMode.ALL, RecordMode.REWRITE) or (
            self.mode is RecordMode.ONCE and not self._recorded_once
        )

    @property
    def fresh(self) -> bool:
        """The cassette starts anew: what it held is neither replayed nor kept."""
        return self.mode is RecordMode.REWRITE or (
            self.mode is RecordMode.ONCE and self.existed and self.expired
        )

    @property
    def renews(self) -> bool:
        """A new recording replaces the one made earlier for the same request."""
        return self.mode is RecordMode.ALL

    @property
    def loads(self) -> bool:
        """Whether the cassette on disk is read: it exists and is not started anew."""
        return self.existed and not self.fresh

    def why_not_recorded(self) -> str:
        """Why a request with no recording was not recorded either, for a miss message."""
        if self.mode is RecordMode.NONE:
            missing = "" if self.existed else ", and the cassette does not exist"
            return f"record mode 'none' never records{missing}"
        return f"record mode '{self.mode}' does not record into an existing cassette"
