"""Activities: the only steps that do I/O. Entry points only; each returns a `Result`.

Terminal ARM errors are recorded here, at the moment they happen (the failure says
`recorded`); retryable ones come back for the orchestrator to retry with its delay.
Every write re-checks, with what it has just read, that it still applies.
"""

from __future__ import annotations

from dataclasses import replace

from shared.adapters.publisher import OutcomeKind
from shared.core.errors import ArmError, NotFoundError, OperationFailedError, Superseded
from shared.core.models import Operation, SshAccess
from shared.core.protocol import Outcome, Result, succeeded
from shared.core.work import unreadable_items, work_items
from shared.orchestration import arm_steps, exemptions, reimage_budget
from shared.orchestration.envelope import (
    activity,
    arm_failure,
    cluster_from_snapshot,
    cluster_ref,
    cluster_snapshot,
    moved,
    step_time,
)
from shared.orchestration.recording import (
    Entry,
    audit,
    follow_up_requests,
    merge_state,
    pool_state,
    publish,
    publish_outcome,
    row_seen,
    save_state,
)
from shared.orchestration.runtime import Runtime
from shared.policy import NODE_OS_WINDOW
from shared.policy.plan import Status, Step, held_reimage, plan_pool

# --- the worker's queue ---------------------------------------------------------------------


@activity
def lease_requests(rt: Runtime, payload: dict) -> Result:
    ref = cluster_ref(payload)
    requests, unreadable = rt.store.lease_requests(ref.key, payload["lease"])
    return succeeded(work=work_items(requests) + unreadable_items(unreadable), pollSeconds=rt.settings.poll_seconds)


@activity
def finish_requests(rt: Runtime, payload: dict) -> Result:
    """The rows of work done removed, and the work it asks for next (`followUps`) added, together."""
    ref = cluster_ref(payload)
    then = follow_up_requests(payload, payload.get("followUps") or [])
    return succeeded(deleted=rt.store.finish_requests(ref.key, [tuple(row) for row in payload["rows"]], then))


@activity
def close_worker(rt: Runtime, payload: dict) -> Result:
    ref = cluster_ref(payload)
    return succeeded(closed=rt.store.close_worker(ref.key))


# --- reconcile --------------------------------------------------------------------------------


@activity
def list_pools(rt: Runtime, payload: dict) -> Result:
    ref = cluster_ref(payload)
    if why := arm_steps.out_of_scope(rt, ref):
        audit(rt, payload, Entry("list-pools", Outcome.SKIPPED, why))
        return succeeded(pools=[])
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "list-pools", e)
    # The cluster as read now, with the pools' rows and exemptions (a query each), serves every
    # pool's plan begun soon after (each reads its own pool afresh; its write re-reads the exemption).
    rows = {s.pool.lower(): {"pending": s.pending_reimage, "etag": s.etag} for s in rt.store.list_pool_states(ref.key)}
    in_force = exemptions.for_cluster_step(rt, ref, payload)
    return succeeded(
        pools=[p.name for p in pools],
        clusterSeen=cluster_snapshot(cluster),
        rowsSeen=rows,
        exemptionsSeen={p.name.lower(): exemptions.to_payload(in_force[p.key]) for p in pools if p.key in in_force},
    )


