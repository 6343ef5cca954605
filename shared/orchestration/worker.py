"""The cluster worker: one singleton orchestration per cluster runs all its work, one item at a time.

AKS runs one operation per cluster, and a run-command on a node being reimaged, or a cluster
PUT of a new key during a pool upgrade, fails or does harm: so reconcile, verify and key
rotation of one cluster never overlap. Triggers only write requests to the table (see
`WardenStore.add_request`) and start the worker when none is committed to the cluster.

    lease the requests -> none: close (or, if one just arrived, go round again) and end
                       -> for each work item: its kind's sub-orchestration, then finish its rows
                       -> continue as new (a fresh, short history), to lease again

A request is deleted only after its work is recorded; a worker that dies leaves its rows
leased to a lease nobody holds, and the next worker takes them again.
"""

from __future__ import annotations

from shared.orchestration import names
from shared.orchestration.operations import Task, call, record, sleep
from shared.protocol import Outcome, WorkKind

STORE_PAUSE_SECONDS = 300  # between generations while the requests table is out of reach

# Which orchestrator does each kind of work. Kinds without one are recorded as failed.
WORK_ORCHESTRATORS: dict[str, str] = {
    WorkKind.RECONCILE.value: names.RECONCILE_CLUSTER,
    WorkKind.VERIFY.value: names.VERIFY_CLUSTER,
    WorkKind.ROTATE_KEYS.value: names.ROTATE_KEYS,
}


def cluster_worker(context) -> Task:
    """Input: {"cluster": {subscription, resourceGroup, name}, "generation": n}."""
    state = context.get_input()
    cluster, generation = state["cluster"], state.get("generation", 0)
    leased = yield from call(context, names.LEASE_REQUESTS, {"cluster": cluster, "lease": str(context.new_uuid())})
    if not leased.ok:
        # The store is out of reach: the worker must not end while the cluster is marked open
        # (a trigger would count on it), so it pauses and tries again in a new generation.
        return (yield from _pause_and_go_on(context, cluster, generation))
    work = leased["work"]
    if not work:
        closed = yield from call(context, names.CLOSE_WORKER, {"cluster": cluster})
        if not closed.ok:
            return (yield from _pause_and_go_on(context, cluster, generation))
        if closed["closed"]:
            return {"cluster": cluster, "generation": generation, "closed": True}
    for index, item in enumerate(work):
        context.set_custom_status(
            {
                "cluster": cluster["name"],
                "work": item["kind"],
                "item": index + 1,
                "of": len(work),
                "generation": generation,
            }
        )
        yield from run_work(context, cluster, item)
        yield from call(context, names.FINISH_REQUESTS, {"cluster": cluster, "rows": item["rows"]})
    context.continue_as_new({"cluster": cluster, "generation": generation + 1})
    return None


def _pause_and_go_on(context, cluster: dict, generation: int) -> Task:
    yield from sleep(context, STORE_PAUSE_SECONDS)
    context.continue_as_new({"cluster": cluster, "generation": generation + 1})
    return None


def run_work(context, cluster: dict, item: dict) -> Task:
    """One work item in its kind's sub-orchestration; whatever happens, it ends recorded."""
    kind = item["kind"]
    common = {"cluster": cluster, "instanceId": context.instance_id, "actor": item.get("actor", "")}
    orchestrator = WORK_ORCHESTRATORS.get(kind)
    if orchestrator is None:
        why = f"no {kind} work in this version: request dropped" + (
            f" ({item['reason']})" if item.get("reason") else ""
        )
        yield from record(context, common, kind, Outcome.FAILED, why)
        return None
    payload = {
        "cluster": cluster,
        "pools": item["pools"],
        "reason": item.get("reason", ""),
        "actor": item.get("actor", ""),
        "argument": item.get("argument", ""),
    }
    child = names.child_instance_id(context.instance_id, kind, str(context.new_uuid()))
    try:
        return (yield context.call_sub_orchestrator(orchestrator, payload, child))
    except Exception as e:  # noqa: BLE001 - recorded; the worker goes on with the next item
        yield from record(context, common, kind, Outcome.FAILED, f"{kind} work failed: {e}")
        return None
