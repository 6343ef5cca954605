"""The verify work's activities: plan the node checks, run-command each sampled node (a bounded
slot per subscription), record the evidence. Entry points only; each returns a `Result`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from shared.adapters.store import SlotHandle
from shared.core.errors import ArmError
from shared.core.models import Operation, Vmss
from shared.core.protocol import Result, succeeded
from shared.evidence.sshd import script_for
from shared.orchestration import arm_steps, exemptions, node_checks, verification
from shared.orchestration.envelope import (
    activity,
    arm_failure,
    cluster_ref,
    moved,
)
from shared.orchestration.runtime import Runtime


@activity
def plan_verification(rt: Runtime, payload: dict) -> Result:
    """The pools to check (all, or those named), their scale sets, and a sample of their nodes."""
    ref = cluster_ref(payload)
    poll = rt.settings.poll_seconds
    if why := arm_steps.out_of_scope(rt, ref):
        return succeeded(nodes=[], skipped=[{"pool": "*", "reason": why, "phantom": True}], pollSeconds=poll)
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        scale_sets = rt.arm.list_pool_scale_sets(cluster)
        nodes, skipped = [], []
        chosen = node_checks.named(pools, payload.get("pools"), skipped)
        # The cluster's pool states and exemptions, one query each, serve all its pools.
        states = {s.pool.lower(): s for s in rt.store.list_pool_states(ref.key)}
        in_force = exemptions.for_cluster_step(rt, ref, payload)
        for pool in chosen:
            known = states.get(pool.name.lower()), in_force.get(pool.key)
            checked = node_checks.sampled_nodes(rt, cluster, pool, scale_sets, payload, *known)
            if isinstance(checked, list):
                nodes += checked
                continue
            verdict, reason = checked
            skipped.append(
                {
                    "pool": pool.name,
                    "os": pool.os_type,
                    "mode": pool.ssh_access.value,
                    "verdict": verdict,
                    "reason": reason,
                }
            )
        planned = node_checks.planned_pools(cluster, chosen, rt.settings.policy, in_force)
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "verify", e)
    return succeeded(nodes=nodes, skipped=skipped, planned=planned, pollSeconds=poll)


@activity
def start_node_check(rt: Runtime, payload: dict) -> Result:
    """Send the check to one node once a run-command slot of the subscription is free."""
    vmss = Vmss(**payload["vmss"])
    now = datetime.now(UTC)
    slot = rt.store.acquire_slot(
        vmss.subscription, payload["instanceId"], rt.settings.verify_concurrency, now, node_checks.SLOT_TTL
    )
    if slot is None:
        taken = f"all {rt.settings.verify_concurrency} run-command slots of subscription {vmss.subscription} are taken"
        return succeeded(busy=[taken], retryAfter=node_checks.SLOT_RETRY_SECONDS)
    command, script = script_for(payload["os"])
    try:
        begun = rt.arm.start_run_command(vmss, payload["instance"], list(script), command_id=command)
    except ArmError as e:
        if not e.retryable:  # a retry keeps the slot (a 409 may be this check's own earlier send)
            rt.store.release_slot(vmss.subscription, payload["instanceId"], slot)
        return Result(False, error=arm_failure(e))
    if begun.output is not None:  # answered with its result at once: nothing to poll
        rt.store.release_slot(vmss.subscription, payload["instanceId"], slot)
        return succeeded(operation=None, check=node_checks.node_check(payload, begun.output, payload["call"]["at"]))
    return succeeded(operation=asdict(begun.operation), forPolls={"slot": slot.to_json()})


@activity
def poll_node_check(rt: Runtime, payload: dict) -> Result:
    """One poll of a node's run-command; once it ended, the slot is free and the answer judged."""
    vmss = Vmss(**payload["vmss"])
    slot = SlotHandle.from_json(payload.get("slot"))
    operation = Operation(**payload["operation"])
    try:
        polled = rt.arm.run_command_output(operation, vmss.subscription)
    except ArmError as e:
        if e.retryable:
            return Result(False, error=arm_failure(e))
        rt.store.release_slot(vmss.subscription, payload["instanceId"], slot)
        check = verification.unknown(payload, e.code or "RunCommandFailed", f"run-command failed: {e.message}")
        return succeeded(done=True, check=check)
    if polled.output is None:  # the slot stays taken until the command really ended
        return succeeded(done=False, status="InProgress", retryAfter=polled.retry_after, **moved(operation, polled))
    rt.store.release_slot(vmss.subscription, payload["instanceId"], slot)
    return succeeded(done=True, check=node_checks.node_check(payload, polled.output, payload["call"]["at"]))


@activity
def release_slot(rt: Runtime, payload: dict) -> Result:
    rt.store.release_slot(payload["vmss"]["subscription"], payload["instanceId"])
    return succeeded()


@activity
def record_verification(rt: Runtime, payload: dict) -> Result:
    return succeeded(pools=node_checks.record_checks(rt, payload, payload["checks"], payload["skipped"]))
