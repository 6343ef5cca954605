"""Microsoft.Compute views of the node pools: the VMSS AKS creates in the node resource group, their
VM instances (with the instance view's power state on `$expand=instanceView`), and VMSS VM
run-command, whose scripts run in the node shells of `node_shell`.

Run-command as Compute answers it: `RunShellScript` on Linux nodes, `RunPowerShellScript` on
Windows nodes (the other way round: 409 Conflict "Run command OS type ... does not match the target
OS ..."); only on a running VM (else 409 OperationNotAllowed); one at a time per VM (409 Conflict).
The result has the shape of the OS's extension: Linux one `ProvisioningState/succeeded` status
"Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n..." (as `az vmss run-command invoke` prints
it), Windows a `ComponentStatus/StdOut/succeeded` and a `ComponentStatus/StdErr/succeeded` status
(the Compute REST example); stdout and stderr each keep their last 4,096 bytes. The operation stays
InProgress for `lro_polls` reads and at least `run_command_seconds` of the emulator's clock.

Announced as Compute announces it (a recorded `az vmss run-command invoke`, tests/fixtures): 202
with an `Azure-AsyncOperation` status URL and a `Location`, the same URL with `monitor=true`. The
status URL answers 200 with `status`, and at the end `properties.output` (the result); the
`Location` answers 202 while the command runs, then the `RunCommandResult`.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.faults import Faults
from shared.local.arm_emulator.node_shell import run_bash, run_powershell
from shared.local.arm_emulator.operations import (
    BODY,
    LroShapes,
    Operation,
    Operations,
    location_result,
    lro_headers,
    retry_after_header,
    utc_now,
)
from shared.local.arm_emulator.state import WINDOWS, Cluster, Fleet, Node, Pool, os_family
from shared.local.arm_emulator.wire import Request, Response, Router

NAMESPACE = "Microsoft.Compute"
RUN_COMMAND = "virtualMachineScaleSets/virtualMachines/runCommand"
VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VMSS = "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets"
OUTPUT_LIMIT = 4096  # run-command keeps the last 4,096 bytes of stdout and of stderr
COMMAND_OS = {"RunShellScript": "Linux", "RunPowerShellScript": "Windows"}
RUNNABLE = frozenset({"starting", "running"})  # "requires the VM to be running (or set to run)"
_HERE = Path(__file__).parent


class RunCommandRecord(NamedTuple):
    """One run-command Compute accepted: when it started and ended (the emulator's clock; end None
    while it runs) and on which VM."""

    start: float
    end: float | None
    subscription: str
    vmss: str
    instance: str


class ComputeApi:
    def __init__(
        self,
        fleet: Fleet,
        operations: Operations,
        faults: Faults,
        retry_after: int | None,
        clock: Callable[[], float],
        shapes: LroShapes,
    ):
        self.fleet = fleet
        self.shapes = shapes
        self.operations = operations
        self.faults = faults
        self.retry_after = retry_after
        self.clock = clock
        self.run_command_seconds = 0.0
        self.log: list[RunCommandRecord] = []  # guarded by the fleet lock
        self._template = json.loads((_HERE / "vmss_template.json").read_text(encoding="utf-8"))

    def register(self, router: Router) -> None:
        router.add("GET", VMSS, self.list_vmss)
        router.add("GET", VMSS + "/{vmss}", self.get_vmss)
        router.add("GET", VMSS + "/{vmss}/virtualMachines", self.list_vms)
        router.add("GET", VMSS + "/{vmss}/virtualMachines/{vm}", self.get_vm)
        router.add("GET", VMSS + "/{vmss}/virtualMachines/{vm}/instanceView", self.get_instance_view)
        router.add("POST", VMSS + "/{vmss}/virtualMachines/{vm}/runCommand", self.run_command)
        router.add(
            "GET", "/subscriptions/{s}/providers/Microsoft.Compute/locations/{loc}/operations/{op}", self.operation
        )

    def list_vmss(self, req: Request, s: str, rg: str) -> Response:
        with self.fleet.lock:
            if not self.fleet.resource_group_exists(s, rg):
                raise errors.resource_group_not_found(rg)
            return Response(200, {"value": [self._vmss_view(c, p) for c, p in self.fleet.node_pools(s, rg)]})

    def get_vmss(self, req: Request, s: str, rg: str, vmss: str) -> Response:
        with self.fleet.lock:
            return Response(200, self._vmss_view(*self._scale_set(s, rg, vmss)))

    def list_vms(self, req: Request, s: str, rg: str, vmss: str) -> Response:
        expand = wants_instance_view(req)
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            return Response(200, {"value": [vm_view(cluster, pool, node, expand) for node in pool.nodes]})

    def get_vm(self, req: Request, s: str, rg: str, vmss: str, vm: str) -> Response:
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            return Response(200, vm_view(cluster, pool, find_node(pool, vm), wants_instance_view(req)))

    def get_instance_view(self, req: Request, s: str, rg: str, vmss: str, vm: str) -> Response:
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            return Response(200, instance_view(cluster, pool, find_node(pool, vm)))

    def run_command(self, req: Request, s: str, rg: str, vmss: str, vm: str) -> Response:
        command_id, script = command_input(req.json())
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            node = find_node(pool, vm)
            target_os = "Windows" if os_family(pool) == WINDOWS else "Linux"
            if COMMAND_OS[command_id] != target_os:
                raise errors.run_command_os_mismatch(COMMAND_OS[command_id], target_os)
            if node.power_state not in RUNNABLE:
                raise errors.vm_not_running()
            if node.busy_with:
                raise errors.run_command_conflict()
            operation = self._start_run(req, cluster, pool, node, script)
            shape = self.shapes[RUN_COMMAND]
            if shape == BODY:  # answered once the command ran: its result at once
                self.operations.end_now(operation)
                return location_result(operation, req, self.retry_after)
        # Compute's two URLs differ only in `monitor=true`: the status body, and the result.
        base = f"{req.base_url}/subscriptions/{s}/providers/{NAMESPACE}/locations/{operation.location}"
        query = f"p={operation.partition}&api-version={req.api_version}"
        status_url = f"{base}/operations/{operation.id}?{query}"
        location = (
            f"{base}/operations/{operation.id}?p={operation.partition}&monitor=true&api-version={req.api_version}"
        )
        return Response(202, None, lro_headers(shape, status_url, location, self.retry_after))

    def _start_run(self, req: Request, cluster: Cluster, pool: Pool, node: Node, script: list[str]) -> Operation:
        """The operation of one run-command: the VM is busy until it ends, the script runs at its end."""
        started = self.clock()
        index = len(self.log)
        self.log.append(
            RunCommandRecord(started, None, cluster.subscription, vmss_name(cluster, pool), node.instance_id)
        )
        outcome: dict = {}

        def finish(ok: bool) -> None:
            node.busy_with = None
            self.log[index] = self.log[index]._replace(end=self.clock())
            if ok:
                outcome["body"] = run_script(script, node, os_family(pool))
            node.runs += 1

        operation = self.operations.start(
            NAMESPACE,
            cluster.location.replace(" ", "").lower(),
            finish,
            fault=self.faults.take_operation_fault(req.path),
            not_before=started + self.run_command_seconds,
        )
        operation.result = lambda: (200, outcome["body"])
        node.busy_with = operation.id
        return operation

    def operation(self, req: Request, s: str, loc: str, op: str) -> Response:
        """`monitor=true`: the `Location` (202 while it runs, then the `RunCommandResult`); without
        it, the status body, which carries the result as `properties.output` at the end."""
        operation = self.operations.poll(NAMESPACE, op)
        if req.query.get("monitor", "").lower() == "true":
            return location_result(operation, req, self.retry_after)
        output = operation.result()[1] if operation.done and operation.result and not operation.fault else None
        headers = retry_after_header(self.retry_after) if not operation.done else {}
        return Response(200, operation.status_body(s, output), headers)

    def _scale_set(self, s: str, rg: str, vmss: str) -> tuple[Cluster, Pool]:
        for cluster, pool in self.fleet.node_pools(s, rg):
            if vmss_name(cluster, pool).lower() == vmss.lower():
                return cluster, pool
        if not self.fleet.resource_group_exists(s, rg):
            raise errors.resource_group_not_found(rg)
        raise errors.resource_not_found(VMSS_TYPE, vmss, rg)

    def _vmss_view(self, cluster: Cluster, pool: Pool) -> dict:
        """The generic VMSS example body with what AKS sets: name, tags, sku, computer name prefix."""
        name = vmss_name(cluster, pool)
        body = copy.deepcopy(self._template)
        body.update(id=vmss_id(cluster, pool), name=name, location=cluster.location, tags=vmss_tags(cluster, pool))
        body["sku"].update(name=pool.props.get("vmSize", "Standard_DS2_v2"), capacity=len(pool.nodes))
        os_profile = body["properties"]["virtualMachineProfile"]["osProfile"]
        os_profile.update(computerNamePrefix=name, adminUsername=admin_user(cluster, pool))
        return body


def vmss_name(cluster: Cluster, pool: Pool) -> str:
    """Linux: aks-{pool}-{8 digits}-vmss; Windows node names are short: aks{pool}."""
    if str(pool.props.get("osType", "Linux")).lower() == "windows":
        return f"aks{pool.name}"
    return f"aks-{pool.name}-{cluster.name_suffix}-vmss"


def vmss_id(cluster: Cluster, pool: Pool) -> str:
    return (
        f"/subscriptions/{cluster.subscription}/resourceGroups/{cluster.node_resource_group}"
        f"/providers/{VMSS_TYPE}/{vmss_name(cluster, pool)}"
    )


def vmss_tags(cluster: Cluster, pool: Pool) -> dict:
    return {
        **(pool.props.get("tags") or {}),
        "aks-managed-creationSource": f"vmssclient-{vmss_name(cluster, pool)}",
        "aks-managed-orchestrator": f"Kubernetes:{pool.props.get('orchestratorVersion', '')}",
        "aks-managed-poolName": pool.name,
        "aks-managed-resourceNameSuffix": cluster.name_suffix,
    }


def admin_user(cluster: Cluster, pool: Pool) -> str:
    profile = "windowsProfile" if str(pool.props.get("osType")).lower() == "windows" else "linuxProfile"
    return (cluster.props.get(profile) or {}).get("adminUsername", "azureuser")


def wants_instance_view(req: Request) -> bool:
    return next((v for k, v in req.query.items() if k.lower() == "$expand"), "").lower() == "instanceview"


def vm_view(cluster: Cluster, pool: Pool, node: Node, expand: bool = False) -> dict:
    name = vmss_name(cluster, pool)
    vm_id = f"{vmss_id(cluster, pool)}/virtualMachines/{node.instance_id}"
    body = {
        "name": f"{name}_{node.instance_id}",
        "id": vm_id,
        "type": f"{VMSS_TYPE}/virtualMachines",
        "location": cluster.location,
        "instanceId": node.instance_id,
        "sku": {"name": pool.props.get("vmSize", "Standard_DS2_v2"), "tier": "Standard"},
        "tags": vmss_tags(cluster, pool),
        "properties": {
            "latestModelApplied": True,
            "vmId": str(uuid.uuid5(uuid.NAMESPACE_URL, vm_id.lower())),
            "provisioningState": "Succeeded",
            "osProfile": {"computerName": computer_name(cluster, pool, node)},
        },
    }
    if expand:
        body["properties"]["instanceView"] = instance_view(cluster, pool, node)
    return body


def computer_name(cluster: Cluster, pool: Pool, node: Node) -> str:
    return f"{vmss_name(cluster, pool)}{base36(int(node.instance_id)).rjust(6, '0')}"


def instance_view(cluster: Cluster, pool: Pool, node: Node) -> dict:
    """The VM's instance view as far as the warden reads it: its provisioning and power states."""
    return {
        "computerName": computer_name(cluster, pool, node),
        "statuses": [
            {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "time": utc_now(),
            },
            {"code": f"PowerState/{node.power_state}", "level": "Info", "displayStatus": f"VM {node.power_state}"},
        ],
    }


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def find_node(pool: Pool, instance_id: str) -> Node:
    for node in pool.nodes:
        if node.instance_id == instance_id:
            return node
    # Compute's answer for an instance id the scale set does not have.
    raise errors.child_not_found("The entity was not found in this Azure location.")


