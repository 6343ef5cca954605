"""The fleets and events the benchmarks feed the warden: the demo fleet, a wide cluster and a
many-cluster fleet made from it, and Event Grid ResourceWriteSuccess events for AKS resources."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

DEMO_FLEET = Path(__file__).resolve().parents[1] / "shared" / "local" / "demo_fleet.json"
SUBSCRIPTION = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"
DEV_CLUSTER = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dev-weu/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu"
PROD_CLUSTER = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
LOCALUSER_POOL = DEV_CLUSTER + "/agentPools/nodepool1"  # Kubernetes 1.33, no sshAccess set: LocalUser
K8S_137_POOL = PROD_CLUSTER + "/agentPools/apps"  # Kubernetes 1.37: AKS reimages at the PUT
COMPLIANT_POOL = PROD_CLUSTER + "/agentPools/system"  # already Disabled
POOL_WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"
CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"


def demo_fleet() -> dict:
    return json.loads(DEMO_FLEET.read_text(encoding="utf-8"))


def wide_cluster_fleet(pool_count: int) -> dict:
    """The dev cluster alone, its pools replaced by `pool_count` copies of the drifted
    `nodepool1` (LocalUser on Kubernetes 1.33) named pool00, pool01, ..."""
    [dev] = [c for c in demo_fleet()["clusters"] if c["managedCluster"]["id"] == DEV_CLUSTER]
    [template] = [p for p in dev["agentPools"] if p["agentPool"]["name"] == "nodepool1"]
    pools = []
    for index in range(pool_count):
        pool = copy.deepcopy(template)
        name = f"pool{index:02d}"
        pool["agentPool"]["name"] = name
        pool["agentPool"]["id"] = f"{DEV_CLUSTER}/agentPools/{name}"
        pool["agentPool"]["properties"]["mode"] = "System" if index == 0 else "User"
        pools.append(pool)
    dev["agentPools"] = pools
    return {"clusters": [dev]}


def many_clusters_fleet(count: int) -> dict:
    """`count` copies of the dev cluster (4 pools: 2 drifted, 1 ignored, 1 unsupported) in one
    subscription, named aks-fleet-000, aks-fleet-001, ... (every id, name and node resource group)."""
    [dev] = [c for c in demo_fleet()["clusters"] if c["managedCluster"]["id"] == DEV_CLUSTER]
    text = json.dumps(dev)
    return {"clusters": [json.loads(text.replace("aks-dev-weu", f"aks-fleet-{i:03d}")) for i in range(count)]}


def verify_fleet(clusters: int, pools: int, nodes: int) -> dict:
    """`clusters` copies of the dev cluster in one subscription (aks-v0000, aks-v0001, ...: every
    id, name and node resource group), each with `pools` Ubuntu VMSS pools (pool00, pool01, ...)
    of `nodes` nodes, made from its `batch` pool: sshAccess Disabled, the nodes imaged so (sshd
    inactive and disabled), so every check says `ok` and no drift starts a reconcile."""
    [dev] = [c for c in demo_fleet()["clusters"] if c["managedCluster"]["id"] == DEV_CLUSTER]
    [template] = [p for p in dev["agentPools"] if p["agentPool"]["name"] == "batch"]
    template = {k: v for k, v in template.items() if k != "nodes"}  # the emulator boots them from the mode
    made = []
    for index in range(clusters):
        cluster = json.loads(json.dumps(dev).replace("aks-dev-weu", f"aks-v{index:04d}"))
        cluster_id = cluster["managedCluster"]["id"]
        cluster["agentPools"] = []
        for number in range(pools):
            pool = copy.deepcopy(template)
            name = f"pool{number:02d}"
            pool["agentPool"].update(name=name, id=f"{cluster_id}/agentPools/{name}")
            pool["agentPool"]["properties"].update(count=nodes, mode="System" if number == 0 else "User")
            cluster["agentPools"].append(pool)
        made.append(cluster)
    return {"clusters": made}


def write_event(resource_id: str, operation: str = POOL_WRITE, event_id: str | None = None) -> dict:
    """An Event Grid schema ResourceWriteSuccess for an AKS resource, written by a person."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": f"/subscriptions/{SUBSCRIPTION}",
        "subject": resource_id,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-11-24T11:59:00.0000000Z",
        "dataVersion": "2",
        "data": {
            "authorization": {"scope": resource_id, "action": operation},
            "claims": {"upn": "someone@example.com", "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
            "correlationId": str(uuid.uuid4()),
            "resourceProvider": "Microsoft.ContainerService",
            "resourceUri": resource_id,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": SUBSCRIPTION,
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        },
    }
