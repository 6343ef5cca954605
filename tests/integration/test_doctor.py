"""`doctor` against the local Azure: a fully granted deployment is all ok; a missing permission, an
unregistered preview feature, a missing event subscription and a locked node resource group each
show as fail or warn, with the command that fixes it. Read-only: no ARM write, no table created."""

from __future__ import annotations

import json

from shared.cli import main
from shared.preflight.doctor import Level
from shared.preflight.permissions import ENFORCEMENT_ACTIONS
from shared.triggers.doctor import run_doctor
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import DEV, PROD, set_cli_env

BOTH = f"{SUB_A},{SUB_B}"
RUN_COMMAND = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action"


def checks(w, **where):
    report = run_doctor(w.runtime)
    return report, [c for c in report.checks if all(getattr(c, k) == v for k, v in where.items())]


def test_a_fully_granted_deployment_is_all_ok(warden, arm_emulator):
    w = warden(
        {"default": "Disabled", "rules": [{"name": "e", "match": {"pool": "spot"}, "sshAccess": "EntraId"}]},
        WARDEN_SUBSCRIPTIONS=BOTH,
    )
    arm_emulator.clear_requests()
    report = run_doctor(w.runtime)
    assert [c for c in report.checks if c.level is not Level.OK] == [], report.to_json()
    assert not report.failed and report.summary["ok"] == len(report.checks)
    kinds = {c.check for c in report.checks}
    assert kinds == {"provider", "permissions", "node-resource-group", "feature", "events", "tables"}
    features = {c.target.rsplit("/", 1)[-1] for c in report.checks if c.check == "feature"}
    assert features == {"EntraIdSSHPreview", "DisableSSHPreview"}
    scopes = {c.target for c in report.checks if c.check == "permissions"}
    assert f"/subscriptions/{SUB_A}/resourcegroups/rg-dev-weu" in scopes  # the cluster's resource group
    assert any("mc_rg-dev-weu" in s for s in scopes)  # and its node resource group
    assert {r.method for r in arm_emulator.requests} == {"GET"}, "the doctor writes nothing"


def test_a_missing_permission_fails_with_the_role_assignment_that_fixes_it(warden, arm_emulator):
    w = warden()
    granted = [a for a in ENFORCEMENT_ACTIONS if a != RUN_COMMAND]
    arm_emulator.governance.set_permissions(f"/subscriptions/{SUB_A}", [{"actions": granted, "notActions": []}])
    _, failed = checks(w, check="permissions", level=Level.FAIL)
    assert failed and all(RUN_COMMAND in c.detail for c in failed)
    assert all("/resourcegroups/mc_" in c.target for c in failed), "only the node resource groups need it"
    assert all(c.fix.startswith("az role assignment create --assignee ") and c.target in c.fix for c in failed)


def test_an_unregistered_preview_feature_fails_where_the_policy_needs_it(warden, arm_emulator):
    w = warden({"default": "EntraId"})
    arm_emulator.governance.set_feature(SUB_A, "EntraIdSSHPreview", "NotRegistered")
    _, [feature] = checks(w, check="feature")
    assert feature.level is Level.FAIL and "EntraIdSSHPreview is NotRegistered" in feature.detail
    assert "az feature register --namespace Microsoft.ContainerService --name EntraIdSSHPreview" in feature.fix


def test_a_missing_event_subscription_fails_with_its_fix(warden, arm_emulator):
    w = warden()
    arm_emulator.governance.remove_event_subscriptions(SUB_A)
    _, [events] = checks(w, check="events")
    assert events.level is Level.FAIL and "no event subscription delivering AKS resource writes" in events.detail
    assert "azd deploy" in events.fix


def test_an_event_subscription_that_filters_the_pool_writes_out_fails(warden, arm_emulator):
    w = warden()
    only_clusters = ["Microsoft.ContainerService/managedClusters/write"]
    arm_emulator.governance.set_event_filter(
        SUB_A,
        {
            "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
            "advancedFilters": [{"operatorType": "StringIn", "key": "data.operationName", "values": only_clusters}],
        },
    )
    _, [events] = checks(w, check="events")
    assert events.level is Level.FAIL and "agentPools/write" in events.detail


def test_an_unregistered_provider_fails(warden, arm_emulator):
    w = warden()
    arm_emulator.governance.set_provider(SUB_A, "Microsoft.EventGrid", "NotRegistered")
    _, [provider] = checks(w, check="provider", level=Level.FAIL)
    assert "Event Grid delivers no ARM event" in provider.detail
    assert provider.fix == f"az provider register --namespace Microsoft.EventGrid --subscription {SUB_A}"


def test_a_locked_node_resource_group_is_a_warning_with_what_it_costs(warden, arm_emulator):
    w = warden()
    arm_emulator.fleet.cluster(SUB_A, DEV.resource_group, DEV.name).props["nodeResourceGroupProfile"] = {
        "restrictionLevel": "ReadOnly"
    }
    report, [locked] = checks(w, check="node-resource-group", level=Level.WARN)
    assert "aks-dev-weu" in locked.detail and "cannot be verified" in locked.detail
    assert not report.failed, "a warning is not a failure"


def test_a_key_rotation_needs_to_assign_the_clusters_identities(warden, arm_emulator, keyvault):
    w = warden(WARDEN_KEYVAULT_URL=keyvault.url)
    identity = next(iter(arm_emulator.cluster_body(PROD.id)["identity"]["userAssignedIdentities"]))
    _, [linked] = checks(w, check="linked-permissions")
    assert (linked.target, linked.level) == (identity, Level.OK)
    arm_emulator.governance.set_permissions(
        f"/subscriptions/{SUB_A}", [{"actions": ["*"], "notActions": ["Microsoft.ManagedIdentity/*"]}]
    )
    _, [linked] = checks(w, check="linked-permissions")
    assert linked.level is Level.FAIL and "LinkedAuthorizationFailed" in linked.detail
    assert "Managed Identity Operator" in linked.fix and identity in linked.fix


def test_the_command_prints_json_and_exits_1_on_a_failure(monkeypatch, arm_emulator, azurite, capsys):
    set_cli_env(monkeypatch, arm_emulator, azurite)
    assert main(["doctor", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["fail"] == 0 and {c["status"] for c in document["checks"]} == {"ok"}
    arm_emulator.governance.remove_event_subscriptions(SUB_A)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "fail" in out and "to fix:" in out and "azd deploy" in out


def test_a_key_rotation_needs_to_read_the_monitoring_workspace_keys(warden, arm_emulator, keyvault):
    """Container Insights: a cluster PUT reads its Log Analytics workspace's shared keys."""
    w = warden(WARDEN_KEYVAULT_URL=keyvault.url)
    workspace = f"/subscriptions/{SUB_A}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/logs"
    arm_emulator.fleet.cluster(SUB_A, DEV.resource_group, DEV.name).props["addonProfiles"] = {
        "omsagent": {"enabled": True, "config": {"logAnalyticsWorkspaceResourceID": workspace}}
    }
    arm_emulator.governance.set_permissions(
        f"/subscriptions/{SUB_A}", [{"actions": ["*"], "notActions": ["Microsoft.OperationalInsights/*"]}]
    )
    _, [keys] = checks(w, check="linked-permissions", target=workspace)
    assert keys.level is Level.FAIL and "sharedkeys/read" in keys.detail and "Log Analytics Reader" in keys.fix
