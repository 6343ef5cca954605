"""Long-running operations: each is `InProgress` for `lro_polls` status reads (and, when it has
one, until its `not_before` time on the emulator's clock has come), then ends.

How an operation is announced (`LroShapes`) is set per operation, each defaulting to what its
service sends (tests/fixtures/SOURCES.md): a status URL (`Azure-AsyncOperation`, answered 200
with `status` for as long as it runs), a `Location` (202 until done, then the result), both,
or neither ("body": a PUT is followed by reading the resource; a POST answers when done).

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
    partition: str = field(default_factory=lambda: str(uuid.uuid4()))  # Compute's `p=` in its URLs
    start_time: str = field(default_factory=utc_now)
    end_time: str | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def status_body(self, subscription: str, output: dict | None = None) -> dict:
        """The status URL's answer; `output`: what a POST's status carries at its end (Compute
        puts the run-command's result there, as `properties.output`)."""
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
        elif output is not None and self.done:
            body["properties"] = {"output": output}
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

    def end_now(self, operation: Operation) -> None:
        """A write answered only when done (the "body" shape of a POST)."""
        with self._lock:
            operation.polls_left, operation.not_before = 0, 0.0
            self._advance(operation)

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


def location_result(operation: Operation, req: Request, retry_after: int | None) -> Response:
    """What a Location (operation result) URL answers: 202 while running, then the outcome."""
    if not operation.done:
        location = f"{req.base_url}{req.path}?{'&'.join(f'{k}={v}' for k, v in req.query.items())}"
        return Response(202, None, {"Location": location, **retry_after_header(retry_after)})
    if operation.fault:
        raise errors.ArmHttpError(
            500 if operation.status == "Failed" else 409, operation.fault.code, operation.fault.message
        )
    status, body = operation.result() if operation.result else (204, None)
    return Response(status, body)


ASYNC, LOCATION, BOTH, BODY = "async", "location", "both", "body"
SHAPES = (ASYNC, LOCATION, BOTH, BODY)


class LroShapes:
    """The headers each kind of long-running answer carries, by operation name; each default is
    what the real service sends (sources in tests/fixtures/SOURCES.md)."""

    DEFAULTS = {
        "agentPools/write": ASYNC,  # SDK and az CLI recordings: 200/201 + Azure-AsyncOperation only
        "agentPools/upgradeNodeImageVersion": BOTH,  # az CLI recording: 202 + both (the spec example shows one)
        "managedClusters/write": ASYNC,  # az CLI recording: 201 + Azure-AsyncOperation only
        "agentPools/delete": LOCATION,  # AKS spec example: 202 + Location
        "virtualMachineScaleSets/virtualMachines/runCommand": BOTH,  # az CLI recording and debug logs: both
    }

    def __init__(self) -> None:
        self._shapes = dict(self.DEFAULTS)

    def __getitem__(self, operation: str) -> str:
        return self._shapes[operation]

    def set(self, operation: str, shape: str) -> None:
        if operation not in self._shapes:
            raise ValueError(f"operation must be one of {sorted(self._shapes)}, got {operation!r}")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {list(SHAPES)}, got {shape!r}")
        self._shapes[operation] = shape

    def reset(self) -> None:
        self._shapes = dict(self.DEFAULTS)

    def as_dict(self) -> dict[str, str]:
        return dict(self._shapes)


def lro_headers(shape: str, status_url: str, location_url: str, retry_after: int | None) -> dict[str, str]:
    """The headers of a long-running answer of this shape ("body": none)."""
    headers = retry_after_header(retry_after) if shape != BODY else {}
    if shape in (ASYNC, BOTH):
        headers["Azure-AsyncOperation"] = status_url
    if shape in (LOCATION, BOTH):
        headers["Location"] = location_url
    return headers


def retry_after_header(seconds: int | None) -> dict[str, str]:
    """`Retry-After` as the emulator is set: None sends none, as the recorded AKS and Compute
    answers (tests/fixtures/SOURCES.md); 0, the local stack's default, has clients poll at once."""
    return {} if seconds is None else {"Retry-After": str(seconds)}
