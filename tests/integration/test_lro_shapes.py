"""Reconcile, verify and key rotation under every way ARM may announce a long-running operation:
a status URL, a `Location`, both, or neither (the resource's `provisioningState`; a POST answered
when done). Each converges with the same ARM writes and the same verdicts on the nodes."""

from __future__ import annotations

import pytest

from shared.core.records import PoolStatus
from shared.local.arm_emulator.operations import SHAPES, LroShapes
from tests.integration.test_rotation import RSA_3072, cluster_key, rotate
from tests.warden_fixtures import DEV, arm_event

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"


@pytest.fixture(params=SHAPES)
def shaped(request, arm_emulator):
    """Every operation announced in one shape, with no Retry-After (as AKS and Compute answer)."""
    for operation in LroShapes.DEFAULTS:
        arm_emulator.lro_shapes.set(operation, request.param)
    arm_emulator.retry_after = None
    yield request.param
    arm_emulator.lro_shapes.reset()
    arm_emulator.retry_after = 0


def test_a_reconcile_and_the_verification_after_it_converge(shaped, warden, arm_emulator):
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(NODEPOOL1))
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    state = w.pool_state(DEV, "nodepool1")
    assert (state.status, state.configured_mode, state.pending_reimage) == (PoolStatus.COMPLIANT, "Disabled", False)
    assert (state.verdict, state.nodes_checked, state.nodes_drifted) == ("ok", 2, 0), "every node checked, none lost"
    assert [step for step in w.steps(pool="nodepool1") if step[1] == "failed"] == []


def test_a_key_rotation_converges(shaped, warden, arm_emulator):
    w = warden({"default": "Disabled", "rules": [{"name": "b", "match": {"pool": "batch"}, "sshAccess": "ignore"}]})
    rotate(w, public_key=RSA_3072)
    assert cluster_key(arm_emulator) == RSA_3072
    assert w.writes() == [("PUT", "managedClusters/aks-dev-weu"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    [done] = [r for r in w.runtime.store.list_key_rotations(DEV.key) if r.outcome.value != "planned"]
    assert (done.outcome.value, done.pools_reimaged) == ("succeeded", "nodepool1")
