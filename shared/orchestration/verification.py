"""Verify work: ask sampled nodes of a cluster's pools how sshd is, keep the evidence, act on drift.

Runs inside the cluster's worker, so a check never overlaps a reimage or a write of the same
cluster. Deterministic generators:

    verify_cluster(cluster, pools|None)
      plan: pools, their scale sets and a sample of their nodes (skipped pools with the reason)
      verify_node for each sampled node, a few at a time (never two on one VM)
        run-command (once a slot of the subscription is free) -> poll -> parsed verdict
      record: node rows, pool state, an audit row per pool; drift -> event and a reconcile request

A node whose check fails in any way is `unknown` with the reason, never `ok`.
"""

from __future__ import annotations

from shared.core.protocol import Outcome
from shared.evidence.sshd import Verdict
from shared.orchestration import names
from shared.orchestration.operations import DEFAULT_BASE_SECONDS, Task, call, call_once, record, run_operation

NODES_AT_ONCE = 4  # per cluster; the subscription-wide bound is WARDEN_VERIFY_CONCURRENCY


def verify_cluster(context) -> Task:
    """Input: {"cluster", "pools": [names] | null (all), "reason", "actor"}. Output: {"pools": [...], "error"}."""
    work = context.get_input()
    common = {"cluster": work["cluster"], "instanceId": context.instance_id, "actor": work.get("actor", "")}
    base = work.get("pollSeconds") or DEFAULT_BASE_SECONDS
    planned = yield from call(context, names.PLAN_VERIFICATION, {**common, "pools": work.get("pools")}, base)
    if not planned.ok:
        yield from record(
            context, common, "verify", Outcome.FAILED, planned.error.message, error=planned.error.to_json()
        )
        return {"pools": [], "error": planned.error.to_json()}
    nodes, checks = planned["nodes"], []
    for start in range(0, len(nodes), NODES_AT_ONCE):
        batch = nodes[start : start + NODES_AT_ONCE]
        context.set_custom_status({"cluster": work["cluster"]["name"], "checked": start, "of": len(nodes)})
        checks += yield from _check_all(context, common, batch, planned["pollSeconds"])
    recorded = yield from call(
        context,
        names.RECORD_VERIFICATION,
        {**common, "checks": checks, "skipped": planned["skipped"], "planned": planned.get("planned", [])},
        planned["pollSeconds"],
    )
    if not recorded.ok:
        return {"pools": [], "error": recorded.error.to_json()}
    return {"pools": recorded["pools"]}


def _check_all(context, common: dict, batch: list[dict], poll_seconds: float) -> Task:
    children = [
        context.call_sub_orchestrator(
            names.VERIFY_NODE,
            {**common, **node, "pollSeconds": poll_seconds},
            names.child_instance_id(context.instance_id, f"{node['pool']}-{node['instance']}", str(context.new_uuid())),
        )
        for node in batch
    ]
    try:
        return (yield context.task_all(children))
    except Exception as e:  # noqa: BLE001 - verify_node does not fail; if its host did, say so per node
        return [unknown(node, "VerifyNodeFailed", f"the node's check failed: {e}") for node in batch]


def verify_node(context) -> Task:
    """Input: a sampled node {"cluster", "pool", "os", "mode", "vmss", "instance", "powerState",
    "pollSeconds"}. Output: its check {"verdict", "reason", ...} for `record_verification`."""
    node = {**context.get_input(), "instanceId": context.instance_id, "step": "verify-node"}
    if node.get("powerState") and node["powerState"] != "running":
        return unknown(node, "VmNotRunning", f"the VM is {node['powerState']}: run-command cannot reach it")
    done = yield from run_operation(
        context, names.START_NODE_CHECK, node, node["pollSeconds"], poll_activity=names.POLL_NODE_CHECK
    )
    if done.ok and done.get("check"):
        return done["check"]
    yield from call_once(context, names.RELEASE_SLOT, node)  # the poll releases it when done; else here
    if done.ok:  # never started (the decision no longer held)
        return unknown(node, "NotChecked", done.get("skipped") or "the check did not run")
    return unknown(node, done.error.code, done.error.message)


def unknown(node: dict, code: str, reason: str) -> dict:
    return {
        "pool": node["pool"],
        "vmss": (node.get("vmss") or {}).get("name", ""),
        "instance": node["instance"],
        "os": node.get("os", ""),
        "mode": node.get("mode", ""),
        "desired": node.get("desired", ""),
        "verdict": Verdict.UNKNOWN.value,
        "reason": reason,
        "runCommand": code,
    }
