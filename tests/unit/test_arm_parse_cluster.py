"""A cluster's JSON as the linked-permission checks read it: the cluster identity and the
monitoring add-on's workspace."""

from __future__ import annotations

import json
from pathlib import Path

from shared.adapters.arm_parse import cluster_from_arm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def example_cluster() -> dict:
    document = json.loads((FIXTURES / "aks_2026-01-01_ManagedClustersCreate_Update.json").read_text(encoding="utf-8"))
    return document["responses"]["200"]["body"]


def test_the_cluster_identity_of_the_spec_example():
    cluster = cluster_from_arm(example_cluster())
    assert cluster.user_assigned_identities == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rgName1/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/identity1",
    )
    assert cluster.monitoring_workspace == ""  # addonProfiles is empty there


def test_the_monitoring_workspace_only_when_the_add_on_is_on():
    body = example_cluster()
    workspace = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"
    body["properties"]["addonProfiles"] = {
        "omsAgent": {"enabled": True, "config": {"logAnalyticsWorkspaceResourceID": workspace}}
    }
    assert cluster_from_arm(body).monitoring_workspace == workspace
    body["properties"]["addonProfiles"]["omsAgent"]["enabled"] = False
    assert cluster_from_arm(body).monitoring_workspace == ""