@activity
def plan_pool_activity(rt: Runtime, payload: dict) -> Result:
    """Read the pool (and the cluster, its row and its exemption, unless the cluster's listing
    just did), plan, record the decision; say what the orchestrator should do.

    The pool is read afresh: the plan's audit row says what the pool is now, and the PUT then
    sends that very body with its ETag. Whether the cluster is idle is judged from what was
    read; if another operation started meanwhile, ARM refuses the write (409) and the write
    step waits it out.
    """
    ref, name = cluster_ref(payload), payload["pool"]
    if why := arm_steps.out_of_scope(rt, ref):
        audit(rt, payload, Entry("plan", Outcome.SKIPPED, why))
        return succeeded(outcome=Outcome.SKIPPED.value, status=Status.IGNORED.value, reason=why, steps=[])
    try:
        seen = payload.get("clusterSeen")
        cluster = cluster_from_snapshot(seen) if seen else rt.arm.get_cluster(ref)
        pool = rt.arm.get_pool(ref, name)
        if seen:  # a row seen by the listing: its ETag guards the plan's write (`row_seen`)
            state = row_seen(ref, name, payload.get("rowSeen"))
            exemption = exemptions.from_payload(payload.get("exemptionSeen"), step_time(payload))
        else:
            state, exemption = pool_state(rt, ref, name), exemptions.for_step(rt, ref, name, payload)
        plan = plan_pool(
            cluster,
            pool,
            rt.settings.policy,
            pending_reimage=bool(state and state.pending_reimage),
            exemption=exemption,
        )
        # The window is read only where an upgrade will wait for it.
        waits = Step.UPGRADE_NODE_IMAGE in plan.steps and rt.settings.policy.upgrade_window == NODE_OS_WINDOW
        window = arm_steps.node_os_window(rt, ref) if waits else None
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "plan", e)
    acting = bool(plan.steps) and rt.settings.enforcing
    reason = plan.reason if acting or not plan.steps else f"audit mode, nothing written: {plan.reason}"
    desired = plan.desired.value if plan.desired else "ignore"
    outcome = Outcome.PLANNED if acting else Outcome.SKIPPED
    # Side effects first, the audit row last: it marks the step done.
    if seen and state is not None:
        merge_state(rt, ref, name, state, etag=state.etag, plan=plan)
    else:
        save_state(rt, ref, name, plan=plan, known=state)
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
        idle=not arm_steps.busy(cluster, [pool]),
        reimageHeld=held_reimage(cluster, pool) if Step.UPDATE_SSH_ACCESS in plan.steps else "",
        nodeImageVersion=pool.node_image_version,
        poolEtag=pool.etag,
        upgradeWindow=rt.settings.policy.upgrade_window,
        maintenanceWindow=window,
    )


@activity
def start_ssh_update(rt: Runtime, payload: dict) -> Result:
    """PUT the pool's new sshAccess, once the cluster is idle and the decision still holds.

    `fresh`: the plan has just seen the cluster idle and read the pool, nothing waited since:
    the PUT sends that body on the ETag the plan read (`poolEtag`). Otherwise cluster and pools
    are read again first.
    """
    ref, name, mode = cluster_ref(payload), payload["pool"], SshAccess.parse(payload["mode"])
    step = Step.UPDATE_SSH_ACCESS.value
    planned_etag = payload.get("poolEtag") if payload.get("fresh") else None

    def attempt() -> Operation | Result:
        cluster = None
        if not payload.get("fresh"):
            cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
            if busy := arm_steps.busy(cluster, pools):
                return succeeded(busy=busy, nodeImageVersion=arm_steps.find_pool(ref, pools, name).node_image_version)
        if (not_now := reimage_budget.take(rt, payload)) is not None:  # Kubernetes >= 1.37: the PUT reimages
            return not_now
        target = rt.arm.pool_to_write(ref, name, etag=planned_etag)
        arm_steps.recheck(rt, payload, cluster, target.pool, mode, step)  # the decision, on the pool as written
        return rt.arm.set_pool_ssh_access(target, mode)

    written = arm_steps.write(rt, payload, step, attempt, guarded=bool(planned_etag))
    return reimage_budget.settle_start(rt, payload, written)


@activity
def start_node_image_upgrade(rt: Runtime, payload: dict) -> Result:
    """POST the node-image upgrade once the cluster is idle, if the decision still holds and the
    pool's image has not moved since `imageBefore` (an earlier attempt whose answer was lost did run)."""
    ref, name, mode = cluster_ref(payload), payload["pool"], SshAccess.parse(payload["mode"])
    step = Step.UPGRADE_NODE_IMAGE.value

    def attempt() -> Operation | Result:
        if payload.get("fresh"):
            # Right after the cluster was seen idle (the update's end, or the plan): no reads.
            # A new operation meanwhile makes ARM refuse (409), and the retry reads and compares
            # the image with the one the plan saw.
            arm_steps.still_writing(rt, ref.subscription)
            return reimage_budget.take(rt, payload) or rt.arm.start_node_image_upgrade(ref, name)
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
        # A reimage for a new key applies no sshAccess decision: the policy is not asked again.
        policy_cluster = None if payload.get("purpose") == "key" else cluster
        arm_steps.recheck(rt, payload, policy_cluster, pool, mode, step, must_have_mode=True)
        if (not_now := reimage_budget.take(rt, payload)) is not None:
            return replace(not_now, value={**not_now.value, "nodeImageVersion": pool.node_image_version})
        try:
            return rt.arm.start_node_image_upgrade(ref, name)
        except ArmError as e:  # with the image seen, for the retry to compare
            failure = arm_steps.arm_failed(rt, payload, step, e)
            return replace(failure, value={"nodeImageVersion": pool.node_image_version})

    return reimage_budget.settle_start(rt, payload, arm_steps.write(rt, payload, step, attempt))


