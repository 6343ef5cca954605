"""The reconcile orchestrations: one writer per cluster, pools one after another.

Deterministic generators driven by the Durable replay engine: no I/O, time from
`context.current_utc_datetime`, jitter from `context.new_uuid()`. Every ARM call is an
activity that returns `{"ok": bool, "error": {...}}` instead of raising, so retry
decisions are made here with durable timers (the Python `RetryOptions` has no backoff).

    reconcile_cluster(cluster, pools|None)
      for each pool -> reconcile_pool (sub-orchestration, its own bounded history)
        plan -> skip | wait idle -> PUT sshAccess -> poll
             -> [wait for the node-OS window] -> node-image upgrade -> poll -> record
      then take the requests that arrived meanwhile: continue as new for them, else finish
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from shared.orchestration import names
from shared.orchestration.backoff import backoff_seconds, jitter_from_uuid, retry_delay
from shared.window import MaintenanceWindowError, timer_steps, upgrade_gate

MAX_ATTEMPTS = 8  # per ARM call: retries of conflicts, throttling and transient errors
MAX_POLLS = 400  # per long-running operation (backoff caps each wait at 5 minutes)
MAX_IDLE_WAITS = 120  # waiting for another operation on the cluster to finish
JOIN_GRACE_SECONDS = 5  # at most: how long a finished reconcile waits for a wake-up in flight
DEFAULT_BASE_SECONDS = 30  # backoff base before the plan has read WARDEN_POLL_SECONDS
UPDATE, UPGRADE = "update-ssh-access", "upgrade-node-image"

Task = Generator[Any, Any, Any]


def reconcile_cluster(context) -> Task:
    """Input: {"cluster": {subscription, resourceGroup, name}, "pools": [names] | null (all), "reason"}.

    Requests that arrive while it runs wait in the requests table (triggers wake it with an
    external event); it takes them before finishing and continues as new for them.
    """
    request = context.get_input()
    cluster = request["cluster"]
    taken = yield context.call_activity(names.TAKE_REQUESTS, {"cluster": cluster})
    pools = None if request.get("pools") is None or taken["everything"] else _unique(request["pools"] + taken["pools"])
    if pools is None:
        listing = {"cluster": cluster, "instanceId": context.instance_id}
        listed = yield from call_arm(context, names.LIST_POOLS, listing, DEFAULT_BASE_SECONDS)
        if not listed["ok"]:
            yield from _record_exhausted(context, listing, "list-pools", listed["error"])
            return {"cluster": cluster, "outcomes": [], "error": listed["error"]}
        pools = listed["pools"]
    outcomes = []
    for index, pool in enumerate(pools):
        context.set_custom_status({"cluster": cluster, "pool": pool, "done": index, "of": len(pools)})
        child = f"{context.instance_id}:{pool.lower()}:{context.new_uuid()[:8]}"
        payload = {"cluster": cluster, "pool": pool, "reason": request.get("reason", "")}
        outcomes.append((yield context.call_sub_orchestrator(names.RECONCILE_POOL, payload, child)))
    more = yield from _requests_meanwhile(context, cluster, min(JOIN_GRACE_SECONDS, taken["pollSeconds"]))
    if more["count"]:
        pools_next = None if more["everything"] else more["pools"]
        context.continue_as_new({"cluster": cluster, "pools": pools_next, "reason": "requested while reconciling"})
        return None
    return {"cluster": cluster, "outcomes": outcomes}


def _requests_meanwhile(context, cluster: dict, grace_seconds: float) -> Task:
    """Take the requests that arrived while this generation worked, after a short grace
    for a wake-up event in flight: {"pools", "everything", "count"}."""
    grace = context.create_timer(context.current_utc_datetime + timedelta(seconds=grace_seconds))
    woken = context.wait_for_external_event(names.JOIN_EVENT)
    yield context.task_any([woken, grace])
    if not grace.is_completed:
        grace.cancel()
    return (yield context.call_activity(names.TAKE_REQUESTS, {"cluster": cluster}))


def reconcile_pool(context) -> Task:
    """Input: {"cluster", "pool", "reason"}. Output: {"pool", "outcome", "reason", "error"}."""
    request = context.get_input()
    target = {"cluster": request["cluster"], "pool": request["pool"], "instanceId": context.instance_id}
    plan = yield from call_arm(
        context, names.PLAN_POOL, {**target, "reason": request.get("reason", "")}, DEFAULT_BASE_SECONDS
    )
    if not plan["ok"]:
        yield from _record_exhausted(context, target, "plan", plan["error"])
        return _outcome(request, _failure(plan), plan["error"]["message"], plan["error"])
    if not plan["steps"] or not plan["enforce"]:
        return _outcome(request, plan["outcome"], plan["reason"])
    result = yield from _remediate(context, target, plan)
    final = {"remediated": "succeeded", "gone": "gone", "pending-reimage": "waiting"}.get(result["outcome"], "failed")
    yield context.call_activity(
        names.RECORD,
        {
            **target,
            "step": "outcome",
            "outcome": final,
            "reason": result["reason"],
            "error": result["error"],
            "modeBefore": plan["current"],
            "mode": plan["desired"],
        },
    )
    return result


def _remediate(context, target: dict, plan: dict) -> Task:
    """The plan's steps in the order AKS needs: sshAccess first, then the reimage that applies it."""
    base, request = plan["pollSeconds"], {"pool": target["pool"]}
    change = {**target, "mode": plan["desired"], "modeBefore": plan["current"], "reimageOwed": UPGRADE in plan["steps"]}
    if UPDATE in plan["steps"]:
        done = yield from run_operation(context, names.START_SSH_UPDATE, UPDATE, change, base, idle=plan["idle"])
        if not done["ok"]:
            return _outcome(request, _failure(done), done["error"]["message"], done["error"])
    if UPGRADE in plan["steps"]:
        in_window = plan["upgradeWindow"] != "nodeOSSchedule" or (
            yield from wait_for_window(context, target, plan.get("maintenanceWindow"))
        )
        if not in_window:
            return _outcome(request, "pending-reimage", "no usable node-OS maintenance window: the upgrade waits")
        done = yield from run_operation(context, names.START_NODE_IMAGE_UPGRADE, UPGRADE, change, base)
        if not done["ok"]:
            return _outcome(request, _failure(done), done["error"]["message"], done["error"])
    return _outcome(request, "remediated", f"{plan['current']} -> {plan['desired']}")


