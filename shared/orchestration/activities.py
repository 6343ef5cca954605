"""Activities: the only steps that do I/O. Entry points only; each returns a `Result`.

Terminal ARM errors are recorded here, at the moment they happen (the failure says
`recorded`); retryable ones come back for the orchestrator to retry with its delay.
Every write re-checks, with what it has just read, that it still applies.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from datetime import UTC, datetime

from shared.adapters.publisher import OutcomeKind
from shared.errors import ArmError, NotFoundError, OperationFailedError, Superseded
from shared.models import Cluster, ClusterRef, Operation, Pool, SshAccess
from shared.orchestration.envelope import activity, arm_failure, cluster_ref
from shared.orchestration.recording import Entry, audit, audit_failure, pool_state, publish, save_state
from shared.orchestration.runtime import Runtime, runtime
from shared.plan import Status, Step, plan_pool, write_still_applies
from shared.protocol import Outcome, Result, succeeded
from shared.work import work_items

log = logging.getLogger(__name__)
NODE_OS_SCHEDULE = "aksManagedNodeOSUpgradeSchedule"
IDLE_STATES = ("succeeded", "failed", "canceled")

# --- the worker's queue ---------------------------------------------------------------------


@activity
def lease_requests(payload: dict) -> Result:
    rt, ref = runtime(), cluster_ref(payload)
    requests = rt.store.lease_requests(ref.key, payload["lease"])
    return succeeded(work=work_items(requests), pollSeconds=rt.settings.poll_seconds)


@activity
def finish_requests(payload: dict) -> Result:
    rt, ref = runtime(), cluster_ref(payload)
    return succeeded(deleted=rt.store.finish_requests(ref.key, [tuple(row) for row in payload["rows"]]))


@activity
def close_worker(payload: dict) -> Result:
    rt, ref = runtime(), cluster_ref(payload)
    return succeeded(closed=rt.store.close_worker(ref.key))


# --- reconcile --------------------------------------------------------------------------------


@activity
def list_pools(payload: dict) -> Result:
    rt, ref = runtime(), cluster_ref(payload)
    if why := _out_of_scope(rt, ref):
        audit(rt, payload, Entry("list-pools", Outcome.SKIPPED, why))
        return succeeded(pools=[])
    try:
        return succeeded(pools=[p.name for p in rt.arm.list_pools(ref)])
    except ArmError as e:
        return _arm_failed(rt, payload, "list-pools", e)


@activity
def plan_pool_activity(payload: dict) -> Result:
    """Read cluster and pools, plan, record the decision; say what the orchestrator should do.

    The pool comes from the cluster's pool list (one request, like a GET of the pool), so
    the plan also knows whether the whole cluster is idle and the first write need not wait.
    """
    rt, ref, name = runtime(), cluster_ref(payload), payload["pool"]
    if why := _out_of_scope(rt, ref):
        audit(rt, payload, Entry("plan", Outcome.SKIPPED, why))
        return succeeded(outcome=Outcome.SKIPPED.value, status=Status.IGNORED.value, reason=why, steps=[])
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        state = pool_state(rt, ref, name)
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
        return _arm_failed(rt, payload, "plan", e)
    acting = bool(plan.steps) and rt.settings.enforcing
    reason = plan.reason if acting or not plan.steps else f"audit mode, nothing written: {plan.reason}"
    desired = plan.desired.value if plan.desired else "ignore"
    outcome = Outcome.PLANNED if acting else Outcome.SKIPPED
    save_state(rt, ref, name, plan=plan)  # side effects first, the audit row last: it marks the step done
    first = audit(
        rt,
        payload,
        Entry("plan", outcome, f"{plan.status.value}: {reason}", mode_before=plan.current.value, mode_after=desired),
    )
    if first and plan.status is Status.UNSUPPORTED:
        publish(rt, OutcomeKind.UNSUPPORTED, payload, reason=plan.reason, desired=desired)
    elif first and plan.steps and not acting:
        publish(rt, OutcomeKind.DRIFT, payload, current=plan.current.value, desired=desired)
    return succeeded(
        outcome=outcome.value,
        status=plan.status.value,
        reason=reason,
        steps=[s.value for s in plan.steps] if acting else [],
        current=plan.current.value,
        desired=desired,
        pollSeconds=rt.settings.poll_seconds,
        idle=not _busy(cluster, pools),
        upgradeWindow=rt.settings.policy.upgrade_window,
        maintenanceWindow=window,
    )


@activity
def start_ssh_update(payload: dict) -> Result:
    """PUT the pool's new sshAccess, once the cluster is idle and the decision still holds.

    `fresh`: the plan has just seen the cluster idle, nothing waited since; the PUT's own GET
    of the pool is re-check enough. Otherwise cluster and pools are read again first.
    """
    rt, ref, name, mode = runtime(), cluster_ref(payload), payload["pool"], SshAccess.parse(payload["mode"])
    step = Step.UPDATE_SSH_ACCESS.value
    if (receipt := _already_started(rt, payload)) is not None:
        return receipt
    try:
        cluster = None
        if not payload.get("fresh"):
            cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
            if busy := _busy(cluster, pools):
                return succeeded(busy=busy, nodeImageVersion=_find_pool(ref, pools, name).node_image_version)
        operation = rt.arm.set_pool_ssh_access(
            ref, name, mode, check=lambda pool: _recheck(rt, cluster, pool, mode, step)
        )
    except Superseded as s:
        return _superseded(rt, payload, step, s)
    except ArmError as e:
        return _arm_failed(rt, payload, step, e)
    return _started(rt, payload, step, operation)


@activity
def start_node_image_upgrade(payload: dict) -> Result:
    """POST the node-image upgrade once the cluster is idle, if the decision still holds and the
    pool's image has not moved since `imageBefore` (an earlier attempt whose answer was lost did run)."""
    rt, ref, name, mode = runtime(), cluster_ref(payload), payload["pool"], SshAccess.parse(payload["mode"])
    step, pool = Step.UPGRADE_NODE_IMAGE.value, None
    if (receipt := _already_started(rt, payload)) is not None:
        return receipt
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        pool = _find_pool(ref, pools, name)
        if busy := _busy(cluster, pools):
            return succeeded(busy=busy, nodeImageVersion=pool.node_image_version)
        before = payload.get("imageBefore")
        if before and pool.node_image_version != before:
            raise Superseded(
                f"the node image moved from {before} to {pool.node_image_version} meanwhile: not upgrading twice",
                done=True,
            )
        _recheck(rt, cluster, pool, mode, step, must_have_mode=True)
        operation = rt.arm.start_node_image_upgrade(ref, name)
    except Superseded as s:
        return _superseded(rt, payload, step, s)
    except ArmError as e:
        seen = {"nodeImageVersion": pool.node_image_version} if pool else {}
        return replace(_arm_failed(rt, payload, step, e), value=seen)  # for the retry to compare
    return _started(rt, payload, step, operation)


