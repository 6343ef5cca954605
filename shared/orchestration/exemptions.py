"""Break-glass exemptions as the activities, the triggers and the CLI use them: the exemption in
force on a pool, and each grant, change, removal and expiry written and recorded once.

The row in WardenExemptions is the exemption. An expired row is never honoured (every reader
compares `until` with its own now) and is removed once its expiry is recorded: by its timer,
or, if that was lost, by the resync or the next grant on the pool. Each record is an audit row
(step `exemption`) keyed by the exemption (its pool and grant time) and what happened to it, so
a re-run or a second path records nothing twice; its event is published by the run that wrote it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from shared.adapters.publisher import OutcomeKind
from shared.core.errors import StoreConflictError
from shared.core.models import ClusterRef, SshAccess, Target
from shared.core.protocol import Outcome
from shared.core.records import PoolExemption, exemptions_in_force
from shared.core.table_keys import iso
from shared.orchestration.envelope import cluster_json, step_time
from shared.orchestration.recording import Entry, audit, publish
from shared.orchestration.runtime import Runtime
from shared.policy.plan import Exemption

STEP = "exemption"
EXPIRY_ACTOR = "warden"
ATTEMPTS = 3  # concurrent writers on one pool's row: read again, decide again


class Change(StrEnum):
    GRANTED = "granted"
    CHANGED = "changed"  # a new end, mode or reason for a pool already exempt
    UNCHANGED = "unchanged"  # the same exemption asked again: nothing written
    REMOVED = "removed"
    EXPIRED = "expired"


_CODES = {
    Change.GRANTED: "ExemptionGranted",
    Change.CHANGED: "ExemptionChanged",
    Change.REMOVED: "ExemptionRemoved",
    Change.EXPIRED: "ExemptionExpired",
}
_EVENTS = {
    Change.GRANTED: OutcomeKind.EXEMPTION_GRANTED,
    Change.CHANGED: OutcomeKind.EXEMPTION_GRANTED,
    Change.REMOVED: OutcomeKind.EXEMPTION_REMOVED,
    Change.EXPIRED: OutcomeKind.EXEMPTION_EXPIRED,
}
# A grant and its change share a key: asked again after a lost answer, the record is found written.
_KEY_KIND = {Change.GRANTED: "grant", Change.CHANGED: "grant", Change.REMOVED: "removal", Change.EXPIRED: "expiry"}


@dataclass(frozen=True)
class Changed:
    """What became of a pool's exemption: written (with its new ETag), found unchanged, or ended."""

    exemption: PoolExemption
    change: Change


# --- reading: only what is in force ---------------------------------------------------------


def in_force(rt: Runtime, ref: ClusterRef, pool: str, now: datetime | None = None) -> Exemption | None:
    """The pool's exemption if it is still ahead of `now` (default: the wall clock); an activity
    passes its orchestration step's time."""
    row = rt.store.get_exemption(ref.key, pool)
    return row.terms if row is not None and row.in_force(now or datetime.now(UTC)) else None


def in_force_in_cluster(rt: Runtime, ref: ClusterRef, now: datetime) -> dict[str, Exemption]:
    """The cluster's exemptions still ahead of `now`, by pool key."""
    return exemptions_in_force(rt.store.list_exemptions(ref.key), now)


def for_step(rt: Runtime, ref: ClusterRef, pool: str, payload: dict) -> Exemption | None:
    """The pool's exemption in force at an activity's step: the orchestration's time, the same
    on every re-run (and the virtual time of a test), not this machine's."""
    return in_force(rt, ref, pool, step_time(payload))


def for_cluster_step(rt: Runtime, ref: ClusterRef, payload: dict) -> dict[str, Exemption]:
    return in_force_in_cluster(rt, ref, step_time(payload))


def to_payload(exemption: Exemption) -> dict[str, str | None]:
    """An exemption in force, for a later step of the orchestration (JSON)."""
    mode = exemption.mode.value if exemption.mode else None
    return {"actor": exemption.actor, "reason": exemption.reason, "until": iso(exemption.until), "mode": mode}


def from_payload(value: dict | None, at: datetime) -> Exemption | None:
    """The exemption `to_payload` gave, if it is still in force at `at` (a step's time)."""
    if not value or (until := datetime.fromisoformat(value["until"])) <= at:
        return None
    mode = SshAccess.parse(value["mode"]) if value.get("mode") else None
    return Exemption(value["actor"], value["reason"], until, mode)


# --- writing: each change recorded once -----------------------------------------------------


