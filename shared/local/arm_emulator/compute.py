"""Microsoft.Compute views of the node pools: the VMSS AKS creates in the node resource group, their
VM instances, and VMSS VM run-command with a minimal shell that answers sshd questions.

Only `systemctl is-active|is-enabled|status ssh` is understood (also `sshd`, `.service`, `sudo`);
commands are split on `;` and newlines. The result has the real shape of `az vmss run-command invoke`:
one `ProvisioningState/succeeded` status whose message is "Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n".
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.operations import Operations, location_result
from shared.local.arm_emulator.state import Cluster, Fleet, Node, Pool
from shared.local.arm_emulator.wire import Request, Response, Router

NAMESPACE = "Microsoft.Compute"
VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VMSS = "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets"
OUTPUT_LIMIT = 4096  # run-command keeps the last 4,096 bytes of stdout and of stderr
_HERE = Path(__file__).parent
_SYSTEMCTL = re.compile(
    r"^(?:sudo\s+)?systemctl\s+(?P<verb>is-active|is-enabled|status)\s+(?:--?\S+\s+)*(?P<unit>sshd?)(?:\.service)?$"
)


class ComputeApi:
    def __init__(self, fleet: Fleet, operations: Operations, retry_after: int):
        self.fleet = fleet
        self.operations = operations
        self.retry_after = retry_after
        self._template = json.loads((_HERE / "vmss_template.json").read_text(encoding="utf-8"))

    def register(self, router: Router) -> None:
        router.add("GET", VMSS, self.list_vmss)
        router.add("GET", VMSS + "/{vmss}", self.get_vmss)
        router.add("GET", VMSS + "/{vmss}/virtualMachines", self.list_vms)
        router.add("GET", VMSS + "/{vmss}/virtualMachines/{vm}", self.get_vm)
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
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            return Response(200, {"value": [vm_view(cluster, pool, node) for node in pool.nodes]})

    def get_vm(self, req: Request, s: str, rg: str, vmss: str, vm: str) -> Response:
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            return Response(200, vm_view(cluster, pool, find_node(pool, vm)))

    def run_command(self, req: Request, s: str, rg: str, vmss: str, vm: str) -> Response:
        script = script_lines(req.json())
        with self.fleet.lock:
            cluster, pool = self._scale_set(s, rg, vmss)
            node = find_node(pool, vm)
            if node.busy_with:
                raise errors.run_command_conflict()
            outcome: dict = {}

            def finish(ok: bool) -> None:
                node.busy_with = None
                outcome["body"] = run_command_result(*run_script(script, node))

            operation = self.operations.start(NAMESPACE, cluster.location.replace(" ", "").lower(), finish)
            operation.result = lambda: (200, outcome["body"])
            node.busy_with = operation.id
        base = f"{req.base_url}/subscriptions/{s}/providers/{NAMESPACE}/locations/{operation.location}"
        location = f"{base}/operations/{operation.id}?monitor=true&api-version={req.api_version}"
        return Response(202, None, {"Location": location, "Retry-After": str(self.retry_after)})

    def operation(self, req: Request, s: str, loc: str, op: str) -> Response:
        return location_result(self.operations.poll(NAMESPACE, op), req, self.retry_after)

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


def vm_view(cluster: Cluster, pool: Pool, node: Node) -> dict:
    name = vmss_name(cluster, pool)
    vm_id = f"{vmss_id(cluster, pool)}/virtualMachines/{node.instance_id}"
    return {
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
            "osProfile": {"computerName": f"{name}{base36(int(node.instance_id)).rjust(6, '0')}"},
        },
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


def script_lines(body: dict) -> list[str]:
    script = body.get("script") or []
    if not body.get("commandId") or not isinstance(script, list):
        raise errors.invalid_parameter(
            "commandId/script", "expected {'commandId': 'RunShellScript', 'script': [lines]}."
        )
    return [str(line) for line in script]


def run_script(script: list[str], node: Node) -> tuple[str, str]:
    """(stdout, stderr) of the script on this node, one command at a time."""
    stdout, stderr = [], []
    commands = [c.strip() for line in script for c in re.split(r"[;\n]", line)]
    for number, command in enumerate((c for c in commands if c and not c.startswith("#")), start=1):
        match = _SYSTEMCTL.match(command)
        if not match:
            stderr.append(
                f"/var/lib/waagent/run-command/download/0/script.sh: line {number}: {command}: command not found\n"
            )
        elif match["verb"] == "is-active":
            stdout.append(node.active + "\n")
        elif match["verb"] == "is-enabled":
            stdout.append(node.enabled + "\n")
        else:
            stdout.append(systemctl_status(node))
    return "".join(stdout), "".join(stderr)


def systemctl_status(node: Node) -> str:
    """`systemctl status ssh` as the AKS docs print it: Loaded line per enablement, Active line per state."""
    enabled = _status_text("enabled").splitlines(keepends=True)
    disabled = _status_text("disabled").splitlines(keepends=True)
    loaded = enabled[1] if node.enabled == "enabled" else disabled[1]
    active = enabled[2] if node.active == "active" else disabled[2]
    return enabled[0] + loaded + active


def _status_text(which: str) -> str:
    return (_HERE / f"sshd_status_{which}.txt").read_text(encoding="utf-8")


def run_command_result(stdout: str, stderr: str) -> dict:
    message = f"Enable succeeded: \n[stdout]\n{_tail(stdout)}\n[stderr]\n{_tail(stderr)}"
    status = {
        "code": "ProvisioningState/succeeded",
        "displayStatus": "Provisioning succeeded",
        "level": "Info",
        "message": message,
        "time": None,
    }
    return {"value": [status]}


def _tail(text: str) -> str:
    data = text.encode()
    return data[-OUTPUT_LIMIT:].decode(errors="ignore") if len(data) > OUTPUT_LIMIT else text
