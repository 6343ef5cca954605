"""The local ARM emulator over real HTTP, driven by the real management SDKs and by raw requests."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
SUB_A = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"
SUB_B = "8d41e7b2-0c9f-4e35-a6d8-1b2c3d4e5f60"
DEV = (
    f"/subscriptions/{SUB_A}/resourceGroups/rg-dev-weu/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu"
)
PROD = f"/subscriptions/{SUB_A}/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
SANDBOX = f"/subscriptions/{SUB_B}/resourceGroups/rg-dev-neu/providers/Microsoft.ContainerService/managedClusters/aks-sandbox-neu"
DEV_NODES_RG = "MC_rg-dev-weu_aks-dev-weu_westeurope"
AKS_API = "2026-08-01"
FAST = {"enforce_https": False, "polling_interval": 0}
BEARER = {"Authorization": "Bearer local"}


def call(emulator, method: str, path: str, body=None, *, headers=BEARER, api_version: str | None = AKS_API):
    """One raw request to an emulator (or a base URL): (status, headers, JSON body or None)."""
    url = urlsplit(getattr(emulator, "base_url", emulator))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        target = path if api_version is None or "?" in path else f"{path}?api-version={api_version}"
        payload = None if body is None else json.dumps(body)
        connection.request(method, target, payload, {**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), json.loads(data) if data else None
    finally:
        connection.close()


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def vmss_name(emulator, pool_id: str) -> str:
    return emulator.nodes(pool_id)[0]["name"].rsplit("_", 1)[0]


def finish(emulator, start_headers: dict) -> dict:
    """Poll an AKS operation to its end, as a client would; returns the final status body."""
    for _ in range(10):
        status, _, body = call(emulator, "GET", relative(start_headers["Azure-AsyncOperation"]))
        assert status == 200
        if body["status"] != "InProgress":
            return body
    raise AssertionError("the operation never ended")


@pytest.fixture
def aks(arm_emulator, local_credential):
    with ContainerServiceClient(local_credential, SUB_A, base_url=arm_emulator.base_url, retry_total=0) as client:
        yield client


@pytest.fixture
def compute(arm_emulator, local_credential):
    with ComputeManagementClient(local_credential, SUB_A, base_url=arm_emulator.base_url, retry_total=0) as client:
        yield client


# --- reads ---


def test_sdk_lists_and_gets_clusters_pools_and_maintenance(aks, arm_emulator):
    assert sorted(c.name for c in aks.managed_clusters.list(enforce_https=False)) == ["aks-dev-weu", "aks-prod-weu"]
    cluster = aks.managed_clusters.get("rg-dev-weu", "aks-dev-weu", enforce_https=False)
    pools = list(aks.agent_pools.list("rg-dev-weu", "aks-dev-weu", enforce_https=False))
    assert (
        [p.name for p in cluster.agent_pool_profiles]
        == [p.name for p in pools]
        == ["nodepool1", "spot", "batch", "vmpool"]
    )
    assert cluster.tags["env"] == "dev" and cluster.node_resource_group == DEV_NODES_RG
    assert pools[0].security_profile is None and pools[1].security_profile.ssh_access == "EntraId"
    schedule = aks.maintenance_configurations.get(
        "rg-dev-weu", "aks-dev-weu", "aksManagedNodeOSUpgradeSchedule", enforce_https=False
    )
    assert schedule.maintenance_window.schedule.daily.interval_days == 3
    status, _, body = call(
        arm_emulator, "GET", f"/subscriptions/{SUB_A}/providers/Microsoft.ContainerService/managedClusters"
    )
    assert status == 200 and "nextLink" not in body and len(body["value"]) == 2
    assert {m for m, _, _ in arm_emulator.requests} == {"GET"}


def test_paths_are_case_insensitive_and_ids_keep_their_casing(arm_emulator):
    path = DEV.lower().replace("microsoft.containerservice", "MICROSOFT.CONTAINERSERVICE") + "/AGENTPOOLS/NodePool1"
    status, _, body = call(arm_emulator, "GET", path)
    assert status == 200
    assert body["id"] == f"{DEV}/agentPools/nodepool1"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (DEV.replace("aks-dev-weu", "nope"), "ResourceNotFound"),
        (DEV.replace("rg-dev-weu", "rg-nope"), "ResourceGroupNotFound"),
        (f"{DEV}/agentPools/nope", "NotFound"),
        (f"{DEV}/maintenanceConfigurations/nope", "NotFound"),
        (
            f"/subscriptions/{SUB_A}/providers/Microsoft.ContainerService/locations/westeurope/operations/nope",
            "NotFound",
        ),
    ],
    ids=["cluster", "resource-group", "pool", "maintenance", "operation"],
)
def test_unknown_resources_answer_404_with_arm_error_body(arm_emulator, path, code):
    status, _, body = call(arm_emulator, "GET", path)
    assert status == 404
    assert body["error"]["code"] == code and body["error"]["message"]


def test_sdk_raises_resource_not_found(aks):
    with pytest.raises(ResourceNotFoundError):
        aks.agent_pools.get("rg-dev-weu", "aks-dev-weu", "ghost", enforce_https=False)


@pytest.mark.parametrize(
    ("headers", "api_version", "status", "code"),
    [
        ({}, AKS_API, 401, "AuthenticationFailed"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, AKS_API, 401, "AuthenticationFailedInvalidHeader"),
        ({"Authorization": "Bearer "}, AKS_API, 401, "AuthenticationFailedInvalidHeader"),
        (BEARER, None, 400, "MissingApiVersionParameter"),
        ({}, None, 400, "MissingApiVersionParameter"),  # ARM checks api-version first
    ],
    ids=["no-header", "basic", "empty-token", "no-api-version", "neither"],
)
def test_token_and_api_version_are_required(arm_emulator, headers, api_version, status, code):
    answer, _, body = call(arm_emulator, "GET", DEV, headers=headers, api_version=api_version)
    assert (answer, body["error"]["code"]) == (status, code)


# --- agent pool writes ---


def test_get_then_full_put_changes_ssh_access_but_not_the_nodes(aks, arm_emulator):
    pool = aks.agent_pools.get("rg-dev-weu", "aks-dev-weu", "nodepool1", enforce_https=False)
    pool.security_profile = {"sshAccess": "Disabled"}
    result = aks.agent_pools.begin_create_or_update("rg-dev-weu", "aks-dev-weu", "nodepool1", pool, **FAST).result()
    assert (result.provisioning_state, result.security_profile.ssh_access) == ("Succeeded", "Disabled")
    assert result.e_tag != pool.e_tag
    assert arm_emulator.sshd_states(pool.id) == {("active", "enabled")}  # no reimage below 1.37


def test_put_is_a_full_replace_so_omitted_properties_are_reset(arm_emulator):
    status, headers, body = call(arm_emulator, "PUT", f"{DEV}/agentPools/batch", {"properties": {"count": 2}})
    assert status == 200 and body["properties"]["provisioningState"] == "Updating"
    # AKS announces a pool PUT with a status URL only (the SDK's recorded agentPools PUT)
    assert "Azure-AsyncOperation" in headers and "Location" not in headers
    assert headers["Azure-AsyncOperation"].startswith(arm_emulator.base_url + f"/subscriptions/{SUB_A}/providers/")
    assert "securityProfile" not in arm_emulator.pool_body(f"{DEV}/agentPools/batch")["properties"]


def test_put_creates_a_pool_whose_nodes_boot_with_its_mode(arm_emulator):
    pool_id = f"{DEV}/agentPools/newpool"
    status, headers, body = call(
        arm_emulator, "PUT", pool_id, {"properties": {"count": 2, "securityProfile": {"sshAccess": "Disabled"}}}
    )
    assert (status, body["properties"]["provisioningState"]) == (201, "Creating")
    assert arm_emulator.nodes(pool_id) == []
    assert finish(arm_emulator, headers)["status"] == "Succeeded"
    assert [n["name"] for n in arm_emulator.nodes(pool_id)] == [
        f"{vmss_name(arm_emulator, pool_id)}_{i}" for i in range(2)
    ]
    assert arm_emulator.sshd_states(pool_id) == {("inactive", "disabled")}


def test_upgrade_answers_202_and_reimages_only_when_it_completes(arm_emulator):
    pool_id = f"{DEV}/agentPools/nodepool1"
    arm_emulator.fleet.by_id(pool_id)[1].body["properties"]["securityProfile"] = {"sshAccess": "Disabled"}
    status, headers, body = call(arm_emulator, "POST", f"{pool_id}/upgradeNodeImageVersion")
    example = json.loads((FIXTURES / "aks_2026-01-01_AgentPoolsUpgradeNodeImageVersion.json").read_text())["responses"][
        "202"
    ]
    assert status == 202 and set(example["headers"]) <= set(headers)
    assert body["properties"]["provisioningState"] == example["body"]["properties"]["provisioningState"]
    first = call(arm_emulator, "GET", relative(headers["Azure-AsyncOperation"]))[2]
    assert first["status"] == "InProgress" and "endTime" not in first
    assert arm_emulator.sshd_states(pool_id) == {("active", "enabled")}
    assert finish(arm_emulator, headers)["status"] == "Succeeded"
    assert arm_emulator.sshd_states(pool_id) == {("inactive", "disabled")}
    assert arm_emulator.pool_body(pool_id)["properties"]["nodeImageVersion"] != body["properties"]["nodeImageVersion"]
    # both URLs, as AKS sends them (the spec example shows only the status URL)
    assert "/operationresults/" in headers["Location"]
    assert call(arm_emulator, "GET", relative(headers["Location"]))[0] == 200


def test_upgrade_on_the_latest_image_changes_nothing_on_the_nodes(aks, arm_emulator):
    pool_id = f"{DEV}/agentPools/batch"  # Disabled, nodes not reimaged yet, a newer image exists
    aks.agent_pools.begin_upgrade_node_image_version("rg-dev-weu", "aks-dev-weu", "batch", **FAST).result()
    assert arm_emulator.sshd_states(pool_id) == {("inactive", "disabled")}
    pool = aks.agent_pools.get("rg-dev-weu", "aks-dev-weu", "batch", enforce_https=False)
    assert pool.node_image_version == "AKSUbuntu-2204gen2containerd-202601.19.0"
    pool.security_profile = {"sshAccess": "LocalUser"}
    aks.agent_pools.begin_create_or_update("rg-dev-weu", "aks-dev-weu", "batch", pool, **FAST).result()
    aks.agent_pools.begin_upgrade_node_image_version("rg-dev-weu", "aks-dev-weu", "batch", **FAST).result()
    assert arm_emulator.sshd_states(pool_id) == {("inactive", "disabled")}


def test_from_kubernetes_1_37_the_ssh_change_itself_reimages(arm_emulator):
    pool_id = f"{PROD}/agentPools/apps"
    body = arm_emulator.pool_body(pool_id)
    body["properties"]["securityProfile"] = {"sshAccess": "Disabled"}
    _, headers, _ = call(arm_emulator, "PUT", pool_id, body)
    assert arm_emulator.sshd_states(pool_id) == {("active", "enabled")}
    finish(arm_emulator, headers)
    assert arm_emulator.sshd_states(pool_id) == {("inactive", "disabled")}


def test_one_operation_per_cluster(aks, arm_emulator):
    _, headers, _ = call(arm_emulator, "POST", f"{DEV}/agentPools/nodepool1/upgradeNodeImageVersion")
    status, _, body = call(
        arm_emulator, "PUT", f"{DEV}/agentPools/spot", arm_emulator.pool_body(f"{DEV}/agentPools/spot")
    )
    assert (status, body["error"]["code"]) == (409, "OperationNotAllowed")
    assert (
        "Another agentpool operation (nodepool1 - UpgradingNodeImageVersion) is in progress" in body["error"]["message"]
    )
    assert "https://aka.ms/aks-pending-operation" in body["error"]["message"]
    with pytest.raises(HttpResponseError) as raised:
        aks.agent_pools.begin_upgrade_node_image_version("rg-dev-weu", "aks-dev-weu", "spot", **FAST)
    assert raised.value.status_code == 409 and raised.value.error.code == "OperationNotAllowed"
    finish(arm_emulator, headers)
    aks.agent_pools.begin_upgrade_node_image_version("rg-dev-weu", "aks-dev-weu", "spot", **FAST).result()


def test_a_pool_set_to_a_transitional_state_blocks_writes(arm_emulator):
    arm_emulator.set_provisioning_state(f"{DEV}/agentPools/spot", "Updating")
    status, _, body = call(arm_emulator, "POST", f"{DEV}/agentPools/nodepool1/upgradeNodeImageVersion")
    assert status == 409 and "(spot - Updating)" in body["error"]["message"]


def test_put_agent_pool_is_throttled_after_20_in_a_minute(start_arm_emulator):
    now = [1000.0]
    emulator = start_arm_emulator(clock=lambda: now[0])
    statuses = [call(emulator, "PUT", f"{DEV}/agentPools/spot", {"properties": {}})[0] for _ in range(21)]
    assert 429 not in statuses[:20] and statuses[20] == 429
    status, headers, body = call(emulator, "PUT", f"{DEV}/agentPools/spot", {"properties": {}})
    assert (status, body["error"]["code"], headers["Retry-After"]) == (429, "Throttled", "60")
    assert call(emulator, "PUT", f"{DEV}/agentPools/nodepool1", {"properties": {}})[0] != 429  # per pool
    now[0] += 60
    assert call(emulator, "PUT", f"{DEV}/agentPools/spot", {"properties": {}})[0] != 429


def test_if_match_with_a_stale_etag_is_refused(arm_emulator):
    status, _, body = call(
        arm_emulator, "PUT", f"{DEV}/agentPools/spot", {"properties": {}}, headers={**BEARER, "If-Match": "stale"}
    )
    assert (status, body["error"]["code"]) == (412, "PreconditionFailed")


@pytest.mark.parametrize(
    ("cluster", "pool", "mode", "fragment"),
    [
        (PROD, "npwin", "EntraId", "Windows"),
        (DEV, "vmpool", "Disabled", "VirtualMachineScaleSets"),
        (DEV, "spot", "Off", "not one of"),
    ],
    ids=["entraid-windows", "disabled-virtualmachines", "unknown-mode"],
)
def test_unsupported_ssh_modes_are_refused(arm_emulator, cluster, pool, mode, fragment):
    body = arm_emulator.pool_body(f"{cluster}/agentPools/{pool}")
    body["properties"]["securityProfile"] = {"sshAccess": mode}
    status, _, answer = call(arm_emulator, "PUT", f"{cluster}/agentPools/{pool}", body)
    assert (status, answer["error"]["code"]) == (400, "InvalidParameter") and fragment in answer["error"]["message"]


def test_stopped_cluster_refuses_writes_until_started(arm_emulator):
    status, _, body = call(arm_emulator, "POST", f"{SANDBOX}/agentPools/nodepool1/upgradeNodeImageVersion")
    assert (status, body["error"]["code"]) == (409, "OperationNotAllowed") and "Stopped" in body["error"]["message"]
    status, headers, _ = call(arm_emulator, "POST", f"{SANDBOX}/start")
    assert status == 202
    finish(arm_emulator, headers)
    assert arm_emulator.cluster_body(SANDBOX)["properties"]["powerState"] == {"code": "Running"}
    assert call(arm_emulator, "POST", f"{SANDBOX}/agentPools/nodepool1/upgradeNodeImageVersion")[0] == 202


def test_sdk_deletes_a_pool(aks, arm_emulator):
    aks.agent_pools.begin_delete("rg-dev-weu", "aks-dev-weu", "vmpool", **FAST).result()
    assert [p.name for p in aks.agent_pools.list("rg-dev-weu", "aks-dev-weu", enforce_https=False)] == [
        "nodepool1",
        "spot",
        "batch",
    ]
    arm_emulator.delete_pool(f"{DEV}/agentPools/batch")
    assert call(arm_emulator, "GET", f"{DEV}/agentPools/batch")[0] == 404
    assert call(arm_emulator, "DELETE", f"{DEV}/agentPools/batch")[0] == 204


# --- managed cluster writes ---


def test_cluster_put_changes_the_ssh_key_and_refuses_ed25519(aks, arm_emulator):
    cluster = aks.managed_clusters.get("rg-dev-weu", "aks-dev-weu", enforce_https=False)
    rsa_key = cluster.linux_profile.ssh.public_keys[0].key_data
    ed_key = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    cluster.linux_profile.ssh.public_keys[0].key_data = ed_key.decode()
    with pytest.raises(HttpResponseError) as raised:
        aks.managed_clusters.begin_create_or_update("rg-dev-weu", "aks-dev-weu", cluster, **FAST)
    assert raised.value.error.code == "InvalidParameter" and "ssh-rsa" in raised.value.error.message
    cluster.linux_profile.ssh.public_keys[0].key_data = rsa_key.replace("azureuser@fleet", "rotated")
    updated = aks.managed_clusters.begin_create_or_update("rg-dev-weu", "aks-dev-weu", cluster, **FAST).result()
    assert updated.linux_profile.ssh.public_keys[0].key_data.endswith("rotated")
    assert updated.provisioning_state == "Succeeded" and updated.e_tag != cluster.e_tag
    assert [p.name for p in updated.agent_pool_profiles] == ["nodepool1", "spot", "batch", "vmpool"]


# --- faults ---


def test_armed_fault_answers_matching_requests_then_disarms(arm_emulator):
    arm_emulator.faults.arm(
        "GET", r"/agentPools/spot$", 503, code="ServiceUnavailable", message="try later", headers={"Retry-After": "7"}
    )
    status, headers, body = call(arm_emulator, "GET", f"{DEV}/agentPools/spot")
    assert (status, body["error"]["code"], headers["Retry-After"]) == (503, "ServiceUnavailable", "7")
    assert call(arm_emulator, "GET", f"{DEV}/agentPools/spot")[0] == 200


def test_failed_operation_fails_the_sdk_poller_and_the_pool(aks, arm_emulator):
    arm_emulator.faults.fail_operation(
        r"agentPools/spot/upgradeNodeImageVersion", "ReconcileVMSSAgentPoolFailed", "node drain timed out"
    )
    with pytest.raises(HttpResponseError, match="node drain timed out"):
        aks.agent_pools.begin_upgrade_node_image_version("rg-dev-weu", "aks-dev-weu", "spot", **FAST).result()
    assert arm_emulator.pool_body(f"{DEV}/agentPools/spot")["properties"]["provisioningState"] == "Failed"


def test_admin_api_arms_faults_and_reports_nodes_and_requests(arm_emulator):
    fault = {"method": "GET", "path": "/agentPools$", "status": 500, "code": "InternalServerError", "message": "boom"}
    assert call(arm_emulator, "POST", "/_emulator/faults", fault, headers={}, api_version=None)[0] == 204
    assert call(arm_emulator, "GET", f"{DEV}/agentPools")[2]["error"]["message"] == "boom"
    _, _, nodes = call(
        arm_emulator, "GET", f"/_emulator/nodes?pool={PROD}/agentPools/system", headers={}, api_version=None
    )
    assert {(n["active"], n["enabled"]) for n in nodes["pools"][0]["nodes"]} == {("inactive", "disabled")}
    _, _, log = call(arm_emulator, "GET", "/_emulator/requests", headers={}, api_version=None)
    assert [(r["method"], r["path"]) for r in log["requests"]] == [("GET", f"{DEV}/agentPools")]
    assert call(arm_emulator, "POST", "/_emulator/faults", {"path": "x"}, headers={}, api_version=None)[0] == 400
    arm_emulator.clear_requests()
    assert arm_emulator.requests == []


# --- latency ---

ADMIN = {"headers": {}, "api_version": None}


def test_latency_waits_before_every_arm_request_and_is_set_by_the_admin_api(start_arm_emulator):
    waits: list[float] = []
    emulator = start_arm_emulator(latency_seconds=0.25, sleep=waits.append)
    assert call(emulator, "GET", f"{DEV}/agentPools")[0] == 200
    assert call(emulator, "GET", f"{DEV}/agentPools/nosuchpool")[0] == 404  # errors wait too
    assert call(emulator, "GET", "/_emulator/latency", **ADMIN)[2] == {"seconds": 0.25}  # admin: no wait
    assert waits == [0.25, 0.25]
    assert call(emulator, "PUT", "/_emulator/latency", {"seconds": 0.5}, **ADMIN)[0] == 204
    assert call(emulator, "GET", DEV)[0] == 200
    assert waits == [0.25, 0.25, 0.5]
    assert call(emulator, "PUT", "/_emulator/latency", {"seconds": 0}, **ADMIN)[0] == 204
    call(emulator, "GET", f"{DEV}/agentPools")
    assert waits == [0.25, 0.25, 0.5] and emulator.latency_seconds == 0
    with pytest.raises(ValueError, match="between 0 and 60"):
        start_arm_emulator(latency_seconds=-0.5)


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": 61}, {"seconds": "soon"}, {}], ids=str)
def test_a_bad_latency_is_refused_and_the_old_one_kept(start_arm_emulator, body):
    emulator = start_arm_emulator(latency_seconds=0.1, sleep=lambda _: None)
    status, _, answer = call(emulator, "PUT", "/_emulator/latency", body, **ADMIN)
    assert status == 400 and answer["error"]["code"] == "InvalidRequestContent"
    assert emulator.latency_seconds == 0.1


def test_requests_wait_their_latency_side_by_side(start_arm_emulator):
    """Four requests must all be waiting at once to pass the barrier: served one at a time
    (or waiting under a lock), the first would break it and answer 500."""
    barrier = threading.Barrier(4, timeout=5)
    emulator = start_arm_emulator(latency_seconds=0.01, sleep=lambda _: barrier.wait())
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: call(emulator, "GET", f"{DEV}/agentPools")[0], range(4)))
    assert statuses == [200, 200, 200, 200]


# --- compute ---


def test_node_vmss_and_instances(compute):
    scale_sets = {
        s.tags["aks-managed-poolName"]: s
        for s in compute.virtual_machine_scale_sets.list(DEV_NODES_RG, enforce_https=False)
    }
    assert sorted(scale_sets) == ["batch", "nodepool1", "spot"]  # vmpool is VirtualMachines: no VMSS
    name = scale_sets["nodepool1"].name
    assert (
        name.startswith("aks-nodepool1-") and name.endswith("-vmss") and len(name) == len("aks-nodepool1-12345678-vmss")
    )
    vms = list(compute.virtual_machine_scale_set_vms.list(DEV_NODES_RG, name, enforce_https=False))
    assert [(v.instance_id, v.name) for v in vms] == [(str(i), f"{name}_{i}") for i in range(3)]
    assert compute.virtual_machine_scale_sets.get(DEV_NODES_RG, name.upper(), enforce_https=False).sku.capacity == 3


def test_run_command_output_has_the_real_format(compute, arm_emulator):
    name = vmss_name(arm_emulator, f"{DEV}/agentPools/nodepool1")
    arm_emulator.fleet.by_id(f"{DEV}/agentPools/nodepool1")[1].nodes[0].active = "inactive"  # drift on one node
    script = {
        "commandId": "RunShellScript",
        "script": ["systemctl is-active ssh; systemctl is-enabled ssh", "sudo systemctl status ssh"],
    }
    result = compute.virtual_machine_scale_set_vms.begin_run_command(DEV_NODES_RG, name, "0", script, **FAST).result()
    real = json.loads((FIXTURES / "docs_az_vmss_run-command_invoke_systemctl_status_ssh_disabled.json").read_text())[
        "value"
    ][0]
    assert [{k: v for k, v in s.items() if k != "message"} for s in result.as_dict()["value"]] == [
        {k: v for k, v in real.items() if k != "message"}
    ]
    enabled = (FIXTURES / "docs_systemctl_status_ssh_enabled.txt").read_text()
    disabled = (FIXTURES / "docs_systemctl_status_ssh_disabled.txt").read_text()
    expected_status = enabled.splitlines(keepends=True)[:2] + disabled.splitlines(keepends=True)[2:]
    assert (
        result.value[0].message
        == "Enable succeeded: \n[stdout]\ninactive\nenabled\n" + "".join(expected_status) + "\n[stderr]\n"
    )
    assert real["message"].startswith("Enable succeeded: \n[stdout]\n") and real["message"].endswith("\n[stderr]\n")


def test_run_command_one_at_a_time_per_vm_and_output_truncated(arm_emulator):
    vmss = f"/subscriptions/{SUB_A}/resourceGroups/{DEV_NODES_RG}/providers/Microsoft.Compute/virtualMachineScaleSets"
    run = f"{vmss}/{vmss_name(arm_emulator, f'{DEV}/agentPools/spot')}/virtualMachines/1/runCommand"
    script = {"commandId": "RunShellScript", "script": ["systemctl status ssh"] * 100 + ["unknown-tool"]}
    status, headers, _ = call(arm_emulator, "POST", run, script, api_version="2026-04-01")
    assert status == 202 and "monitor=true" in headers["Location"]
    status, _, body = call(arm_emulator, "POST", run, script, api_version="2026-04-01")
    assert (status, body["error"]["code"]) == (409, "Conflict")
    assert call(arm_emulator, "POST", run.replace("/1/", "/2/"), script, api_version="2026-04-01")[0] == 202
    assert call(arm_emulator, "GET", relative(headers["Location"]))[0] == 202
    status, _, result = call(arm_emulator, "GET", relative(headers["Location"]))
    stdout, stderr = result["value"][0]["message"].removeprefix("Enable succeeded: \n[stdout]\n").split("\n[stderr]\n")
    assert status == 200 and len(stdout.encode()) == 4096 and "unknown-tool: command not found" in stderr
    assert call(arm_emulator, "POST", run, script, api_version="2026-04-01")[0] == 202


# --- command line ---


def test_command_line_serves_the_demo_fleet_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.local.arm_emulator", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        status, _, body = call(
            base_url, "GET", f"/subscriptions/{SUB_B}/providers/Microsoft.ContainerService/managedClusters"
        )
        assert status == 200 and {c["sku"]["name"] for c in body["value"] if "sku" in c} == {"Automatic"}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_cluster_put_creates_a_cluster_with_its_pools(arm_emulator):
    body = arm_emulator.cluster_body(DEV)
    for key in ("id", "name", "eTag"):
        body.pop(key)
    body["properties"].pop("nodeResourceGroup")
    body["properties"]["agentPoolProfiles"] = [{"name": "sys", "count": 2, "mode": "System", "osType": "Linux"}]
    new_id = DEV.replace("aks-dev-weu", "aks-new")
    status, headers, created = call(arm_emulator, "PUT", new_id, body)
    assert (status, created["properties"]["provisioningState"]) == (201, "Creating")
    finish(arm_emulator, headers)
    assert arm_emulator.cluster_body(new_id)["properties"]["nodeResourceGroup"] == "MC_rg-dev-weu_aks-new_westeurope"
    assert arm_emulator.sshd_states(f"{new_id}/agentPools/sys") == {("active", "enabled")}
    assert len(arm_emulator.nodes(f"{new_id}/agentPools/sys")) == 2


def test_demo_fleet_covers_the_scenarios_the_demo_shows(start_arm_emulator):
    demo = json.loads((ROOT / "shared" / "local" / "demo_fleet.json").read_text(encoding="utf-8"))
    emulator = start_arm_emulator(demo)
    clusters = [
        c
        for sub in (SUB_A, SUB_B)
        for c in call(emulator, "GET", f"/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters")[2][
            "value"
        ]
    ]
    pools = [p for c in clusters for p in c["properties"]["agentPoolProfiles"]]  # profiles are flat
    modes = {(p.get("securityProfile") or {}).get("sshAccess", "LocalUser") for p in pools}
    assert len(clusters) >= 3 and modes == {"LocalUser", "Disabled", "EntraId"}
    assert {p["osType"] for p in pools} == {"Linux", "Windows"} and "VirtualMachines" in {p["type"] for p in pools}
    assert {c.get("sku", {}).get("name") for c in clusters} >= {"Automatic"}
    assert "Stopped" in {c["properties"]["powerState"]["code"] for c in clusters}
    assert any(p["orchestratorVersion"].startswith("1.37.") for p in pools)
    assert {c["tags"].get("env") for c in clusters} == {"dev", "prod"}
    configs = [call(emulator, "GET", f"{c['id']}/maintenanceConfigurations")[2]["value"] for c in clusters]
    assert "aksManagedNodeOSUpgradeSchedule" in {m["name"] for found in configs for m in found}
