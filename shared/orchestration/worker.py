"""The cluster worker: one singleton orchestration per cluster runs all its work, one item at a time.

AKS runs one operation per cluster, and a run-command on a node being reimaged, or a cluster
PUT of a new key during a pool upgrade, fails or does harm: so reconcile, verify and key
rotation of one cluster never overlap. Triggers only write requests to the table (see
`WardenStore.add_request`) and start the worker when none is committed to the cluster.

    lease the requests -> none: close (or, if one just arrived, go round again) and end
                       -> for each work item: its kind's sub-orchestration, then finish its rows
                          and write the requests it asks for next (e.g. verify the pools it
                          remediated), in one transaction
                       -> continue as new (a fresh, short history), to lease again

A request is deleted only after its work is recorded; a worker that dies leaves its rows
leased to a lease nobody holds, and the next worker takes them again. The requests work asks
for are carried in the worker's input until they are written: it closes only when it owes none.
"""

from __future__ import annotations

from shared.core.protocol import Outcome, WorkKind
from shared.orchestration import names
from shared.orchestration.operations import DEFAULT_BASE_SECONDS, Task, call, record, sleep

STORE_PAUSE_SECONDS = 300  # between generations while the requests table is out of reach

# Which orchestrator does each kind of work. Kinds without one are recorded as failed.
WORK_ORCHESTRATORS: dict[str, str] = {
    WorkKind.RECONCILE.value: names.RECONCILE_CLUSTER,
    WorkKind.VERIFY.value: names.VERIFY_CLUSTER,
    WorkKind.ROTATE_KEYS.value: names.ROTATE_KEYS,
}


def cluster_worker(context) -> Task:
    """Input: {"cluster": {subscription, resourceGroup, name}, "generation": n, "pollSeconds": s,
    "followUps": [requests owed]}. `pollSeconds` (WARDEN_POLL_SECONDS, as the trigger and then
    each lease read it) is the base of every wait and retry, from the first call on."""
    state = context.get_input()
    cluster, generation = state["cluster"], state.get("generation", 0)
    base = state.get("pollSeconds") or DEFAULT_BASE_SECONDS
    owed = state.get("followUps") or []  # asked for by work done, not yet written as requests
    lease = {"cluster": cluster, "lease": str(context.new_uuid())}
    leased = yield from call(context, names.LEASE_REQUESTS, lease, base)
    if not leased.ok:
        # The store is out of reach: the worker must not end while the cluster is marked open
        # (a trigger would count on it), so it pauses and tries again in a new generation.
        return (yield from _pause_and_go_on(context, cluster, generation, base, owed))
    work, base = leased["work"], leased.get("pollSeconds") or base
    owed = _uncovered(owed, work)  # carried over: what this round's work does anyway is done here
    if not work and not owed:
        closed = yield from call(context, names.CLOSE_WORKER, {"cluster": cluster}, base)
        if not closed.ok:
            return (yield from _pause_and_go_on(context, cluster, generation, base))
        if closed["closed"]:
            return {"cluster": cluster, "generation": generation, "closed": True}
    for index, item in enumerate(work):
        progress = {
            "cluster": cluster["name"],
            "work": item["kind"],
            "item": index + 1,
            "of": len(work),
            "generation": generation,
        }
        context.set_custom_status(progress)
        done = yield from run_work(context, cluster, item, progress, base)
        owed = _uncovered(_merged(owed, (done or {}).get("followUps") or []), work[index + 1 :])
        owed = yield from _finish(context, cluster, item["rows"], owed, base)
    if owed:  # none finished with them (no work this round, or that write failed): on their own
        owed = yield from _finish(context, cluster, [], owed, base)
    context.continue_as_new(_next(cluster, generation, base, owed))
    return None


def _merged(owed: list[dict], more: list[dict]) -> list[dict]:
    """The requests owed, each (kind, pool) once: a request row is one per kind and pool."""
    seen: dict[tuple[str, str], dict] = {}
    for follow_up in [*owed, *more]:
        seen.setdefault((follow_up["kind"], (follow_up.get("pool") or "").lower()), follow_up)
    return list(seen.values())


def _uncovered(owed: list[dict], later: list[dict]) -> list[dict]:
    """Less what an item of this round still to run does anyway (its row is leased: a request
    written over it would take it back from the lease, and the work would run twice)."""

    def covered(follow_up: dict) -> bool:
        pool = (follow_up.get("pool") or "").lower()
        return any(
            item["kind"] == follow_up["kind"]
            and (item["pools"] is None or (pool and pool in {p.lower() for p in item["pools"]}))
            for item in later
        )

    return [follow_up for follow_up in owed if not covered(follow_up)]


def _finish(context, cluster: dict, rows: list, owed: list[dict], base: float) -> Task:
    """Remove the rows of work done and write the requests owed, together; returns what is still
    owed (all of it when the write failed: the rows not yet removed stay leased, and the next
    round retries)."""
    finish = {"cluster": cluster, "rows": rows, "followUps": owed}
    finished = yield from call(context, names.FINISH_REQUESTS, finish, base)
    return [] if finished.ok else owed


def _pause_and_go_on(context, cluster: dict, generation: int, base: float, owed: list[dict] | None = None) -> Task:
    yield from sleep(context, STORE_PAUSE_SECONDS)
    context.continue_as_new(_next(cluster, generation, base, owed or []))
    return None


def _next(cluster: dict, generation: int, base: float, owed: list[dict]) -> dict:
    return {"cluster": cluster, "generation": generation + 1, "pollSeconds": base, "followUps": owed}


def run_work(
    context, cluster: dict, item: dict, progress: dict | None = None, base: float = DEFAULT_BASE_SECONDS
) -> Task:
    """One work item in its kind's sub-orchestration; whatever happens, it ends recorded.
    `progress`: the worker's custom status, to which the child's instance id is added (the
    status endpoint follows it down to the pool and step in progress)."""
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
        "pollSeconds": base,
    }
    child = names.child_instance_id(context.instance_id, kind, str(context.new_uuid()))
    context.set_custom_status({**(progress or {}), "instanceId": child})
    try:
        return (yield context.call_sub_orchestrator(orchestrator, payload, child))
    except Exception as e:  # noqa: BLE001 - recorded; the worker goes on with the next item
        yield from record(context, common, kind, Outcome.FAILED, f"{kind} work failed: {e}")
        if kind == WorkKind.RECONCILE.value:  # it may have remediated pools: their result is lost with it
            return {"followUps": [{"kind": WorkKind.VERIFY.value, "reason": f"the reconcile failed ({e})"}]}
        return None
