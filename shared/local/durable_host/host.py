"""The in-process Durable Functions host: a local stand-in for the Functions host and the
Durable extension, driving the SDK's real replay engine.

Work runs in arrival order from one queue: orchestrator episodes (an instance with new
events) and activity calls. Durable timers wait in a heap; when nothing else can run, the
clock is moved (virtual) or waited (real) to the earliest one. `run_until_idle()` returns when
nothing can progress any more: every instance finished or waits for external events.

The client operations (`start_new`, `raise_event`, `terminate`, `get_status`) are thread-safe,
so the HTTP client API (`serve_client_api`) can call them while the host runs.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.models.utils.df_serialization import df_dumps

from shared.local.durable_host import history as h
from shared.local.durable_host.client_api import ClientApiServer, run_client_function
from shared.local.durable_host.clock import Clock, RealClock
from shared.local.durable_host.episode import Completed, ContinuedAsNew, Decisions, Failed, run_episode, take_batch
from shared.local.durable_host.errors import (
    InstanceAlreadyRunningError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestrationStuckError,
    RunawayOrchestrationError,
    UnknownFunctionError,
)
from shared.local.durable_host.functions import FunctionRegistry
from shared.local.durable_host.instance import Instance, InstanceStatus, ParentLink, RuntimeStatus

DEFAULT_MAX_EPISODES = 10_000


@dataclass(frozen=True)
class HostEvent:
    """A progress notice. `kind` is started, activity (about to run), activity-completed (its
    result delivered, the orchestrator not yet run), activity-failed, activity-lost, timer,
    completed, failed, terminated or continued-as-new; `activity` names the activity of the
    activity kinds; `payload` is the input (started, activity), result, failure reason, timer
    fire time or output."""

    kind: str
    instance_id: str
    orchestration: str
    at: datetime
    payload: Any = None
    activity: str | None = None


@dataclass(frozen=True)
class _Episode:
    instance_id: str


@dataclass(frozen=True)
class _ActivityCall:
    instance_id: str
    execution: int
    task_id: int
    name: str
    input_json: str | None


class DurableHost:
    def __init__(
        self,
        functions: FunctionRegistry,
        clock: Clock | None = None,
        on_progress: Callable[[HostEvent], None] | None = None,
    ):
        self.functions = functions
        self.clock = clock or RealClock()
        self._on_progress = on_progress
        self._lock = threading.RLock()
        self._wakeup = threading.Event()
        self._instances: dict[str, Instance] = {}
        self._ready: deque[_Episode | _ActivityCall] = deque()
        self._queued: set[str] = set()
        self._timers: list[tuple[datetime, int, str, int, int]] = []  # fire at, seq, instance, execution, task id
        self._canceled: set[tuple[str, int, int]] = set()
        self._executions = itertools.count(1)
        self._timer_seq = itertools.count()
        # Fault injection: called after each activity ran; True loses its completion, as when the
        # worker dies before reporting it, and the host runs the activity again (at-least-once).
        self.lose_completion: Callable[[str, Any], bool] | None = None
        self.refused_starts = 0  # starts refused because the instance was running
        self._stop = threading.Event()  # set by `stop()`: the run loop returns between steps

    @classmethod
    def from_app(
        cls, app: Any, clock: Clock | None = None, on_progress: Callable[[HostEvent], None] | None = None
    ) -> DurableHost:
        """A host for the orchestrators and activities registered on a `df.DFApp`."""
        return cls(FunctionRegistry.from_app(app), clock, on_progress)

    # -- client operations -------------------------------------------------------------------

    def start_new(self, name: str, instance_id: str | None = None, input: Any = None) -> str:  # noqa: A002 (the SDK's name)
        """Start orchestrator `name`; refused while an instance with that id is Pending/Running."""
        self.functions.require_orchestrator(name)
        input_json = _to_json(input, "orchestration input")
        with self._lock:
            return self._start(name, instance_id or uuid.uuid4().hex, input_json, parent=None)

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        input_json = _to_json(data, f"data of event {name!r}")
        with self._lock:
            instance = self._active(instance_id)
            self._deliver(instance, h.event_raised(self.clock.now(), name, input_json))

    def terminate(self, instance_id: str, reason: str = "") -> None:
        with self._lock:
            instance = self._active(instance_id)
            instance.history.append(h.event(HistoryEventType.EXECUTION_TERMINATED, self.clock.now(), Input=reason))
            self._finish(instance, RuntimeStatus.TERMINATED, reason)

    def get_status(self, instance_id: str, show_history: bool = False) -> InstanceStatus:
        with self._lock:
            return self._require(instance_id).snapshot(show_history)

    def statuses(self) -> list[InstanceStatus]:
        with self._lock:
            return [instance.snapshot() for instance in self._instances.values()]

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The current execution's history events (a copy)."""
        return self.get_status(instance_id, show_history=True).history or []

    def history_length(self, instance_id: str) -> int:
        with self._lock:
            return len(self._require(instance_id).history)

    @contextmanager
    def serve_client_api(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the Durable extension's HTTP API on loopback; yields the durable-client binding JSON."""
        with ClientApiServer(self, host, port) as server:
            yield server.binding_json

    def call_client_function(self, name: str, **arguments: Any) -> Any:
        """Run durable-client function `name` as the Functions host does: its client binding JSON
        (for a client API served during the call) plus `arguments` (e.g. `req=`, `event=`)."""
        client = self.functions.require_client(name)
        with self.serve_client_api() as binding_json:
            return run_client_function(client.function, **{client.parameter: binding_json}, **arguments)

    # -- running ---------------------------------------------------------------------------------

    def run_until_idle(self, max_episodes: int = DEFAULT_MAX_EPISODES) -> int:
        """Run until nothing can progress, or `stop()`; returns the orchestrator episodes run."""
        return self._run(lambda: False, max_episodes)

    def run_until(self, condition: Callable[[], bool], max_episodes: int = DEFAULT_MAX_EPISODES) -> bool:
        """Run until `condition()` holds (checked before each step: an episode, an activity or a
        timer due) or nothing can progress; returns whether it holds. Between two runs the caller
        may use the client operations freely, e.g. raise an event at a chosen point of a run."""
        self._run(condition, max_episodes)
        return condition()

    def stop(self) -> None:
        """Make the run loop return after the step in hand (from a signal handler or another
        thread: a Ctrl-C, a time limit). Unfinished instances stay as they are."""
        self._stop.set()
        self._wakeup.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_for_completion(self, instance_id: str, max_episodes: int = DEFAULT_MAX_EPISODES) -> InstanceStatus:
        """Run until `instance_id` has finished (Completed, Failed or Terminated)."""
        self.get_status(instance_id)
        self._run(lambda: not self._instances[instance_id].status.is_active, max_episodes)
        with self._lock:
            instance = self._instances[instance_id]
            if instance.status.is_active:
                raise OrchestrationStuckError(instance_id, instance.status, instance.awaited_event_names())
            return instance.snapshot()

    def _run(self, finished: Callable[[], bool], max_episodes: int) -> int:
        episodes = 0
        while not finished() and not self._stop.is_set():
            work = self._next_work()
            if work is None:
                deadline = self._next_deadline()
                if deadline is None:
                    break
                self.clock.wait_until(deadline, self._wakeup)
                continue
            if isinstance(work, _Episode):
                if episodes >= max_episodes:
                    with self._lock:  # put the episode back: a caller may go on with a larger bound
                        self._ready.appendleft(work)
                        self._queued.add(work.instance_id)
                        raise RunawayOrchestrationError(max_episodes, self._busiest())
                episodes += 1
                self._run_episode(work.instance_id)
            else:
                self._call_activity(work)
        return episodes

    def _next_work(self) -> _Episode | _ActivityCall | None:
        with self._lock:
            self._fire_due_timers()
            if not self._ready:
                return None
            work = self._ready.popleft()
            if isinstance(work, _Episode):
                self._queued.discard(work.instance_id)
            return work

    def _fire_due_timers(self) -> None:
        now = self.clock.now()
        while self._timers and self._timers[0][0] <= now:
            fire_at, _, instance_id, execution, task_id = heapq.heappop(self._timers)
            instance = self._live(instance_id, execution)
            if instance is not None and (instance_id, execution, task_id) not in self._canceled:
                self._deliver(instance, h.timer_fired(now, task_id, fire_at))

    def _next_deadline(self) -> datetime | None:
        with self._lock:
            while self._timers:
                _, _, instance_id, execution, task_id = self._timers[0]
                if self._live(instance_id, execution) and (instance_id, execution, task_id) not in self._canceled:
                    return self._timers[0][0]
                heapq.heappop(self._timers)
            return None

    def _run_episode(self, instance_id: str) -> None:
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or not instance.status.is_active or not instance.inbox:
                return
            now = self.clock.now()
            decisions = run_episode(instance, self.functions, take_batch(instance), now)
            instance.status, instance.last_updated = RuntimeStatus.RUNNING, now
            self._apply(instance, decisions)
            if instance.inbox and instance.status.is_active:
                self._queue_episode(instance)

    def _call_activity(self, call: _ActivityCall) -> None:
        with self._lock:
            instance = self._live(call.instance_id, call.execution)
            if instance is None:
                return
            self._report("activity", instance, _json_or_text(call.input_json), call.name)
        outcome = self._run_activity(call)  # no lock: activities may be slow
        with self._lock:
            instance = self._live(call.instance_id, call.execution)
            if instance is None:
                return
            if self.lose_completion is not None and self.lose_completion(call.name, _json_or_text(call.input_json)):
                self._report("activity-lost", instance, _json_or_text(call.input_json), call.name)
                self._ready.append(call)
                return
            now = self.clock.now()
            if outcome.failure is not None:
                self._report("activity-failed", instance, outcome.failure[0], call.name)
                self._deliver(instance, h.task_failed(now, call.task_id, *outcome.failure))
                return
            self._deliver(instance, h.task_completed(now, call.task_id, outcome.result_json))
        # Outside the lock: a watcher may call the client API here (a trigger racing the orchestrator).
        self._report("activity-completed", instance, _json_or_text(outcome.result_json), call.name)

    def _run_activity(self, call: _ActivityCall):
        """An activity that also takes a durable client gets one bound to this host for the call."""
        if call.name not in self.functions.clients:
            return self.functions.call_activity(call.name, call.input_json)
        with self.serve_client_api() as binding_json:
            return self.functions.call_activity(call.name, call.input_json, binding_json)

    # -- applying an episode's decisions -----------------------------------------------------------

    def _apply(self, instance: Instance, decisions: Decisions) -> None:
        for task_id, name, input_json in decisions.activities:
            self._ready.append(_ActivityCall(instance.instance_id, instance.execution, task_id, name, input_json))
        for task_id, fire_at in decisions.timers:
            heapq.heappush(
                self._timers, (fire_at, next(self._timer_seq), instance.instance_id, instance.execution, task_id)
            )
            self._report("timer", instance, fire_at)
        for task_id in decisions.canceled_timers:
            self._canceled.add((instance.instance_id, instance.execution, task_id))
        for task_id, name, child_id, input_json in decisions.children:
            self._start_child(instance, task_id, name, child_id, input_json)
        outcome = decisions.outcome
        if isinstance(outcome, Completed):
            self._finish(instance, RuntimeStatus.COMPLETED, outcome.output)
        elif isinstance(outcome, Failed):
            self._finish(instance, RuntimeStatus.FAILED, outcome.message)
        elif isinstance(outcome, ContinuedAsNew):
            self._continue_as_new(instance, outcome.input_json)

    def _start(self, name: str, instance_id: str, input_json: str | None, parent: ParentLink | None) -> str:
        existing = self._instances.get(instance_id)
        if existing is not None and existing.status.is_active:
            self.refused_starts += 1
            raise InstanceAlreadyRunningError(instance_id, existing.status)
        now = self.clock.now()
        instance = Instance(instance_id, name, input_json, next(self._executions), now, parent, last_updated=now)
        self._instances[instance_id] = instance
        self._deliver(instance, self._execution_started(instance))
        self._report("started", instance, _json_or_text(input_json))
        return instance_id

    def _start_child(self, parent: Instance, task_id: int, name: str, child_id: str, input_json: str | None) -> None:
        try:
            self.functions.require_orchestrator(name)
            self._start(name, child_id, input_json, ParentLink(parent.instance_id, parent.execution, task_id))
        except (UnknownFunctionError, InstanceAlreadyRunningError) as refusal:
            self._deliver(parent, h.sub_orchestration_failed(self.clock.now(), task_id, str(refusal), ""))

    def _continue_as_new(self, instance: Instance, input_json: str | None) -> None:
        # Events not yet delivered belong to the instance, not to the execution: keep them.
        pending_events = [e for e in instance.inbox if e["EventType"] == HistoryEventType.EVENT_RAISED]
        instance.begin_execution(next(self._executions), input_json)
        instance.status = RuntimeStatus.CONTINUED_AS_NEW
        instance.inbox = []
        self._report("continued-as-new", instance, _json_or_text(input_json))
        self._deliver(instance, self._execution_started(instance))
        for pending in pending_events:
            self._deliver(instance, pending)

    def _finish(self, instance: Instance, status: RuntimeStatus, output: Any) -> None:
        now = self.clock.now()
        instance.status, instance.output, instance.last_updated = status, output, now
        instance.inbox = []
        self._report(str(status).lower(), instance, output)
        link = instance.parent
        parent = self._live(link.instance_id, link.execution) if link else None
        if parent is None:
            return
        if status == RuntimeStatus.COMPLETED:
            self._deliver(parent, h.sub_orchestration_completed(now, link.task_id, json.dumps(output)))
        else:
            reason = (
                output
                if status == RuntimeStatus.FAILED
                else f"instance {instance.instance_id!r} was terminated: {output}"
            )
            self._deliver(parent, h.sub_orchestration_failed(now, link.task_id, str(reason), ""))

    def _execution_started(self, instance: Instance) -> dict[str, Any]:
        link = instance.parent
        parent = None
        if link is not None:
            parent_instance = self._instances[link.instance_id]
            parent = {
                "Name": parent_instance.name,
                "OrchestrationInstance": {"InstanceId": link.instance_id, "ExecutionId": str(link.execution)},
                "TaskScheduleId": link.task_id,
            }
        return h.execution_started(
            self.clock.now(), instance.name, instance.instance_id, str(instance.execution), instance.input_json, parent
        )

    # -- bookkeeping ----------------------------------------------------------------------------

    def _deliver(self, instance: Instance, event: dict[str, Any]) -> None:
        instance.inbox.append(event)
        self._queue_episode(instance)
        self._wakeup.set()

    def _queue_episode(self, instance: Instance) -> None:
        if instance.instance_id not in self._queued:
            self._queued.add(instance.instance_id)
            self._ready.append(_Episode(instance.instance_id))

    def _require(self, instance_id: str) -> Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise InstanceNotFoundError(instance_id)
        return instance

    def _active(self, instance_id: str) -> Instance:
        instance = self._require(instance_id)
        if not instance.status.is_active:
            raise InstanceGoneError(instance_id, instance.status)
        return instance

    def _live(self, instance_id: str, execution: int) -> Instance | None:
        instance = self._instances.get(instance_id)
        if instance is None or instance.execution != execution or not instance.status.is_active:
            return None
        return instance

    def _busiest(self) -> str:
        busiest = max(self._instances.values(), key=lambda i: i.episodes)
        return f"{busiest.instance_id!r} ({busiest.name}, {busiest.episodes} episodes, {len(busiest.history)} history events)"

    def _report(self, kind: str, instance: Instance, payload: Any = None, activity: str | None = None) -> None:
        if self._on_progress is not None:
            self._on_progress(HostEvent(kind, instance.instance_id, instance.name, self.clock.now(), payload, activity))


def _to_json(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        return df_dumps(value)
    except TypeError as error:
        raise ValueError(f"{what} must be JSON-serialisable: {error}") from None


def _json_or_text(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return text
