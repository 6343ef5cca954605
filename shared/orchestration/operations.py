"""Orchestrator helpers shared by every kind of cluster work: call an activity with bounded
retries, run a long-running ARM operation to its end, record a decision. Deterministic.

Every call is stamped with a replay-stable call id and the orchestration's time, from which
the activity derives the keys of the rows it writes (so a re-run writes nothing twice).
Retryable failures (ARM's conflicts, throttling and 5xx; anything outside ARM) wait with
durable timers — `Retry-After` when ARM gave one, else capped exponential backoff with
replay-safe jitter — and each retry is recorded. Every loop is bounded.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from shared.core.protocol import Failure, FailureKind, Outcome, Result, exhausted, failed
from shared.core.table_keys import clip
from shared.orchestration import names
from shared.orchestration.backoff import backoff_seconds, bounded_seconds, jitter_from_uuid, retry_delay
from shared.policy.plan import Step
from shared.policy.window import MaintenanceWindowError, timer_steps, upgrade_gate

MAX_ATTEMPTS = 8  # per call: consecutive retryable failures before giving up
MAX_POLLS = 400  # per long-running operation (backoff caps each wait at 5 minutes)
MAX_IDLE_WAITS = 120  # waiting for another operation on the cluster to finish
MAX_WINDOW_WAIT = timedelta(hours=1)  # longer waits end the work item; resync brings it back
MAX_SLOT_WAITS = 300  # waiting for a run-command slot of the subscription (~10 h at the cap)
SLOT_WAIT_CAP_FACTOR = 6  # a slot waiter asks again at most every 6 paces (2 minutes at 20 s)
DEFAULT_BASE_SECONDS = 30  # backoff base before the plan has read WARDEN_POLL_SECONDS

Task = Generator[Any, Any, Any]


def call_once(context, activity: str, payload: dict, key: str | None = None) -> Task:
    """One attempt. `key` names the logical step (all its attempts share it): the activity keys
    the audit rows it writes by it, so neither a re-run nor a retry writes them twice.
    An activity that raised anyway (its input did not load, the worker died mid-way) is a
    retryable internal failure, like every error the activity did not expect."""
    stamped = {
        **payload,
        "call": {"id": key or str(context.new_uuid()), "at": context.current_utc_datetime.isoformat()},
    }
    try:
        output = yield context.call_activity(activity, stamped)
    except Exception as e:  # noqa: BLE001 - Durable hands activity failures over as bare Exceptions
        return failed(FailureKind.INTERNAL, "ActivityFailed", clip(f"{activity}: {e}", 1000), retryable=True)
    return Result.from_json(output)


def call(context, activity: str, payload: dict, base: float = DEFAULT_BASE_SECONDS) -> Task:
    """Call with bounded retries of retryable failures; returns the final `Result`."""
    key = str(context.new_uuid())
    for attempt in range(MAX_ATTEMPTS):
        result = yield from call_once(context, activity, payload, key)
        if result.ok or not result.error.retryable:
            return result
        if attempt + 1 == MAX_ATTEMPTS:  # no retry follows: record none, wait for nothing
            break
        yield from retry_wait(context, payload, activity, result.error, attempt, base)
    return exhausted(activity, result.error)


def retry_wait(context, payload: dict, what: str, error: Failure, attempt: int, base: float) -> Task:
    """Record the retry (best effort: the store may be what fails) and wait before it."""
    delay = retry_delay(error.retry_after, attempt, base, jitter(context))
    reason = f"{error.code}: retrying {what} in {delay:g}s (attempt {attempt + 1} of {MAX_ATTEMPTS})"
    note = {
        **payload,
        "step": what,
        "outcome": Outcome.RETRIED.value,
        "reason": reason,
        "error": error.to_json(),
        "retry": {"attempt": attempt + 1, "of": MAX_ATTEMPTS, "inSeconds": delay},
    }
    yield from call_once(context, names.RECORD, note)
    yield from sleep(context, delay)


def record(context, payload: dict, step: str, outcome: Outcome, reason: str, **extra: Any) -> Task:
    """Record a decision of the orchestrator (with retries: a terminal outcome must land)."""
    note = {**payload, "step": step, "outcome": outcome.value, "reason": reason, **extra}
    return (yield from call(context, names.RECORD, note))


def record_failure(context, payload: dict, step: str, error: Failure) -> Task:
    """Record a failure the activity could not record itself (spent retries, internal errors)."""
    if not error.recorded:
        yield from record(context, payload, step, error.outcome, error.message, error=error.to_json())


def sleep(context, seconds: float) -> Task:
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=bounded_seconds(seconds)))


def run_operation(
    context,
    start_activity: str,
    payload: dict,
    base: float,
    *,
    fresh: bool = False,
    image: str | None = None,
    poll_activity: str = "",
    then: dict | None = None,
    handed: tuple[dict, Result | None] | None = None,
) -> Task:
    """Start a long-running ARM operation once the cluster is idle, then poll it to the end.

    The start activity checks idleness itself (with the reads that re-check the decision):
    `busy` answers wait with backoff, bounded. `fresh`: the cluster was just seen idle, so
    the first attempt skips that read (ARM's 409 covers what changed meanwhile). A node-image
    upgrade is started at most once: the pool's image before it (`image`, as the plan saw it,
    else as the first attempt read it) goes with every later attempt, which stops if it moved.

    `then`: the next operation's first start (`handover`), which this one's last poll sends on
    its success (its answer comes back as `next`). `handed`: this operation's first start as
    the step before handed it over, with its answer if that step sent it; the later attempts
    share its call id. Returns a `Result` whose value has `skipped` when the decision no longer held.
    """
    attempt, idle_waits = 0, 0
    handed_start, sent = handed or (None, None)
    key = handed_start["call"]["id"] if handed_start else str(context.new_uuid())
    while True:
        if sent is not None:  # the first attempt went out with the step before
            started, sent = sent, None
        else:
            ask = {**payload, "fresh": fresh and attempt == 0 and idle_waits == 0, "imageBefore": image}
            started = yield from call_once(context, start_activity, ask, key)
        image = image or started.get("nodeImageVersion")
        if started.ok and started.get("busy"):
            if idle_waits == (MAX_SLOT_WAITS if started.get("retryAfter") else MAX_IDLE_WAITS):
                return exhausted(f"{start_activity} waiting: {'; '.join(started['busy'])}")
            yield from sleep(context, busy_delay(started.get("retryAfter"), idle_waits, base, jitter(context)))
            idle_waits += 1
            continue
        if started.ok or not started.error.retryable:
            break
        attempt += 1
        if attempt == MAX_ATTEMPTS:
            return exhausted(start_activity, started.error)
        yield from retry_wait(context, payload, start_activity, started.error, attempt - 1, base)
    if started.ok and started.get("unrecorded"):  # the write went out, its audit row did not
        note = started["unrecorded"]
        yield from record(context, payload, note["step"], Outcome.STARTED, "", operation=note["operation"])
    if not started.ok or started.get("skipped") or started.get("operation") is None:
        return started
    polled = {**payload, **(started.get("forPolls") or {})}  # what the start hands its polls (a slot)
    if then is not None:
        polled["then"] = then
    return (yield from poll_operation(context, polled, started["operation"], base, poll_activity))


def handover(context, payload: dict, *, image: str | None = None) -> dict:
    """The next operation's first start, as `call_once` would send it (fresh, its own call id),
    for the operation before it to send from its last poll, stamped with that poll's time:
    with nothing to wait for between them, that saves the orchestration an activity and an episode."""
    return {**payload, "fresh": True, "imageBefore": image, "call": {"id": str(context.new_uuid())}}


def poll_operation(context, payload: dict, operation: dict, base: float, activity: str = "") -> Task:
    """Poll with durable timers: `Retry-After` when ARM gives one, else backoff from the poll
    setting. A poll that fails is retried like any call: bounded, each retry recorded.
    A node-image upgrade's wait also ends when the pool's rolling ends (`wake_event`)."""
    delay, failures, activity = float(base), 0, activity or names.POLL_OPERATION
    wake = wake_event(payload, activity)
    for poll in range(MAX_POLLS):
        if (yield from poll_wait(context, delay, wake)):
            wake = None  # see poll_wait
        state = yield from call_once(context, activity, {**payload, "operation": operation})
        if state.ok and state["done"]:
            return state
        if state.ok:
            failures = 0
            operation = state.get("operation") or operation  # moved: a new Location, or its result next
            now_again = delay == 0  # the poll before said "now" too
            delay = retry_delay(state.get("retryAfter"), poll, base, jitter(context))
            if delay == 0 and now_again:  # `Retry-After: 0` twice and still running: back off, no busy loop
                delay = backoff_seconds(poll, base, jitter(context))
            continue
        if not state.error.retryable:
            return state
        failures += 1
        if failures == MAX_ATTEMPTS:
            return exhausted(activity, state.error)
        delay = retry_delay(state.error.retry_after, failures - 1, base, jitter(context))
        note = {
            **payload,
            "step": names.POLL_OPERATION,
            "outcome": Outcome.RETRIED.value,
            "error": state.error.to_json(),
            "retry": {"attempt": failures, "of": MAX_ATTEMPTS, "inSeconds": delay},
        }
        note["reason"] = f"{state.error.code}: polling again in {delay:g}s (failure {failures} of {MAX_ATTEMPTS})"
        yield from call_once(context, names.RECORD, note)
    return exhausted(activity)


def wake_event(payload: dict, activity: str) -> str | None:
    """The external event that may end a poll's wait early: only a node-image upgrade's (the
    trigger raises it when AKS says the pool's rolling ended). Other polls keep plain timers,
    and their histories small."""
    if activity == names.POLL_OPERATION and payload.get("step") == Step.UPGRADE_NODE_IMAGE.value:
        return names.wake_event_name(payload["pool"])
    return None


def poll_wait(context, seconds: float, wake: str | None) -> Task:
    """Wait `seconds`, or until the event `wake` comes; returns whether it came (the timer is
    then cancelled). Listen until the first wake only: the SDK hands an event raised before any
    wait of its name to every later one, which would poll without pause. (One raised during a
    poll completes an earlier wait whose timer won: missed, and the timer ends the next wait.)"""
    if wake is None:
        yield from sleep(context, seconds)
        return False
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=bounded_seconds(seconds)))
    event = context.wait_for_external_event(wake)
    if (yield context.task_any([timer, event])) is timer:
        return False
    timer.cancel()
    return True


def busy_delay(retry_after: float | None, waits: int, base: float, jitter: float) -> float:
    """A busy cluster is waited out with backoff from the poll setting (capped at 5 minutes).
    A busy slot (`retryAfter`: about how often one frees) backs off from that pace, capped at
    a few of them: slots left idle while their waiters sleep cost time, every extra ask costs
    an activity and a Table query — with a thousand waiters, asking at the slot's pace floods."""
    if retry_after is None:
        return backoff_seconds(waits, base, jitter)
    pace = bounded_seconds(retry_after)
    return backoff_seconds(waits, pace, jitter, cap=SLOT_WAIT_CAP_FACTOR * pace)


def jitter(context) -> float:
    return jitter_from_uuid(str(context.new_uuid()))


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
    if gate.opens_at is None or gate.opens_at - context.current_utc_datetime > MAX_WINDOW_WAIT:
        # Not holding the cluster's worker for days: the pool stays pending-reimage, and the
        # hourly resync asks again, within the hour before the window opens.
        return False
    for fire_at in timer_steps(context.current_utc_datetime, gate.opens_at):
        yield context.create_timer(fire_at)
    return True


def _record_window(context, target: dict, is_open: bool, reason: str) -> Task:
    """An open window owes nothing new; a closed one marks the reimage owed. Only the upgrade's
    success clears that mark: an upgrade that fails in an open window leaves it owed."""
    if is_open:
        yield from record(context, target, "upgrade-window", Outcome.PLANNED, reason)
    else:
        yield from record(context, target, "upgrade-window", Outcome.WAITING, reason, pendingReimage=True)
