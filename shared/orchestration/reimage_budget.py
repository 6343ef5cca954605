"""Blast-radius limits around the activities that start a reimage. Used by `activities` only.

Before a reimage goes out (a node-image upgrade; on Kubernetes >= 1.37 the sshAccess PUT, which
reimages by itself) its pool takes its turn (`take`): a paused cluster answers `waiting` with how
to resume it, a full budget answers `busy` (the orchestrator waits and asks again, keeping its
place in line). The hold is the orchestration instance's, so a re-run keeps it. It is renewed
while the operation runs and given back when the operation ends, before the end is recorded
(`running`, `ended`), or as soon as the start sends nothing (`settle_start`). A reimage that ends
failed pauses its cluster's reimages until `python -m shared resume --cluster ID`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.core.models import ClusterRef, OperationState
from shared.core.protocol import FailureKind, Outcome, Result, failed, succeeded
from shared.orchestration import arm_steps
from shared.orchestration.envelope import cluster_json, cluster_ref, step_time
from shared.orchestration.recording import Entry, audit, audit_rows
from shared.orchestration.runtime import Runtime
from shared.policy import NODE_OS_WINDOW
from shared.policy.blast_radius import Claim, Limits, Pause
from shared.policy.blast_radius import waiting_reason as budget_reason
from shared.policy.plan import Step
from shared.policy.window import MaintenanceWindowError, upgrade_gate

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # a waiter asks again from this pace (backing off to a few of them)
# A hold is renewed at every poll once half of it is gone: a holder that died frees its room
# after at most this; polls come at least every 20 minutes (the longest Retry-After honoured).
HOLD_TTL = timedelta(hours=2)
# A waiter asks again at most every 6 paces (6 minutes): a ticket not renewed for longer than
# this belongs to a waiter that gave up or died, and holds nobody back any more.
TICKET_TTL = timedelta(minutes=30)
PAUSED_CODE, WINDOW_CODE = "ReimagesPaused", "MaintenanceWindowClosed"
PAUSE_STEP, RESUME_STEP = "reimage-pause", "reimage-resume"


def reimages(payload: dict) -> bool:
    """Whether the step reimages the pool: a node-image upgrade, or the sshAccess PUT of a pool
    that needs no upgrade after it (Kubernetes >= 1.37: the plan's steps say so)."""
    step = payload.get("step")
    return step == Step.UPGRADE_NODE_IMAGE.value or (
        step == Step.UPDATE_SSH_ACCESS.value and payload.get("reimageOwed") is False
    )


def take(rt: Runtime, payload: dict) -> Result | None:
    """None when the reimage may go out now (its hold is taken), else the answer to give."""
    if not reimages(payload):
        return None
    ref, now = cluster_ref(payload), datetime.now(UTC)
    claim = Claim(payload["instanceId"], ref.subscription, ref.id, payload.get("pool", ""))
    limits = Limits(rt.settings.max_reimages, rt.settings.max_reimages_per_subscription)
    turn = rt.store.take_reimage_turn(claim, limits, now, HOLD_TTL, TICKET_TTL)
    if turn.paused is not None:
        return failed(FailureKind.WAITING, PAUSED_CODE, turn.paused.reason())
    if not turn.granted:
        reason = budget_reason(turn, limits, ref.subscription)
        if turn.first_wait:  # once per wait: every later ask finds its ticket
            audit(rt, _keyed(payload, "budget"), Entry(payload["step"], Outcome.WAITING, reason, "ReimageBudget"))
        return succeeded(busy=[reason], retryAfter=RETRY_SECONDS, budget=True)
    if turn.waited and (closed := _window_closed(rt, ref, payload, now)):
        rt.store.release_reimage_hold(claim.holder)
        return failed(FailureKind.WAITING, WINDOW_CODE, closed)
    return None


def settle_start(rt: Runtime, payload: dict, result: Result) -> Result:
    """After a start: a reimage that went out keeps its hold; a retryable failure keeps it for
    the retry (a 409 may be its own earlier send); a budget wait keeps its place in line; a
    busy cluster gives the hold back but keeps the place; anything else leaves the line."""
    if not reimages(payload):
        return result
    holder = payload["instanceId"]
    if result.ok and result.get("operation") is not None:  # it went out: its polls renew the hold
        return replace(result, value={**result.value, "forPolls": {"reimageFrom": step_time(payload).isoformat()}})
    if result.ok and result.get("budget"):
        return result
    if result.ok and result.get("busy"):
        rt.store.release_reimage_hold(holder)
    elif (result.ok and result.get("operation") is None) or (not result.ok and not result.error.retryable):
        _best_effort(rt.store.leave_reimage_line, holder)
    return result


def running(rt: Runtime, payload: dict) -> None:
    """A poll found the reimage still running: its hold must not expire under it. Not read while
    the reimage is young: its hold was taken (or kept) by its start, at most the start's retries
    (under an hour) before; a quarter of HOLD_TTL after the start more than half of it is left."""
    if not reimages(payload):
        return
    started = payload.get("reimageFrom")
    if started and step_time(payload) - datetime.fromisoformat(started) < HOLD_TTL / 4:
        return
    if not rt.store.renew_reimage_hold(payload["instanceId"], datetime.now(UTC), HOLD_TTL):
        log.warning("the reimage hold of %s had expired and was given away", payload["instanceId"])


def ended(rt: Runtime, payload: dict, state: OperationState) -> None:
    """The reimage ended: its room is free; one that failed (or was canceled) pauses the
    cluster. Called before the end is recorded, so a failure here retries the poll."""
    if not reimages(payload):
        return
    if not state.succeeded:
        code = state.error_code or state.status
        pause = Pause(
            cluster_ref(payload).id,
            payload.get("pool", ""),
            step_time(payload),
            code,
            state.error_message,
            (payload.get("operation") or {}).get("url", ""),
            payload["instanceId"],
        )
        rt.store.pause_reimages(pause)
        text = f"{pause.reason()} (the reimage ended {state.status}, {code}: {state.error_message})"
        # Keyed by the reimage, not the poll: a poll that runs again after a store failure
        # (each poll has its own call id) writes no second pause row.
        once = {
            **payload,
            "call": {**(payload.get("call") or {}), "id": f"{payload['instanceId']}-pause-{pause.operation_digest()}"},
        }
        audit(rt, once, Entry(PAUSE_STEP, Outcome.WAITING, text, PAUSED_CODE))
    release(rt, payload)


def let_go(rt: Runtime, holder: str) -> None:
    """The holder's work has ended, however: no hold nor ticket of it stays. (A start whose
    retries ran out, or a sub-orchestration that failed, would otherwise keep its room in the
    budget until the hold expired.)"""
    _best_effort(rt.store.leave_reimage_line, holder)


def release(rt: Runtime, payload: dict) -> None:
    if reimages(payload):
        rt.store.release_reimage_hold(payload["instanceId"])


def judged(rt: Runtime, payload: dict, result: Result) -> Result:
    """`running`/`ended` for an end judged by the pool (the operation's status was gone). Here
    the end is already recorded: a store failure retries the poll, which may record it again."""
    if result.ok and not result.get("done"):
        running(rt, payload)
    elif result.ok:
        ended(rt, payload, OperationState("Succeeded"))
    elif not result.error.retryable and result.error.kind is FailureKind.OPERATION_FAILED:
        ended(rt, payload, OperationState("Failed", result.error.code, result.error.message))
    elif not result.error.retryable:
        release(rt, payload)  # the pool is gone, or unreadable for good: no reimage ran to fail
    return result


def resume(rt: Runtime, ref: ClusterRef, actor: str, reason: str) -> Pause | None:
    """Clear the cluster's pause and record who resumed it and why; None if it was not paused."""
    pause = rt.store.clear_reimage_pause(ref.key)
    if pause is None:
        return None
    why = f"reimages resumed ({reason or 'no reason given'}); they were paused after {pause.pool}'s reimage failed"
    entry = Entry(RESUME_STEP, Outcome.SUCCEEDED, f"{why} ({pause.code})")
    audit_rows(rt, {"cluster": cluster_json(ref), "actor": actor}, [("", entry)])
    return pause


def _window_closed(rt: Runtime, ref: ClusterRef, payload: dict, now: datetime) -> str | None:
    """An upgrade that waited for its turn may have outwaited its node-OS maintenance window."""
    if payload.get("step") != Step.UPGRADE_NODE_IMAGE.value or rt.settings.policy.upgrade_window != NODE_OS_WINDOW:
        return None
    try:
        gate = upgrade_gate(arm_steps.node_os_window(rt, ref), now)
    except MaintenanceWindowError as e:
        return f"cannot read the node-OS maintenance window: {e}"
    if gate.open:
        return None
    return f"the node-OS maintenance window closed while the pool waited for the reimage budget: {gate.reason}"


def _keyed(payload: dict, suffix: str) -> dict:
    """The payload with its call id made this record's own: written once, whatever re-runs."""
    call = payload.get("call") or {}
    return {**payload, "call": {**call, "id": f"{call['id']}-{suffix}"}} if call.get("id") else payload


def _best_effort(action, holder: str) -> None:
    """After a start that sent nothing its rows are recorded: a failure to leave the line must
    not fail the start (a retry would write again); the rows expire by themselves."""
    try:
        action(holder)
    except Exception as e:  # noqa: BLE001 - see above
        log.warning("could not take %s out of the reimage line (it expires by itself): %s", holder, e)
