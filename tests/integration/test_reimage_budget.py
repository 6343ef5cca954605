"""Blast-radius limits end to end: events for pools of several clusters at once, the reimage
budgets (fleet and per subscription), the line taken in order, and the pause after a failed
reimage until `resume` (real SDKs, Azurite, the ARM emulator, the replay engine, a virtual clock)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from shared.cli.resume import resume_cluster
from shared.core.models import ClusterRef, Target
from shared.core.records import PoolStatus
from shared.orchestration import names
from shared.orchestration.reimage_budget import HOLD_TTL, TICKET_TTL
from shared.policy.blast_radius import Claim, Limits
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import DEV, PROD, arm_event

BOTH = f"{SUB_A},{SUB_B}"
UPGRADING = "UpgradingNodeImageVersion"


def copies_of_dev(fleet: dict, *where: tuple[str, str, str]) -> list[ClusterRef]:
    """Add copies of aks-dev-weu (its pools and nodes) to `fleet` at (subscription, resource
    group, name) each; returns their refs."""
    dev = next(c for c in fleet["clusters"] if c["managedCluster"]["name"] == DEV.name)
    refs = []
    for subscription, group, name in where:
        text = json.dumps(dev).replace(DEV.subscription, subscription)
        fleet["clusters"].append(json.loads(text.replace(DEV.resource_group, group).replace(DEV.name, name)))
        refs.append(ClusterRef(subscription, group, name))
    return refs


class Reimages:
    """What AKS is reimaging, sampled after every step the host takes: node-image upgrades, and
    the sshAccess PUTs of `self_reimaging` pools (Kubernetes >= 1.37)."""

    def __init__(self, w, emulator, self_reimaging: tuple[str, ...] = ()):
        self.emulator, self.self_reimaging = emulator, {p.lower() for p in self_reimaging}
        self.peak, self.peak_per_subscription = 0, Counter()
        self.overlaps: list[list[str]] = []
        w.on_progress = lambda event: self.sample()

    def now(self) -> list[str]:
        running = []
        for pool_id in self.emulator.pool_ids():
            state = self.emulator.pool_body(pool_id)["properties"]["provisioningState"]
            if state == UPGRADING or (state == "Updating" and pool_id.lower() in self.self_reimaging):
                running.append(pool_id)
        return running

    def sample(self) -> None:
        running = self.now()
        self.peak = max(self.peak, len(running))
        for subscription, count in Counter(p.split("/")[2] for p in running).items():
            self.peak_per_subscription[subscription] = max(self.peak_per_subscription[subscription], count)
        if len(running) > 1:
            self.overlaps.append(running)


def upgrades(emulator) -> list[str]:
    """The clusters whose pools got a node-image upgrade, in the order they were sent."""
    return [r.path.split("/")[8] for r in emulator.requests if r.path.endswith("/upgradeNodeImageVersion")]


def budget_waits(w, cluster: ClusterRef) -> list:
    return [r for r in w.audit(cluster) if r.outcome.value == "waiting" and r.message.startswith("reimage budget")]


def assert_nothing_held(w) -> None:
    assert w.runtime.store.reimage_claims(datetime.now(UTC)) == ([], []), "a reimage hold or ticket was left"


def test_a_budget_of_one_never_lets_two_upgrades_overlap_and_waiters_go_in_order(
    warden, start_arm_emulator, test_fleet
):
    clusters = [DEV] + copies_of_dev(
        test_fleet, (SUB_B, "rg-b1", "aks-b1"), (SUB_B, "rg-b2", "aks-b2"), (SUB_A, "rg-a1", "aks-a1")
    )
    emulator = start_arm_emulator(fleet=test_fleet, lro_polls=3)
    w = warden(
        emulator=emulator, WARDEN_SUBSCRIPTIONS=BOTH, WARDEN_MAX_REIMAGES="1", WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION="5"
    )
    reimages = Reimages(w, emulator)
    w.deliver(*(arm_event(f"{c.id}/agentPools/nodepool1") for c in clusters))

    assert reimages.overlaps == [] and reimages.peak == 1
    assert sorted(upgrades(emulator)) == sorted(c.name for c in clusters), "every pool got its one upgrade"
    for cluster in clusters:
        assert emulator.sshd_states(f"{cluster.id}/agentPools/nodepool1") == {("inactive", "disabled")}
        assert w.pool_state(cluster, "nodepool1").status is PoolStatus.COMPLIANT
    waits = {c.name: budget_waits(w, c) for c in clusters}
    assert all(len(rows) <= 1 for rows in waits.values()), f"a wait recorded more than once: {waits}"
    waiters = sorted((rows[0].time, name) for name, rows in waits.items() if rows)
    assert len(waiters) == len(clusters) - 1, "all but the first waited"
    assert all("WARDEN_MAX_REIMAGES)" in rows[0].message for rows in waits.values() if rows)
    assert upgrades(emulator)[1:] == [name for _, name in waiters], "the line was not taken in order"
    assert_nothing_held(w)


def test_each_subscription_has_its_own_budget_within_the_fleets(warden, start_arm_emulator, test_fleet):
    """Two pools of SUB_A reimage one after the other; SUB_B's goes alongside. The fleet's budget (three)
    is never the one full, so SUB_A's second pool waits for its subscription's alone."""
    [same, other] = copies_of_dev(test_fleet, (SUB_A, "rg-a1", "aks-a1"), (SUB_B, "rg-b1", "aks-b1"))
    emulator = start_arm_emulator(fleet=test_fleet, lro_polls=3)
    w = warden(
        emulator=emulator, WARDEN_SUBSCRIPTIONS=BOTH, WARDEN_MAX_REIMAGES="3", WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION="1"
    )
    reimages = Reimages(w, emulator)
    w.deliver(*(arm_event(f"{c.id}/agentPools/nodepool1") for c in (DEV, same, other)))

    assert reimages.peak_per_subscription[SUB_A] == 1, reimages.overlaps
    assert reimages.peak == 2, "the other subscription's reimage did not run alongside"
    [waited] = budget_waits(w, DEV) + budget_waits(w, same)
    assert "1 of 1 reimages in flight in subscription" in waited.message
    assert "WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION" in waited.message
    assert budget_waits(w, other) == []
    for cluster in (DEV, same, other):
        assert emulator.sshd_states(f"{cluster.id}/agentPools/nodepool1") == {("inactive", "disabled")}
    assert_nothing_held(w)


def test_an_sshaccess_update_that_reimages_waits_for_the_budget_too(warden, arm_emulator):
    """On Kubernetes 1.37 the sshAccess PUT reimages by itself: it takes its turn like an upgrade."""
    w = warden(WARDEN_MAX_REIMAGES="1")
    now, store = datetime.now(UTC), w.runtime.store
    limits, other = Limits(1, 1), Claim("another-reimage", SUB_B, "elsewhere", "np")
    assert store.take_reimage_turn(other, limits, now, HOLD_TTL, TICKET_TTL).granted
    puts_when_freed = []

    def free_after_the_first_wait(event) -> None:
        answer = event.payload if event.kind == "activity-completed" and isinstance(event.payload, dict) else {}
        if (answer.get("value") or {}).get("budget") and not puts_when_freed:
            puts_when_freed.append(sum(1 for m, _ in w.writes() if m == "PUT"))
            store.release_reimage_hold(other.holder)

    w.on_progress = free_after_the_first_wait
    apps = PROD.id + "/agentPools/apps"
    w.deliver(arm_event(apps))

    assert puts_when_freed == [0], "the PUT went out while the budget was taken"
    assert w.writes() == [("PUT", "agentPools/apps")]
    [waited] = budget_waits(w, PROD)
    assert waited.step == "update-ssh-access" and "WARDEN_MAX_REIMAGES)" in waited.message
    assert arm_emulator.sshd_states(apps) == {("inactive", "disabled")}
    assert_nothing_held(w)


def test_an_upgrade_handed_over_that_must_wait_for_its_turn_names_no_poller_until_it_goes_out(warden):
    """The update's last poll names the upgrade's poller with its own state; when the upgrade it
    hands over cannot go out (the budget is taken), the row names nobody while it waits: the
    pool's rolling events meanwhile are someone else's, to be verified, not a wake for a poll."""
    w = warden(WARDEN_MAX_REIMAGES="1")
    now, store = datetime.now(UTC), w.runtime.store
    other = Claim("another-reimage", SUB_B, "elsewhere", "np")
    assert store.take_reimage_turn(other, Limits(1, 1), now, HOLD_TTL, TICKET_TTL).granted
    while_waiting, when_polled = [], []

    def watch(event) -> None:
        answer = event.payload if event.kind == "activity-completed" and isinstance(event.payload, dict) else {}
        handed = (answer.get("value") or {}).get("next") or {}
        if (handed.get("value") or {}).get("budget") and not while_waiting:
            while_waiting.append(w.pool_state(DEV, "nodepool1").upgrade_instance_id)
            store.release_reimage_hold(other.holder)
        if (
            event.kind == "activity"
            and event.activity == names.POLL_OPERATION
            and event.payload["step"] == "upgrade-node-image"
        ):
            when_polled.append((event.instance_id, w.pool_state(DEV, "nodepool1").upgrade_instance_id))

    w.on_progress = watch
    w.deliver(arm_event(DEV.id + "/agentPools/nodepool1"))

    assert while_waiting == [""], "named while its upgrade waited for its turn"
    assert upgrades(w.emulator) == ["aks-dev-weu"] and w.activity_times(names.START_NODE_IMAGE_UPGRADE), "sent later"
    assert when_polled and all(polling == on_row for polling, on_row in when_polled), when_polled
    assert w.pool_state(DEV, "nodepool1").upgrade_instance_id == ""
    assert_nothing_held(w)


def test_a_failed_reimage_pauses_its_cluster_until_resumed(warden, arm_emulator):
    w = warden()
    arm_emulator.faults.fail_operation(
        r"nodepool1/upgradeNodeImageVersion", "NodeImageUpgradeFailed", "node 2 not ready"
    )
    w.deliver(arm_event(DEV.id, "Microsoft.ContainerService/managedClusters/write"))

    outcomes = {r.pool: r for r in w.audit() if r.step == "outcome"}
    assert outcomes["nodepool1"].outcome.value == "failed"
    paused = outcomes["spot"]
    assert paused.outcome.value == "waiting"
    assert paused.message.startswith("reimages of this cluster are paused after nodepool1's reimage failed at ")
    assert paused.message.endswith(f": python -m shared resume --cluster {DEV.id}")
    assert [p for m, p in w.writes() if m == "POST"] == ["nodepool1/upgradeNodeImageVersion"], "spot was upgraded"
    assert w.pool_state(DEV, "spot").pending_reimage is True
    assert [r.step for r in w.audit() if r.step == "reimage-pause"] == ["reimage-pause"]
    assert_nothing_held(w)

    # A later reconcile of the paused cluster does not wait for the budget: it ends at once, waiting.
    starts = len(w.activity_times(names.START_NODE_IMAGE_UPGRADE))
    w.deliver(arm_event(DEV.id + "/agentPools/spot"))
    assert len(w.activity_times(names.START_NODE_IMAGE_UPGRADE)) == starts + 1
    assert [r.outcome.value for r in w.audit() if r.step == "outcome" and r.pool == "spot"] == ["waiting", "waiting"]
    # Another cluster is not paused.
    w.deliver(arm_event(PROD.id + "/agentPools/apps"))
    assert arm_emulator.sshd_states(PROD.id + "/agentPools/apps") == {("inactive", "disabled")}

    pause, errors = w.functions.with_client(
        lambda client: resume_cluster(client, w.runtime, Target(DEV), "node image fixed")
    )
    w.functions.run()
    assert (pause.pool, errors) == ("nodepool1", [])
    [resumed] = [r for r in w.audit() if r.step == "reimage-resume"]
    assert (resumed.actor, resumed.outcome.value) == ("cli", "succeeded") and "node image fixed" in resumed.message
    for pool in ("nodepool1", "spot"):
        assert arm_emulator.sshd_states(f"{DEV.id}/agentPools/{pool}") == {("inactive", "disabled")}
        assert w.pool_state(DEV, pool).status is PoolStatus.COMPLIANT
    assert w.runtime.store.reimage_pause(DEV.key) is None
    again = w.functions.with_client(lambda client: resume_cluster(client, w.runtime, Target(DEV), "twice"))
    assert again == (None, []), "a cluster that is not paused has nothing to resume"
    assert_nothing_held(w)


def test_a_young_reimage_is_not_read_to_renew_its_hold_and_an_older_one_is(warden):
    from datetime import timedelta

    from shared.orchestration import reimage_budget

    rt, wall = warden().runtime, datetime.now(UTC)
    claim = Claim("upgrade-1", SUB_A, DEV.id, "nodepool1")
    # Taken long ago by the wall clock: 10 minutes of the hold are left, a renewal would write.
    assert rt.store.take_reimage_turn(
        claim, Limits(1, 1), wall - HOLD_TTL + timedelta(minutes=10), HOLD_TTL, TICKET_TTL
    )
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    poll = {"step": "upgrade-node-image", "instanceId": "upgrade-1", "call": {"id": "p", "at": at.isoformat()}}

    def held_after(minutes: int) -> bool:
        return [c.holder for c in rt.store.reimage_claims(wall + timedelta(minutes=minutes))[0]] == ["upgrade-1"]

    reimage_budget.running(rt, {**poll, "reimageFrom": (at - timedelta(minutes=20)).isoformat()})
    assert not held_after(30), "20 minutes into its reimage (by the orchestration's clock) the hold is not read"
    reimage_budget.running(rt, {**poll, "reimageFrom": (at - HOLD_TTL / 4).isoformat()})
    assert held_after(30), "a quarter of the hold's life into it, the poll renews it"
