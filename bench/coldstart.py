"""Cold start: what the Python worker pays to index the app, against a bare app of the same shape.

The worker imports `function_app` and calls `app.get_functions()` once per process. Measured in
fresh interpreters (`sys.executable -c ...` from the repository root, `.pyc` files written by
an unmeasured first run: PYTHONDONTWRITEBYTECODE is dropped for these interpreters, or a module
changed since its last `.pyc` would be compiled at every run; bench/README.md gives the figure
without them), from before `import function_app` to after `get_functions()`:
- the warden: `import function_app; function_app.app.get_functions()`;
- the floor: a bare `df.DFApp` registering as many functions of each kind as the warden does
  (orchestrators, activities, HTTP routes with and without a durable client, timers, Event
  Grid), with trivial bodies: the cost of azure.functions, azure.durable_functions and the
  registration themselves.
`RUNS` of each, alternating, median of each; ratio = warden / floor (goal <= 1.2).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 9

_WARDEN = """
import json, time
began = time.perf_counter()
import function_app
functions = function_app.app.get_functions()
seconds = time.perf_counter() - began
kinds = ["+".join(sorted(b["type"] for b in json.loads(str(f))["bindings"] if b["direction"] == "IN")) for f in functions]
print(json.dumps({"seconds": seconds, "kinds": kinds}))
"""

_BARE = """
import json, sys, time
kinds = json.loads(sys.argv[1])
began = time.perf_counter()
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


def orchestrator(context):
    yield None


def activity(payload: dict) -> dict:
    return payload


async def activity_with_client(payload: dict, client) -> dict:
    return payload


async def route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse()


async def route_with_client(req: func.HttpRequest, client) -> func.HttpResponse:
    return func.HttpResponse()


async def timer_with_client(timer: func.TimerRequest, client) -> None:
    return None


async def event_with_client(event: func.EventGridEvent, client) -> None:
    return None


TRIGGERS = {
    "orchestrationTrigger": (lambda name: app.orchestration_trigger(context_name="context"), orchestrator, None),
    "activityTrigger": (lambda name: app.activity_trigger(input_name="payload"), activity, activity_with_client),
    "httpTrigger": (lambda name: app.route(route=name, methods=["GET", "POST"]), route, route_with_client),
    "timerTrigger": (lambda name: app.timer_trigger(schedule="0 0 * * * *", arg_name="timer"), None, timer_with_client),
    "eventGridTrigger": (lambda name: app.event_grid_trigger(arg_name="event"), None, event_with_client),
}
for index, kind in enumerate(kinds):
    name, parts = f"f{index}", set(kind.split("+"))
    [trigger] = parts & set(TRIGGERS)
    decorator, plain, with_client = TRIGGERS[trigger]
    body = with_client if "durableClient" in parts else plain
    if "durableClient" in parts:
        body = app.durable_client_input(client_name="client")(body)
    app.function_name(name)(decorator(name)(body))
functions = app.get_functions()
seconds = time.perf_counter() - began
assert len(functions) == len(kinds), (len(functions), len(kinds))
print(json.dumps({"seconds": seconds}))
"""


def measure() -> dict:
    """Median seconds of the warden's index and of the bare app's, in fresh processes."""
    kinds = _run(_WARDEN)["kinds"]  # unmeasured: writes the .pyc files
    _run(_BARE, json.dumps(kinds))
    warden, bare = [], []
    for _ in range(RUNS):
        warden.append(_run(_WARDEN)["seconds"])
        bare.append(_run(_BARE, json.dumps(kinds))["seconds"])
    return {
        "functions": len(kinds),
        "kinds": dict(sorted(Counter(kinds).items())),
        "runs": RUNS,
        "seconds": statistics.median(warden),
        "floor_seconds": statistics.median(bare),
        "seconds_all": sorted(warden),
        "floor_seconds_all": sorted(bare),
    }


def _run(code: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode:
        raise RuntimeError(f"cold start run failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
