"""Reading run-command results and VMSS VM instance views: the pure parsers of the ARM adapter,
on the real payloads in tests/fixtures (loaded as they are) and on the emulator's own answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.adapters.arm_parse import run_command_output_from_arm, vm_instance_from_arm
from shared.core.models import RunCommandOutput, VmInstance
from shared.local.arm_emulator.compute import linux_result, windows_result

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_linux_result_of_az_vmss_run_command_invoke_from_the_aks_docs():
    output = run_command_output_from_arm(fixture("docs_az_vmss_run-command_invoke_systemctl_status_ssh_disabled.json"))
    assert output.stdout.startswith("○ ssh.service - OpenBSD Secure Shell server\n     Loaded: loaded (")
    assert "Active: inactive (dead) since Wed 2024-01-03 15:36:53 UTC" in output.stdout
    assert output.stdout.endswith("systemd[1]: Stopped OpenBSD Secure Shell server.\n")
    assert "[stdout]" not in output.stdout and "Enable succeeded" not in output.stdout
    assert output.stderr == ""


def test_windows_result_of_the_compute_rest_example():
    example = fixture("compute_2025-04-01_VirtualMachineScaleSetVMRunCommand.json")
    assert example["parameters"]["parameters"]["commandId"] == "RunPowerShellScript"
    assert run_command_output_from_arm(example["responses"]["200"]["body"]) == RunCommandOutput("Hello World!", "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (linux_result("active\nenabled\n", "x: command not found\n"), ("active\nenabled\n", "x: command not found\n")),
        (linux_result("", ""), ("", "")),
        (linux_result("a\n[stderr]\nb\n", ""), ("a", "b\n\n[stderr]\n")),  # the first marker cuts: never more stdout
        (windows_result("== done\n", "oops\n"), ("== done", "oops")),
        (
            {
                "value": [
                    {"code": "componentstatus/stderr/succeeded", "message": "e"},
                    {"code": "ComponentStatus/StdOut/succeeded", "message": "o"},
                ]
            },
            ("o", "e"),
        ),
        (
            {"value": [{"code": "ProvisioningState/failed", "message": "VM has reported a failure"}]},
            ("", "VM has reported a failure"),
        ),
        ({"value": []}, ("", "")),
        ({}, ("", "")),
        ({"value": ["junk", {"code": None, "message": None}]}, ("", "")),
    ],
    ids=[
        "linux-both-streams",
        "linux-empty",
        "linux-marker-in-stdout",
        "windows-trimmed",
        "windows-any-order-and-casing",
        "no-markers-is-stderr",
        "no-statuses",
        "no-value",
        "junk-statuses",
    ],
)
def test_run_command_output_from_either_shape(body, expected):
    assert run_command_output_from_arm(body) == RunCommandOutput(*expected)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            fixture("compute_2025-04-01_VirtualMachineScaleSetVM_List_MinimumSet_Gen.json")["responses"]["200"]["body"][
                "value"
            ][0],
            VmInstance("0", ""),
        ),
        (
            {
                "instanceId": "7",
                "properties": {
                    "instanceView": {
                        "statuses": [
                            {
                                "code": "ProvisioningState/succeeded",
                                "level": "Info",
                                "displayStatus": "Provisioning succeeded",
                            },
                            {"code": "PowerState/deallocated", "level": "Info", "displayStatus": "VM deallocated"},
                        ]
                    }
                },
            },
            VmInstance("7", "deallocated"),
        ),
        (
            {"instanceId": "3", "properties": {"instanceView": {"statuses": [{"code": "PowerState/running"}]}}},
            VmInstance("3", "running"),
        ),
        (
            {
                "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/12",
                "properties": {},
            },
            VmInstance("12", ""),
        ),
    ],
    ids=["spec-minimum-list-item", "deallocated", "running", "id-only"],
)
def test_vm_instance_power_state_from_the_instance_view(body, expected):
    assert vm_instance_from_arm(body) == expected
    assert expected.running is (expected.power_state == "running")
