"""What activities record: audit rows, the pool-state row, outcome events. Each exactly once.

An activity may run twice for one orchestration step (its completion was lost and the host
redelivered it). Audit rows are keyed by the step's call id (stamped by the orchestrator,
the same on every re-run), so the second write changes nothing; an event is published only
by the run that wrote its audit row, with the call id as its event id. The pool-state row
is written with absolute values under its ETag, so a re-run writes the same row again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.adapters.publisher import OutcomeKind
from shared.adapters.store import StoreNotFoundError
from shared.core.errors import StoreConflictError, WardenError
from shared.core.models import ClusterRef
from shared.core.protocol import Failure, Outcome, WorkKind
from shared.core.records import AuditRecord, PoolState, WorkRequest
from shared.orchestration.envelope import cluster_ref
from shared.orchestration.runtime import Runtime
from shared.policy.plan import PoolPlan, Status


@dataclass(frozen=True)
class Entry:
    """One audit row of a step, beyond what the payload says (cluster, pool, actor, instance)."""

    step: str
    outcome: Outcome
    message: str = ""
    code: str = ""
    operation: str = ""
    mode_before: str | None = None
    mode_after: str | None = None


def audit(rt: Runtime, payload: dict, entry: Entry) -> bool:
    """Write the step's audit row once; True if this run wrote it (and may publish)."""
    return audit_rows(rt, payload, [(payload.get("pool") or "", entry)])


def audit_rows(rt: Runtime, payload: dict, entries: list[tuple[str, Entry]]) -> bool:
    """A step's rows, one per (pool, entry), written together and once."""
    call = payload.get("call") or {}
    records = [_record(payload, pool, entry) for pool, entry in entries]
    return rt.store.append_audit(records, key=call.get("id"))


def _record(payload: dict, pool: str, entry: Entry) -> AuditRecord:
    return AuditRecord(
        time=datetime.now(UTC),
        cluster_id=cluster_ref(payload).id,
        step=entry.step,
        outcome=entry.outcome,
        pool=pool,
        mode_before=entry.mode_before if entry.mode_before is not None else payload.get("modeBefore", ""),
        mode_after=entry.mode_after if entry.mode_after is not None else payload.get("mode", ""),
        operation_id=entry.operation,
        code=entry.code,
        message=entry.message,
        instance_id=payload.get("instanceId", ""),
        actor=payload.get("actor", ""),
        correlation_id=payload.get("correlationId", ""),
    )


def publish_outcome(rt: Runtime, payload: dict, outcome: Outcome) -> None:
    """A pool's remediation event, from its outcome row's payload: successes and failures only."""
    if outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        return
    kind = OutcomeKind.REMEDIATED if outcome is Outcome.SUCCEEDED else OutcomeKind.REMEDIATION_FAILED
    publish(
        rt,
        kind,
        payload,
        reason=payload.get("reason", ""),
        error=(payload.get("error") or {}).get("code"),
        modeBefore=payload.get("modeBefore"),
        modeAfter=payload.get("mode"),
    )


def follow_up_requests(payload: dict, follow_ups: list[dict]) -> list[WorkRequest]:
    """The work the cluster's work asks for next (its result's `followUps`: {"kind", "reason",
    "pool"}; no pool: the whole cluster), as the worker's own requests (`finish_requests`)."""
    cluster_id, now = cluster_ref(payload).id, datetime.now(UTC)
    return [
        WorkRequest(cluster_id, f.get("pool") or "", now, WorkKind(f["kind"]), f.get("reason", ""), "warden")
        for f in follow_ups
    ]


def audit_failure(rt: Runtime, payload: dict, step: str, failure: Failure, operation: str = "") -> bool:
    return audit(rt, payload, Entry(step, failure.outcome, failure.message, failure.code, operation))


