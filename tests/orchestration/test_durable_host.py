"""The in-process Durable host drives the SDK's real replay engine over the sample app:
timers on a virtual clock, retries, sub-orchestrations, fan-out, races, continue-as-new,
failures, non-determinism, singleton starts and runaway bounds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from durable_samples import (
    APPROVAL_RACE,
    CALLS,
    CLOCK_STEPPER,
    CLOCK_STEPS,
    COUNTDOWN,
    FAILING,
    FAN_OUT,
    NONDETERMINISTIC,
    PARENT_OF_FAILING,
    RETRY_EXHAUSTED,
    RETRY_INTERVAL,
    STATUS_REPORTER,
    SUB_WITH_RETRY,
    T0,
    TICKING,
    TIMER_RETRY_SUB,
    UNKNOWN_ACTIVITY,
    WAITS_FOREVER,
    WORK_THEN_WAIT,
    app,
)

from shared.local.durable_host import (
    DurableHost,
    InstanceAlreadyRunningError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestrationStuckError,
    RealClock,
    RunawayOrchestrationError,
    RuntimeStatus,
    UnknownFunctionError,
    VirtualClock,
)


def event_types(host: DurableHost, instance_id: str) -> list[HistoryEventType]:
    return [HistoryEventType(e["EventType"]) for e in host.history(instance_id)]


def test_timer_then_retried_activity_then_sub_orchestration(host: DurableHost):
    status = host.wait_for_completion(host.start_new(TIMER_RETRY_SUB, "trio"))

    assert status.runtime_status == RuntimeStatus.COMPLETED
    after_timer = T0 + timedelta(minutes=10)
    after_retries = after_timer + 2 * RETRY_INTERVAL  # one retry timer after each of the two failures
    assert status.output == {
        "seen": [T0.isoformat(), after_timer.isoformat(), after_retries.isoformat()],
        "flaky": {"pool": "np1", "attempts": 3},
        "child": {"doubled": 42, "parent": "trio"},
    }
    assert CALLS["flaky"] == [{"pool": "np1"}] * 3
    child = host.get_status("trio-child")
    assert (child.runtime_status, child.input, child.output) == (
        RuntimeStatus.COMPLETED,
        21,
        {"doubled": 42, "parent": "trio"},
    )
    types = event_types(host, "trio")
    assert types.count(HistoryEventType.TASK_FAILED) == 2
    assert types.count(HistoryEventType.TIMER_FIRED) == 3  # the durable timer and two retry timers
    assert types.count(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED) == 1


def test_retry_waits_a_timer_after_the_last_attempt_then_fails_with_the_activity_text(host: DurableHost):
    status = host.wait_for_completion(host.start_new(RETRY_EXHAUSTED))

    assert CALLS["always_fails"] == ["aks-1", "aks-1"]
    assert status.output["type"] == "Exception"
    assert status.output["message"].startswith(
        "Activity function 'always_fails' failed: RuntimeError: OperationNotAllowed on aks-1 \n "
    )
    assert host.clock.now() == T0 + 2 * timedelta(seconds=1)  # a retry timer after each failed attempt


def test_fan_out_runs_every_activity_and_keeps_the_order(host: DurableHost):
    status = host.wait_for_completion(host.start_new(FAN_OUT, input=5))

    assert status.output == [0, 2, 4, 6, 8]
    assert sorted(CALLS["double"]) == [0, 1, 2, 3, 4]
    scheduled = [e for e in host.history(status.instance_id) if e["EventType"] == HistoryEventType.TASK_SCHEDULED]
    assert [e["EventId"] for e in scheduled] == [0, 1, 2, 3, 4]


def test_external_event_wins_the_race_and_the_cancelled_timer_never_moves_the_clock(host: DurableHost):
    instance_id = host.start_new(APPROVAL_RACE)
    host.raise_event(instance_id, "approve", {"by": "oncall"})
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status.output == {"winner": "approve", "by": {"by": "oncall"}, "at": T0.isoformat()}
    assert host.clock.now() == T0


def test_timer_wins_the_race_when_no_event_comes(host: DurableHost):
    status = host.wait_for_completion(host.start_new(APPROVAL_RACE))

    assert status.output == {"winner": "timeout", "at": (T0 + timedelta(hours=1)).isoformat()}


def test_an_event_raised_before_the_orchestrator_waits_is_kept(host: DurableHost):
    instance_id = host.start_new(WORK_THEN_WAIT)
    host.raise_event(instance_id, "go", "early")  # arrives while the orchestrator awaits its activity

    assert host.wait_for_completion(instance_id).output == {"work": 2, "go": "early"}


def test_run_until_stops_at_a_condition_so_an_event_can_come_at_a_chosen_point(host: DurableHost):
    instance_id = host.start_new(APPROVAL_RACE)
    assert host.run_until(lambda: host.get_status(instance_id).runtime_status == RuntimeStatus.RUNNING)
    host.clock.advance_to(T0 + timedelta(minutes=5))  # the race's timer is an hour away
    host.raise_event(instance_id, "approve", {"by": "oncall"})

    assert host.run_until(lambda: False) is False, "it returns once nothing can progress"
    assert host.get_status(instance_id).output["at"] == (T0 + timedelta(minutes=5)).isoformat()


def test_continue_as_new_restarts_the_history_with_the_new_input(host: DurableHost):
    instance_id = host.start_new(COUNTDOWN, "countdown", input=3)
    status = host.wait_for_completion(instance_id)

    assert (status.runtime_status, status.output, status.input) == (RuntimeStatus.COMPLETED, "liftoff", 0)
    assert CALLS["double"] == [3, 2, 1, 0]
    types = event_types(host, instance_id)
    assert types.count(HistoryEventType.EXECUTION_STARTED) == 1
    assert types.count(HistoryEventType.TASK_COMPLETED) == 1


def test_an_orchestrator_exception_fails_the_instance(host: DurableHost):
    status = host.wait_for_completion(host.start_new(FAILING))

    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output == "Orchestrator function 'failing' failed: pool np1 is not a VirtualMachineScaleSets pool"
    last = host.history(status.instance_id)[-1]
    assert (last["EventType"], last["OrchestrationStatus"]) == (HistoryEventType.EXECUTION_COMPLETED, "Failed")


def test_a_failed_sub_orchestration_reaches_the_parent_as_an_exception(host: DurableHost):
    status = host.wait_for_completion(host.start_new(PARENT_OF_FAILING, "parent"))

    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert "pool np1 is not a VirtualMachineScaleSets pool" in status.output
    assert host.get_status("parent:0000").runtime_status == RuntimeStatus.FAILED


def test_sub_orchestration_with_retry_starts_a_new_child_after_a_failure(host: DurableHost):
    status = host.wait_for_completion(host.start_new(SUB_WITH_RETRY, "retrying-parent"))

    assert status.output == "second run succeeded"
    assert host.get_status("retrying-parent:0000").runtime_status == RuntimeStatus.FAILED
    assert host.get_status("retrying-parent:0002").runtime_status == RuntimeStatus.COMPLETED


def test_an_unknown_activity_fails_the_call_with_the_host_message(host: DurableHost):
    status = host.wait_for_completion(host.start_new(UNKNOWN_ACTIVITY))

    assert status.runtime_status == RuntimeStatus.FAILED
    assert "The function 'no_such_activity' doesn't exist" in status.output


def test_a_non_deterministic_orchestrator_is_failed_naming_the_mismatch(host: DurableHost):
    status = host.wait_for_completion(host.start_new(NONDETERMINISTIC, "changing"))

    assert status.runtime_status == RuntimeStatus.FAILED
    assert "Non-deterministic orchestrator 'nondeterministic'" in status.output
    assert "CALL_ACTIVITY 'double' in the history" in status.output
    assert "replay scheduled CALL_ACTIVITY 'always_fails'" in status.output
    assert CALLS["always_fails"] == []  # the mismatching action never ran


def test_a_second_start_of_a_running_instance_is_refused_and_a_finished_one_restarts(host: DurableHost):
    host.start_new(WAITS_FOREVER, "singleton")
    with pytest.raises(InstanceAlreadyRunningError, match="status Pending already exists"):
        host.start_new(FAN_OUT, "singleton", input=1)
    host.run_until_idle()
    with pytest.raises(InstanceAlreadyRunningError, match="status Running"):
        host.start_new(FAN_OUT, "singleton", input=1)

    host.terminate("singleton", "replaced")
    assert host.get_status("singleton").runtime_status == RuntimeStatus.TERMINATED
    host.start_new(FAN_OUT, "singleton", input=2)
    assert host.wait_for_completion("singleton").output == [0, 2]


def test_the_virtual_clock_moves_exactly_to_each_timer(host: DurableHost):
    status = host.wait_for_completion(host.start_new(CLOCK_STEPPER))

    expected, moment = [T0.isoformat()], T0
    for step in CLOCK_STEPS:
        moment += step
        expected.append(moment.isoformat())
    assert status.output == expected
    assert host.clock.now() == moment


def test_custom_status_follows_the_orchestrator(host: DurableHost):
    instance_id = host.start_new(STATUS_REPORTER)
    host.run_until_idle()
    assert host.get_status(instance_id).custom_status == {"step": "waiting for go"}

    host.raise_event(instance_id, "go", 7)
    host.run_until_idle()
    status = host.get_status(instance_id)
    assert (status.custom_status, status.output) == ({"step": "done"}, 7)


def test_a_runaway_orchestration_stops_with_an_error(host: DurableHost):
    host.start_new(TICKING, "ticker")
    with pytest.raises(RunawayOrchestrationError, match=r"after 25 orchestrator episodes .*'ticker'"):
        host.run_until_idle(max_episodes=25)

    assert host.get_status("ticker").runtime_status == RuntimeStatus.RUNNING
    assert host.clock.now() == T0 + timedelta(minutes=25)  # the refused episode delivers the 25th timer
    with pytest.raises(RunawayOrchestrationError):  # the interrupted episode is still queued
        host.run_until_idle(max_episodes=5)
    assert host.clock.now() == T0 + timedelta(minutes=30)


def test_waiting_for_an_event_that_never_comes_is_reported(host: DurableHost):
    instance_id = host.start_new(WAITS_FOREVER)
    with pytest.raises(OrchestrationStuckError, match="'never-sent'"):
        host.wait_for_completion(instance_id)
    assert host.get_status(instance_id).runtime_status == RuntimeStatus.RUNNING


def test_client_operations_refuse_bad_names_and_finished_instances(host: DurableHost):
    with pytest.raises(UnknownFunctionError, match="no orchestrator function named 'nope'"):
        host.start_new("nope")
    with pytest.raises(InstanceNotFoundError):
        host.get_status("missing")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        host.start_new(FAN_OUT, input=object())
    host.wait_for_completion(host.start_new(FAN_OUT, "done", input=1))
    with pytest.raises(InstanceGoneError, match="Completed"):
        host.raise_event("done", "late")


def test_progress_reports_each_step():
    seen = []
    reporting = DurableHost.from_app(app, clock=VirtualClock(T0), on_progress=seen.append)
    reporting.wait_for_completion(reporting.start_new(RETRY_EXHAUSTED, "reported"))

    kinds = [event.kind for event in seen]
    assert kinds == [
        "started",
        "activity",
        "activity-failed",
        "timer",
        "activity",
        "activity-failed",
        "timer",
        "completed",
    ]
    assert (seen[1].activity, seen[1].payload, seen[1].orchestration) == ("always_fails", "aks-1", RETRY_EXHAUSTED)
    assert seen[3].payload == T0 + timedelta(seconds=1)


def test_the_real_clock_waits_until_the_deadline_or_a_wakeup():
    clock, wakeup = RealClock(), threading.Event()
    deadline = clock.now() + timedelta(milliseconds=20)
    clock.wait_until(deadline, wakeup)
    assert clock.now() >= deadline

    wakeup.set()
    clock.wait_until(clock.now() + timedelta(days=1), wakeup)  # returns at once: work arrived
    assert not wakeup.is_set()


def test_a_virtual_clock_refuses_naive_times():
    with pytest.raises(ValueError, match="naive datetime"):
        VirtualClock(datetime(2026, 1, 1))
    clock = VirtualClock(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2026, 1, 1, 0, tzinfo=UTC)
