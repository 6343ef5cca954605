"""What activities do around their ARM reads and writes: re-check the decision, find a write's
receipt, record what went out, judge an operation by its pool. Used by `activities` only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from shared.core.errors import ArmError, NotFoundError, OperationFailedError, Superseded
from shared.core.models import Cluster, ClusterRef, Operation, Pool, SshAccess
from shared.core.protocol import Outcome, Result, succeeded
from shared.core.records import PoolState
from shared.orchestration import exemptions
from shared.orchestration.envelope import arm_failure, cluster_ref, step_time
from shared.orchestration.recording import (
    Entry,
    PlannedPool,
    audit,
    audit_failure,
    audit_rows,
    merge_state,
    publish_outcome,
    save_state,
)
from shared.orchestration.runtime import Runtime
from shared.policy.plan import Exemption, Status, Step, write_still_applies

log = logging.getLogger(__name__)
NODE_OS_CONFIGURATION = "aksManagedNodeOSUpgradeSchedule"  # the maintenance configuration's name
IDLE_STATES = ("succeeded", "failed", "canceled")


def out_of_scope(rt: Runtime, ref: ClusterRef) -> str | None:
    """Requests may outlive a change of WARDEN_SUBSCRIPTIONS: such a cluster is not even read."""
    if ref.subscription.lower() in rt.settings.subscriptions:
        return None
    return f"subscription {ref.subscription} is not in WARDEN_SUBSCRIPTIONS (any more): not reading it"


def still_writing(rt: Runtime, subscription: str) -> None:
    """Raise `Superseded` unless the settings, as they are now, still let a write go out."""
    if not rt.settings.enforcing:
        raise Superseded(f"WARDEN_MODE is {rt.settings.mode} now: not writing")
    if subscription.lower() not in rt.settings.subscriptions:
        raise Superseded(f"subscription {subscription} is no longer in WARDEN_SUBSCRIPTIONS: not writing")


def recheck(
    rt: Runtime, payload: dict, cluster: Cluster | None, pool: Pool, mode: SshAccess, step: str, must_have_mode=False
) -> None:
    """Raise `Superseded` unless the write is still wanted: enforce mode, in scope, the policy
    (when the cluster was read again) still asks for `mode`, and it is not already done."""
    settings = rt.settings
    still_writing(rt, pool.cluster.subscription)
    exemption = exemptions.for_step(rt, pool.cluster, pool.name, payload)  # one granted since the plan counts too
    why = write_still_applies(cluster, pool, settings.policy, mode, exemption) if cluster is not None else None
    if exemption is not None and exemption.mode is not mode:
        show_exempted(rt, pool, exemption)
        raise Superseded(why or f"the pool is {exemption.describe()}: not writing {mode.value}")
    if why:
        raise Superseded(why)
    if must_have_mode and pool.ssh_access is not mode:
        raise Superseded(f"the pool's sshAccess is {pool.ssh_access.value} now, not {mode.value}: not reimaging for it")
    if step == Step.UPDATE_SSH_ACCESS.value and pool.ssh_access is mode:
        raise Superseded(f"the pool already has sshAccess {mode.value}: no PUT", done=True)


def show_exempted(rt: Runtime, pool: Pool, exemption: Exemption) -> None:
    """The pool's row says `exempted` at once when a write finds an exemption its plan did not
    see (a cluster write's plans use the listing's snapshot), not only from the next plan on."""
    mode, current = exemption.mode or pool.ssh_access, pool.ssh_access.value
    reason = f"{exemption.describe()}: {mode.value if exemption.mode else f'keeps {current}'}"
    planned = PlannedPool(current, mode.value, Status.EXEMPTED.value, reason, pool.os_type, pool.os_sku)
    row = PoolState(pool.cluster.id, pool.name, mode.value, current, Status.EXEMPTED.value)
    merge_state(rt, pool.cluster, pool.name, row, planned=planned)


def write(
    rt: Runtime, payload: dict, step: str, attempt: Callable[[], Operation | Result], *, guarded: bool = False
) -> Result:
    """One ARM write step: unless this very step already sent it (a re-run), `attempt` reads
    what it needs and either answers a `Result` (busy: not now) or sends the write and returns
    its `Operation`. A decision that no longer holds, and ARM's errors, become their results.

    The receipt of an earlier run is read first, except where it cannot be needed first:
    - `guarded`: the write goes out only on the pool's ETag as its plan read it, which an
      earlier run's write has changed: its refusal (412) is when the receipt is read;
    - `unsent` (set by the activity that sends a handed-over start, see `operations.handover`):
      its own record was written first by this run, so no earlier run sent this write either."""
    if not (guarded or payload.get("unsent")) and (receipt := already_started(rt, payload)) is not None:
        return receipt
    try:
        sent = attempt()
    except Superseded as s:
        return superseded(rt, payload, step, s)
    except ArmError as e:
        if guarded and e.status == 412 and (receipt := already_started(rt, payload)) is not None:
            return receipt
        return arm_failed(rt, payload, step, e)
    return sent if isinstance(sent, Result) else started(rt, payload, step, sent)


def already_started(rt: Runtime, payload: dict) -> Result | None:
    """This very step (its call id) already sent its write and recorded it: a re-run after the
    answer was lost. Hand back the operation it started instead of writing again."""
    receipt = rt.store.step_receipt(cluster_ref(payload).key, payload["call"]["id"])
    if receipt is None or receipt.outcome is not Outcome.STARTED:
        return None
    return succeeded(operation=asdict(Operation.from_url(receipt.operation_id)) if receipt.operation_id else None)


def superseded(rt: Runtime, payload: dict, step: str, s: Superseded) -> Result:
    if s.done:
        after_success(rt, cluster_ref(payload), payload, step, Operation("", "done"))
        audit(rt, payload, Entry(step, Outcome.SUCCEEDED, str(s)))
        return succeeded(operation=None)
    audit(rt, payload, Entry(step, Outcome.SKIPPED, str(s)))
    return succeeded(skipped=str(s))


def started(rt: Runtime, payload: dict, step: str, operation: Operation) -> Result:
    """The write went out: from here on nothing may fail the activity, or a retry would send it
    again. What cannot be recorded now, the orchestrator records (`unrecorded`)."""
    unrecorded = None
    try:
        if operation.ended:
            after_success(rt, cluster_ref(payload), payload, step, operation)
        audit(rt, payload, Entry(step, Outcome.STARTED, operation=operation.url))
    except Exception as e:  # noqa: BLE001 - see above
        log.warning("%s went out but was not recorded (%s): the orchestrator records it", step, e)
        unrecorded = {"step": step, "operation": operation.url}
    if not operation.ended and not payload.get("noted"):  # `noted`: by the poll that handed it over
        note_upgrade_wait(rt, payload, step, (payload.get("instanceId", ""), step_time(payload)))
    started = None if operation.ended else asdict(operation)
    return succeeded(operation=started, unrecorded=unrecorded)


def judge_by_pool(rt: Runtime, payload: dict, step: str, operation: Operation) -> Result:
    ref = cluster_ref(payload)
    try:
        pool = rt.arm.get_pool(ref, payload["pool"])
    except ArmError as e:
        return arm_failed(rt, payload, step, e, operation=operation.url)
    state = pool.provisioning_state.lower()
    if state not in IDLE_STATES:
        return succeeded(done=False, status=pool.provisioning_state, retryAfter=None)
    if state != "succeeded":
        failure = OperationFailedError(
            pool.provisioning_state, f"the operation's status is gone; the pool is {pool.provisioning_state}"
        )
        return arm_failed(rt, payload, step, failure, operation=operation.url)
    return operation_succeeded(rt, payload, step, operation)


def operation_succeeded(
    rt: Runtime, payload: dict, step: str, operation: Operation, upgrade_wait: tuple[str, datetime] | None = None
) -> Result:
    """The operation's success, recorded with the pool's new state (`written`: by this run;
    `upgrade_wait`: with the poller of the upgrade it hands over named, see `after_success`).
    The pool's last operation carries its `closing` outcome ({"reason"}): its row goes with the
    step's, with its event, and the orchestrator records no outcome of its own."""
    after_success(rt, cluster_ref(payload), payload, step, operation, upgrade_wait)
    entries = [Entry(step, Outcome.SUCCEEDED, operation=operation.url)]
    if closing := payload.get("closing"):
        entries.append(Entry("outcome", Outcome.SUCCEEDED, closing["reason"]))
    first = audit_rows(rt, payload, [(payload.get("pool") or "", entry) for entry in entries])
    if first and closing:
        publish_outcome(rt, {**payload, "reason": closing["reason"]}, Outcome.SUCCEEDED)
    return succeeded(done=True, status="Succeeded", closed=bool(closing), written=first)


