"""AKS's per-resource throttle on PUT agentPool: a token bucket of 20 refilled 1 per minute."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from shared.local.arm_emulator import errors

BUCKET_SIZE = 20
REFILL_SECONDS = 60.0


class Throttle:
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock  # monotonic seconds; tests inject their own
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str, pool: str) -> None:
        """Spend one token for `key`, or raise 429 `Throttled` with the wait until the next one."""
        now = self._clock()
        with self._lock:
            tokens, since = self._buckets.get(key, (BUCKET_SIZE, now))
            tokens = min(BUCKET_SIZE, tokens + (now - since) / REFILL_SECONDS)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise errors.throttled(pool, max(1, math.ceil((1 - tokens) * REFILL_SECONDS)))
            self._buckets[key] = (tokens - 1, now)
