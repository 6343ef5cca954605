"""Kubernetes >= 1.37 with the cluster's Node Disruption Policy: an sshAccess change reimages by
itself only under `Allow`. Under `Block` the nodes keep SSH (pending-reimage, never forced by the
warden); under `AllowDuringMaintenanceWindow` AKS reimages in the window and verification confirms."""

import json

import pytest

from shared.cli import main
from tests.integration.test_verification import request_verify
from tests.warden_fixtures import PROD, arm_event

APPS = PROD.id + "/agentPools/apps"  # Kubernetes 1.37, LocalUser
SSH_ON, SSH_OFF = {("active", "enabled")}, {("inactive", "disabled")}


def outcome(w):
    return next(r for r in reversed(w.audit(PROD)) if r.pool == "apps" and r.step == "outcome")


def test_block_leaves_the_nodes_so_the_pool_is_pending_reimage_not_a_success(warden, arm_emulator):
    arm_emulator.set_node_disruption_policy(PROD.id, "Block")
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(APPS))
    assert w.writes() == [("PUT", "agentPools/apps")], "sshAccess is set; no upgrade is forced on the owner"
    assert arm_emulator.pool_body(APPS)["properties"]["securityProfile"]["sshAccess"] == "Disabled"
    assert arm_emulator.sshd_states(APPS) == SSH_ON  # AKS did not reimage
    last = outcome(w)
    assert last.outcome.value == "waiting" and "Node Disruption Policy is Block" in last.message
    state = w.pool_state(PROD, "apps")
    assert (state.pending_reimage, state.status.value) == (True, "pending-reimage")

    w.deliver(arm_event(APPS))  # a later event: still nothing to write
    assert w.writes() == [("PUT", "agentPools/apps")]
    plan = next(r for r in reversed(w.audit(PROD)) if r.pool == "apps" and r.step == "plan")
    assert plan.message.startswith("pending-reimage") and "Block" in plan.message


def test_a_window_policy_waits_for_the_window_and_verification_confirms_it(warden, arm_emulator):
    arm_emulator.set_node_disruption_policy(PROD.id, "AllowDuringMaintenanceWindow")
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(APPS))
    assert w.writes() == [("PUT", "agentPools/apps")]
    assert arm_emulator.sshd_states(APPS) == SSH_ON
    last = outcome(w)
    assert last.outcome.value == "waiting" and "maintenance window" in last.message
    assert w.pool_state(PROD, "apps").pending_reimage is True

    assert arm_emulator.run_node_os_window(PROD.id) == ["apps"]  # the window opens: AKS reimages
    assert arm_emulator.sshd_states(APPS) == SSH_OFF
    request_verify(w, PROD, "apps")
    state = w.pool_state(PROD, "apps")
    assert (state.verdict, state.pending_reimage, state.status.value) == ("ok", False, "compliant")
    assert w.writes() == [("PUT", "agentPools/apps")], "the warden reimaged nothing itself"


@pytest.mark.parametrize("policy", ["Allow", None])
def test_allow_or_no_policy_reimages_at_the_put(warden, arm_emulator, policy):
    if policy:
        arm_emulator.set_node_disruption_policy(PROD.id, policy)
    w = warden({"default": "Disabled"})
    w.deliver(arm_event(APPS))
    assert arm_emulator.sshd_states(APPS) == SSH_OFF
    assert outcome(w).outcome.value == "succeeded"


def test_plan_reports_the_held_reimage(arm_emulator, monkeypatch, capsys):
    arm_emulator.set_node_disruption_policy(PROD.id, "Block")
    monkeypatch.setenv("WARDEN_SUBSCRIPTIONS", PROD.subscription)
    monkeypatch.setenv("WARDEN_POLICY", '{"default": "Disabled"}')
    monkeypatch.setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", arm_emulator.base_url)
    monkeypatch.delenv("WARDEN_TABLES", raising=False)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    assert main(["plan", "--json"]) == 0

    apps = next(p for p in json.loads(capsys.readouterr().out)["pools"] if p["poolId"].lower() == APPS.lower())
    assert apps["status"] == "drifted" and apps["steps"] == ["update-ssh-access"]
    assert "no reimage follows now" in apps["reason"] and "Block" in apps["reason"]
