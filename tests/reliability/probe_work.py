"""A test-only kind of cluster work, run by the real cluster worker next to the real reconcile.

`probe_work` stands in for the work that has no orchestrator yet (verify, rotate-keys): like
a run-command on the nodes, it looks at the cluster twice, a durable timer apart, and
records whether any pool (or the cluster) was in the middle of an operation each time.
`app()` is the production function app plus this blueprint; map a kind to it with
`monkeypatch.setitem(worker.WORK_ORCHESTRATORS, kind, PROBE_WORK)`.

`probe_request_work` (HTTP, durable client) requests work of any kind through
`shared.triggers.start.request_work`, exactly as the Event Grid and HTTP triggers do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import azure.durable_functions as df
import azure.functions as func

from shared.core.models import Target
from shared.core.protocol import Outcome, Result, WorkKind, succeeded
from shared.orchestration.envelope import activity, cluster_ref
from shared.orchestration.operations import Task, call, record, sleep
from shared.orchestration.runtime import runtime
from shared.triggers import BLUEPRINTS
from shared.triggers.start import request_work

PROBE_WORK = "probe_work"
PROBE_ACTIVITY = "probe_activity"
REQUEST_FUNCTION = "probe_request_work"
PROBE_STEP = "probe"
PROBE_SECONDS = 3  # between the two looks: shorter than any poll of a reconcile (WARDEN_POLL_SECONDS=10)
IDLE = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class Observation:
    cluster: str
    look: str  # "first" | "second"
    at: str  # the orchestration's (virtual) time of the call
    busy: tuple[str, ...]  # "<resource> <provisioningState>" of what was mid-operation


@dataclass
class Probe:
    """What the probe reads (the emulator, set by the test) and what it saw."""

    emulator: object = None
    observations: list[Observation] = field(default_factory=list)

    def busy(self, cluster_id: str) -> tuple[str, ...]:
        """Read the emulator's state directly: a read over ARM would move its operations on."""
        cluster = self.emulator.cluster_body(cluster_id)
        resources = [(cluster["name"], cluster["properties"]["provisioningState"])]
        prefix = cluster_id.lower() + "/agentpools/"
        for pool_id in self.emulator.pool_ids():
            if pool_id.lower().startswith(prefix):
                pool = self.emulator.pool_body(pool_id)
                resources.append((pool["name"], pool["properties"]["provisioningState"]))
        return tuple(f"{name} {state}" for name, state in resources if state.lower() not in IDLE)


PROBE = Probe()
bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


def app() -> df.DFApp:
    """The production app's blueprints and this one, in a fresh app."""
    test_app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in (*BLUEPRINTS, bp):
        test_app.register_functions(blueprint)
    return test_app


@bp.function_name(PROBE_WORK)
@bp.orchestration_trigger(context_name="context")
def probe_work(context: df.DurableOrchestrationContext):
    """Input as every kind of work gets it: {"cluster", "pools", "reason", "actor"}."""
    work = context.get_input()
    common = {"cluster": work["cluster"], "instanceId": context.instance_id, "actor": work.get("actor", "")}
    first = yield from call(context, PROBE_ACTIVITY, {**common, "look": "first"})
    yield from sleep(context, PROBE_SECONDS)
    second = yield from call(context, PROBE_ACTIVITY, {**common, "look": "second"})
    busy = [*first.get("busy", []), *second.get("busy", [])]
    yield from _record(context, common, busy)
    return {"busy": busy}


def _record(context, common: dict, busy: list[str]) -> Task:
    outcome = Outcome.FAILED if busy else Outcome.SUCCEEDED
    reason = f"ran while busy: {', '.join(busy)}" if busy else "the cluster was idle at both looks"
    yield from record(context, common, PROBE_STEP, outcome, reason)


@bp.function_name(PROBE_ACTIVITY)
@bp.activity_trigger(input_name="payload")
def probe_activity(payload: dict) -> dict:
    return _probe(runtime(), payload)  # the runtime given as the app's registration gives it


@activity
def _probe(rt, payload: dict) -> Result:
    ref = cluster_ref(payload)
    busy = PROBE.busy(ref.id)
    PROBE.observations.append(Observation(ref.id, payload["look"], payload["call"]["at"], busy))
    return succeeded(busy=list(busy))


@bp.function_name(REQUEST_FUNCTION)
@bp.route(route="probe/request", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def probe_request_work(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """{"target": <cluster or pool id>, "kind": <WorkKind>} -> {"instanceId", "admission"}."""
    body = req.get_json()
    instance_id, admission = await request_work(
        client, runtime().store, Target.from_id(body["target"]), "test request", kind=WorkKind(body["kind"])
    )
    return func.HttpResponse(json.dumps({"instanceId": instance_id, "admission": admission}), status_code=200)


def request(functions, target: str, kind: WorkKind) -> dict:
    """Request work through the app's durable client (the host need not run meanwhile)."""
    response = functions.http(
        REQUEST_FUNCTION, "POST", "http://localhost/api/probe/request", {"target": target, "kind": kind.value}
    )
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())