@activity
def poll_operation(payload: dict) -> Result:
    """One poll; on the operation's end, record it and the pool's new state. A status URL that
    answers 404 has expired or was lost: the pool itself then says how the operation ended."""
    rt, ref, step = runtime(), cluster_ref(payload), payload["step"]
    operation = Operation(**payload["operation"])
    try:
        state = rt.arm.operation_state(operation, ref.subscription)
    except NotFoundError:
        return _judge_by_pool(rt, payload, step, operation)
    except ArmError as e:
        return Result(False, error=arm_failure(e))
    if not state.done:
        return succeeded(done=False, status=state.status, retryAfter=state.retry_after)
    if not state.succeeded:
        failure = OperationFailedError(
            state.error_code or state.status, state.error_message or f"operation ended {state.status}"
        )
        return _arm_failed(rt, payload, step, failure, operation=operation.url)
    return _operation_succeeded(rt, payload, step, operation)


@activity
def record(payload: dict) -> Result:
    """A decision the orchestrator made (retry, window wait, final outcome) for the audit trail."""
    rt, ref, outcome = runtime(), cluster_ref(payload), Outcome(payload["outcome"])
    error, pool = payload.get("error") or {}, payload.get("pool")
    if pool and "pendingReimage" in payload:
        save_state(rt, ref, pool, pending=payload["pendingReimage"])
    if pool and payload["step"] == "outcome" and outcome is Outcome.FAILED:
        save_state(rt, ref, pool, reason=f"last reconcile failed: {payload.get('reason', '')}")
    entry = Entry(
        payload["step"], outcome, payload.get("reason", ""), error.get("code", ""), payload.get("operation", "")
    )
    first = audit(rt, payload, entry)
    if first and payload["step"] == "outcome" and outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
        kind = OutcomeKind.REMEDIATED if outcome is Outcome.SUCCEEDED else OutcomeKind.REMEDIATION_FAILED
        publish(
            rt,
            kind,
            payload,
            reason=payload.get("reason", ""),
            error=error.get("code"),
            modeBefore=payload.get("modeBefore"),
            modeAfter=payload.get("mode"),
        )
    return succeeded(written=first)


# --- helpers ------------------------------------------------------------------------------------


def _out_of_scope(rt: Runtime, ref: ClusterRef) -> str | None:
    """Requests may outlive a change of WARDEN_SUBSCRIPTIONS: such a cluster is not even read."""
    if ref.subscription.lower() in rt.settings.subscriptions:
        return None
    return f"subscription {ref.subscription} is not in WARDEN_SUBSCRIPTIONS (any more): not reading it"


