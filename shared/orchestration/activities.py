"""Activities of the reconcile orchestration: the only steps that do I/O.

Each takes and returns JSON. ARM errors do not raise (Durable would turn them into a
bare `Exception` text): they come back as `{"ok": false, "error": {kind, code, message,
retryable, retryAfter}}` for the orchestrator to decide on. Every step writes its audit
row here, at the moment it happens, success or failure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from shared.adapters.publisher import OutcomeKind
from shared.adapters.store import StoreNotFoundError
from shared.errors import (
    ArmError,
    ConflictError,
    NotFoundError,
    OperationFailedError,
    StoreConflictError,
    ThrottledError,
)
from shared.models import Cluster, ClusterRef, Operation, Pool, SshAccess
from shared.orchestration.runtime import Runtime, runtime
from shared.plan import PoolPlan, Status, Step, plan_pool
from shared.records import AuditRecord, Outcome, PoolState

NODE_OS_SCHEDULE = "aksManagedNodeOSUpgradeSchedule"
IDLE_STATES = ("succeeded", "failed", "canceled")


def list_pools(payload: dict) -> dict:
    rt, ref = runtime(), _ref(payload)
    try:
        return {"ok": True, "pools": [p.name for p in rt.arm.list_pools(ref)]}
    except ArmError as e:
        return _failed(rt, payload, "list-pools", e)


def plan_pool_activity(payload: dict) -> dict:
    """Read cluster and pools, plan, record the decision; say what the orchestrator should do.

    The pool comes from the cluster's pool list (one request, like a GET of the pool), so
    the plan also knows whether the whole cluster is idle and the first write need not wait.
    """
    rt, ref, name = runtime(), _ref(payload), payload["pool"]
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        state = _pool_state(rt, ref, name)
        plan = plan_pool(
            cluster,
            _find_pool(ref, pools, name),
            rt.settings.policy,
            pending_reimage=bool(state and state.pending_reimage),
        )
        # The window is read only where an upgrade will wait for it.
        waits = Step.UPGRADE_NODE_IMAGE in plan.steps and rt.settings.policy.upgrade_window == "nodeOSSchedule"
        window = _node_os_window(rt, ref) if waits else None
    except ArmError as e:
        return _failed(rt, payload, "plan", e)
    outcome = _plan_outcome(plan, rt.settings.enforcing)
    _audit(
        rt,
        payload,
        "plan",
        Outcome.PLANNED if outcome == "planned" else Outcome.SKIPPED,
        plan=plan,
        message=f"{outcome}: {plan.reason}",
    )
    _save_state(rt, ref, name, plan=plan)
    if plan.status is Status.UNSUPPORTED:
        _publish(
            rt,
            OutcomeKind.UNSUPPORTED,
            payload,
            reason=plan.reason,
            desired=plan.desired.value if plan.desired else None,
        )
    elif outcome == "drift-recorded":
        _publish(
            rt,
            OutcomeKind.DRIFT,
            payload,
            current=plan.current.value,
            desired=plan.desired.value if plan.desired else None,
        )
    return {
        "ok": True,
        "outcome": outcome,
        "reason": plan.reason,
        "steps": [s.value for s in plan.steps],
        "current": plan.current.value,
        "desired": plan.desired.value if plan.desired else None,
        "enforce": rt.settings.enforcing,
        "pollSeconds": rt.settings.poll_seconds,
        "idle": not _busy(cluster, pools),
        "upgradeWindow": rt.settings.policy.upgrade_window,
        "maintenanceWindow": window,
    }


def check_idle(payload: dict) -> dict:
    """Idle: no operation runs on the cluster or any of its pools (AKS allows one at a time).
    Also says the pool's node image, so a retried upgrade can tell it already ran."""
    rt, ref = runtime(), _ref(payload)
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        pool = _find_pool(ref, pools, payload["pool"])
    except ArmError as e:
        return _error(e)
    busy = _busy(cluster, pools)
    return {"ok": True, "idle": not busy, "busy": busy, "nodeImageVersion": pool.node_image_version}


def _find_pool(ref: ClusterRef, pools: list[Pool], name: str) -> Pool:
    for pool in pools:
        if pool.name.lower() == name.lower():
            return pool
    raise NotFoundError("NotFound", f"pool {name!r} is not in {ref}", status=404)


def _busy(cluster: Cluster, pools: list[Pool]) -> list[str]:
    busy = [f"cluster {cluster.provisioning_state}"] if cluster.provisioning_state.lower() not in IDLE_STATES else []
    return busy + [
        f"pool {p.name} {p.provisioning_state}" for p in pools if p.provisioning_state.lower() not in IDLE_STATES
    ]