def arm_failed(rt: Runtime, payload: dict, step: str, e: ArmError, operation: str = "") -> Result:
    """Terminal errors are recorded here; retryable ones by the orchestrator, with its delay."""
    failure = arm_failure(e, recorded=not e.retryable)
    if failure.recorded:
        audit_failure(rt, payload, step, failure, operation)
        if operation:  # the operation ended failed: nobody polls it any more
            note_upgrade_wait(rt, payload, step, ("", None))
    return Result(False, error=failure)


def after_success(
    rt: Runtime,
    ref: ClusterRef,
    payload: dict,
    step: str,
    operation: Operation,
    upgrade_wait: tuple[str, datetime] | None = None,
) -> None:
    """The pool's row after the step's success; `upgrade_wait`: the poller of the upgrade that
    follows, named with it (`note_upgrade_wait`)."""
    if step == Step.UPDATE_SSH_ACCESS.value:
        changes = {"configured": payload["mode"], "pending": bool(payload.get("reimageOwed"))}
    elif step == Step.UPGRADE_NODE_IMAGE.value:
        changes = {"pending": False, "upgraded": (step_time(payload), operation.url), "upgrade_wait": ("", None)}
    else:
        return
    if upgrade_wait is not None:
        changes["upgrade_wait"] = upgrade_wait
    if planned_as := payload.get("plannedAs"):  # a reconcile's step: its plan has just written the row
        status, desired = planned_as
        merge_state(rt, ref, payload["pool"], PoolState(ref.id, payload["pool"], desired, desired, status), **changes)
    else:
        save_state(rt, ref, payload["pool"], **changes)