def publish(rt: Runtime, kind: OutcomeKind, payload: dict, pool: str | None = None, **data) -> None:
    """Tell subscribers (if any); a delivery failure is logged by the publisher, never raised."""
    if rt.publisher is None:
        return
    own_pool = payload.get("pool") or ""
    pool = own_pool if pool is None else pool
    ref, event_id = cluster_ref(payload), (payload.get("call") or {}).get("id")
    subject = f"{ref.id}/agentPools/{pool}" if pool else ref.id
    if event_id and pool != own_pool:  # one step, several pools: one stable id each
        event_id = f"{event_id}-{pool}"
    rt.publisher.publish(kind, subject, {"pool": pool, "instanceId": payload.get("instanceId", ""), **data}, event_id)


@dataclass(frozen=True)
class Verified:
    """A pool's last verification, for its pool-state row."""

    time: datetime
    checked: int
    drifted: int
    verdict: str
    summary: str


@dataclass(frozen=True)
class PlannedPool:
    """What a plan says of a pool, for its pool-state row (JSON-ready: it also travels from the
    verification's planning step to its recording step)."""

    configured: str
    desired: str  # a mode, or "ignore"
    status: str
    reason: str
    os: str = ""
    os_sku: str = ""

    @classmethod
    def of(cls, plan: PoolPlan) -> PlannedPool:
        desired = plan.desired.value if plan.desired else "ignore"
        return cls(plan.current.value, desired, plan.status.value, plan.reason, plan.pool.os_type, plan.pool.os_sku)


_UNREAD = object()  # `save_state(known=...)` not given: the row is read first


def record_plans(rt: Runtime, plans: list[PoolPlan], rows: dict[str, PoolState] | None = None) -> list[str]:
    """Every pool a plan sees has a row, so the compliance report (read from the rows) covers the
    whole fleet: a pool no reconcile or verification has written (a stopped cluster's, one never
    changed), or whose plan has moved on without work (its cluster stopped), gets the plan's facts.
    `rows`: the pools' rows by pool key as just read (None: each is read). Returns what failed."""
    errors = []
    for plan in plans:
        facts = PlannedPool.of(plan)
        row = rows.get(plan.pool.key) if rows is not None else pool_state(rt, plan.cluster.ref, plan.pool.name)
        if row is not None and (row.status.value, row.configured_mode, row.desired_mode) == (
            facts.status,
            facts.configured,
            facts.desired,
        ):
            continue
        try:
            save_state(rt, plan.cluster.ref, plan.pool.name, known=row, planned=facts)
        except WardenError as e:  # the next resync writes it
            errors.append(f"pool {plan.pool.id}: its row could not be written: {e}")
    return errors


def pool_state(rt: Runtime, ref: ClusterRef, pool: str) -> PoolState | None:
    try:
        return rt.store.get_pool_state(ref.key, pool)
    except StoreNotFoundError:
        return None


def save_state(
    rt: Runtime,
    ref: ClusterRef,
    pool: str,
    *,
    known: PoolState | None | object = _UNREAD,
    attempts: int = 3,
    **changes: Any,
) -> None:
    """Read-modify-write the pool's row under its ETag; a concurrent change means re-read.
    `changes`: see `_changed`. `known`: the row as the caller has just read it (or None if
    there was none), saving a read."""
    for attempt in range(attempts):
        current = known if attempt == 0 and known is not _UNREAD else pool_state(rt, ref, pool)
        state = current or PoolState(ref.id, pool, desired_mode="", configured_mode="", status=Status.DRIFTED.value)
        state = _changed(state, **changes)
        try:
            rt.store.put_pool_state(state, etag=current.etag if current else None)
            return
        except StoreConflictError:
            continue
    raise StoreConflictError(
        f"pool state of {ref.id}/agentPools/{pool} kept changing; gave up after {attempts} attempts"
    )