def run_operation(context, start_activity: str, step: str, payload: dict, base: float, idle: bool = False) -> Task:
    """Start a long-running ARM operation once the cluster is idle, then poll it to the end.

    `idle`: the plan has just seen the cluster and all its pools idle, so the first attempt
    need not check again. After a conflict, and before every later attempt, it waits.
    A node-image upgrade is started at most once: if the pool's image changed while a retry
    waited (an attempt whose answer was lost did run, or someone else upgraded after our
    sshAccess change), the nodes are already reimaged and it is not started again.
    """
    image = None
    for attempt in range(MAX_ATTEMPTS):
        if not idle or attempt:
            state = yield from wait_until_idle(context, payload, base)
            if not state["ok"]:
                return state
            if image is None:
                image = state["nodeImageVersion"]
            if step == UPGRADE and state["nodeImageVersion"] != image:
                return (yield from _already_upgraded(context, payload, image, state["nodeImageVersion"]))
        started = yield context.call_activity(start_activity, payload)
        if started["ok"] or not started["error"]["retryable"]:
            break
        if attempt + 1 == MAX_ATTEMPTS:  # no retry follows: record none, wait for nothing
            return _exhausted(start_activity, started["error"])
        yield from _record_retry(context, payload, start_activity, started["error"], attempt, base)
    if not started["ok"]:
        return started
    if started["operation"] is None:  # ARM completed it synchronously
        return started
    return (yield from poll_operation(context, payload, step, started["operation"], base))


def _already_upgraded(context, payload: dict, before: str, after: str) -> Task:
    reason = (
        f"the node image moved from {before} to {after} while the upgrade waited to be retried: not upgrading twice"
    )
    yield context.call_activity(
        names.RECORD, {**payload, "step": UPGRADE, "outcome": "succeeded", "reason": reason, "pendingReimage": False}
    )
    return {"ok": True, "operation": None}


def poll_operation(context, payload: dict, step: str, operation: dict, base: float) -> Task:
    """Poll with durable timers: `Retry-After` when ARM gives one, else backoff from the poll setting."""
    delay = float(base)
    for poll in range(MAX_POLLS):
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        state = yield context.call_activity(names.POLL_OPERATION, {**payload, "step": step, "operation": operation})
        if state["ok"] and state["done"]:
            return state
        if not state["ok"] and not state["error"]["retryable"]:
            return state
        retry_after = state.get("retryAfter") if state["ok"] else state["error"].get("retryAfter")
        delay = float(retry_after) if retry_after is not None else backoff_seconds(poll, base, _jitter(context))
    return _exhausted(names.POLL_OPERATION)