@activity
def poll_operation(rt: Runtime, payload: dict) -> Result:
    """One poll; on the operation's end, record it and the pool's new state. A status URL that
    answers 404 has expired or was lost: the pool itself then says how the operation ended.
    On success, the upgrade handed over to it (`then`) goes out, its answer returned as `next`."""
    ref, step = cluster_ref(payload), payload["step"]
    operation = Operation(**payload["operation"])
    try:
        polled = rt.arm.poll_operation(operation, ref.subscription)
    except NotFoundError:
        return reimage_budget.judged(rt, payload, arm_steps.judge_by_pool(rt, payload, step, operation))
    except ArmError as e:
        return Result(False, error=arm_failure(e))
    state = polled.state
    if not state.done:
        reimage_budget.running(rt, payload)
        return succeeded(done=False, status=state.status, retryAfter=state.retry_after, **moved(operation, polled))
    reimage_budget.ended(rt, payload, state)  # before the end is recorded: a failure here retries the poll
    if not state.succeeded:
        failure = OperationFailedError(
            state.error_code or state.status, state.error_message or f"operation ended {state.status}"
        )
        return arm_steps.arm_failed(rt, payload, step, failure, operation=operation.url)
    if not (then := payload.get("then")):
        return arm_steps.operation_succeeded(rt, payload, step, operation)
    # The upgrade that follows at once (`operations.handover`), sent now. The update's state names
    # this orchestration as the poller of the pool's upgrade (`note_upgrade_wait`) with the time of
    # its start: one write for both. An upgrade that does not go out now (its turn, a busy cluster,
    # a refusal) names nobody until its own start activity sends it.
    upgrade = {**then, "call": {**then["call"], "at": payload["call"]["at"]}}
    poller = (payload["instanceId"], step_time(upgrade))
    done = arm_steps.operation_succeeded(rt, payload, step, operation, upgrade_wait=poller)
    sent = start_node_image_upgrade(rt, {**upgrade, "unsent": done["written"], "noted": True})
    if not (answer := Result.from_json(sent)).ok or answer.get("operation") is None:
        arm_steps.note_upgrade_wait(rt, upgrade, Step.UPGRADE_NODE_IMAGE.value, ("", None))
    done.value["next"] = sent
    return done


@activity
def record(rt: Runtime, payload: dict) -> Result:
    """A decision the orchestrator made (retry, window wait, final outcome) for the audit trail."""
    ref, outcome = cluster_ref(payload), Outcome(payload["outcome"])
    error, pool = payload.get("error") or {}, payload.get("pool")
    if pool and payload["step"] == "outcome" and outcome is not Outcome.SUCCEEDED:
        # A success gave its hold back when its reimage ended; any other end may have left one.
        reimage_budget.let_go(rt, payload["instanceId"])
    changes: dict = {}
    if "pendingReimage" in payload:
        changes["pending"] = payload["pendingReimage"]
    if payload["step"] == "outcome" and outcome is Outcome.FAILED:
        changes["reason"] = f"last reconcile failed: {payload.get('reason', '')}"
    if payload.get("pollerGone"):  # it ended without its upgrade's end: nobody polls one now
        changes["upgrade_wait"] = ("", None)
    if pool and changes:
        save_state(rt, ref, pool, **changes)
    entry = Entry(
        payload["step"], outcome, payload.get("reason", ""), error.get("code", ""), payload.get("operation", "")
    )
    first = audit(rt, payload, entry)
    if first and payload["step"] == "outcome":
        publish_outcome(rt, payload, outcome)
    return succeeded(written=first)
