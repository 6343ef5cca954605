"""How long to wait before the next attempt or poll. Pure and deterministic.

Jitter comes from a number the caller supplies (an orchestration derives it from
`context.new_uuid()`, which replays identically), never from `random`.
"""

from __future__ import annotations

MAX_DELAY_SECONDS = 300.0


def backoff_seconds(attempt: int, base: float, jitter: float, cap: float = MAX_DELAY_SECONDS) -> float:
    """Capped exponential backoff with full jitter in [50%, 100%] of the step.

    attempt 0 -> base, 1 -> 2*base, ... up to `cap`; `jitter` in [0, 1).
    """
    step = min(cap, base * (2 ** max(0, attempt)))
    return round(step * (0.5 + 0.5 * jitter), 3)


def retry_delay(error: dict, attempt: int, base: float, jitter: float) -> float:
    """The wait before retrying after an ARM error: `Retry-After` when ARM gave one."""
    retry_after = error.get("retryAfter")
    if retry_after is not None and float(retry_after) >= 0:
        return min(float(retry_after), MAX_DELAY_SECONDS * 4)
    return backoff_seconds(attempt, base, jitter)


def jitter_from_uuid(uuid_text: str) -> float:
    """A replay-safe number in [0, 1) from a deterministic uuid."""
    return int(uuid_text.replace("-", "")[:8], 16) / 2**32
