"""Sample orchestrations, activities and a durable-client function for the host's tests,
registered on a `df.DFApp` with the real decorators. Orchestrators call the others by their
decorated objects, so the SDK resolves the function names itself.

`CALLS` records each activity's inputs; the `reset_calls` fixture clears it between tests.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp()

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CALLS: dict[str, list] = defaultdict(list)
RETRY_INTERVAL = timedelta(seconds=30)
CLOCK_STEPS = (timedelta(seconds=90), timedelta(hours=2), timedelta(days=1))

TIMER_RETRY_SUB = "timer_retry_sub"
FAN_OUT = "fan_out"
APPROVAL_RACE = "approval_race"
COUNTDOWN = "countdown"
FAILING = "failing"
RETRY_EXHAUSTED = "retry_exhausted"
NONDETERMINISTIC = "nondeterministic"
TICKING = "ticking"
WAITS_FOREVER = "waits_forever"
STATUS_REPORTER = "status_reporter"
PARENT_OF_FAILING = "parent_of_failing"
SUB_WITH_RETRY = "sub_with_retry"
CLOCK_STEPPER = "clock_stepper"
UNKNOWN_ACTIVITY = "calls_unknown_activity"
WORK_THEN_WAIT = "work_then_wait"
STARTER = "start_orchestration"


# -- activities ---------------------------------------------------------------------------------


@app.activity_trigger(input_name="number")
async def double(number: int) -> int:
    CALLS["double"].append(number)
    return number * 2


@app.activity_trigger(input_name="target")
def flaky(target: dict) -> dict:
    """Fails on its first two calls, then succeeds."""
    CALLS["flaky"].append(target)
    if len(CALLS["flaky"]) <= 2:
        raise ConnectionError(f"attempt {len(CALLS['flaky'])} for pool {target['pool']} lost its connection")
    return {"pool": target["pool"], "attempts": len(CALLS["flaky"])}


@app.activity_trigger(input_name="target")
def always_fails(target: str) -> None:
    CALLS["always_fails"].append(target)
    raise RuntimeError(f"OperationNotAllowed on {target}")


# -- sub-orchestrations -------------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def double_it(context: df.DurableOrchestrationContext):
    result = yield context.call_activity(double, context.get_input())
    return {"doubled": result, "parent": context.parent_instance_id}


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    yield context.call_activity(double, 1)
    raise ValueError("pool np1 is not a VirtualMachineScaleSets pool")


@app.orchestration_trigger(context_name="context")
def fails_first_time(context: df.DurableOrchestrationContext):
    attempt = yield context.call_activity(double, 1)
    if len(CALLS["double"]) == 1:
        raise RuntimeError(f"first run fails (activity returned {attempt})")
    return "second run succeeded"


# -- orchestrations under test ------------------------------------------------------------------


@app.orchestration_trigger(context_name="context")
def timer_retry_sub(context: df.DurableOrchestrationContext):
    """A durable timer, an activity retried after two failures, then a sub-orchestration."""
    seen = [context.current_utc_datetime]
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
    seen.append(context.current_utc_datetime)
    retry = df.RetryOptions(int(RETRY_INTERVAL.total_seconds() * 1000), 3)
    flaky_result = yield context.call_activity_with_retry(flaky, retry, {"pool": "np1"})
    seen.append(context.current_utc_datetime)
    child = yield context.call_sub_orchestrator(double_it, 21, instance_id=f"{context.instance_id}-child")
    return {"seen": [moment.isoformat() for moment in seen], "flaky": flaky_result, "child": child}


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    return (yield context.task_all([context.call_activity(double, n) for n in range(context.get_input())]))


@app.orchestration_trigger(context_name="context")
def approval_race(context: df.DurableOrchestrationContext):
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    approval = context.wait_for_external_event("approve")
    winner = yield context.task_any([deadline, approval])
    if winner == approval:
        deadline.cancel()
        return {"winner": "approve", "by": approval.result, "at": context.current_utc_datetime.isoformat()}
    return {"winner": "timeout", "at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext):
    remaining = context.get_input()
    yield context.call_activity(double, remaining)
    if remaining > 0:
        context.continue_as_new(remaining - 1)
        return None
    return "liftoff"


@app.orchestration_trigger(context_name="context")
def retry_exhausted(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity_with_retry(always_fails, df.RetryOptions(1000, 2), "aks-1")
    except Exception as error:  # activity failures arrive as a plain Exception
        return {"type": type(error).__name__, "message": str(error)}
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext):
    """Schedules `double` on its first run and `always_fails` on the replay: a code change mid-flight."""
    CALLS["nondeterministic-runs"].append(context.is_replaying)
    first_run = len(CALLS["nondeterministic-runs"]) == 1
    yield context.call_activity(double if first_run else always_fails, 1)
    return "finished"


@app.orchestration_trigger(context_name="context")
def ticking(context: df.DurableOrchestrationContext):
    while True:
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))


@app.orchestration_trigger(context_name="context")
def waits_forever(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("never-sent"))


@app.orchestration_trigger(context_name="context")
def status_reporter(context: df.DurableOrchestrationContext):
    context.set_custom_status({"step": "waiting for go"})
    go = yield context.wait_for_external_event("go")
    context.set_custom_status({"step": "done"})
    return go


@app.orchestration_trigger(context_name="context")
def work_then_wait(context: df.DurableOrchestrationContext):
    work = yield context.call_activity(double, 1)
    go = yield context.wait_for_external_event("go")
    return {"work": work, "go": go}


@app.orchestration_trigger(context_name="context")
def parent_of_failing(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator(failing)
    except Exception as error:
        return str(error)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def sub_with_retry(context: df.DurableOrchestrationContext):
    retry = df.RetryOptions(5000, 2)
    return (yield context.call_sub_orchestrator_with_retry(fails_first_time, retry))


@app.orchestration_trigger(context_name="context")
def clock_stepper(context: df.DurableOrchestrationContext):
    seen = [context.current_utc_datetime.isoformat()]
    for step in CLOCK_STEPS:
        yield context.create_timer(context.current_utc_datetime + step)
        seen.append(context.current_utc_datetime.isoformat())
    return seen


@app.orchestration_trigger(context_name="context")
def calls_unknown_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("no_such_activity", 1))


# -- durable client -----------------------------------------------------------------------------


@app.function_name(STARTER)
@app.route(route="start/{name}/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], req.route_params["instanceId"], req.get_json())
    return client.create_check_status_response(req, instance_id)
