"""How long to wait before the next attempt or poll. Pure and deterministic.

Jitter comes from a number the caller supplies (an orchestration derives it from
`context.new_uuid()`, which replays identically), never from `random`.
"""

from __future__ import annotations

import math

MAX_DELAY_SECONDS = 300.0  # the backoff's cap
MAX_RETRY_AFTER_SECONDS = 1200.0  # the most a server's Retry-After may hold us up per wait
MIN_DELAY_SECONDS = 0.0


def backoff_seconds(attempt: int, base: float, jitter: float, cap: float = MAX_DELAY_SECONDS) -> float:
    """Capped exponential backoff with full jitter in [50%, 100%] of the step.

    attempt 0 -> base, 1 -> 2*base, ... up to `cap`; `jitter` in [0, 1).
    """
    step = min(cap, base * (2 ** min(max(0, attempt), 32)))
    return round(step * (0.5 + 0.5 * jitter), 3)


def retry_delay(retry_after: float | None, attempt: int, base: float, jitter: float) -> float:
    """The wait before the next attempt: ARM's `Retry-After` when it gave a usable one, else backoff."""
    usable = _usable(retry_after)
    return min(usable, MAX_RETRY_AFTER_SECONDS) if usable is not None else backoff_seconds(attempt, base, jitter)


def bounded_seconds(seconds: float) -> float:
    """Any wait made safe for a durable timer: finite, not negative, at most the Retry-After cap."""
    usable = _usable(seconds)
    return MIN_DELAY_SECONDS if usable is None else min(usable, MAX_RETRY_AFTER_SECONDS)


def jitter_from_uuid(uuid_text: str) -> float:
    """A replay-safe number in [0, 1) from a deterministic uuid."""
    return int(uuid_text.replace("-", "")[:8], 16) / 2**32


def _usable(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None