def _recheck(
    rt: Runtime, cluster: Cluster | None, pool: Pool, mode: SshAccess, step: str, must_have_mode=False
) -> None:
    """Raise `Superseded` unless the write is still wanted: enforce mode, in scope, the policy
    (when the cluster was read again) still asks for `mode`, and it is not already done."""
    settings = rt.settings
    if not settings.enforcing:
        raise Superseded(f"WARDEN_MODE is {settings.mode} now: not writing")
    if pool.cluster.subscription.lower() not in settings.subscriptions:
        raise Superseded(f"subscription {pool.cluster.subscription} is no longer in WARDEN_SUBSCRIPTIONS: not writing")
    if cluster is not None and (why := write_still_applies(cluster, pool, settings.policy, mode)):
        raise Superseded(why)
    if must_have_mode and pool.ssh_access is not mode:
        raise Superseded(f"the pool's sshAccess is {pool.ssh_access.value} now, not {mode.value}: not reimaging for it")
    if step == Step.UPDATE_SSH_ACCESS.value and pool.ssh_access is mode:
        raise Superseded(f"the pool already has sshAccess {mode.value}: no PUT", done=True)


def _already_started(rt: Runtime, payload: dict) -> Result | None:
    """This very step (its call id) already sent its write and recorded it: a re-run after the
    answer was lost. Hand back the operation it started instead of writing again."""
    receipt = rt.store.step_receipt(cluster_ref(payload).key, payload["call"]["id"])
    if receipt is None or receipt.outcome is not Outcome.STARTED:
        return None
    return succeeded(operation=asdict(Operation.from_url(receipt.operation_id)) if receipt.operation_id else None)


def _superseded(rt: Runtime, payload: dict, step: str, s: Superseded) -> Result:
    if s.done:
        _after_success(rt, cluster_ref(payload), payload, step, Operation("", "done"))
        audit(rt, payload, Entry(step, Outcome.SUCCEEDED, str(s)))
        return succeeded(operation=None)
    audit(rt, payload, Entry(step, Outcome.SKIPPED, str(s)))
    return succeeded(skipped=str(s))


def _started(rt: Runtime, payload: dict, step: str, operation: Operation) -> Result:
    """The write went out: from here on nothing may fail the activity, or a retry would send it
    again. What cannot be recorded now, the orchestrator records (`unrecorded`)."""
    unrecorded = None
    try:
        if operation.kind == "done":
            _after_success(rt, cluster_ref(payload), payload, step, operation)
        audit(rt, payload, Entry(step, Outcome.STARTED, operation=operation.url))
    except Exception as e:  # noqa: BLE001 - see above
        log.warning("%s went out but was not recorded (%s): the orchestrator records it", step, e)
        unrecorded = {"step": step, "operation": operation.url}
    started = None if operation.kind == "done" else {"url": operation.url, "kind": operation.kind}
    return succeeded(operation=started, unrecorded=unrecorded)


def _judge_by_pool(rt: Runtime, payload: dict, step: str, operation: Operation) -> Result:
    ref = cluster_ref(payload)
    try:
        pool = rt.arm.get_pool(ref, payload["pool"])
    except ArmError as e:
        return _arm_failed(rt, payload, step, e, operation=operation.url)
    state = pool.provisioning_state.lower()
    if state not in IDLE_STATES:
        return succeeded(done=False, status=pool.provisioning_state, retryAfter=None)
    if state != "succeeded":
        failure = OperationFailedError(
            pool.provisioning_state, f"the operation's status is gone; the pool is {pool.provisioning_state}"
        )
        return _arm_failed(rt, payload, step, failure, operation=operation.url)
    return _operation_succeeded(rt, payload, step, operation)


def _operation_succeeded(rt: Runtime, payload: dict, step: str, operation: Operation) -> Result:
    _after_success(rt, cluster_ref(payload), payload, step, operation)
    audit(rt, payload, Entry(step, Outcome.SUCCEEDED, operation=operation.url))
    return succeeded(done=True, status="Succeeded")


def _arm_failed(rt: Runtime, payload: dict, step: str, e: ArmError, operation: str = "") -> Result:
    """Terminal errors are recorded here; retryable ones by the orchestrator, with its delay."""
    failure = arm_failure(e, recorded=not e.retryable)
    if failure.recorded:
        audit_failure(rt, payload, step, failure, operation)
    return Result(False, error=failure)


def _after_success(rt: Runtime, ref: ClusterRef, payload: dict, step: str, operation: Operation) -> None:
    if step == Step.UPDATE_SSH_ACCESS.value:
        save_state(rt, ref, payload["pool"], configured=payload["mode"], pending=bool(payload.get("reimageOwed")))
    elif step == Step.UPGRADE_NODE_IMAGE.value:
        save_state(rt, ref, payload["pool"], pending=False, upgraded=(datetime.now(UTC), operation.url))


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


def _node_os_window(rt: Runtime, ref: ClusterRef) -> dict | None:
    configs = rt.arm.list_maintenance_configurations(ref)
    return next((dict(c.window) for c in configs if c.name.lower() == NODE_OS_SCHEDULE.lower()), None)
