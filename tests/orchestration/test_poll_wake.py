"""A node-image upgrade's poll waits for its timer or the pool's wake event, whichever comes
first: the real `poll_operation` on the in-process host, after a stand-in start activity, with
a stand-in poll activity that answers InProgress until its `doneAfter`-th call. Other polls
wait on plain timers."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df
import pytest
from durable_samples import T0

from shared.core.protocol import succeeded
from shared.local.durable_host import DurableHost, HostEvent, VirtualClock
from shared.orchestration import names
from shared.orchestration.operations import poll_operation

app = df.DFApp()
POLL_ORCHESTRATION = "poll_an_operation"
START = "start_an_operation"
BASE = 600  # seconds: timer-only polling would take ten minutes a poll
OPERATION = {"url": "https://management.azure.com/operations/1", "kind": "async"}
UPGRADE = {"step": "upgrade-node-image", "pool": "nodepool1"}
WAKE = names.wake_event_name("nodepool1")
POLLS: list[dict] = []


@app.function_name(names.POLL_OPERATION)
@app.activity_trigger(input_name="payload")
def stand_in_poll(payload: dict) -> dict:
    POLLS.append(payload)
    done = len(POLLS) >= payload["doneAfter"]
    return succeeded(done=done, status="Succeeded" if done else "InProgress", retryAfter=None).to_json()


@app.function_name(START)
@app.activity_trigger(input_name="payload")
def stand_in_start(payload: dict) -> dict:
    return succeeded(operation=OPERATION).to_json()


@app.function_name(POLL_ORCHESTRATION)
@app.orchestration_trigger(context_name="context")
def poll_an_operation(context: df.DurableOrchestrationContext):
    yield context.call_activity(START, context.get_input())
    result = yield from poll_operation(context, context.get_input(), OPERATION, BASE)
    return result.to_json()


@pytest.fixture
def polls() -> list[dict]:
    POLLS.clear()
    yield POLLS
    POLLS.clear()


@pytest.fixture
def run() -> tuple[DurableHost, list[HostEvent]]:
    seen: list[HostEvent] = []
    return DurableHost.from_app(app, clock=VirtualClock(T0), on_progress=seen.append), seen


def poll_times(seen: list[HostEvent]) -> list[timedelta]:
    return [e.at - T0 for e in seen if e.kind == "activity" and e.activity == names.POLL_OPERATION]


def test_the_wake_event_ends_the_wait_at_once_and_cancels_its_timer(run, polls):
    host, seen = run
    instance_id = host.start_new(POLL_ORCHESTRATION, input={**UPGRADE, "doneAfter": 1})
    assert host.run_until(lambda: any(e.kind == "timer" for e in seen))
    host.clock.advance_to(T0 + timedelta(seconds=90))  # the rolling takes a minute and a half
    host.raise_event(instance_id, WAKE, {"phase": "Succeeded", "eventId": "e1"})

    status = host.wait_for_completion(instance_id)

    assert status.output == {"ok": True, "value": {"done": True, "status": "Succeeded", "retryAfter": None}}
    assert poll_times(seen) == [timedelta(seconds=90)], "polled when the event came, not at the timer"
    assert host.clock.now() == T0 + timedelta(seconds=90), "the cancelled timer never fired"


def test_without_the_event_the_timer_ends_the_wait(run, polls):
    host, seen = run
    status = host.wait_for_completion(host.start_new(POLL_ORCHESTRATION, input={**UPGRADE, "doneAfter": 2}))

    assert status.output["value"]["done"] is True
    times = poll_times(seen)
    assert times[0] == timedelta(seconds=BASE) and times[1] > times[0]


def test_an_event_that_came_before_the_first_wait_wakes_that_wait_only(polls):
    # Raised while the start activity runs, no wait listens yet: the SDK then hands the event
    # to every later wait of its name, and listening on would poll again and again at once.
    seen: list[HostEvent] = []

    def raise_during_the_start(event: HostEvent) -> None:
        seen.append(event)
        if event.kind == "activity" and event.activity == START:  # the host's own thread: no client API
            host.raise_event(event.instance_id, WAKE, {"phase": "Succeeded", "eventId": "e1"})

    host = DurableHost.from_app(app, clock=VirtualClock(T0), on_progress=raise_during_the_start)
    host.wait_for_completion(host.start_new(POLL_ORCHESTRATION, input={**UPGRADE, "doneAfter": 3}))

    first, second, third = poll_times(seen)
    assert first == timedelta(0), "the event woke the first wait"
    assert first < second < third, "the waits after it are timers again"


def test_other_polls_are_not_woken(run, polls):
    host, seen = run
    instance_id = host.start_new(POLL_ORCHESTRATION, input={"step": "update-ssh-access", "pool": "np2", "doneAfter": 1})
    assert host.run_until(lambda: any(e.kind == "timer" for e in seen))
    host.raise_event(instance_id, names.wake_event_name("np2"), {"phase": "Succeeded", "eventId": "e1"})

    host.wait_for_completion(instance_id)

    assert poll_times(seen) == [timedelta(seconds=BASE)]
