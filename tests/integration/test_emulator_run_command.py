"""The emulator's VMSS VM run-command and instance views over raw HTTP: result shapes per OS, the
latency option, the run-command log, node state from the fleet document and the admin API."""

from __future__ import annotations

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.local.arm_emulator.__main__ import main
from tests.emulator_fixtures import SUB_A
from tests.integration.test_arm_emulator import (
    ADMIN,
    DEV,
    DEV_NODES_RG,
    PROD,
    SANDBOX,
    call,
    finish,
    relative,
    vmss_name,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROD_NODES_RG = "MC_rg-prod-weu_aks-prod-weu_westeurope"
COMPUTE_API = "2026-04-01"
LINUX = {"commandId": "RunShellScript", "script": ["echo hi"]}
WINDOWS = {"commandId": "RunPowerShellScript", "script": ["Write-Output hi"]}


def vm_path(emulator, cluster: str, pool: str, node_rg: str, instance: str = "0") -> str:
    name = vmss_name(emulator, f"{cluster}/agentPools/{pool}")
    return f"/subscriptions/{SUB_A}/resourceGroups/{node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}/virtualMachines/{instance}"


def run(emulator, path: str, body: dict) -> tuple[int, dict, dict | None]:
    return call(emulator, "POST", f"{path}/runCommand", body, api_version=COMPUTE_API)


def result(emulator, headers: dict, polls: int = 10) -> dict:
    for _ in range(polls):
        status, _, body = call(emulator, "GET", relative(headers["Location"]))
        if status != 202:
            assert status == 200, body
            return body
    raise AssertionError("the run-command never finished")


def test_windows_result_has_the_shape_of_the_compute_rest_example(arm_emulator):
    example = json.loads((FIXTURES / "compute_2025-04-01_VirtualMachineScaleSetVMRunCommand.json").read_text())
    status, headers, _ = run(arm_emulator, vm_path(arm_emulator, PROD, "npwin", PROD_NODES_RG), WINDOWS)
    assert status == 202 and "/providers/Microsoft.Compute/locations/" in headers["Location"]
    body = result(arm_emulator, headers)
    real = example["responses"]["200"]["body"]["value"]
    assert [sorted(s) for s in body["value"]] == [sorted(s) for s in real]
    assert [{k: v for k, v in s.items() if k != "message"} for s in body["value"]] == [
        {k: v for k, v in s.items() if k != "message"} for s in real
    ]
    assert [s["message"] for s in body["value"]] == ["hi", ""]


@pytest.mark.parametrize(
    ("pool", "node_rg", "body", "message"),
    [
        ("npwin", PROD_NODES_RG, LINUX, "Run command OS type 'Linux' does not match the target OS Windows."),
        ("nodepool1", DEV_NODES_RG, WINDOWS, "Run command OS type 'Windows' does not match the target OS Linux."),
    ],
    ids=["shell-on-windows", "powershell-on-linux"],
)
def test_a_command_of_the_other_os_is_a_conflict(arm_emulator, pool, node_rg, body, message):
    cluster = PROD if pool == "npwin" else DEV
    status, _, answer = run(arm_emulator, vm_path(arm_emulator, cluster, pool, node_rg), body)
    assert (status, answer["error"]) == (409, {"code": "Conflict", "message": message})


@pytest.mark.parametrize(
    "body",
    [{"script": ["echo"]}, {"commandId": "ifconfig"}, {"commandId": "RunShellScript", "script": "echo"}],
    ids=["no-command-id", "other-command", "script-not-a-list"],
)
def test_a_bad_run_command_input_is_refused(arm_emulator, body):
    status, _, answer = run(arm_emulator, vm_path(arm_emulator, DEV, "nodepool1", DEV_NODES_RG), body)
    assert (status, answer["error"]["code"]) == (400, "InvalidParameter")


@pytest.mark.parametrize("state", ["deallocated", "stopped", "deallocating"])
def test_run_command_needs_a_running_vm(arm_emulator, state):
    arm_emulator.set_node_power_state(f"{DEV}/agentPools/spot", "2", state)
    status, _, answer = run(arm_emulator, vm_path(arm_emulator, DEV, "spot", DEV_NODES_RG, "2"), LINUX)
    assert (status, answer["error"]["code"]) == (409, "OperationNotAllowed")
    arm_emulator.set_node_power_state(f"{DEV}/agentPools/spot", "2", "running")
    assert run(arm_emulator, vm_path(arm_emulator, DEV, "spot", DEV_NODES_RG, "2"), LINUX)[0] == 202


def test_instance_view_power_state_only_when_expanded(arm_emulator):
    arm_emulator.set_node_power_state(f"{DEV}/agentPools/spot", "1", "deallocated")
    vmss = vm_path(arm_emulator, DEV, "spot", DEV_NODES_RG).rsplit("/virtualMachines/", 1)[0]
    plain = call(arm_emulator, "GET", f"{vmss}/virtualMachines", api_version=COMPUTE_API)[2]["value"]
    assert all("instanceView" not in vm["properties"] for vm in plain)
    expanded = call(arm_emulator, "GET", f"{vmss}/virtualMachines?$expand=instanceView&api-version={COMPUTE_API}")[2]
    codes = [[s["code"] for s in vm["properties"]["instanceView"]["statuses"]] for vm in expanded["value"]]
    assert codes == [["ProvisioningState/succeeded", f"PowerState/{p}"] for p in ("running", "deallocated", "running")]
    view = call(arm_emulator, "GET", f"{vmss}/virtualMachines/1/instanceView", api_version=COMPUTE_API)[2]
    assert view["statuses"][1] == {"code": "PowerState/deallocated", "level": "Info", "displayStatus": "VM deallocated"}


# --- latency and the log ---


def test_run_command_stays_in_progress_for_its_seconds_on_the_emulator_clock(start_arm_emulator):
    now = [100.0]
    emulator = start_arm_emulator(clock=lambda: now[0], lro_polls=0, run_command_seconds=20)
    path = vm_path(emulator, DEV, "nodepool1", DEV_NODES_RG)
    _, headers, _ = run(emulator, path, LINUX)
    now[0] = 119.9
    assert call(emulator, "GET", relative(headers["Location"]))[0] == 202
    assert run(emulator, path, LINUX)[0] == 409  # still busy
    now[0] = 120.0
    assert result(emulator, headers, polls=1)["value"][0]["message"].startswith("Enable succeeded: \n[stdout]\nhi\n")
    [record] = emulator.run_command_log
    assert record == (100.0, 120.0, SUB_A, path.split("/")[-3], "0")


def test_the_log_shows_run_commands_never_overlap_on_one_vm(arm_emulator):
    """Eight clients at once on one VM, in rounds: each round exactly one is accepted, and the
    logged intervals of one VM never overlap."""
    path = vm_path(arm_emulator, DEV, "batch", DEV_NODES_RG, "1")
    barrier = threading.Barrier(8, timeout=5)

    def attempt(_):
        barrier.wait()
        return run(arm_emulator, path, LINUX)

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(attempt, range(8)))
        accepted = [headers for status, headers, _ in answers if status == 202]
        assert len(accepted) == 1 and sorted(s for s, _, _ in answers) == [202] + [409] * 7
        result(arm_emulator, accepted[0])
    log = arm_emulator.run_command_log
    assert len(log) == 3 and {(r.subscription, r.instance) for r in log} == {(SUB_A, "1")}
    assert all(r.end is not None and r.start <= r.end for r in log)
    assert all(earlier.end <= later.start for earlier, later in zip(log, log[1:], strict=False))


