"""Activities: the only steps that do I/O. Entry points only; each returns a `Result`.

Terminal ARM errors are recorded here, at the moment they happen (the failure says
`recorded`); retryable ones come back for the orchestrator to retry with its delay.
Every write re-checks, with what it has just read, that it still applies.
"""

from __future__ import annotations

from dataclasses import replace

from shared.adapters.publisher import OutcomeKind
from shared.errors import ArmError, NotFoundError, OperationFailedError, Superseded
from shared.models import Operation, SshAccess
from shared.orchestration import arm_steps
from shared.orchestration.envelope import activity, arm_failure, cluster_ref
from shared.orchestration.recording import Entry, audit, pool_state, publish, save_state
from shared.orchestration.runtime import runtime
from shared.plan import Status, Step, plan_pool
from shared.protocol import Outcome, Result, succeeded
from shared.work import work_items

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
    if why := arm_steps.out_of_scope(rt, ref):
        audit(rt, payload, Entry("list-pools", Outcome.SKIPPED, why))
        return succeeded(pools=[])
    try:
        return succeeded(pools=[p.name for p in rt.arm.list_pools(ref)])
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "list-pools", e)


@activity
def plan_pool_activity(payload: dict) -> Result:
    """Read cluster and pools, plan, record the decision; say what the orchestrator should do.

    The pool comes from the cluster's pool list (one request, like a GET of the pool), so
    the plan also knows whether the whole cluster is idle and the first write need not wait.
    """
    rt, ref, name = runtime(), cluster_ref(payload), payload["pool"]
    if why := arm_steps.out_of_scope(rt, ref):
        audit(rt, payload, Entry("plan", Outcome.SKIPPED, why))
        return succeeded(outcome=Outcome.SKIPPED.value, status=Status.IGNORED.value, reason=why, steps=[])
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        state = pool_state(rt, ref, name)
        plan = plan_pool(
            cluster,
            arm_steps.find_pool(ref, pools, name),
            rt.settings.policy,
            pending_reimage=bool(state and state.pending_reimage),
        )
        # The window is read only where an upgrade will wait for it.
        waits = Step.UPGRADE_NODE_IMAGE in plan.steps and rt.settings.policy.upgrade_window == "nodeOSSchedule"
        window = arm_steps.node_os_window(rt, ref) if waits else None
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "plan", e)
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
        idle=not arm_steps.busy(cluster, pools),
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
    if (receipt := arm_steps.already_started(rt, payload)) is not None:
        return receipt
    try:
        cluster = None
        if not payload.get("fresh"):
            cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
            if busy := arm_steps.busy(cluster, pools):
                return succeeded(busy=busy, nodeImageVersion=arm_steps.find_pool(ref, pools, name).node_image_version)
        operation = rt.arm.set_pool_ssh_access(
            ref, name, mode, check=lambda pool: arm_steps.recheck(rt, cluster, pool, mode, step)
        )
    except Superseded as s:
        return arm_steps.superseded(rt, payload, step, s)
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, step, e)
    return arm_steps.started(rt, payload, step, operation)


@activity
def start_node_image_upgrade(payload: dict) -> Result:
    """POST the node-image upgrade once the cluster is idle, if the decision still holds and the
    pool's image has not moved since `imageBefore` (an earlier attempt whose answer was lost did run)."""
    rt, ref, name, mode = runtime(), cluster_ref(payload), payload["pool"], SshAccess.parse(payload["mode"])
    step, pool = Step.UPGRADE_NODE_IMAGE.value, None
    if (receipt := arm_steps.already_started(rt, payload)) is not None:
        return receipt
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        pool = arm_steps.find_pool(ref, pools, name)
        if busy := arm_steps.busy(cluster, pools):
            return succeeded(busy=busy, nodeImageVersion=pool.node_image_version)
        before = payload.get("imageBefore")
        if before and pool.node_image_version != before:
            raise Superseded(
                f"the node image moved from {before} to {pool.node_image_version} meanwhile: not upgrading twice",
                done=True,
            )
        arm_steps.recheck(rt, cluster, pool, mode, step, must_have_mode=True)
        operation = rt.arm.start_node_image_upgrade(ref, name)
    except Superseded as s:
        return arm_steps.superseded(rt, payload, step, s)
    except ArmError as e:
        seen = {"nodeImageVersion": pool.node_image_version} if pool else {}
        return replace(arm_steps.arm_failed(rt, payload, step, e), value=seen)  # for the retry to compare
    return arm_steps.started(rt, payload, step, operation)


@activity
def poll_operation(payload: dict) -> Result:
    """One poll; on the operation's end, record it and the pool's new state. A status URL that
    answers 404 has expired or was lost: the pool itself then says how the operation ended."""
    rt, ref, step = runtime(), cluster_ref(payload), payload["step"]
    operation = Operation(**payload["operation"])
    try:
        state = rt.arm.operation_state(operation, ref.subscription)
    except NotFoundError:
        return arm_steps.judge_by_pool(rt, payload, step, operation)
    except ArmError as e:
        return Result(False, error=arm_failure(e))
    if not state.done:
        return succeeded(done=False, status=state.status, retryAfter=state.retry_after)
    if not state.succeeded:
        failure = OperationFailedError(
            state.error_code or state.status, state.error_message or f"operation ended {state.status}"
        )
        return arm_steps.arm_failed(rt, payload, step, failure, operation=operation.url)
    return arm_steps.operation_succeeded(rt, payload, step, operation)


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
