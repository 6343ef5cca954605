"""Fault injection: answer chosen requests with an error, or make the next long-running operation fail.

Paths are matched with `re.search`, case-insensitively (ARM paths are), against the request path
without its query string.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.local.arm_emulator.errors import ArmHttpError

OPERATION_END_STATES = ("Failed", "Canceled")


@dataclass
class _RequestFault:
    method: str
    pattern: re.Pattern
    error: ArmHttpError
    times: int


@dataclass
class OperationFault:
    """How the next matching long-running operation ends."""

    pattern: re.Pattern
    code: str
    message: str
    status: str = "Failed"

    def error(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass
class Faults:
    """Armed faults, consumed in the order they were armed. Thread-safe."""

    _requests: list[_RequestFault] = field(default_factory=list)
    _operations: list[OperationFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        code: str = "InternalServerError",
        message: str = "Injected fault.",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests whose method and path match with this error."""
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        if not 400 <= int(status) <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        fault = _RequestFault(
            method.upper(),
            re.compile(path_regex, re.IGNORECASE),
            ArmHttpError(int(status), code, message, headers),
            times,
        )
        with self._lock:
            self._requests.append(fault)

    def fail_operation(self, path_regex: str, code: str, message: str, status: str = "Failed") -> None:
        """Make the next long-running operation started on a matching path end `Failed` or `Canceled`."""
        if status not in OPERATION_END_STATES:
            raise ValueError(f"status must be one of {', '.join(OPERATION_END_STATES)}, got {status!r}")
        with self._lock:
            self._operations.append(OperationFault(re.compile(path_regex, re.IGNORECASE), code, message, status))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._operations.clear()

    def take_request_fault(self, method: str, path: str) -> ArmHttpError | None:
        """The error armed for this request, if any (consumes one use of it)."""
        with self._lock:
            for fault in self._requests:
                if fault.method in (method.upper(), "*") and fault.pattern.search(path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._requests.remove(fault)
                    return fault.error
        return None

    def take_operation_fault(self, path: str) -> OperationFault | None:
        """The end armed for an operation started on this path, if any (consumed)."""
        with self._lock:
            for fault in self._operations:
                if fault.pattern.search(path):
                    self._operations.remove(fault)
                    return fault
        return None