def merge_state(
    rt: Runtime, ref: ClusterRef, pool: str, known: PoolState, etag: str | None = None, **changes: Any
) -> None:
    """`save_state`'s changes written without a read: `known` holds what the status depends on
    (modes, status, pending reimage) as the row has them, which its writer knows (the listing
    read it, or the reconcile's own plan has just written it: a pool's row is written by its
    cluster's worker alone, one step after another). Only the changed columns are written; with
    `etag`, only if the row is unchanged since. A row changed or gone is written as `save_state`
    does."""
    state = _changed(known, **changes)
    columns = [column for name in changes for column in _COLUMNS[name]] + ["status", "updated_time"]
    try:
        rt.store.merge_pool_state(state, columns, etag)
    except (StoreNotFoundError, StoreConflictError):
        save_state(rt, ref, pool, **changes)


def row_seen(ref: ClusterRef, pool: str, seen: dict | None) -> PoolState | None:
    """A pool's row as a cluster's listing saw it ({"pending", "etag"}; None: there was none):
    enough to plan the pool and to merge the plan's columns under that ETag."""
    if seen is None:
        return None
    drifted = Status.DRIFTED.value  # no column but pending_reimage is judged from it
    return PoolState(ref.id, pool, "", "", drifted, pending_reimage=seen["pending"], etag=seen["etag"])


_COLUMNS = {  # the row's fields each change of `_changed` sets
    "plan": ("desired_mode", "configured_mode", "reason", "os", "os_sku"),
    "planned": ("desired_mode", "configured_mode", "reason", "os", "os_sku"),
    "verified": ("last_verified_time", "nodes_checked", "nodes_drifted", "verification_summary", "verdict"),
    "configured": ("configured_mode",),
    "desired": ("desired_mode",),
    "pending": ("pending_reimage",),
    "upgraded": ("last_upgrade_time", "last_upgrade_operation_id"),
    "upgrade_wait": ("upgrade_instance_id", "upgrade_started_time"),
    "reason": ("reason",),
}


def _changed(
    state: PoolState,
    *,
    plan: PoolPlan | None = None,
    configured: str | None = None,
    desired: str | None = None,
    pending: bool | None = None,
    upgraded: tuple[datetime, str] | None = None,
    upgrade_wait: tuple[str, datetime | None] | None = None,
    reason: str | None = None,
    verified: Verified | None = None,
    planned: PlannedPool | None = None,
) -> PoolState:
    """The row with the changes given, its status in step and its time now.
    `upgrade_wait`: (instance id, start time) of the orchestration now polling the pool's
    node-image upgrade, ("", None) when none does (the start time of the latest is kept)."""
    planned = planned or (PlannedPool.of(plan) if plan is not None else None)
    if planned is not None:
        state = replace(
            state,
            desired_mode=planned.desired,
            configured_mode=planned.configured,
            status=planned.status,
            reason=planned.reason,
            os=planned.os,
            os_sku=planned.os_sku,
        )
    if configured is not None:
        state = replace(state, configured_mode=configured)
    if desired is not None:
        state = replace(state, desired_mode=desired)
    if pending is not None:
        state = replace(state, pending_reimage=pending)
    if upgraded is not None:
        state = replace(state, last_upgrade_time=upgraded[0], last_upgrade_operation_id=upgraded[1])
    if upgrade_wait is not None:
        started = upgrade_wait[1] or state.upgrade_started_time  # the latest start is kept after its end
        state = replace(state, upgrade_instance_id=upgrade_wait[0], upgrade_started_time=started)
    if reason is not None:
        state = replace(state, reason=reason)
    if verified is not None:
        state = replace(
            state,
            last_verified_time=verified.time,
            nodes_checked=verified.checked,
            nodes_drifted=verified.drifted,
            verification_summary=verified.summary,
            verdict=verified.verdict,
        )
    return replace(state, status=_status(state), updated_time=datetime.now(UTC))


def _status(state: PoolState) -> str:
    """Keep the row's status in step with the modes it records."""
    kept = (Status.IGNORED.value, Status.UNSUPPORTED.value, Status.EXEMPTED.value)  # set by the plan alone
    if state.status.value in kept or not state.desired_mode:
        return state.status.value
    if state.configured_mode.lower() != state.desired_mode.lower():
        return Status.DRIFTED.value
    return Status.PENDING_REIMAGE.value if state.pending_reimage else Status.COMPLIANT.value
