"""Reconcile work: bring a cluster's pools (or some of them) to the mode the policy asks for.

Runs inside the cluster's worker (one writer per cluster), pools one after another, each
in its own sub-orchestration with its own bounded history:

    reconcile_cluster(cluster, pools|None)
      for each pool -> reconcile_pool
        plan -> skip | PUT sshAccess (once idle, decision re-checked) -> poll
             -> [wait for the node-OS window] -> node-image upgrade (idem) -> poll -> outcome

With no window to wait for, the PUT's last poll sends the upgrade itself (`handover`).

Every pool the plan gives steps ends in exactly one `outcome` row — succeeded, skipped, waiting,
gone or failed — also when a step ran out of retries or the pool's sub-orchestration failed; a
pool with nothing to do ends at its `plan` row (skipped, with its status and why). A pool
remediated asks for the verification of its nodes (`followUps` of the result): the worker writes
those requests with the end of this work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.core.protocol import Failure, FailureKind, Outcome, Result, WorkKind
from shared.orchestration import names
from shared.orchestration.operations import (
    DEFAULT_BASE_SECONDS,
    Task,
    call,
    handover,
    record,
    record_failure,
    run_operation,
    wait_for_window,
)
from shared.policy import NODE_OS_WINDOW
from shared.policy.plan import Status

UPDATE, UPGRADE = "update-ssh-access", "upgrade-node-image"
# A cluster's listing serves the pool plans begun this soon after it; later ones read it all again.
# Each write is guarded by the pool's ETag and ARM's 409, and a change to the cluster itself
# (version, tags, Node Disruption Policy) brings its own event and a fresh reconcile. The pools'
# rows are written by this worker alone (the plan's write is guarded by the row's ETag too), and
# an exemption granted since is honoured by the write's own check of it.
CLUSTER_SEEN_MAX_AGE = timedelta(minutes=30)


def reconcile_cluster(context) -> Task:
    """Input: {"cluster", "pools": [names] | null (all), "reason", "actor"}.
    Output: {"outcomes", "followUps": [{"kind", "pool", "reason"}], "error"}."""
    work = context.get_input()
    cluster, pools = work["cluster"], work.get("pools")
    common = {"cluster": cluster, "instanceId": context.instance_id, "actor": work.get("actor", "")}
    base = work.get("pollSeconds") or DEFAULT_BASE_SECONDS
    listing = {}  # what the cluster's listing read serves each pool's plan; a named pool's plan reads it all
    if pools is None:
        listed = yield from call(context, names.LIST_POOLS, common, base)
        if not listed.ok:
            yield from record_failure(context, common, "list-pools", listed.error)
            yield from record(
                context, common, "outcome", listed.error.outcome, listed.error.message, error=listed.error.to_json()
            )
            return {"outcomes": [], "error": listed.error.to_json()}
        pools, listing = listed["pools"], {**listed.value, "at": context.current_utc_datetime.isoformat()}
    outcomes = []
    for index, pool in enumerate(pools):
        child = names.child_instance_id(context.instance_id, pool, str(context.new_uuid()))
        context.set_custom_status(
            {"cluster": cluster["name"], "pool": pool, "done": index, "of": len(pools), "instanceId": child}
        )
        target = {**common, "pool": pool, "reason": work.get("reason", ""), "pollSeconds": base, **_seen(listing, pool)}
        try:
            outcome = yield context.call_sub_orchestrator(names.RECONCILE_POOL, target, child)
        except Exception as e:  # noqa: BLE001 - a failed sub-orchestration fails this pool only
            failure = Failure(FailureKind.INTERNAL, "PoolReconcileFailed", f"the reconcile of pool {pool} failed: {e}")
            ended = {**target, "instanceId": child, "pollerGone": True}  # whatever it was polling, nobody does now
            outcome = yield from _finish(context, ended, Outcome.FAILED, failure.message, failure)
        outcomes.append(outcome)
    follow_ups = [{"pool": o["pool"], **o["followUp"]} for o in outcomes if o.get("followUp")]
    return {"outcomes": outcomes, "followUps": follow_ups}


def _seen(listing: dict, pool: str) -> dict:
    """What the cluster's listing read of `pool` (the cluster, the pool's row and exemption)."""
    if not listing:
        return {}
    return {
        "clusterSeen": listing.get("clusterSeen"),
        "clusterSeenAt": listing["at"],
        "rowSeen": (listing.get("rowsSeen") or {}).get(pool.lower()),
        "exemptionSeen": (listing.get("exemptionsSeen") or {}).get(pool.lower()),
    }


def reconcile_pool(context) -> Task:
    """Input: {"cluster", "pool", "reason", "actor"}.
    Output: {"pool", "outcome", "status", "reason", "error", "followUp" (on success)}."""
    given = context.get_input()
    # For the plan only (the later steps' inputs stay small): what the cluster's listing read.
    seen = {key: given.pop(key, None) for key in ("clusterSeen", "rowSeen", "exemptionSeen")}
    seen_at = given.pop("clusterSeenAt", None)
    if not seen["clusterSeen"] or (
        seen_at and context.current_utc_datetime - datetime.fromisoformat(seen_at) > CLUSTER_SEEN_MAX_AGE
    ):
        seen = {}  # read long ago (the pools before took their time): the plan reads it all
    target = {**given, "instanceId": context.instance_id}
    _at(context, target, "plan")
    base = target.get("pollSeconds") or DEFAULT_BASE_SECONDS
    plan = yield from call(context, names.PLAN_POOL, {**target, **seen}, base)
    if not plan.ok:
        yield from record_failure(context, target, "plan", plan.error)
        return (yield from _finish(context, target, plan.error.outcome, plan.error.message, plan.error))
    if not plan["steps"]:
        return _result(target, Outcome.SKIPPED, plan["reason"], status=plan["status"])
    outcome, reason, error, closed = yield from _remediate(context, target, plan.value)
    modes = {"modeBefore": plan["current"], "mode": plan["desired"]}
    status = {Outcome.SUCCEEDED: Status.COMPLIANT, Outcome.WAITING: Status.PENDING_REIMAGE}.get(outcome, plan["status"])
    if plan["status"] == Status.EXEMPTED and outcome is Outcome.SUCCEEDED:
        status = Status.EXEMPTED  # given the exemption's mode: exempt it stays until the exemption ends
    follow_up = _verify_after(reason) if outcome is Outcome.SUCCEEDED else None
    if closed:  # the last operation's success recorded the outcome with it
        return _result(target, outcome, reason, error, status, follow_up)
    # An upgrade planned and not seen to its end may have been named the pool's to wake: not any more.
    gone = {"pollerGone": True} if UPGRADE in plan["steps"] and outcome is not Outcome.SUCCEEDED else {}
    return (yield from _finish(context, {**target, **modes, **gone}, outcome, reason, error, status, follow_up))


def _verify_after(reason: str) -> dict:
    """The nodes are the truth: a success asks for their verification."""
    return {"kind": WorkKind.VERIFY.value, "reason": f"after the warden's remediation ({reason})"}


def _remediate(context, target: dict, plan: dict) -> Task:
    """The plan's steps in the order AKS needs: sshAccess first, then the reimage that applies it.
    Returns (outcome, reason, failure or None, whether the outcome is recorded). The last
    operation carries the success's outcome (`closing`): its poll records it with the step."""
    base = plan["pollSeconds"]
    held = plan.get("reimageHeld", "")  # Kubernetes >= 1.37: the cluster's Node Disruption Policy holds the reimage
    owed = UPGRADE in plan["steps"] or bool(held)
    change = {**target, "mode": plan["desired"], "modeBefore": plan["current"], "reimageOwed": owed}
    change["plannedAs"] = [plan["status"], plan["desired"]]  # what the plan wrote on the pool's row
    success = f"{plan['current']} -> {plan['desired']}"
    closing = {"closing": {"reason": success}}
    upgrade = {**change, "step": UPGRADE, **closing}
    image = plan.get("nodeImageVersion")
    # An upgrade right after the update (no reimage held, no window to wait for) is started by
    # the update's last poll, where the cluster was just seen idle.
    at_once = UPDATE in plan["steps"] and not held and plan["upgradeWindow"] != NODE_OS_WINDOW
    handed = handover(context, upgrade, image=image) if at_once and UPGRADE in plan["steps"] else None
    if UPDATE in plan["steps"]:
        _at(context, target, UPDATE)
        last = closing if UPGRADE not in plan["steps"] and not held else {}
        update = {**change, "step": UPDATE, "poolEtag": plan.get("poolEtag", ""), **last}
        done = yield from run_operation(context, names.START_SSH_UPDATE, update, base, fresh=plan["idle"], then=handed)
        if (early := (yield from _stopped(context, change, UPDATE, done))) is not None:
            return early
        if held:  # set, not yet on the nodes: not a success to claim
            return Outcome.WAITING, f"{success} is set; {held}", None, False
    if UPGRADE in plan["steps"]:
        _at(context, target, "upgrade-window")
        # Fresh: nothing waited since the cluster was seen idle (by the plan, or at the update's end).
        fresh = plan["upgradeWindow"] != NODE_OS_WINDOW and (UPDATE in plan["steps"] or plan["idle"])
        if plan["upgradeWindow"] == NODE_OS_WINDOW and not (
            yield from wait_for_window(context, target, plan.get("maintenanceWindow"))
        ):
            return Outcome.WAITING, "no usable node-OS maintenance window: the upgrade waits", None, False
        _at(context, target, UPGRADE)
        sent = done.get("next") if handed else None  # the update's last poll sent the first start
        done = yield from run_operation(
            context,
            names.START_NODE_IMAGE_UPGRADE,
            upgrade,
            base,
            fresh=fresh,
            image=image,
            handed=(handed, Result.from_json(sent) if sent else None) if handed else None,
        )
        if (early := (yield from _stopped(context, change, UPGRADE, done))) is not None:
            return early
    return Outcome.SUCCEEDED, success, None, bool(done.get("closed"))


