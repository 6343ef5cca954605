"""`scan_fleet` on several threads against the emulator: the same report as one thread, GETs only,
one unreadable cluster or subscription reported while the rest is planned."""

from __future__ import annotations

import json

import pytest

from shared.adapters.arm import Arm
from shared.core.models import ClusterRef
from shared.local.demo import DEMO_POLICY
from shared.policy import load_policy
from shared.policy.fleet import scan_fleet
from tests.emulator_fixtures import SUB_A, SUB_B

POLICY = load_policy(DEMO_POLICY.read_text(encoding="utf-8"))
COPIES = 12
PROD = ClusterRef(SUB_A, "rg-prod-weu", "aks-prod-weu")


def with_copies(fleet: dict, copies: int) -> dict:
    """The test fleet plus `copies` renamed copies of aks-dev-weu, listed in reverse name order
    so that the report's order has to come from sorting, not from the emulator."""
    [dev] = [c for c in fleet["clusters"] if c["managedCluster"]["name"] == "aks-dev-weu"]
    text = json.dumps(dev)
    extra = [json.loads(text.replace("aks-dev-weu", f"aks-copy-{i:02d}")) for i in reversed(range(copies))]
    return {"clusters": extra + fleet["clusters"]}


def scan(emulator, workers: int):
    """One scan with a fresh adapter; returns the report and the requests it sent."""
    emulator.clear_requests()
    with Arm(emulator.base_url, local=True, retries=0) as arm:
        report = scan_fleet(arm, [SUB_B, SUB_A], POLICY, workers=workers)
    return report, emulator.requests


def test_many_workers_give_the_same_report_as_one_with_only_gets(start_arm_emulator, test_fleet):
    emulator = start_arm_emulator(with_copies(test_fleet, COPIES))
    one, one_sent = scan(emulator, workers=1)
    many, many_sent = scan(emulator, workers=6)
    assert many.plans == one.plans and many.errors == one.errors == []
    assert len(many.plans) == 9 + 4 * COPIES
    order = [(p.cluster.ref, p.pool.name.lower()) for p in many.plans]
    assert order == sorted(order)
    # Each subscription listed once and each cluster's pools once, whatever the threads.
    assert {r.method for r in many_sent} == {"GET"}
    assert sorted(r.path.lower() for r in many_sent) == sorted(r.path.lower() for r in one_sent)
    assert len(many_sent) == 2 + 4 + COPIES


def test_an_unreadable_cluster_and_subscription_are_reported_and_the_rest_planned(arm_emulator):
    arm_emulator.faults.arm("GET", r"aks-prod-weu/agentPools$", 403, code="AuthorizationFailed", message="no access")
    arm_emulator.faults.arm(
        "GET", rf"/subscriptions/{SUB_B}/providers/Microsoft.ContainerService/managedClusters$", 403, code="Denied"
    )
    report, sent = scan(arm_emulator, workers=4)
    assert report.errors == [
        f"cluster {PROD.id}: cannot list pools: AuthorizationFailed: no access",
        f"subscription {SUB_B}: cannot list clusters: Denied: Injected fault.",
    ]
    assert {p.cluster.ref.name for p in report.plans} == {"aks-dev-weu"}
    assert [p.pool.name for p in report.plans] == ["batch", "nodepool1", "spot", "vmpool"]
    assert {r.method for r in sent} == {"GET"}


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_must_be_at_least_one(arm_emulator, workers):
    with pytest.raises(ValueError, match="workers must be at least 1"):
        scan(arm_emulator, workers)
    assert arm_emulator.requests == []
