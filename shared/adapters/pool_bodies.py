"""The JSON bodies of the pools the ARM adapter has just read, for a whole-pool PUT."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from shared.core.models import ClusterRef


class PoolBodies:
    """The JSON bodies of the pools this adapter has just read, for a whole-pool PUT (see
    `set_pool_ssh_access`); bounded, thread-safe. `take` hands a body out once, and only a
    recent one with an ETag: without one the PUT would not be guarded, and an old one would
    only earn a refusal (412) where a GET costs less."""

    LIMIT = 1024
    MAX_AGE_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._bodies: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def keep(self, ref: ClusterRef, body: Any) -> None:
        with self._lock:
            key = self._key(ref, str(body.get("name", "")))
            self._bodies[key] = (self._clock(), body)
            self._bodies.move_to_end(key)
            while len(self._bodies) > self.LIMIT:
                self._bodies.popitem(last=False)

    def take(self, ref: ClusterRef, pool: str) -> Any | None:
        with self._lock:
            read_at, body = self._bodies.pop(self._key(ref, pool), (0.0, None))
        fresh = self._clock() - read_at <= self.MAX_AGE_SECONDS
        return body if body is not None and fresh and (body.get("properties") or {}).get("eTag") else None

    def forget(self, ref: ClusterRef, pool: str) -> None:
        with self._lock:
            self._bodies.pop(self._key(ref, pool), None)

    @staticmethod
    def _key(ref: ClusterRef, pool: str) -> str:
        return f"{ref.key}/agentpools/{pool.lower()}"