def test_admin_api_sets_run_command_seconds_node_state_and_reads_the_log(arm_emulator):
    assert call(arm_emulator, "GET", "/_emulator/run-command-seconds", **ADMIN)[2] == {"seconds": 0.0}
    assert call(arm_emulator, "PUT", "/_emulator/run-command-seconds", {"seconds": 20}, **ADMIN)[0] == 204
    assert arm_emulator.run_command_seconds == 20
    for bad in ({"seconds": -1}, {"seconds": 5401}, {"seconds": "soon"}, {}):
        assert call(arm_emulator, "PUT", "/_emulator/run-command-seconds", bad, **ADMIN)[0] == 400
    assert arm_emulator.run_command_seconds == 20
    pool = f"{DEV}/agentPools/spot"
    change = {"pool": pool, "instanceId": "0", "pubkey": "yes", "powerState": "deallocated", "stdout": "junk"}
    assert call(arm_emulator, "POST", "/_emulator/node", change, **ADMIN)[0] == 204
    node = arm_emulator.nodes(pool)[0]
    assert (node["pubkey"], node["powerState"], node["mode"], node["os"]) == ("yes", "deallocated", "entraid", "ubuntu")
    for bad in (
        {"pool": pool, "instanceId": "9", "active": "active"},
        {"pool": pool, "powerState": "asleep"},
        {"pool": pool, "pubkey": "maybe"},
        {"instanceId": "0"},
    ):
        assert call(arm_emulator, "POST", "/_emulator/node", bad, **ADMIN)[0] == 400
    arm_emulator.run_command_seconds = 0
    _, headers, _ = run(arm_emulator, vm_path(arm_emulator, DEV, "spot", DEV_NODES_RG, "1"), LINUX)
    log = call(arm_emulator, "GET", "/_emulator/run-commands", **ADMIN)[2]["runCommands"]
    assert [(r["instance"], r["end"]) for r in log] == [("1", None)]
    result(arm_emulator, headers)
    assert call(arm_emulator, "GET", "/_emulator/run-commands", **ADMIN)[2]["runCommands"][0]["end"] is not None


