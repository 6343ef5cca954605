"""Clocks for the in-process Durable host.

The host reads time only through a clock: `now()` stamps history events (an episode's
`OrchestratorStarted` timestamp becomes the orchestrator's `current_utc_datetime`), and
`wait_until()` is called when every runnable instance waits only on durable timers.
`VirtualClock` jumps straight to the earliest timer (tests never sleep); `RealClock` really
waits, and wakes early when new work arrives (an event raised through the client API).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""

    def wait_until(self, deadline: datetime, wakeup: threading.Event) -> None:
        """Return at `deadline` at the latest, or earlier once `wakeup` is set."""


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is refused because its zone is a guess."""
    if moment.tzinfo is None:
        raise ValueError(
            f"naive datetime {moment.isoformat()}: give a timezone-aware UTC time, e.g. tzinfo=timezone.utc"
        )
    return moment.astimezone(UTC)


class VirtualClock:
    """Time that moves only when the host advances it to the next due timer."""

    def __init__(self, start: datetime):
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def wait_until(self, deadline: datetime, wakeup: threading.Event) -> None:
        self.advance_to(deadline)

    def advance_to(self, moment: datetime) -> None:
        """Move forward to `moment`; virtual time never goes back."""
        self._now = max(self._now, as_utc(moment))

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


class RealClock:
    """Wall-clock UTC time; waiting really sleeps (interruptible by `wakeup`)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait_until(self, deadline: datetime, wakeup: threading.Event) -> None:
        remaining = (as_utc(deadline) - self.now()).total_seconds()
        if remaining > 0:
            wakeup.wait(remaining)
        wakeup.clear()

    def __repr__(self) -> str:
        return "RealClock()"
