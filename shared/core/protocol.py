"""The one protocol between orchestrators and activities, and the one outcome vocabulary. Pure.

Every activity returns a `Result` (as JSON: Durable stores activity outputs in the history):
`ok` with activity-specific `value`s, or a `Failure` that says whether to retry. Activities
never raise on purpose: an exception reaches an orchestrator only as bare text, so the
activity wrapper turns any unexpected one into a retryable `internal` failure (unknown
errors are temporary, as kopf treats them) and the orchestrator decides with durable timers.

`Outcome` is shared by audit rows, pool results, published events and CLI output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PLANNED = "planned"
    SKIPPED = "skipped"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRIED = "retried"
    WAITING = "waiting"  # for a maintenance window, or a reimage still owed
    GONE = "gone"  # the pool or cluster was deleted meanwhile


class WorkKind(StrEnum):
    """The kinds of cluster work; the cluster's worker runs one item at a time, whatever its kind."""

    RECONCILE = "reconcile"
    VERIFY = "verify"
    ROTATE_KEYS = "rotate-keys"


class FailureKind(StrEnum):
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    OPERATION_FAILED = "operation-failed"
    INTERNAL = "internal"  # outside ARM: Table Storage, an unexpected exception
    EXHAUSTED = "exhausted"  # bounded retries spent
    WAITING = "waiting"  # not now and not retried: the pool waits (e.g. its cluster's reimages are paused)


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    code: str
    message: str
    retryable: bool = False
    retry_after: float | None = None
    status: int | None = None
    recorded: bool = False  # the activity already wrote the audit row for it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "retryAfter": self.retry_after,
            "status": self.status,
            "recorded": self.recorded,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(
            FailureKind(data["kind"]),
            data.get("code", ""),
            data.get("message", ""),
            bool(data.get("retryable")),
            data.get("retryAfter"),
            data.get("status"),
            bool(data.get("recorded")),
        )

    @property
    def outcome(self) -> Outcome:
        """What a terminal failure means for the pool it concerns."""
        if self.kind is FailureKind.WAITING:
            return Outcome.WAITING
        return Outcome.GONE if self.kind is FailureKind.NOT_FOUND else Outcome.FAILED


@dataclass(frozen=True)
class Result:
    ok: bool
    value: dict[str, Any] = field(default_factory=dict)
    error: Failure | None = None

    def __getitem__(self, name: str) -> Any:
        return self.value[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.value.get(name, default)

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "value": self.value}
        assert self.error is not None
        return {"ok": False, "error": self.error.to_json(), **({"value": self.value} if self.value else {})}

    @classmethod
    def from_json(cls, data: Any) -> Result:
        if not isinstance(data, dict) or "ok" not in data:
            return failed(FailureKind.INTERNAL, "BadActivityResult", f"not an activity result: {str(data)[:200]}")
        if data["ok"]:
            return cls(True, data.get("value") or {})
        return cls(False, data.get("value") or {}, Failure.from_json(data["error"]))


def succeeded(**value: Any) -> Result:
    return Result(True, value)


def failed(kind: FailureKind, code: str, message: str, *, retryable: bool = False, **extra: Any) -> Result:
    return Result(False, error=Failure(kind, code, message, retryable, **extra))


def exhausted(what: str, last: Failure | None = None) -> Result:
    """Bounded retries spent; the last error is kept in the message for the audit trail."""
    message = f"{what}: gave up after bounded retries"
    if last is not None:
        message += f"; last error {last.code}: {last.message}"
    return failed(FailureKind.EXHAUSTED, "RetriesExhausted", message)
