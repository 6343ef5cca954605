"""What the verification activities do: choose the nodes, read a check's answer, record the
evidence and act on drift. Used by `activities` only."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from shared.adapters.publisher import OutcomeKind
from shared.core.models import Cluster, ClusterRef, Pool, RunCommandOutput, SshAccess
from shared.core.protocol import Outcome, WorkKind
from shared.core.records import NodeCheck, PoolState, WorkRequest, safe_excerpt
from shared.evidence.sshd import Verdict, judge, parse_output
from shared.keys import fingerprint
from shared.orchestration.arm_steps import IDLE_STATES
from shared.orchestration.envelope import cluster_ref
from shared.orchestration.recording import (
    Entry,
    PlannedPool,
    Verified,
    audit_rows,
    publish,
    save_state,
)
from shared.orchestration.runtime import Runtime
from shared.policy import Policy
from shared.policy.plan import VMSS, Exemption, plan_pool

SLOT_RETRY_SECONDS = 20.0  # about how long a run-command takes: a slot frees about that often
# A run-command slot whose holder died is free again after this: longer than run-command's own
# 90-minute timeout, so a slot never expires under a command still running.
SLOT_TTL = timedelta(minutes=100)
REIMAGE_COOLDOWN = timedelta(hours=6)  # drift found this soon after the warden's own reimage: no second one
RECONCILE_REQUESTED = "reconcile requested"
_OUTCOMES = {
    Verdict.OK: Outcome.SUCCEEDED,
    Verdict.DRIFT: Outcome.FAILED,
    Verdict.UNKNOWN: Outcome.SKIPPED,
    Verdict.UNSUPPORTED: Outcome.SKIPPED,
    Verdict.NOT_CHECKED: Outcome.SKIPPED,
}


def sample(instance_ids: list[str], size: int | None, seed: str) -> list[str]:
    """`size` of the instances (all when None), a different choice per verification (`seed`)."""
    ordered = sorted(instance_ids, key=lambda i: hashlib.sha256(f"{seed}|{i}".encode()).hexdigest())
    return sorted(ordered if size is None else ordered[:size], key=lambda i: (len(i), i))


def why_not_checked(cluster: Cluster, pool: Pool, policy: Policy) -> tuple[Verdict, str] | None:
    """Pools whose nodes are not asked now: the pool's verdict and why; None for a pool to check."""
    decision = policy.decide(cluster, pool)
    if decision.desired is None:
        return Verdict.NOT_CHECKED, f"the policy leaves this pool alone ({decision.rule} says ignore): not checked"
    if cluster.is_stopped:
        return Verdict.NOT_CHECKED, "the cluster is stopped: its nodes are deallocated"
    if pool.type != VMSS:
        return (
            Verdict.UNSUPPORTED,
            f"a {pool.type} pool has no scale set: its nodes are not checked by VMSS run-command",
        )
    if cluster.node_resource_group_locked:
        return Verdict.UNSUPPORTED, (
            f"the node resource group {cluster.node_resource_group} is locked down (restrictionLevel ReadOnly): "
            "its deny assignment allows only */read, so run-command is refused there"
        )
    if pool.provisioning_state.lower() not in IDLE_STATES:
        return (
            Verdict.UNKNOWN,
            f"the pool is {pool.provisioning_state}: its nodes are not checked while an operation runs",
        )
    if pool.power_state.lower() == "stopped":
        return Verdict.NOT_CHECKED, "the pool is stopped: it has no running nodes"
    return None


def node_check(node: dict, output: RunCommandOutput, at: str) -> dict:
    """The verdict on one node's answer, as JSON for the orchestration (no secret: the excerpt
    is masked, and the check prints only unit states and one sshd setting)."""
    state = parse_output(output.stdout)
    verdict, reason = judge(SshAccess.parse(node["mode"]), state, node.get("clusterKey", ""))
    if verdict is Verdict.UNKNOWN and output.stderr.strip():
        reason += f"; stderr: {safe_excerpt(output.stderr, 200)}"
    return {
        "pool": node["pool"],
        "vmss": node["vmss"]["name"],
        "instance": node["instance"],
        "os": node["os"],
        "mode": node["mode"],
        "desired": node.get("desired", ""),
        "poolNodes": node.get("poolNodes"),
        "verdict": verdict.value,
        "reason": reason,
        "units": state.summary(),
        "pubkey": state.pubkey or "",
        "active": state.running,
        "enabled": state.enabled,
        "runCommand": "succeeded",
        "excerpt": safe_excerpt(output.stdout + output.stderr),
        "at": at,
    }