@pytest.mark.parametrize("value", ["-1", "5401", "soon"])
def test_command_line_refuses_a_bad_run_command_seconds(value, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--run-command-seconds", value])
    assert exited.value.code == 2 and "--run-command-seconds" in capsys.readouterr().err


# --- node state ---


def test_fleet_nodes_carry_mode_pubkey_and_power_state(start_arm_emulator, test_fleet):
    fleet = copy.deepcopy(test_fleet)
    spot = next(p for p in fleet["clusters"][0]["agentPools"] if p["agentPool"]["name"] == "spot")
    spot["nodes"][0].update(pubkey="yes", powerState="deallocated")
    emulator = start_arm_emulator(fleet)
    nodes = emulator.nodes(f"{DEV}/agentPools/spot")
    assert [(n["mode"], n["pubkey"], n["powerState"]) for n in nodes] == [
        ("entraid", "yes", "deallocated"),
        ("entraid", "no", "running"),
        ("entraid", "no", "running"),
    ]
    batch = emulator.nodes(f"{DEV}/agentPools/batch")  # Disabled, not reimaged: imaged with LocalUser
    assert {(n["active"], n["mode"], n["pubkey"]) for n in batch} == {("active", "localuser", "yes")}
    spot["nodes"][0]["powerState"] = "asleep"
    with pytest.raises(ValueError, match="powerState must be one of"):
        start_arm_emulator(fleet)


def test_os_sku_decides_the_unit_and_sshd_states_stay_those_of_the_unit_that_runs(arm_emulator):
    pool = f"{DEV}/agentPools/batch"
    arm_emulator.fleet.by_id(pool)[1].props["osSKU"] = "AzureLinux"
    assert arm_emulator.sshd_states(pool) == {("active", "enabled")}
    body = {"commandId": "RunShellScript", "script": ["systemctl is-active ssh sshd; systemctl is-enabled sshd"]}
    _, headers, _ = run(arm_emulator, vm_path(arm_emulator, DEV, "batch", DEV_NODES_RG), body)
    assert (
        result(arm_emulator, headers)["value"][0]["message"]
        == "Enable succeeded: \n[stdout]\ninactive\nactive\nenabled\n\n[stderr]\n"
    )
    assert {n["os"] for n in arm_emulator.nodes(pool)} == {"azurelinux"}


def test_a_stopped_cluster_s_vms_are_deallocated_until_it_starts(arm_emulator):
    assert {n["powerState"] for n in arm_emulator.nodes(f"{SANDBOX}/agentPools/nodepool1")} == {"deallocated"}
    _, headers, _ = call(arm_emulator, "POST", f"{SANDBOX}/start")
    finish(arm_emulator, headers)
    assert {n["powerState"] for n in arm_emulator.nodes(f"{SANDBOX}/agentPools/nodepool1")} == {"running"}
    arm_emulator.set_power_state(DEV, "Stopped")
    assert {n["powerState"] for n in arm_emulator.nodes(f"{DEV}/agentPools/spot")} == {"deallocated"}


# --- how Compute announces a run-command (tests/fixtures/SOURCES.md) ---


def test_run_command_is_announced_with_a_status_url_and_a_location_as_compute_does(arm_emulator):
    """202 with both headers: the same operation URL, the Location with `monitor=true`. The status
    URL answers 200 `InProgress` while the script runs, then `Succeeded` with `properties.output`;
    the Location answers 202 until then, and the `RunCommandResult` after."""
    status, headers, body = run(arm_emulator, vm_path(arm_emulator, DEV, "nodepool1", DEV_NODES_RG), LINUX)
    assert (status, body) == (202, None)
    status_url, location = headers["Azure-AsyncOperation"], headers["Location"]
    assert "monitor=true" in location and "monitor=true" not in status_url
    assert status_url.split("?")[0] == location.split("?")[0]
    answer, _, running = call(arm_emulator, "GET", relative(status_url))
    assert (answer, running["status"]) == (200, "InProgress") and "properties" not in running
    answer, _, ended = call(arm_emulator, "GET", relative(status_url))
    assert (answer, ended["status"]) == (200, "Succeeded") and "endTime" in ended
    assert ended["properties"]["output"] == result(arm_emulator, headers, polls=1)
    assert ended["properties"]["output"]["value"][0]["message"].startswith("Enable succeeded: \n[stdout]\nhi\n")


@pytest.mark.parametrize(
    ("shape", "announced"),
    [("async", {"Azure-AsyncOperation"}), ("location", {"Location"}), ("both", {"Azure-AsyncOperation", "Location"})],
)
def test_the_run_command_announcement_can_be_switched(arm_emulator, shape, announced):
    arm_emulator.lro_shapes.set("virtualMachineScaleSets/virtualMachines/runCommand", shape)
    status, headers, _ = run(arm_emulator, vm_path(arm_emulator, DEV, "nodepool1", DEV_NODES_RG), LINUX)
    assert status == 202 and {"Azure-AsyncOperation", "Location"} & set(headers) == announced


def test_a_run_command_answered_in_the_body_shape_is_its_result(arm_emulator):
    arm_emulator.lro_shapes.set("virtualMachineScaleSets/virtualMachines/runCommand", "body")
    status, headers, body = run(arm_emulator, vm_path(arm_emulator, DEV, "nodepool1", DEV_NODES_RG), LINUX)
    assert status == 200 and not {"Azure-AsyncOperation", "Location"} & set(headers)
    assert body["value"][0]["message"].startswith("Enable succeeded: \n[stdout]\nhi\n")


def test_an_unknown_operation_or_shape_is_refused_by_the_admin_api(arm_emulator):
    with pytest.raises(ValueError, match="shape must be one of"):
        arm_emulator.lro_shapes.set("agentPools/write", "sideways")
    with pytest.raises(ValueError, match="operation must be one of"):
        arm_emulator.lro_shapes.set("agentPools/read", "both")
    assert arm_emulator.lro_shapes["agentPools/write"] == "async"