def command_input(body: dict) -> tuple[str, list[str]]:
    """(commandId, script lines) of a RunCommandInput body."""
    command_id, script = body.get("commandId"), body.get("script") or []
    if command_id not in COMMAND_OS or not isinstance(script, list):
        raise errors.invalid_parameter(
            "commandId/script",
            f"expected {{'commandId': 'RunShellScript' or 'RunPowerShellScript', 'script': [lines]}}, "
            f"got commandId {command_id!r} (the emulator runs no other command).",
        )
    return command_id, [str(line) for line in script]


def run_script(script: list[str], node: Node, os: str) -> dict:
    """The run-command result of the script on this node, in its OS's shape."""
    if os == WINDOWS:
        stdout, stderr = run_powershell(script, node)
    else:
        stdout, stderr = run_bash(script, node, os)
    if node.stdout_override is not None:
        stdout = node.stdout_override
    return windows_result(stdout, stderr) if os == WINDOWS else linux_result(stdout, stderr)


def linux_result(stdout: str, stderr: str) -> dict:
    message = f"Enable succeeded: \n[stdout]\n{_tail(stdout)}\n[stderr]\n{_tail(stderr)}"
    status = {
        "code": "ProvisioningState/succeeded",
        "displayStatus": "Provisioning succeeded",
        "level": "Info",
        "message": message,
        "time": None,
    }
    return {"value": [status]}


def windows_result(stdout: str, stderr: str) -> dict:
    """Two statuses; each message is the stream without its final line break, as in the REST example."""
    return {
        "value": [
            {
                "code": f"ComponentStatus/{stream}/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": _tail(text).rstrip("\r\n"),
            }
            for stream, text in (("StdOut", stdout), ("StdErr", stderr))
        ]
    }


def _tail(text: str) -> str:
    data = text.encode()
    return data[-OUTPUT_LIMIT:].decode(errors="ignore") if len(data) > OUTPUT_LIMIT else text