def wait_until_idle(context, payload: dict, base: float) -> Task:
    """AKS runs one operation per cluster: wait until the cluster and its pools are `Succeeded`."""
    for attempt in range(MAX_IDLE_WAITS):
        state = yield context.call_activity(names.CHECK_IDLE, payload)
        if not state["ok"] and not state["error"]["retryable"]:
            return state
        if state["ok"] and state["idle"]:
            return state
        yield context.create_timer(
            context.current_utc_datetime + timedelta(seconds=backoff_seconds(attempt, base, _jitter(context)))
        )
    return _exhausted(names.CHECK_IDLE)


def wait_for_window(context, target: dict, window: dict | None) -> Task:
    """Hold a disruptive upgrade until the cluster's node-OS maintenance window opens.

    Returns whether the upgrade may run. An invalid window, or none within the horizon,
    leaves the pool `pending-reimage` with the reason recorded: never upgrade outside it.
    """
    try:
        gate = upgrade_gate(window, context.current_utc_datetime)
    except MaintenanceWindowError as e:
        yield from _record_window(context, target, False, f"cannot read the node-OS maintenance window: {e}")
        return False
    yield from _record_window(context, target, gate.open, gate.reason)
    if gate.open:
        return True
    if gate.opens_at is None:
        return False
    for fire_at in timer_steps(context.current_utc_datetime, gate.opens_at):
        yield context.create_timer(fire_at)
    return True


def _record_window(context, target: dict, is_open: bool, reason: str) -> Task:
    outcome = "planned" if is_open else "waiting"
    yield context.call_activity(
        names.RECORD,
        {**target, "step": "upgrade-window", "outcome": outcome, "reason": reason, "pendingReimage": not is_open},
    )


def call_arm(context, activity: str, payload: dict, base: float) -> Task:
    """Call an ARM activity, retrying retryable errors with backoff (bounded)."""
    for attempt in range(MAX_ATTEMPTS):
        result = yield context.call_activity(activity, payload)
        if result["ok"] or not result["error"]["retryable"]:
            return result
        if attempt + 1 == MAX_ATTEMPTS:  # no retry follows: record none, wait for nothing
            break
        yield from _record_retry(context, payload, activity, result["error"], attempt, base)
    return _exhausted(activity, result["error"])


def _record_retry(context, payload: dict, activity: str, error: dict, attempt: int, base: float) -> Task:
    delay = retry_delay(error, attempt, base, _jitter(context))
    reason = f"{error['code']}: retrying {activity} in {delay:g}s (attempt {attempt + 1} of {MAX_ATTEMPTS})"
    yield context.call_activity(
        names.RECORD, {**payload, "step": activity, "outcome": "retried", "reason": reason, "error": error}
    )
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))


def _record_exhausted(context, payload: dict, step: str, error: dict) -> Task:
    """Activities record ARM's terminal errors themselves; spent retries are the orchestrator's to record."""
    if error["kind"] == "exhausted":
        record = {**payload, "step": step, "outcome": "failed", "reason": error["message"], "error": error}
        yield context.call_activity(names.RECORD, record)


def _exhausted(activity: str, last: dict | None = None) -> dict:
    """Bounded retries spent; `last`: the final ARM error, kept in the message for the audit."""
    message = f"{activity}: gave up after bounded retries"
    if last:
        message += f"; last error {last['code']}: {last['message']}"
    error = {"kind": "exhausted", "code": "RetriesExhausted", "message": message, "retryable": False}
    return {"ok": False, "error": error}


def _failure(result: dict) -> str:
    return "gone" if result["error"]["kind"] == "not-found" else "failed"


def _outcome(request: dict, outcome: str, reason: str, error: dict | None = None) -> dict:
    return {"pool": request["pool"], "outcome": outcome, "reason": reason, "error": error}


def _jitter(context) -> float:
    return jitter_from_uuid(str(context.new_uuid()))


def _unique(pools: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for pool in pools:
        seen.setdefault(pool.lower(), pool)
    return list(seen.values())
