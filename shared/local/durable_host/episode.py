"""One orchestrator episode, as the Durable extension runs it.

The host appends `OrchestratorStarted` and the new events to the recorded history, lets the
SDK replay it all, then reads the cumulative actions it returns. Actions already recorded
must come back in the same order with the same type and name (else the orchestrator is not
deterministic and the instance fails); the rest are new, get task ids in the SDK's numbering
and become history events plus work for the host (`Decisions`).

Task ids: the SDK numbers every atomic action but external-event waits, in the order it
meets them, and also numbers the hidden retry timer and re-attempt of each `*_with_retry`
call while it processes the failure or timer event. So an event that drives a retry is
delivered alone in its episode, and its ids are allocated before the episode's new actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from shared.local.durable_host import history as h
from shared.local.durable_host.functions import FunctionRegistry
from shared.local.durable_host.instance import Instance, RetryState

# What the Azure Storage provider tells the SDK: longer timers are split into 3-day pieces.
TIMER_LIMITS = {"maximumShortTimerDuration": "6.00:00:00", "longRunningTimerIntervalDuration": "3.00:00:00"}
SCHEMA_VERSION = 2  # ReplaySchema.V3: compound actions are nested, one action list


@dataclass(frozen=True)
class Completed:
    output: Any


@dataclass(frozen=True)
class Failed:
    message: str


@dataclass(frozen=True)
class ContinuedAsNew:
    input_json: str | None


@dataclass
class Decisions:
    """Work an episode asks of the host."""

    activities: list[tuple[int, str, str | None]] = field(default_factory=list)  # task id, name, input
    timers: list[tuple[int, datetime]] = field(default_factory=list)  # task id, fire time
    canceled_timers: list[int] = field(default_factory=list)
    children: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # task id, name, id, input
    outcome: Completed | Failed | ContinuedAsNew | None = None


def take_batch(instance: Instance) -> list[dict[str, Any]]:
    """The next events to deliver: a retry-driving event alone, else the run of events before one."""
    count = 1
    if not _drives_retry(instance, instance.inbox[0]):
        while count < len(instance.inbox) and not _drives_retry(instance, instance.inbox[count]):
            count += 1
    batch = instance.inbox[:count]
    del instance.inbox[:count]
    return batch


def run_episode(
    instance: Instance, functions: FunctionRegistry, events: list[dict[str, Any]], now: datetime
) -> Decisions:
    new_events = [h.event(HistoryEventType.ORCHESTRATOR_STARTED, now), *events]
    state = functions.call_orchestrator(instance.name, _context(instance, instance.history + new_events))
    for new_event in new_events:
        new_event["IsPlayed"] = True
    instance.history.extend(new_events)
    instance.episodes += 1
    instance.custom_status = state.get("customStatus")

    decisions = Decisions()
    decisions.outcome = _decide(instance, state, events, now, decisions)
    instance.history.append(h.event(HistoryEventType.ORCHESTRATOR_COMPLETED, now))
    if isinstance(decisions.outcome, Completed):
        instance.history.append(h.execution_completed(now, "Completed", decisions.outcome.output))
    elif isinstance(decisions.outcome, Failed):
        instance.history.append(h.execution_completed(now, "Failed", decisions.outcome.message))
    return decisions


def _decide(
    instance: Instance, state: dict[str, Any], events: list[dict[str, Any]], now: datetime, decisions: Decisions
) -> Completed | Failed | ContinuedAsNew | None:
    if state.get("actions") is None:  # the SDK itself failed before reporting any state
        return _orchestrator_failed(instance, state["error"])
    leaves = h.flatten_actions(state["actions"])
    mismatch = _replay_mismatch(instance, leaves, orchestrator_failed=bool(state.get("error")))
    if mismatch:
        return Failed(mismatch)
    if state.get("error"):
        return _orchestrator_failed(instance, state["error"])
    _note_cancellations(instance, leaves, decisions)
    done = bool(state.get("isDone"))
    if not done and len(events) == 1 and _drives_retry(instance, events[0]):
        _continue_retry(instance, events[0], now, decisions)
    new_leaves = leaves[len(instance.recorded) :]
    unsupported = next((a for a in new_leaves if a["actionType"] not in h.SUPPORTED_ACTIONS), None)
    if unsupported is not None:
        return Failed(
            f"Orchestrator function '{instance.name}' used {h.describe_action(unsupported)}, which the local Durable host does not run"
        )
    for leaf in new_leaves:
        task_id = instance.allocate_task_id() if h.takes_sequence_number(leaf) else None
        instance.recorded.append(leaf)
        instance.recorded_ids.append(task_id)
        if not done:
            _schedule(instance, leaf, task_id, now, decisions)
    if not done:
        return None
    continued = next((a for a in new_leaves if a["actionType"] == ActionType.CONTINUE_AS_NEW), None)
    return ContinuedAsNew(continued.get("input")) if continued else Completed(state.get("output"))


def _orchestrator_failed(instance: Instance, error: str) -> Failed:
    return Failed(f"Orchestrator function '{instance.name}' failed: {error}")


def _context(instance: Instance, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "history": events,
        "input": instance.input_json,
        "instanceId": instance.instance_id,
        "isReplaying": bool(instance.history),
        "parentInstanceId": instance.parent.instance_id if instance.parent else None,
        "upperSchemaVersion": SCHEMA_VERSION,
        **TIMER_LIMITS,
    }


def _replay_mismatch(instance: Instance, leaves: list[dict[str, Any]], orchestrator_failed: bool) -> str | None:
    for position, (recorded, replayed) in enumerate(zip(instance.recorded, leaves, strict=False)):
        if h.action_identity(recorded) != h.action_identity(replayed):
            return (
                f"Non-deterministic orchestrator '{instance.name}' (instance {instance.instance_id!r}): "
                f"action #{position} is {h.describe_action(recorded)} in the history, but the replay scheduled "
                f"{h.describe_action(replayed)}. An orchestrator must make the same calls in the same order on every "
                "replay: no I/O, random values or wall-clock time (use context.current_utc_datetime)."
            )
    if len(leaves) < len(instance.recorded) and not orchestrator_failed:
        missing = instance.recorded[len(leaves)]
        return (
            f"Non-deterministic orchestrator '{instance.name}' (instance {instance.instance_id!r}): "
            f"the history has {len(instance.recorded)} action(s) but the replay scheduled only {len(leaves)}; "
            f"action #{len(leaves)} ({h.describe_action(missing)}) is missing."
        )
    return None


def _note_cancellations(instance: Instance, leaves: list[dict[str, Any]], decisions: Decisions) -> None:
    for position, (recorded, replayed) in enumerate(zip(instance.recorded, leaves, strict=False)):
        if replayed.get("isCanceled") and not recorded.get("isCanceled"):
            instance.recorded[position] = replayed
            decisions.canceled_timers.append(instance.recorded_ids[position])


def _schedule(
    instance: Instance, leaf: dict[str, Any], task_id: int | None, now: datetime, decisions: Decisions
) -> None:
    kind = leaf["actionType"]
    if kind == ActionType.CREATE_TIMER:
        fire_at = h.parse_timestamp(leaf["fireAt"])
        instance.history.append(h.timer_created(now, task_id, fire_at))
        if not leaf.get("isCanceled"):
            decisions.timers.append((task_id, fire_at))
    elif kind in h.ACTIVITY_ACTIONS or kind in h.SUB_ORCHESTRATION_ACTIONS:
        if kind in h.RETRY_ACTIONS:
            instance.retry_attempts[task_id] = RetryState(leaf)
        _schedule_call(instance, leaf, task_id, now, decisions)


def _schedule_call(
    instance: Instance, action: dict[str, Any], task_id: int, now: datetime, decisions: Decisions
) -> None:
    name, input_json = action["functionName"], action.get("input")
    if action["actionType"] in h.ACTIVITY_ACTIONS:
        instance.history.append(h.task_scheduled(now, task_id, name, input_json))
        decisions.activities.append((task_id, name, input_json))
        return
    child_id = action.get("instanceId") or f"{instance.instance_id}:{task_id:04x}"
    instance.history.append(h.sub_orchestration_created(now, task_id, name, child_id, input_json))
    decisions.children.append((task_id, name, child_id, input_json))


def _drives_retry(instance: Instance, event: dict[str, Any]) -> bool:
    kind = event["EventType"]
    if kind in h.FAILURE_EVENTS:
        return event["TaskScheduledId"] in instance.retry_attempts
    return kind == HistoryEventType.TIMER_FIRED and event["TimerId"] in instance.retry_timers


def _continue_retry(instance: Instance, event: dict[str, Any], now: datetime, decisions: Decisions) -> None:
    """After a failed attempt: a retry timer. After that timer: the next attempt, if any is left.

    The real host also waits for a timer after the last attempt; only then does the SDK fail the call.
    """
    if event["EventType"] in h.FAILURE_EVENTS:
        retry = instance.retry_attempts.pop(event["TaskScheduledId"])
        timer_id = instance.allocate_task_id()
        fire_at = now + h.retry_interval(retry.action)
        instance.retry_timers[timer_id] = retry
        instance.history.append(h.timer_created(now, timer_id, fire_at))
        decisions.timers.append((timer_id, fire_at))
        return
    retry = instance.retry_timers.pop(event["TimerId"])
    if retry.attempts >= h.max_attempts(retry.action):
        return
    retry.attempts += 1
    task_id = instance.allocate_task_id()
    instance.retry_attempts[task_id] = retry
    _schedule_call(instance, retry.action, task_id, now, decisions)