def note_upgrade_wait(rt: Runtime, payload: dict, step: str, wait: tuple[str, datetime | None]) -> None:
    """Name (or clear) the orchestration polling the pool's node-image upgrade: the pool's rolling
    events wake it. Best effort: without it, the poll's own timers still end each wait."""
    if step != Step.UPGRADE_NODE_IMAGE.value:
        return
    ref, (instance_id, started) = cluster_ref(payload), wait
    columns = {"upgrade_instance_id": instance_id, **({"upgrade_started_time": started} if started else {})}
    row = PoolState(ref.id, payload["pool"], "", "", Status.DRIFTED.value, **columns)  # only `columns` are written
    try:  # without reading the row: the latest start's time stays when the upgrade ends
        rt.store.merge_pool_state(row, columns)
    except Exception as e:  # noqa: BLE001 - the write went out: nothing may fail the activity now
        log.warning("pool %s: could not note who polls its upgrade (%s); its events wake nothing", payload["pool"], e)


def find_pool(ref: ClusterRef, pools: list[Pool], name: str) -> Pool:
    for pool in pools:
        if pool.name.lower() == name.lower():
            return pool
    raise NotFoundError("NotFound", f"pool {name!r} is not in {ref}", status=404)


def busy(cluster: Cluster, pools: list[Pool]) -> list[str]:
    busy = [f"cluster {cluster.provisioning_state}"] if cluster.provisioning_state.lower() not in IDLE_STATES else []
    return busy + [
        f"pool {p.name} {p.provisioning_state}" for p in pools if p.provisioning_state.lower() not in IDLE_STATES
    ]


def node_os_window(rt: Runtime, ref: ClusterRef) -> dict | None:
    configs = rt.arm.list_maintenance_configurations(ref)
    return next((dict(c.window) for c in configs if c.name.lower() == NODE_OS_CONFIGURATION.lower()), None)