def start_ssh_update(payload: dict) -> dict:
    rt, ref, mode = runtime(), _ref(payload), SshAccess.parse(payload["mode"])
    return _start(
        rt, payload, Step.UPDATE_SSH_ACCESS.value, lambda: rt.arm.set_pool_ssh_access(ref, payload["pool"], mode)
    )


def start_node_image_upgrade(payload: dict) -> dict:
    rt, ref = runtime(), _ref(payload)
    return _start(
        rt, payload, Step.UPGRADE_NODE_IMAGE.value, lambda: rt.arm.start_node_image_upgrade(ref, payload["pool"])
    )


def poll_operation(payload: dict) -> dict:
    """One poll; on the operation's end, record it and the pool's new state."""
    rt, ref, step = runtime(), _ref(payload), payload["step"]
    operation = Operation(**payload["operation"])
    try:
        state = rt.arm.operation_state(operation, ref.subscription)
    except ArmError as e:
        return _error(e)
    if not state.done:
        return {"ok": True, "done": False, "status": state.status, "retryAfter": state.retry_after}
    if not state.succeeded:
        failure = OperationFailedError(
            state.error_code or state.status, state.error_message or f"operation ended {state.status}"
        )
        return _failed(rt, payload, step, failure, operation=operation.url)
    _audit(rt, payload, step, Outcome.SUCCEEDED, operation=operation.url)
    _after_success(rt, ref, payload, step, operation)
    return {"ok": True, "done": True, "status": state.status}


def take_requests(payload: dict) -> dict:
    """The cluster's pending requests, taken: {"pools": [names], "everything": bool}."""
    rt, ref = runtime(), _ref(payload)
    requests = rt.store.take_requests(ref.key)
    return {
        "pools": sorted({r.pool for r in requests if r.pool}),
        "everything": any(not r.pool for r in requests),
        "count": len(requests),
        "pollSeconds": rt.settings.poll_seconds,
    }


def record(payload: dict) -> None:
    """A decision the orchestrator made (retry, window wait, final outcome) for the audit trail."""
    rt = runtime()
    _audit(
        rt,
        payload,
        payload["step"],
        Outcome(payload["outcome"]),
        message=payload.get("reason", ""),
        error_json=payload.get("error"),
    )
    if "pendingReimage" in payload:
        _save_state(rt, _ref(payload), payload["pool"], pending=payload["pendingReimage"])
    if payload["step"] == "outcome" and payload["outcome"] in ("succeeded", "failed"):
        kind = OutcomeKind.REMEDIATED if payload["outcome"] == "succeeded" else OutcomeKind.REMEDIATION_FAILED
        _publish(
            rt,
            kind,
            payload,
            reason=payload.get("reason", ""),
            error=(payload.get("error") or {}).get("code"),
            modeBefore=payload.get("modeBefore"),
            modeAfter=payload.get("mode"),
        )


# --- helpers ------------------------------------------------------------------------------


def _start(rt: Runtime, payload: dict, step: str, begin) -> dict:
    try:
        operation = begin()
    except ArmError as e:
        return _failed(rt, payload, step, e)
    _audit(rt, payload, step, Outcome.STARTED, operation=operation.url)
    if operation.kind == "done":
        _after_success(rt, _ref(payload), payload, step, operation)
        return {"ok": True, "operation": None}
    return {"ok": True, "operation": {"url": operation.url, "kind": operation.kind}}


def _failed(rt: Runtime, payload: dict, step: str, e: ArmError, operation: str = "") -> dict:
    """Terminal errors are recorded here; retryable ones by the orchestrator, with its delay."""
    if not e.retryable:
        _audit(
            rt,
            payload,
            step,
            Outcome.GONE if isinstance(e, NotFoundError) else Outcome.FAILED,
            error=e,
            operation=operation,
        )
    return _error(e)


def _after_success(rt: Runtime, ref: ClusterRef, payload: dict, step: str, operation: Operation) -> None:
    if step == Step.UPDATE_SSH_ACCESS.value:
        _save_state(rt, ref, payload["pool"], configured=payload["mode"], pending=bool(payload.get("reimageOwed")))
    elif step == Step.UPGRADE_NODE_IMAGE.value:
        _save_state(rt, ref, payload["pool"], pending=False, upgraded=(datetime.now(UTC), operation.url))


def _plan_outcome(plan: PoolPlan, enforcing: bool) -> str:
    if not plan.steps:
        return "skipped" if plan.status is Status.DRIFTED else plan.status.value
    return "planned" if enforcing else "drift-recorded"


