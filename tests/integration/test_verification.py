"""Verification end to end on the local Azure: sshd checked on sampled nodes by VMSS run-command
(the real ARM adapter over HTTP to the emulator's node shells), evidence in Azurite, the real
replay engine running the cluster worker, verify_cluster and verify_node, the drift re-enforced
by a reconcile and verified again.

- Drift on a `Disabled` pool (SSH back on a node): recorded per node and per pool, published,
  and in enforce mode reimaged (no PUT: the mode is already set) then verified `ok`; in audit
  mode nothing is written; right after the warden's own reimage, no second one.
- Run-command only to the cluster's own node VMSS, one at a time per VM, at most
  WARDEN_VERIFY_CONCURRENCY in flight per subscription, `verify.sample` nodes per pool.
- Checks that cannot conclude are `unknown` with the reason, never `ok`, and request nothing.
- `verify` on the command line and the verify timer.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions.timer import TimerRequest

from shared.adapters.store import Admission, WardenStore
from shared.cli import main
from shared.core.models import ClusterRef, Target
from shared.core.protocol import WorkKind
from shared.core.records import PoolStatus, WorkRequest
from shared.local.arm_emulator import compute
from shared.orchestration import names, node_checks
from shared.triggers.start import request_work
from shared.triggers.verify import VERIFY_FUNCTION
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import DEV, PROD, T0, is_run_command, set_cli_env

AUTOMATIC = ClusterRef(SUB_B, "rg-prod-neu", "aks-auto-neu")
STOPPED = ClusterRef(SUB_B, "rg-dev-neu", "aks-sandbox-neu")
DEV_NODE_RG = "MC_rg-dev-weu_aks-dev-weu_westeurope"
BATCH = DEV.id + "/agentPools/batch"  # Disabled under the policy and in AKS; 2 Ubuntu nodes
NODEPOOL1 = DEV.id + "/agentPools/nodepool1"  # LocalUser in AKS; 3 Ubuntu nodes running sshd: ok
BOTH_SUBSCRIPTIONS = f"{SUB_A},{SUB_B}"
UPGRADE_BATCH = ("POST", "batch/upgradeNodeImageVersion")
DRIFT_EVENT = "Warden.SshAccess.DriftDetected"


# --- helpers ------------------------------------------------------------------------------


def request_verify(w, cluster: ClusterRef = DEV, pool: str | None = None) -> None:
    """Request verify work as every trigger does (a request row, the cluster's worker), run to the end."""

    async def request(client):
        return await request_work(
            client, w.runtime.store, Target(cluster, pool), "verify from the test", "test", WorkKind.VERIFY
        )

    w.functions.with_client(request)
    w.functions.run()


def ssh_came_back(emulator, instance: str = "1") -> None:
    """batch compliant on every node (as after its reimage), then sshd back on one node."""
    emulator.set_node_sshd(BATCH, None, active="inactive", enabled="disabled")
    emulator.set_node_sshd(BATCH, instance, active="active", enabled="enabled")


def runtime_status(status) -> str:
    return getattr(status.runtime_status, "value", status.runtime_status)


def verifications(w, cluster: ClusterRef = DEV) -> list[dict[str, dict]]:
    """Each verify_cluster run of `cluster`, in start order: pool name -> its result."""
    return [
        {pool["pool"]: pool for pool in s.output["pools"]}
        for s in w.functions.durable.statuses()
        if s.name == names.VERIFY_CLUSTER and s.input["cluster"]["name"] == cluster.name
    ]


def node_rows(w, cluster: ClusterRef = DEV, pool: str | None = None) -> list:
    return [r for r in w.runtime.store.list_node_checks(cluster.key) if pool is None or r.pool == pool]


def verify_audit(w, cluster: ClusterRef = DEV, pool: str | None = None) -> list:
    return [r for r in w.audit(cluster) if r.step == "verify" and (pool is None or r.pool == pool)]


def assert_all_done(w, *clusters: ClusterRef) -> None:
    """Every orchestration Completed, no request left, no run-command slot held."""
    statuses = w.functions.durable.statuses()
    assert statuses and {s.instance_id: runtime_status(s) for s in statuses if runtime_status(s) != "Completed"} == {}
    for cluster in clusters or (DEV,):
        assert w.runtime.store.list_requests(cluster.key) == []
    for subscription in (SUB_A, SUB_B):
        assert w.runtime.store.slot_holders(subscription, datetime.now(UTC)) == []


def kinds_run(w, cluster: ClusterRef = DEV) -> list[str]:
    """The work the cluster's worker ran, in order (verify_cluster / reconcile_cluster)."""
    return [
        s.name
        for s in w.functions.durable.statuses()
        if s.name in (names.VERIFY_CLUSTER, names.RECONCILE_CLUSTER) and s.input["cluster"]["name"] == cluster.name
    ]


def run_command_paths(emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.method == "POST" and is_run_command(r.path)]


def node_vmss(emulator, pool_id: str) -> str:
    """The name of the pool's VMSS, as the emulator names the pool's VMs (`<vmss>_<instance>`)."""
    return {n["name"].rsplit("_", 1)[0] for n in emulator.nodes(pool_id)}.pop()


def max_in_flight(records) -> int:
    """The most run-commands running at one moment (the emulator's clock never repeats a value)."""
    marks = sorted([(r.start, 1) for r in records] + [(r.end, -1) for r in records])
    return max(itertools.accumulate(step for _, step in marks), default=0)


class EmulatorClock:
    """The emulator's clock on the warden's virtual time (seconds since T0), strictly increasing,
    so run-command intervals order as the requests happened even at one virtual moment."""

    def __init__(self) -> None:
        self.warden = None
        self._ticks = itertools.count()

    def __call__(self) -> float:
        now = self.warden.clock.now() if self.warden is not None else T0
        return (now - T0).total_seconds() + next(self._ticks) * 1e-6


@pytest.fixture
def slow_nodes(start_arm_emulator):
    """An emulator whose run-commands take 20 s of the warden's virtual time (real ones take ~20 s)."""
    clock = EmulatorClock()
    emulator = start_arm_emulator(clock=clock, run_command_seconds=20, retry_after=None)  # as Compute: no Retry-After
    return emulator, clock


# --- 1-3: drift on a Disabled pool ------------------------------------------------------------


def test_drift_in_enforce_mode_is_recorded_published_reimaged_and_verified_ok(warden, arm_emulator, receiver):
    w = warden({"default": "Disabled"}, WARDEN_EVENTS_ENDPOINT=receiver.url)
    ssh_came_back(arm_emulator)
    mid_way = []  # the pool's state when the reconcile the drift asked for plans
    w.on_progress = lambda e: (
        mid_way.append(w.pool_state(DEV, "batch")) if e.kind == "activity" and e.activity == names.PLAN_POOL else None
    )

    request_verify(w, DEV, "batch")

    # Reimaged once, with no PUT (sshAccess is Disabled already), and the nodes are right again.
    assert w.writes() == [UPGRADE_BATCH]
    assert arm_emulator.sshd_states(BATCH) == {("inactive", "disabled")}
    assert kinds_run(w) == [names.VERIFY_CLUSTER, names.RECONCILE_CLUSTER, names.VERIFY_CLUSTER]
    first, follow_up = verifications(w)
    assert (first["batch"]["verdict"], follow_up["batch"]["verdict"]) == ("drift", "ok")
    assert (
        "instance 1: sshd is running" in first["batch"]["reason"]
        and "2 node(s): 1 ok, 1 drift" in first["batch"]["reason"]
    )

    # Node rows: drift with the reason on instance 1 (ok on 0), then both ok after the reimage.
    rows = [(r.instance_id, r.verdict, r.drift, r.sshd_active, r.sshd_enabled) for r in node_rows(w, pool="batch")]
    assert sorted(rows[:2]) == [("0", "ok", False, False, False), ("1", "drift", True, True, True)]
    assert sorted(rows[2:]) == [("0", "ok", False, False, False), ("1", "ok", False, False, False)]
    drifted = next(r for r in node_rows(w, pool="batch") if r.verdict == "drift")
    assert drifted.vmss == node_vmss(arm_emulator, BATCH) and drifted.expected_mode == "Disabled"
    assert "Disabled means it must not" in drifted.reason and drifted.run_command == "succeeded"
    assert "ssh active/enabled" in drifted.units and "== done" in drifted.output_excerpt
    latest = {r.instance_id: r.verdict for r in w.runtime.store.latest_node_checks(DEV.key) if r.pool == "batch"}
    assert latest == {"0": "ok", "1": "ok"}

    # Pool state: drift (a reimage owed) when the reconcile planned, ok at the end.
    [planned] = mid_way
    assert (planned.verdict, planned.nodes_drifted, planned.pending_reimage) == ("drift", 1, True)
    state = w.pool_state(DEV, "batch")
    assert (state.verdict, state.nodes_checked, state.nodes_drifted) == ("ok", 2, 0)
    assert (state.status, state.pending_reimage, state.last_upgrade_time is not None) == (
        PoolStatus.COMPLIANT,
        False,
        True,
    )

    # Audit: verify failed (drift, reconcile requested), the reimage, verify succeeded.
    assert w.steps(pool="batch") == [
        ("verify", "failed"),
        ("plan", "planned"),
        ("upgrade-node-image", "started"),
        ("upgrade-node-image", "succeeded"),
        ("outcome", "succeeded"),
        ("verify", "succeeded"),
    ]
    found, again = verify_audit(w, pool="batch")
    assert found.message.startswith("drift: ") and found.message.endswith("-> reconcile requested")
    assert again.message.startswith("ok: 2 node(s): 2 ok")

    [drift_event] = [e for e in receiver.events if e["type"] == DRIFT_EVENT]
    assert drift_event["subject"] == BATCH
    assert drift_event["data"]["action"] == "reconcile requested" and "sshd is running" in drift_event["data"]["reason"]
    assert_all_done(w)


def test_a_verify_asked_for_during_the_reimage_waits_until_it_is_done(warden, arm_emulator):
    """No run-command while the cluster's worker reimages one of its pools, even when a
    verification of the whole cluster is requested just as the upgrade goes out."""
    w = warden({"default": "Disabled"})
    ssh_came_back(arm_emulator)
    during = WorkRequest(DEV.id, "", datetime.now(UTC), WorkKind.VERIFY, "asked during the reimage", "test")
    admissions = []

    def watch(event) -> None:
        if event.kind == "activity" and event.activity == names.START_NODE_IMAGE_UPGRADE and not admissions:
            admissions.append(w.runtime.store.add_request(during))  # as request_work writes it

    w.on_progress = watch
    request_verify(w, DEV, "batch")

    assert admissions == [Admission.JOINED]
    assert kinds_run(w) == [names.VERIFY_CLUSTER, names.RECONCILE_CLUSTER, names.VERIFY_CLUSTER]
    *_, last = verifications(w)
    assert set(last) == {"nodepool1", "spot", "batch", "vmpool"}  # the follow-up and the whole cluster, at once
    requests = arm_emulator.requests
    upgrade = next(i for i, r in enumerate(requests) if r.path.endswith("/upgradeNodeImageVersion"))
    upgrade_polls = [i for i, r in enumerate(requests) if "/Microsoft.ContainerService/locations/" in r.path]
    compute_calls = [i for i, r in enumerate(requests) if "/Microsoft.Compute/" in r.path]
    assert upgrade_polls and compute_calls
    overlap = [requests[i].path for i in compute_calls if upgrade <= i <= upgrade_polls[-1]]
    assert overlap == [], "a node was asked while its pool was being reimaged"
    assert_all_done(w)


def test_drift_in_audit_mode_is_recorded_and_published_and_nothing_is_written(warden, arm_emulator, receiver):
    w = warden({"default": "Disabled"}, mode="audit", WARDEN_EVENTS_ENDPOINT=receiver.url)
    ssh_came_back(arm_emulator)
    request_verify(w, DEV, "batch")

    assert w.writes() == []
    assert arm_emulator.sshd_states(BATCH) == {("inactive", "disabled"), ("active", "enabled")}
    assert kinds_run(w) == [names.VERIFY_CLUSTER]
    [verification] = verifications(w)
    assert verification["batch"]["verdict"] == "drift"
    assert [(r.instance_id, r.verdict) for r in node_rows(w, pool="batch")] == [("0", "ok"), ("1", "drift")]
    state = w.pool_state(DEV, "batch")
    assert (state.verdict, state.nodes_drifted, state.pending_reimage) == ("drift", 1, True)
    [row] = verify_audit(w, pool="batch")
    assert row.outcome.value == "failed" and row.message.endswith("-> audit mode: recorded, nothing written")
    [event] = [e for e in receiver.events if e["type"] == DRIFT_EVENT]
    assert event["subject"] == BATCH and event["data"]["action"] == "audit mode: recorded, nothing written"
    assert_all_done(w)
    # The pool's sshAccess is right, its nodes are not: its row says a reimage is owed.
    assert state.status is PoolStatus.PENDING_REIMAGE, f"{state.status} (configured {state.configured_mode!r})"


@pytest.mark.parametrize(
    ("reimaged_ago", "upgrades"),
    [(timedelta(hours=1), 1), (node_checks.REIMAGE_COOLDOWN + timedelta(hours=1), 2)],
    ids=["later-within-the-cooldown", "later-after-the-cooldown"],
)
def test_drift_right_after_the_warden_s_own_reimage_is_left_to_a_person(
    warden, start_arm_emulator, test_fleet, reimaged_ago, upgrades
):
    """batch already runs the latest node image: the reimage the drift asks for changes nothing
    on the nodes (AKS: it "may change nothing"), and the follow-up verify finds the same drift."""
    [dev] = [c for c in test_fleet["clusters"] if c["managedCluster"]["name"] == DEV.name]
    [batch] = [p for p in dev["agentPools"] if p["agentPool"]["name"] == "batch"]
    batch["agentPool"]["properties"]["nodeImageVersion"] = batch["latestNodeImageVersion"]
    emulator = start_arm_emulator(test_fleet)
    w = warden({"default": "Disabled"}, emulator=emulator)
    # The upgrade's time is recorded on the wall clock, the verification's on the orchestration's:
    # start the virtual clock at the wall clock's time, as the two are on Azure.
    w.clock.advance_to(datetime.now(UTC))

    request_verify(w, DEV, "batch")
    assert w.writes() == [UPGRADE_BATCH]
    assert emulator.sshd_states(BATCH) == {("active", "enabled")}
    found, follow_up = verify_audit(w, pool="batch")
    assert found.message.endswith("-> reconcile requested")
    assert follow_up.outcome.value == "failed" and follow_up.message.endswith("; needs a person")
    assert "-> not re-enforced: the warden reimaged this pool at" in follow_up.message
    assert (w.pool_state(DEV, "batch").verdict, w.pool_state(DEV, "batch").pending_reimage) == ("drift", True)
    assert kinds_run(w) == [names.VERIFY_CLUSTER, names.RECONCILE_CLUSTER, names.VERIFY_CLUSTER]

    # Verified again later: the warden's reimage was `reimaged_ago`.
    state = w.pool_state(DEV, "batch")
    w.runtime.store.put_pool_state(
        dataclasses.replace(state, last_upgrade_time=w.clock.now() - reimaged_ago), etag=state.etag
    )
    request_verify(w, DEV, "batch")
    assert w.writes() == [UPGRADE_BATCH] * upgrades
    *_, last = verify_audit(w, pool="batch")
    assert "needs a person" in last.message  # after another reimage that changed nothing too: no third
    assert_all_done(w)


# --- 4: where run-commands go, and how many at once ------------------------------------------------


def test_run_commands_go_only_to_the_cluster_s_own_tagged_node_vmss(
    warden, start_arm_emulator, test_fleet, monkeypatch
):
    """Another scale set in DEV's node resource group, without AKS's tags, is never asked."""
    other = ClusterRef(SUB_A, "rg-other", "aks-other")
    test_fleet["clusters"].append(
        {
            "managedCluster": {
                "id": other.id,
                "name": other.name,
                "location": "westeurope",
                "properties": {"kubernetesVersion": "1.33.5", "nodeResourceGroup": DEV_NODE_RG},
            },
            "agentPools": [{"agentPool": {"name": "nodepool1", "properties": {"count": 2, "osType": "Linux"}}}],
        }
    )
    aks_tags = compute.vmss_tags

    def untagged_for_other(cluster, pool):
        tags = aks_tags(cluster, pool)
        return (
            {k: v for k, v in tags.items() if not k.startswith("aks-managed-")} if cluster.name == "aks-other" else tags
        )

    monkeypatch.setattr(compute, "vmss_tags", untagged_for_other)
    emulator = start_arm_emulator(test_fleet)
    foreign = node_vmss(emulator, other.id + "/agentPools/nodepool1")
    w = warden({"default": "Disabled", "verify": {"sample": "all"}}, mode="audit", emulator=emulator)

    request_verify(w, DEV)

    own = {pool: node_vmss(emulator, f"{DEV.id}/agentPools/{pool}") for pool in ("nodepool1", "spot", "batch")}
    prefix = f"/subscriptions/{SUB_A}/resourceGroups/{DEV_NODE_RG}/providers/Microsoft.Compute/virtualMachineScaleSets/"
    asked = Counter(path.removeprefix(prefix).split("/")[0] for path in run_command_paths(emulator))
    assert all(path.startswith(prefix) for path in run_command_paths(emulator))
    assert asked == {own["nodepool1"]: 3, own["spot"]: 3, own["batch"]: 2}
    assert foreign not in {r.vmss for r in emulator.run_command_log}
    assert {r.vmss for r in node_rows(w)} == set(own.values())
    listed = {v.name: v.tags or {} for v in w.runtime.arm.compute(SUB_A).virtual_machine_scale_sets.list(DEV_NODE_RG)}
    assert set(listed) == {foreign, *own.values()} and "aks-managed-poolName" not in listed[foreign]


@pytest.mark.parametrize("concurrency", [1, 2], ids=["one-at-a-time", "two-at-a-time"])
def test_run_commands_in_flight_per_subscription_and_per_vm_are_bounded(warden, slow_nodes, concurrency):
    emulator, clock = slow_nodes
    w = warden(
        {"default": "Disabled", "verify": {"sample": "all"}},
        mode="audit",
        emulator=emulator,
        WARDEN_SUBSCRIPTIONS=BOTH_SUBSCRIPTIONS,
        WARDEN_VERIFY_CONCURRENCY=str(concurrency),
    )
    clock.warden = w

    w.functions.call(VERIFY_FUNCTION, timer=TimerRequest(past_due=False))
    w.functions.run()

    log = emulator.run_command_log
    assert all(r.end is not None and r.end - r.start >= 20 for r in log), "a run-command ended early or never"
    by_subscription = defaultdict(list)
    by_vm = defaultdict(list)
    for record in log:
        by_subscription[record.subscription].append(record)
        by_vm[(record.vmss, record.instance)].append(record)
    # DEV 8 nodes and PROD 7 in SUB_A, AUTOMATIC 3 in SUB_B (the stopped cluster is not asked).
    assert {s: len(records) for s, records in by_subscription.items()} == {SUB_A: 15, SUB_B: 3}
    assert {s: max_in_flight(records) for s, records in by_subscription.items()} == {
        SUB_A: concurrency,
        SUB_B: concurrency,
    }
    assert max_in_flight(log) > concurrency, "the bound is per subscription, not for the whole fleet"
    assert {vm: max_in_flight(records) for vm, records in by_vm.items()} == dict.fromkeys(by_vm, 1)
    assert len(run_command_paths(emulator)) == len(log), "a run-command was refused (a VM already busy?)"
    assert len(node_rows(w, DEV)) == 8 and len(node_rows(w, PROD)) == 7
    assert_all_done(w, DEV, PROD, AUTOMATIC)


def test_a_retry_after_of_zero_is_no_busy_loop(warden, start_arm_emulator):
    """An answer that says "poll again now" while the script still runs (`Retry-After: 0`) is
    honoured once; a second in a row backs off: the check ends ok, its slot held to the end,
    after a handful of polls (without the back-off, 400 polls at one instant, then `unknown`)."""
    clock = EmulatorClock()
    emulator = start_arm_emulator(clock=clock, run_command_seconds=20, retry_after=0)
    w = warden({"default": "Disabled", "verify": {"sample": "all"}}, mode="audit", emulator=emulator)
    clock.warden = w
    request_verify(w, DEV, "nodepool1")
    [verification] = verifications(w)
    assert verification["nodepool1"]["verdict"] == "ok", verification["nodepool1"]["reason"]
    polls = [r for r in emulator.requests if r.method == "GET" and "/Microsoft.Compute/locations/" in r.path]
    assert len(polls) <= 3 * 8, f"{len(polls)} polls for 3 checks"
    assert all(r.end is not None and r.end - r.start >= 20 for r in emulator.run_command_log)


def test_a_verify_asked_for_while_one_runs_waits_for_it(warden, slow_nodes):
    """A second verification of the same nodes, requested while the first polls its checks, runs
    after it: the worker runs one item at a time, so a VM is never asked twice at once."""
    emulator, clock = slow_nodes
    w = warden({"default": "Disabled", "verify": {"sample": "all"}}, mode="audit", emulator=emulator)
    clock.warden = w
    again = WorkRequest(DEV.id, "batch", datetime.now(UTC), WorkKind.VERIFY, "asked again mid-way", "test")
    admissions = []

    def watch(event) -> None:
        if event.kind == "activity" and event.activity == names.POLL_NODE_CHECK and not admissions:
            admissions.append(w.runtime.store.add_request(again))  # as request_work writes it

    w.on_progress = watch
    request_verify(w, DEV, "batch")

    assert admissions == [Admission.JOINED]
    assert kinds_run(w) == [names.VERIFY_CLUSTER, names.VERIFY_CLUSTER]
    by_vm = defaultdict(list)
    for record in emulator.run_command_log:
        by_vm[record.instance].append(record)
    assert {vm: len(records) for vm, records in by_vm.items()} == {"0": 2, "1": 2}
    first_ended = max(r.end for r in emulator.run_command_log[:2])
    assert all(r.start > first_ended for r in emulator.run_command_log[2:]), "the second verification overlapped"
    assert len(run_command_paths(emulator)) == len(emulator.run_command_log), "a VM busy with a check was asked"
    assert_all_done(w)


@pytest.mark.parametrize(
    ("sample", "per_pool"),
    [(1, {"nodepool1": 1, "spot": 1, "batch": 1}), (2, {"nodepool1": 2, "spot": 2, "batch": 2}), ("all", None)],
    ids=["one", "two", "all"],
)
def test_verify_sample_nodes_per_pool(warden, arm_emulator, sample, per_pool):
    per_pool = per_pool or {"nodepool1": 3, "spot": 3, "batch": 2}
    w = warden({"default": "Disabled", "verify": {"sample": sample}}, mode="audit")
    request_verify(w, DEV)
    vmss = {node_vmss(arm_emulator, f"{DEV.id}/agentPools/{pool}"): pool for pool in per_pool}
    asked = Counter(vmss[r.vmss] for r in arm_emulator.run_command_log)
    assert asked == per_pool
    assert Counter(r.pool for r in node_rows(w)) == per_pool
    [verification] = verifications(w)
    assert {pool: len(verification[pool]["nodes"]) for pool in per_pool} == per_pool
    for pool, count in per_pool.items():  # each node once
        assert len({n["instance"] for n in verification[pool]["nodes"]}) == count


# --- 5-6: unknown verdicts, pools and clusters not asked --------------------------------------------


def _deallocated(emulator) -> None:
    emulator.set_node_power_state(NODEPOOL1, "1", "deallocated")


def _failing_run_command(emulator) -> None:
    emulator.faults.fail_operation(
        r"aks-nodepool1-[0-9]+-vmss/virtualMachines/1/runCommand$",
        "VMExtensionProvisioningError",
        "VM has reported a failure when processing extension 'RunCommandLinux'.",
    )


def _garbled(emulator) -> None:
    emulator.override_node_output(NODEPOOL1, "1", "\x00\x1b[2J garbage \ufffd")


def _conflicting(emulator) -> None:
    emulator.faults.arm(
        "POST",
        r"aks-nodepool1-[0-9]+-vmss/virtualMachines/1/runCommand$",
        409,
        code="Conflict",
        message="Run command extension execution is in progress. Please wait for completion before invoking a run command.",
        times=100,
    )


@pytest.mark.parametrize(
    ("break_node", "asked", "code", "needle"),
    [
        (_deallocated, False, "VmNotRunning", "the VM is deallocated"),
        # the status body says Failed with the extension's error: terminal at once, with its code
        (_failing_run_command, True, "VMExtensionProvisioningError", "RunCommandLinux"),
        (_garbled, True, "succeeded", "cut off"),
        (_conflicting, True, "RetriesExhausted", "Run command extension execution is in progress"),
    ],
    ids=["deallocated", "run-command-failed", "garbled-output", "run-command-conflict"],
)
def test_a_check_that_cannot_conclude_is_unknown_and_requests_nothing(
    warden, arm_emulator, break_node, asked, code, needle
):
    w = warden({"default": "Disabled", "verify": {"sample": "all"}})  # enforce: unknown still requests nothing
    break_node(arm_emulator)
    request_verify(w, DEV, "nodepool1")

    [verification] = verifications(w)
    pool = verification["nodepool1"]
    assert pool["verdict"] == "unknown"
    assert "3 node(s): 2 ok, 1 unknown; instance 1: " in pool["reason"] and needle in pool["reason"]
    rows = {r.instance_id: r for r in node_rows(w, pool="nodepool1")}
    assert {i: r.verdict for i, r in rows.items()} == {"0": "ok", "1": "unknown", "2": "ok"}
    assert needle in rows["1"].reason and rows["1"].run_command == code and not rows["1"].drift
    vm1_asked = [p for p in run_command_paths(arm_emulator) if "nodepool1" in p and p.endswith("/1/runCommand")]
    assert bool(vm1_asked) is asked
    state = w.pool_state(DEV, "nodepool1")
    assert (state.verdict, state.nodes_drifted, state.pending_reimage) == ("unknown", 0, False)
    [row] = verify_audit(w, pool="nodepool1")
    assert row.outcome.value == "skipped" and row.message.startswith("unknown: ")
    assert kinds_run(w) == [names.VERIFY_CLUSTER] and w.writes() == []
    assert_all_done(w)


@pytest.mark.parametrize(
    ("policy", "pool", "mode", "verdict", "reason", "others"),
    [
        (
            {"default": "Disabled"},
            "vmpool",
            "LocalUser",
            "unsupported",
            "a VirtualMachines pool has no scale set",
            {"nodepool1": "ok", "spot": "ok", "batch": "drift"},
        ),
        (
            {"default": "Disabled", "rules": [{"name": "keep", "match": {"pool": "batch"}, "sshAccess": "ignore"}]},
            "batch",
            "Disabled",
            "not-checked",
            "the policy leaves this pool alone (rule 'keep' says ignore): not checked",
            {"nodepool1": "ok", "spot": "ok", "vmpool": "unsupported"},
        ),
    ],
    ids=["virtual-machines-pool", "ignored-by-the-policy"],
)
def test_a_pool_not_checked_is_reported_with_the_reason_and_not_asked(
    warden, arm_emulator, policy, pool, mode, verdict, reason, others
):
    w = warden(policy, mode="audit")
    request_verify(w, DEV)
    [verification] = verifications(w)
    result = verification.pop(pool)
    assert (result["verdict"], result["nodes"], result["os"], result["mode"]) == (verdict, [], "Linux", mode)
    assert result["reason"].startswith(reason)
    assert {p: r["verdict"] for p, r in verification.items()} == others
    assert not [p for p in run_command_paths(arm_emulator) if f"/aks-{pool}-" in p.lower()]
    assert pool not in {r.pool for r in node_rows(w)}
    [row] = verify_audit(w, pool=pool)
    assert row.outcome.value == "skipped" and reason in row.message


def test_a_stopped_cluster_is_reported_with_the_reason_and_not_asked(warden, arm_emulator):
    w = warden({"default": "Disabled"}, WARDEN_SUBSCRIPTIONS=BOTH_SUBSCRIPTIONS)
    request_verify(w, STOPPED)
    [verification] = verifications(w, STOPPED)
    assert {p: (r["verdict"], r["reason"]) for p, r in verification.items()} == {
        "nodepool1": ("not-checked", "the cluster is stopped: its nodes are deallocated")
    }
    assert arm_emulator.run_command_log == [] and run_command_paths(arm_emulator) == []
    assert node_rows(w, STOPPED) == []
    assert [(r.pool, r.outcome.value) for r in verify_audit(w, STOPPED)] == [("nodepool1", "skipped")]
    assert w.writes() == [] and kinds_run(w, STOPPED) == [names.VERIFY_CLUSTER]
    assert_all_done(w, STOPPED)


# --- 7: the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite, WARDEN_POLICY='{"default": "Disabled", "verify": {"sample": 1}}')
    yield arm_emulator
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


def _cli_json(capsys, *arguments: str) -> tuple[int, dict, str]:
    code = main(["verify", *arguments, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_cli_verify_json_exits_1_while_drift_remains_in_audit_mode(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("WARDEN_MODE", "audit")
    code, report, _ = _cli_json(capsys, "--cluster", DEV.id)
    assert code == 1
    assert set(report) == {"pools", "summary", "errors", "left", "stopped"} and report["errors"] == []
    assert (report["left"], report["stopped"]) == ([], None)
    assert [p["pool"] for p in report["pools"]] == ["batch", "nodepool1", "spot", "vmpool"]
    pools = {p["pool"]: p for p in report["pools"]}
    for pool in report["pools"]:
        assert {"subscription", "resourceGroup", "cluster", "pool", "os", "mode", "verdict", "reason", "nodes"} <= set(
            pool
        )
        assert (pool["subscription"], pool["resourceGroup"], pool["cluster"], pool["os"]) == (
            SUB_A,
            "rg-dev-weu",
            "aks-dev-weu",
            "Linux",
        )
    assert {p: (r["mode"], r["verdict"]) for p, r in pools.items()} == {
        "batch": ("Disabled", "drift"),
        "nodepool1": ("LocalUser", "ok"),
        "spot": ("EntraId", "ok"),
        "vmpool": ("LocalUser", "unsupported"),
    }
    [node] = pools["batch"]["nodes"]
    assert node["verdict"] == "drift" and "sshd is running" in node["reason"]
    assert node["vmss"] == node_vmss(cli_env, BATCH) and node["instance"] in ("0", "1")
    assert node["runCommand"] == "succeeded" and "ssh active/enabled" in node["units"]
    assert "VirtualMachines" in pools["vmpool"]["reason"] and pools["vmpool"]["nodes"] == []
    assert report["summary"] == {"drift": 1, "ok": 2, "unsupported": 1}
    assert [r for r in cli_env.requests if r.method != "GET" and not is_run_command(r.path)] == []
    # The plan now shows the reimage the drift owes.
    assert main(["plan", "--json"]) == 0
    plan = {p["pool"]: p for p in json.loads(capsys.readouterr().out)["pools"] if p["cluster"] == DEV.name}
    assert (plan["batch"]["status"], plan["batch"]["steps"]) == ("pending-reimage", ["upgrade-node-image"])


def test_cli_verify_exits_0_once_the_drift_is_re_enforced_and_shows_a_table(cli_env, capsys):
    code = main(["verify", "--cluster", DEV.id])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:2] == ["CLUSTER", "POOL"] and "VERDICT" in lines[0]
    batch = next(line for line in lines if line.split()[1:2] == ["batch"])
    # the drift it found, the reimage it caused, and the check after it
    assert batch.split()[:3] == ["rg-dev-weu/aks-dev-weu", "batch", "Disabled"] and " drift → reimaged → ok " in batch
    assert lines[-1] == "4 pools: 3 ok, 1 unsupported"  # vmpool: a VirtualMachines pool has no scale set
    writes = [(r.method, r.path.rsplit("/", 1)[-1]) for r in cli_env.requests if r.method != "GET"]
    assert [w for w in writes if w[1] != "runCommand"] == [("POST", "upgradeNodeImageVersion")]
    assert cli_env.sshd_states(BATCH) == {("inactive", "disabled")}


def test_cli_verify_json_shows_the_drift_it_reimaged_on_the_way(cli_env, capsys):
    code, report, _ = _cli_json(capsys, "--cluster", DEV.id)
    pools = {p["pool"]: p for p in report["pools"]}
    assert code == 0 and pools["batch"]["history"] == ["drift", "reimaged", "ok"]
    assert pools["nodepool1"]["history"] == ["ok"]
    assert (pools["vmpool"]["verdict"], pools["vmpool"]["history"]) == ("unsupported", ["unsupported"])


def test_cli_verify_exits_1_while_a_node_is_unknown(cli_env, capsys):
    """A node nobody could check proves nothing: the command does not say all is well."""
    cli_env.set_node_power_state(NODEPOOL1, None, "deallocated")
    code, report, _ = _cli_json(capsys, "--cluster", DEV.id)
    pools = {p["pool"]: p for p in report["pools"]}
    assert pools["nodepool1"]["verdict"] == "unknown" and "deallocated" in pools["nodepool1"]["reason"]
    assert code == 1 and report["summary"]["unknown"] == 1


def test_a_locked_node_resource_group_gets_no_run_command(warden, arm_emulator):
    """`restrictionLevel: ReadOnly` puts a deny assignment on the node resource group that allows
    only */read (AKS node resource group lockdown): run-command would be refused, so none is sent
    and every pool says why it cannot be verified."""
    cluster = arm_emulator.fleet.cluster(DEV.subscription, DEV.resource_group, DEV.name)
    cluster.props["nodeResourceGroupProfile"] = {"restrictionLevel": "ReadOnly"}
    w = warden({"default": "Disabled", "verify": {"sample": "all"}})
    request_verify(w, DEV)
    [verification] = verifications(w)
    assert {pool: result["verdict"] for pool, result in verification.items()} == dict.fromkeys(
        ("batch", "nodepool1", "spot", "vmpool"), "unsupported"
    )
    assert "locked down (restrictionLevel ReadOnly)" in verification["batch"]["reason"]
    assert run_command_paths(arm_emulator) == [] and w.writes() == []
    assert {r.outcome.value for r in verify_audit(w)} == {"skipped"}


@pytest.mark.parametrize(
    ("cluster", "needle"),
    [
        (DEV.id.replace(SUB_A, "99999999-9999-9999-9999-999999999999"), "not in WARDEN_SUBSCRIPTIONS"),
        (f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa", "not an AKS"),
        ("aks-dev-weu", "not an AKS"),
    ],
    ids=["out-of-scope", "not-aks", "bare-name"],
)
def test_cli_verify_refuses_a_bad_cluster_with_exit_2_and_runs_nothing(cli_env, capsys, cluster, needle):
    assert main(["verify", "--cluster", cluster, "--json"]) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and captured.out == ""
    assert cli_env.requests == []


def test_cli_verify_without_cluster_covers_every_running_cluster_in_scope(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("WARDEN_SUBSCRIPTIONS", BOTH_SUBSCRIPTIONS)
    monkeypatch.setenv("WARDEN_MODE", "audit")
    code, report, err = _cli_json(capsys)
    assert code == 1  # DEV's batch drifts
    clusters = {(p["subscription"], p["resourceGroup"], p["cluster"]) for p in report["pools"]}
    assert clusters == {
        (SUB_A, "rg-dev-weu", "aks-dev-weu"),
        (SUB_A, "rg-prod-weu", "aks-prod-weu"),
        (SUB_B, "rg-prod-neu", "aks-auto-neu"),
    }
    assert report["summary"] == {"drift": 1, "ok": 6, "unsupported": 1}  # DEV's vmpool has no scale set
    windows = next(p for p in report["pools"] if p["pool"] == "npwin")
    assert (windows["os"], windows["mode"], windows["verdict"]) == ("Windows", "Disabled", "ok")
    assert "no sshd service" in windows["nodes"][0]["units"]
    assert "3 clusters, 1 stopped ones skipped" in err
    assert not [p for p in run_command_paths(cli_env) if "aks-sandbox-neu" in p or "rg-dev-neu" in p.lower()]
    assert report["errors"] == []


# --- 8: the timer -----------------------------------------------------------------------------------


def test_the_verify_timer_requests_verify_for_every_running_cluster_in_scope(warden, arm_emulator):
    w = warden({"default": "Disabled", "verify": {"sample": 1}}, mode="audit", WARDEN_SUBSCRIPTIONS=BOTH_SUBSCRIPTIONS)
    w.functions.call(VERIFY_FUNCTION, timer=TimerRequest(past_due=False))
    w.functions.run()
    verified = sorted(
        s.input["cluster"]["name"] for s in w.functions.durable.statuses() if s.name == names.VERIFY_CLUSTER
    )
    assert verified == ["aks-auto-neu", "aks-dev-weu", "aks-prod-weu"]
    for cluster in (DEV, PROD, AUTOMATIC):
        rows = verify_audit(w, cluster)
        assert rows and {r.actor for r in rows} == {"verify-timer"}
    assert verify_audit(w, STOPPED) == [] and node_rows(w, STOPPED) == []
    assert not [r for r in arm_emulator.requests if STOPPED.name in r.path and r.method != "GET"]
    assert_all_done(w, DEV, PROD, AUTOMATIC)