def _at(context, target: dict, step: str) -> None:
    """Say which step the pool is at (the status endpoint shows it while the step runs)."""
    context.set_custom_status({"pool": target["pool"], "step": step})


def _stopped(context, payload: dict, step: str, done) -> Task:
    """None when the step went through; else the pool's (outcome, reason, failure, False)."""
    if done.ok and done.get("skipped"):
        return Outcome.SKIPPED, done["skipped"], None, False
    if done.ok:
        return None
    yield from record_failure(context, payload, step, done.error)
    return done.error.outcome, done.error.message, done.error, False


def _finish(
    context,
    target: dict,
    outcome: Outcome,
    reason: str,
    error: Failure | None = None,
    status: str = "",
    follow_up: dict | None = None,
) -> Task:
    """The pool's one outcome row (and its event); the pool's result for the worker (with the
    work it asks for next)."""
    extra = {"error": error.to_json()} if error else {}
    if outcome is Outcome.WAITING:
        extra["pendingReimage"] = True
    yield from record(context, target, "outcome", outcome, reason, **extra)
    return _result(target, outcome, reason, error, status, follow_up)


def _result(
    target: dict,
    outcome: Outcome,
    reason: str,
    error: Failure | None = None,
    status: str = "",
    follow_up: dict | None = None,
) -> dict:
    return {
        "pool": target["pool"],
        "outcome": outcome.value,
        "status": str(status),
        "reason": reason,
        "error": error.to_json() if error else None,
        **({"followUp": follow_up} if follow_up else {}),
    }