def record_checks(rt: Runtime, payload: dict, checks: list[dict], skipped: list[dict]) -> list[dict]:
    """Node rows, then per pool its state, its audit row, and on drift the event and a reconcile
    request. Returns the pools' verdicts (the `verify --json` shape)."""
    ref = cluster_ref(payload)
    now = datetime.fromisoformat(payload["call"]["at"]) if payload.get("call") else datetime.now(UTC)
    rows = [_node_row(ref.id, check, now) for check in checks]
    if rows:
        rt.store.record_node_checks(rows, key=(payload.get("call") or {}).get("id"))
    pools = _pools(checks, skipped)
    planned = {p["pool"].lower(): p for p in payload.get("planned") or []}
    states = {s.pool.lower(): s for s in rt.store.list_pool_states(ref.key)}  # one query for every pool
    for pool in pools:
        state = states.get(pool["pool"].lower())
        if not pool.pop("phantom", False):
            _save_pool(rt, ref, pool, now, planned.get(pool["pool"].lower()), state)
        if pool["verdict"] == Verdict.DRIFT:
            pool["action"] = _drift_action(rt, pool, now, state)
    entries = [(p["pool"], Entry("verify", _OUTCOMES[Verdict(p["verdict"])], _message(p))) for p in pools]
    first = audit_rows(rt, payload, entries)
    for pool in (p for p in pools if p["verdict"] == Verdict.DRIFT):
        if first:
            data = {"reason": pool["reason"], "mode": pool["mode"], "action": pool["action"]}
            publish(rt, OutcomeKind.DRIFT_DETECTED, payload, pool=pool["pool"], **data)
        if pool["action"] == RECONCILE_REQUESTED:
            reason = f"verification found drift: {pool['reason']}"
            rt.store.add_request(WorkRequest(ref.id, pool["pool"], now, WorkKind.RECONCILE, reason, "verify"))
    return pools


def _message(pool: dict) -> str:
    return f"{pool['verdict']}: {pool['reason']}" + (f" -> {pool['action']}" if pool.get("action") else "")


def _node_row(ref_id: str, check: dict, now: datetime) -> NodeCheck:
    return NodeCheck(
        ref_id,
        check["pool"],
        check.get("vmss", ""),
        check["instance"],
        datetime.fromisoformat(check["at"]) if check.get("at") else now,
        check.get("mode", ""),
        sshd_active=check.get("active"),
        sshd_enabled=check.get("enabled"),
        drift=check["verdict"] == Verdict.DRIFT,
        output_excerpt=check.get("excerpt", ""),
        verdict=check["verdict"],
        reason=check["reason"],
        units=check.get("units", ""),
        pubkey_authentication=check.get("pubkey", ""),
        run_command=check.get("runCommand", ""),
        os=check.get("os", ""),
    )


def _pools(checks: list[dict], skipped: list[dict]) -> list[dict]:
    by_pool: dict[str, list[dict]] = {}
    for check in checks:
        by_pool.setdefault(check["pool"], []).append(check)
    pools = [
        {
            "pool": s["pool"],
            "os": s.get("os", ""),
            "mode": s.get("mode", ""),
            "verdict": s.get("verdict", Verdict.UNKNOWN.value),
            "reason": s["reason"],
            "nodes": [],
            "phantom": s.get("phantom", False),  # no such pool: nothing to keep state for
        }
        for s in skipped
    ]
    for name, nodes in by_pool.items():
        verdict = Verdict.worst(Verdict(n["verdict"]) for n in nodes)
        counts = {v: sum(1 for n in nodes if n["verdict"] == v) for v in Verdict}
        worst = next(n for n in nodes if n["verdict"] == verdict)
        reason = f"{len(nodes)} node(s): " + ", ".join(f"{c} {v}" for v, c in counts.items() if c)
        reason += f"; instance {worst['instance']}: {worst['reason']}" if verdict is not Verdict.OK else ""
        nodes_out = [
            {k: n.get(k) for k in ("instance", "vmss", "verdict", "reason", "units", "runCommand")} for n in nodes
        ]
        pools.append(
            {
                "pool": name,
                "os": nodes[0]["os"],
                "mode": nodes[0]["mode"],
                "desired": nodes[0].get("desired", ""),
                "verdict": verdict.value,
                "reason": reason,
                "nodes": nodes_out,
                "everyNode": len({n["instance"] for n in nodes}) == nodes[0].get("poolNodes"),
            }
        )
    return sorted(pools, key=lambda p: p["pool"].lower())


