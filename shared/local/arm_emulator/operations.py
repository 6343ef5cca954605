"""Long-running operations: each is `InProgress` for `lro_polls` status reads (and, when it has
one, until its `not_before` time on the emulator's clock has come), then ends.

As on ARM, an operation runs whether or not anyone polls it: a client that lost the operation
URL sees it end by reading the resource. Here each read of the cluster or its pools counts
like a status read for the cluster's operations in progress.

The end is `Succeeded`, or what an armed operation fault says. Ending runs the operation's effect
(e.g. reimage the nodes) exactly once, under the fleet lock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.faults import OperationFault
from shared.local.arm_emulator.wire import Request, Response


def utc_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Operation:
    id: str
    namespace: str  # the provider the status URLs live under
    location: str
    polls_left: int
    on_end: Callable[[bool], None]  # called once with succeeded=True/False
    result: Callable[[], tuple[int, dict | None]] | None = None  # what the Location URL answers once done
    fault: OperationFault | None = None
    scope: str = ""  # the cluster it runs on (lower-case id): reads there advance it
    not_before: float = 0.0  # it ends no earlier than this time of the emulator's clock
    status: str = "InProgress"
    start_time: str = field(default_factory=utc_now)
    end_time: str | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def status_body(self, subscription: str) -> dict:
        body = {
            "id": f"/subscriptions/{subscription}/providers/{self.namespace}/locations/{self.location}/operations/{self.id}",
            "name": self.id,
            "status": self.status,
            "startTime": self.start_time,
        }
        if self.end_time:
            body["endTime"] = self.end_time
        if self.fault and self.done:
            body["error"] = self.fault.error()
        return body


class Operations:
    def __init__(self, lock: threading.RLock, lro_polls: int, clock: Callable[[], float] = time.monotonic):
        if lro_polls < 0:
            raise ValueError(f"lro_polls must be 0 or more, got {lro_polls}")
        self._lock = lock
        self._lro_polls = lro_polls
        self._clock = clock
        self._by_id: dict[str, Operation] = {}

    def start(
        self,
        namespace: str,
        location: str,
        on_end,
        *,
        result=None,
        fault: OperationFault | None = None,
        scope: str = "",
        not_before: float = 0.0,
    ) -> Operation:
        operation = Operation(
            str(uuid.uuid4()), namespace, location, self._lro_polls, on_end, result, fault, scope.lower(), not_before
        )
        with self._lock:
            self._by_id[operation.id] = operation
        return operation

    def poll(self, namespace: str, operation_id: str) -> Operation:
        """One status read: counts down, and ends the operation when the count is spent."""
        with self._lock:
            operation = self._by_id.get(operation_id.lower())
            if operation is None or operation.namespace.lower() != namespace.lower():
                raise errors.child_not_found(f"Operation '{operation_id}' was not found.")
            self._advance(operation)
            return operation

    def advance(self, scope: str) -> None:
        """A read of the resource the operations in `scope` run on: time passes for them too."""
        with self._lock:
            for operation in list(self._by_id.values()):
                if operation.scope and operation.scope == scope.lower():
                    self._advance(operation)

    def _advance(self, operation: Operation) -> None:
        if not operation.done:
            if operation.polls_left > 0:
                operation.polls_left -= 1
            elif self._clock() >= operation.not_before:
                self._end(operation)

    def _end(self, operation: Operation) -> None:
        operation.status = operation.fault.status if operation.fault else "Succeeded"
        operation.end_time = utc_now()
        operation.on_end(operation.status == "Succeeded")


def location_result(operation: Operation, req: Request, retry_after: int) -> Response:
    """What a Location (operation result) URL answers: 202 while running, then the outcome."""
    if not operation.done:
        location = f"{req.base_url}{req.path}?{'&'.join(f'{k}={v}' for k, v in req.query.items())}"
        return Response(202, None, {"Location": location, "Retry-After": str(retry_after)})
    if operation.fault:
        raise errors.ArmHttpError(
            500 if operation.status == "Failed" else 409, operation.fault.code, operation.fault.message
        )
    status, body = operation.result() if operation.result else (204, None)
    return Response(status, body)