def grant(rt: Runtime, asked: PoolExemption, now: datetime) -> Changed:
    """Write the exemption `asked` (a new one, or replacing the pool's) and record it. The same
    exemption still in force is left as it is, its record made sure of (a retried request). An
    expired row in the way has its expiry recorded first."""
    for _ in range(ATTEMPTS):
        current = rt.store.get_exemption(asked.cluster_id.lower(), asked.pool)
        if current is not None and not current.in_force(now):
            expire(rt, current, now)
            continue
        if current is not None and _same_terms(current, asked):
            _record(rt, current, Change.GRANTED, current.actor)
            return Changed(current, Change.UNCHANGED)
        try:
            etag = rt.store.put_exemption(asked, etag=current.etag if current else None)
        except StoreConflictError:
            continue
        written, change = replace(asked, etag=etag), Change.CHANGED if current else Change.GRANTED
        _record(rt, written, change, asked.actor, previous=current)
        return Changed(written, change)
    raise StoreConflictError(f"the exemption of {asked.pool_key} kept changing; gave up after {ATTEMPTS} attempts")


def remove(rt: Runtime, ref: ClusterRef, pool: str, actor: str, reason: str, now: datetime) -> Changed | None:
    """End the pool's exemption early and record who and why; None when the pool has none. One
    found already ended is recorded as expired (`Change.EXPIRED`) instead."""
    recorded: PoolExemption | None = None
    for _ in range(ATTEMPTS):
        current = rt.store.get_exemption(ref.key, pool)
        if current is None:  # gone: if this call recorded its removal, a concurrent one deleted it
            return Changed(recorded, Change.REMOVED) if recorded else None
        if expire(rt, current, now):
            return Changed(current, Change.EXPIRED)
        _record(rt, current, Change.REMOVED, actor, why=reason)  # first: a retry finds the row and the record
        recorded = current
        if rt.store.delete_exemption(current):
            return Changed(current, Change.REMOVED)
    raise StoreConflictError(f"the exemption of {ref.id}/agentPools/{pool} kept changing; gave up")


def expire(rt: Runtime, row: PoolExemption, now: datetime) -> bool:
    """Record the expiry of `row` and remove it, if it has ended by `now`; False if it is in force."""
    if row.in_force(now):
        return False
    record_expiry(rt, row)
    rt.store.delete_exemption(row)  # False when renewed meanwhile: the renewal stands
    return True


def record_expiry(rt: Runtime, row: PoolExemption, instance_id: str = "") -> bool:
    """The expiry's audit row and event, once whoever notices it (its timer, the resync, a grant)."""
    return _record(rt, row, Change.EXPIRED, EXPIRY_ACTOR, instance_id=instance_id)


def expire_all_due(rt: Runtime, now: datetime) -> list[PoolExemption]:
    """Every stored exemption that has ended by `now`, recorded and removed (the resync's sweep:
    a timer may have been lost)."""
    return [row for row in rt.store.list_exemptions() if expire(rt, row, now)]


def _same_terms(current: PoolExemption, asked: PoolExemption) -> bool:
    def terms(row: PoolExemption) -> tuple:
        return row.until, row.mode, row.reason, row.actor

    return terms(current) == terms(asked)


def _record(
    rt: Runtime,
    row: PoolExemption,
    change: Change,
    actor: str,
    *,
    previous: PoolExemption | None = None,
    why: str = "",
    instance_id: str = "",
) -> bool:
    """The audit row of `change` (once) and, from the run that wrote it, its event."""
    payload = {
        "cluster": cluster_json(Target.from_id(row.cluster_id).cluster),
        "pool": row.pool,
        "actor": actor,
        "instanceId": instance_id,
        "call": {"id": record_key(row, change)},
    }
    message = describe(row, change, actor, previous, why)
    first = audit(rt, payload, Entry(STEP, Outcome.SUCCEEDED, message, _CODES[change], mode_after=row.mode))
    if first:
        data = {
            "change": change.value,
            "actor": actor,
            "reason": why or row.reason,
            "until": iso(row.until),
            "mode": row.mode or None,
            "grantedBy": row.actor,
            "grantedAt": iso(row.granted_time),
        }
        if previous is not None:
            data["previousUntil"] = iso(previous.until)
        publish(rt, _EVENTS[change], payload, **data)
    return first


def record_key(row: PoolExemption, change: Change) -> str:
    """The audit key of one thing happening to one exemption (its pool and grant time)."""
    digest = hashlib.sha256(f"{row.pool_key}|{iso(row.granted_time)}".encode()).hexdigest()[:24]
    return f"{STEP}-{_KEY_KIND[change]}-{digest}"


def describe(
    row: PoolExemption, change: Change, actor: str, previous: PoolExemption | None = None, why: str = ""
) -> str:
    gives = f"gives {row.mode}" if row.mode else "keeps its mode"
    if change is Change.EXPIRED:
        return f"expired at {iso(row.until)}: granted by {row.actor} ({row.reason}); the policy applies again"
    if change is Change.REMOVED:
        return f"removed by {actor} before {iso(row.until)} ({why}); granted by {row.actor} ({row.reason})"
    if previous is not None:
        before = f"until {iso(previous.until)}, " + (f"gave {previous.mode}" if previous.mode else "kept its mode")
        return f"changed by {actor}: until {iso(row.until)}, {gives} (was {before}) ({row.reason})"
    return f"granted by {actor} until {iso(row.until)}, {gives} ({row.reason})"