def planned_pools(
    cluster: Cluster, pools: list[Pool], policy: Policy, in_force: Mapping[str, Exemption] | None = None
) -> list[dict]:
    """What the plan says of each pool (modes, status, OS), for the pool-state rows the
    verification writes: a pool verified before any reconcile gets a true row too. `in_force`:
    the exemptions in force, by pool key (an exempt pool's row says so)."""
    in_force = in_force or {}
    return [
        asdict(PlannedPool.of(plan_pool(cluster, pool, policy, exemption=in_force.get(pool.key)))) | {"pool": pool.name}
        for pool in pools
    ]


def _save_pool(
    rt: Runtime, ref: ClusterRef, pool: dict, now: datetime, planned: dict | None, known: PoolState | None
) -> None:
    drifted = sum(1 for n in pool["nodes"] if n["verdict"] == Verdict.DRIFT)
    verified = Verified(now, len(pool["nodes"]), drifted, pool["verdict"], pool["reason"])
    # Drift on nodes whose pool already has the mode: a reimage is owed (the plan then upgrades).
    # Every node checked and all of them ok in the desired mode: whatever reimage was owed (one the
    # Node Disruption Policy held for the maintenance window, say) has happened.
    settled = pool.pop("everyNode", False) and pool["verdict"] == Verdict.OK and pool["mode"] == pool.get("desired")
    pending = True if drifted else False if settled else None
    if planned is not None:
        facts = PlannedPool(**{k: v for k, v in planned.items() if k != "pool"})
        save_state(rt, ref, pool["pool"], verified=verified, pending=pending, planned=facts, known=known)
        return
    modes = {"configured": pool["mode"], "desired": pool.get("desired")} if pool.get("desired") else {}
    save_state(rt, ref, pool["pool"], verified=verified, pending=pending, known=known, **modes)


def _drift_action(rt: Runtime, pool: dict, now: datetime, state: PoolState | None) -> str:
    """What drift leads to: a reconcile of the pool (it reimages when the mode is already set),
    unless the mode is audit, or the warden itself reimaged the pool within the cooldown (its
    row, `state`, says when) — then another reimage would not help, and a person has to look."""
    if not rt.settings.enforcing:
        return "audit mode: recorded, nothing written"
    if state and state.last_upgrade_time and now - state.last_upgrade_time < REIMAGE_COOLDOWN:
        return f"not re-enforced: the warden reimaged this pool at {state.last_upgrade_time:%Y-%m-%d %H:%M} UTC; needs a person"
    return RECONCILE_REQUESTED


def named(pools: list, names: list[str] | None, skipped: list[dict]) -> list:
    if names is None:
        return pools
    wanted = {n.lower() for n in names}
    found = [p for p in pools if p.name.lower() in wanted]
    missing = wanted - {p.name.lower() for p in found}
    skipped += [
        {"pool": n, "reason": "no such pool in the cluster (deleted?)", "phantom": True} for n in sorted(missing)
    ]
    return found


def sampled_nodes(
    rt, cluster, pool, scale_sets: dict, payload: dict, state: PoolState | None, exemption: Exemption | None
) -> list[dict] | tuple[Verdict, str]:
    """The pool's sampled nodes, or the pool's verdict and why none is checked. `state`: the pool's row; `exemption`:
    the pool's exemption in force at the step (as read for the whole cluster)."""
    if why := why_not_checked(cluster, pool, rt.settings.policy):
        return why
    vmss = scale_sets.get(pool.name.lower())
    if vmss is None:
        return Verdict.UNKNOWN, f"no scale set tagged aks-managed-poolName={pool.name} in {cluster.node_resource_group}"
    instances = {vm.instance_id: vm for vm in rt.arm.list_instances(vmss)}
    if not instances:
        return Verdict.NOT_CHECKED, "the pool has no nodes"
    # A pool owed a reimage is checked on every node: only then can all-ok say it has happened.
    owed = state is not None and state.pending_reimage
    chosen = sample(list(instances), None if owed else rt.settings.policy.verify_sample, payload["call"]["id"])
    # An exempt pool is judged by the mode its exemption gives it (or keeps), not the policy's.
    desired = (exemption.mode or pool.ssh_access) if exemption else rt.settings.policy.decide(cluster, pool).desired
    cluster_key = fingerprint(cluster.ssh_public_keys[0]) if cluster.ssh_public_keys else ""
    return [
        {
            "pool": pool.name,
            "os": pool.os_type,
            "mode": pool.ssh_access.value,
            "desired": desired.value if desired else "",
            "clusterKey": cluster_key,  # the key a LocalUser node must hold
            "vmss": asdict(vmss),
            "instance": i,
            "powerState": instances[i].power_state,
            "poolNodes": len(instances),  # with every node checked, all ok settles a reimage owed
        }
        for i in chosen
    ]
