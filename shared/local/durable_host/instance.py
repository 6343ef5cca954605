"""One orchestration instance as the host stores it, and the status it reports.

An instance runs one execution at a time; `continue_as_new` and a restart of a finished
instance begin a new execution with a fresh history. Work items carry the execution number,
so a timer or activity of an earlier execution is dropped when it comes due.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from shared.local.durable_host.history import timestamp


class RuntimeStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"

    @property
    def is_active(self) -> bool:
        return self in (RuntimeStatus.PENDING, RuntimeStatus.RUNNING, RuntimeStatus.CONTINUED_AS_NEW)


@dataclass(frozen=True)
class ParentLink:
    """Where a sub-orchestration reports its end: the parent's execution and task id."""

    instance_id: str
    execution: int
    task_id: int


@dataclass
class RetryState:
    """A `*_with_retry` call: its action (name, input, retry options) and attempts so far."""

    action: dict[str, Any]
    attempts: int = 1


@dataclass
class Instance:
    instance_id: str
    name: str
    input_json: str | None
    execution: int
    created: datetime
    parent: ParentLink | None = None
    status: RuntimeStatus = RuntimeStatus.PENDING
    last_updated: datetime | None = None
    output: Any = None
    custom_status: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    # Atomic actions the orchestrator scheduled in this execution, and the task id of each.
    recorded: list[dict[str, Any]] = field(default_factory=list)
    recorded_ids: list[int | None] = field(default_factory=list)
    next_task_id: int = 0
    retry_attempts: dict[int, RetryState] = field(default_factory=dict)  # task id of an attempt
    retry_timers: dict[int, RetryState] = field(default_factory=dict)  # task id of a retry timer
    episodes: int = 0

    def begin_execution(self, execution: int, input_json: str | None) -> None:
        """Forget the previous execution's history and bookkeeping."""
        self.execution = execution
        self.input_json = input_json
        self.history = []
        self.recorded = []
        self.recorded_ids = []
        self.next_task_id = 0
        self.retry_attempts = {}
        self.retry_timers = {}

    def allocate_task_id(self) -> int:
        task_id = self.next_task_id
        self.next_task_id += 1
        return task_id

    def awaited_event_names(self) -> list[str]:
        """Names of external events the orchestrator waits for and has not received yet."""
        waits = Counter(a["externalEventName"] for a in self.recorded if "externalEventName" in a)
        raised = Counter(e["Name"] for e in self.history if e["EventType"] == HistoryEventType.EVENT_RAISED)
        return sorted(name for name, count in waits.items() if count > raised[name])

    def snapshot(self, show_history: bool = False) -> InstanceStatus:
        return InstanceStatus(
            name=self.name,
            instance_id=self.instance_id,
            runtime_status=self.status,
            input=None if self.input_json is None else json.loads(self.input_json),
            output=self.output,
            custom_status=self.custom_status,
            created_time=self.created,
            last_updated_time=self.last_updated or self.created,
            history=[dict(e) for e in self.history] if show_history else None,
        )


@dataclass(frozen=True)
class InstanceStatus:
    """What `get_status` reports; `to_json()` is the extension's HTTP status payload."""

    name: str
    instance_id: str
    runtime_status: RuntimeStatus
    input: Any
    output: Any
    custom_status: Any
    created_time: datetime
    last_updated_time: datetime
    history: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        payload = {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": str(self.runtime_status),
            "input": self.input,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": _seconds(self.created_time),
            "lastUpdatedTime": _seconds(self.last_updated_time),
        }
        if self.history is not None:
            payload["historyEvents"] = self.history
        return payload


def _seconds(moment: datetime) -> str:
    # The extension formats these with .NET's "s" format plus "Z": whole seconds.
    return timestamp(moment)[:19] + "Z"
