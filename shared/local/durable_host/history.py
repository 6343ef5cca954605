"""History events and orchestrator actions in the JSON shapes of the Durable extension.

The Python SDK's replay engine reads history events with PascalCase fields (`EventType`,
`EventId`, `TaskScheduledId`, ...) and returns actions with camelCase fields (`actionType`,
`functionName`, ...). The type numbers come from the SDK's own enums.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the SDK's DATETIME_STRING_FORMAT
OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"  # the SDK appends its state JSON to an orchestrator's error after it

COMPOUND_ACTIONS = {ActionType.WHEN_ALL, ActionType.WHEN_ANY}
ACTIVITY_ACTIONS = {ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY}
SUB_ORCHESTRATION_ACTIONS = {ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY}
RETRY_ACTIONS = {ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY}
SUPPORTED_ACTIONS = (
    ACTIVITY_ACTIONS
    | SUB_ORCHESTRATION_ACTIONS
    | {ActionType.CREATE_TIMER, ActionType.WAIT_FOR_EXTERNAL_EVENT, ActionType.CONTINUE_AS_NEW}
)
FAILURE_EVENTS = {HistoryEventType.TASK_FAILED, HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def event(kind: HistoryEventType, at: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """One history event; `IsPlayed` turns true once an episode has delivered it."""
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False, "Timestamp": timestamp(at), **fields}


def execution_started(
    at: datetime, name: str, instance_id: str, execution_id: str, input_json: str | None, parent: dict | None
) -> dict[str, Any]:
    # `Version` must be present: the SDK reads it as an attribute of this event.
    return event(
        HistoryEventType.EXECUTION_STARTED,
        at,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Name=name,
        Version="",
        Input=input_json,
        Tags=None,
    )


def task_scheduled(at: datetime, task_id: int, name: str, input_json: str | None) -> dict[str, Any]:
    return event(HistoryEventType.TASK_SCHEDULED, at, task_id, Name=name, Version="", Input=input_json)


def task_completed(at: datetime, task_id: int, result_json: str) -> dict[str, Any]:
    return event(HistoryEventType.TASK_COMPLETED, at, TaskScheduledId=task_id, Result=result_json)


def task_failed(at: datetime, task_id: int, reason: str, details: str) -> dict[str, Any]:
    return event(HistoryEventType.TASK_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def sub_orchestration_created(
    at: datetime, task_id: int, name: str, instance_id: str, input_json: str | None
) -> dict[str, Any]:
    return event(
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
        at,
        task_id,
        Name=name,
        Version="",
        InstanceId=instance_id,
        Input=input_json,
    )


def sub_orchestration_completed(at: datetime, task_id: int, result_json: str) -> dict[str, Any]:
    return event(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED, at, TaskScheduledId=task_id, Result=result_json)


def sub_orchestration_failed(at: datetime, task_id: int, reason: str, details: str) -> dict[str, Any]:
    return event(
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details
    )


def timer_created(at: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return event(HistoryEventType.TIMER_CREATED, at, timer_id, FireAt=timestamp(fire_at))


def timer_fired(at: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return event(HistoryEventType.TIMER_FIRED, at, TimerId=timer_id, FireAt=timestamp(fire_at))


def event_raised(at: datetime, name: str, input_json: str) -> dict[str, Any]:
    return event(HistoryEventType.EVENT_RAISED, at, Name=name, Input=input_json)


def execution_completed(at: datetime, status: str, result: Any) -> dict[str, Any]:
    return event(HistoryEventType.EXECUTION_COMPLETED, at, OrchestrationStatus=status, Result=result)


def flatten_actions(actions: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The atomic actions in the order the SDK numbered them (WhenAll/WhenAny opened up)."""
    leaves: list[dict[str, Any]] = []

    def walk(action: dict[str, Any]) -> None:
        if action["actionType"] in COMPOUND_ACTIONS:
            for child in action["compoundActions"]:
                walk(child)
        else:
            leaves.append(action)

    for group in actions:
        for action in group:
            walk(action)
    return leaves


def takes_sequence_number(action: dict[str, Any]) -> bool:
    """External-event waits are keyed by name; every other action consumes a task id."""
    return action["actionType"] != ActionType.WAIT_FOR_EXTERNAL_EVENT


def action_identity(action: dict[str, Any]) -> tuple[int, str | None]:
    """What replay must reproduce at a position: the action type and the name it targets."""
    return action["actionType"], action.get("functionName") or action.get("externalEventName")


def describe_action(action: dict[str, Any]) -> str:
    kind, name = action_identity(action)
    label = ActionType(kind).name if kind in ActionType._value2member_map_ else f"action type {kind}"
    return f"{label} {name!r}" if name else label


def retry_interval(action: dict[str, Any]) -> timedelta:
    return timedelta(milliseconds=action["retryOptions"]["firstRetryIntervalInMilliseconds"])


def max_attempts(action: dict[str, Any]) -> int:
    return int(action["retryOptions"]["maxNumberOfAttempts"])


def engine_state_from_failure(error: Exception) -> dict[str, Any]:
    """The state an orchestrator that raised still reports, or a bare failure if the SDK gave none."""
    message, marker, state_json = str(error).partition(OUT_OF_PROC_MARKER)
    if marker:
        state = json.loads(state_json)
        state.setdefault("error", message)
        return state
    return {"isDone": False, "actions": None, "error": f"{type(error).__name__}: {error}"}