def _node_os_window(rt: Runtime, ref: ClusterRef) -> dict | None:
    configs = rt.arm.list_maintenance_configurations(ref)
    return next((dict(c.window) for c in configs if c.name.lower() == NODE_OS_SCHEDULE.lower()), None)


def _pool_state(rt: Runtime, ref: ClusterRef, pool: str) -> PoolState | None:
    try:
        return rt.store.get_pool_state(ref.key, pool)
    except StoreNotFoundError:
        return None


def _save_state(
    rt: Runtime,
    ref: ClusterRef,
    pool: str,
    *,
    plan: PoolPlan | None = None,
    configured: str | None = None,
    pending: bool | None = None,
    upgraded: tuple[datetime, str] | None = None,
    attempts: int = 3,
) -> None:
    """Read-modify-write the pool's row under its ETag; a concurrent change means re-read."""
    for _ in range(attempts):
        current = _pool_state(rt, ref, pool)
        state = current or PoolState(ref.id, pool, desired_mode="", configured_mode="", status=Status.DRIFTED.value)
        if plan is not None:
            state = replace(
                state,
                desired_mode=plan.desired.value if plan.desired else "ignore",
                configured_mode=plan.current.value,
                status=plan.status.value,
                reason=plan.reason,
            )
        if configured is not None:
            state = replace(state, configured_mode=configured)
        if pending is not None:
            state = replace(state, pending_reimage=pending)
        if upgraded is not None:
            state = replace(state, last_upgrade_time=upgraded[0], last_upgrade_operation_id=upgraded[1])
        state = replace(state, status=_status(state), updated_time=datetime.now(UTC))
        try:
            rt.store.put_pool_state(state, etag=current.etag if current else None)
            return
        except StoreConflictError:
            continue
    raise StoreConflictError(
        f"pool state of {ref.id}/agentPools/{pool} kept changing; gave up after {attempts} attempts"
    )


def _status(state: PoolState) -> str:
    """Keep the row's status in step with the modes it records."""
    if state.status.value in (Status.IGNORED.value, Status.UNSUPPORTED.value) or not state.desired_mode:
        return state.status.value
    if state.configured_mode.lower() != state.desired_mode.lower():
        return Status.DRIFTED.value
    return Status.PENDING_REIMAGE.value if state.pending_reimage else Status.COMPLIANT.value


def _audit(
    rt: Runtime,
    payload: dict,
    step: str,
    outcome: Outcome,
    *,
    plan: PoolPlan | None = None,
    error: ArmError | None = None,
    error_json: dict | None = None,
    operation: str = "",
    message: str = "",
) -> None:
    error_json = error_json or (_error(error)["error"] if error else None)
    rt.store.append_audit(
        [
            AuditRecord(
                time=datetime.now(UTC),
                cluster_id=_ref(payload).id,
                step=step,
                outcome=outcome,
                pool=payload.get("pool") or "",
                mode_before=plan.current.value if plan else payload.get("modeBefore", ""),
                mode_after=(plan.desired.value if plan and plan.desired else "") if plan else payload.get("mode", ""),
                operation_id=operation,
                code=(error_json or {}).get("code", ""),
                message=message or (error_json or {}).get("message", ""),
                instance_id=payload.get("instanceId", ""),
                actor=payload.get("actor", ""),
                correlation_id=payload.get("correlationId", ""),
            )
        ]
    )


def _publish(rt: Runtime, kind: OutcomeKind, payload: dict, **data) -> None:
    """Tell subscribers (if any); a delivery failure is logged by the publisher, never raised."""
    if rt.publisher is not None:
        subject = f"{_ref(payload).id}/agentPools/{payload['pool']}"
        rt.publisher.publish(
            kind, subject, {"pool": payload["pool"], "instanceId": payload.get("instanceId", ""), **data}
        )


def _error(e: ArmError) -> dict:
    kind = {
        NotFoundError: "not-found",
        ConflictError: "conflict",
        ThrottledError: "throttled",
        OperationFailedError: "operation-failed",
    }
    return {
        "ok": False,
        "error": {
            "kind": kind.get(type(e), "transient" if e.retryable else "permanent"),
            "code": e.code,
            "message": e.message,
            "status": e.status,
            "retryable": e.retryable,
            "retryAfter": e.retry_after,
        },
    }


def _ref(payload: dict) -> ClusterRef:
    c = payload["cluster"]
    return ClusterRef(c["subscription"], c["resourceGroup"], c["name"])
