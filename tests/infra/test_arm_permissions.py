"""The warden's custom role holds exactly the ARM actions the app performs: no more, no fewer.

The whole warden runs on the local Azure (Azurite, the ARM emulator over HTTP, the real SDKs and
replay engine): an event reconciles a drifted pool inside its node-OS maintenance window, the
resync sweeps the fleet, the verification runs run-commands on the nodes, and a key rotation PUTs
the cluster. Every request the emulator saw is mapped to the ARM action that authorizes it (an
unmapped request fails the test), and the actions must equal the role's in infra/ — with and
without key rotation, which alone needs the cluster write. Every method of the ARM adapter must
have run, so a new ARM call cannot slip past without its permission.
"""

from __future__ import annotations

import inspect
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters.arm import Arm
from shared.core.models import Target
from shared.core.protocol import WorkKind
from shared.policy.window import upgrade_gate
from shared.preflight.permissions import required_actions
from shared.triggers.resync import resync
from shared.triggers.start import request_work
from tests.infra.bicep_model import INFRA, custom_role_actions, load
from tests.warden_fixtures import DEV, arm_event

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
ADAPTER_PLUMBING = {"close", "aks", "compute"}  # clients and their lifetime, no ARM request of their own

_SUB = r"/subscriptions/[^/]+"
_RG = _SUB + r"/resourceGroups/[^/]+"
_AKS = _RG + r"/providers/Microsoft\.ContainerService/managedClusters/[^/]+"
_VMSS = _RG + r"/providers/Microsoft\.Compute/virtualMachineScaleSets"
_CS, _COMPUTE = "Microsoft.ContainerService", "Microsoft.Compute"
# (method, path) -> the action ARM checks for it. Operation-status URLs are the provider's
# locations/operations resources (the Azure-AsyncOperation header points there).
ACTIONS = [
    ("GET", _SUB + r"/providers/Microsoft\.ContainerService/managedClusters", f"{_CS}/managedClusters/read"),
    ("GET", _AKS, f"{_CS}/managedClusters/read"),
    ("PUT", _AKS, f"{_CS}/managedClusters/write"),
    ("GET", _AKS + r"/agentPools(/[^/]+)?", f"{_CS}/managedClusters/agentPools/read"),
    ("PUT", _AKS + r"/agentPools/[^/]+", f"{_CS}/managedClusters/agentPools/write"),
    (
        "POST",
        _AKS + r"/agentPools/[^/]+/upgradeNodeImageVersion",
        f"{_CS}/managedClusters/agentPools/upgradeNodeImageVersion/action",
    ),
    ("GET", _AKS + r"/maintenanceConfigurations(/[^/]+)?", f"{_CS}/managedClusters/maintenanceConfigurations/read"),
    (
        "GET",
        _SUB + r"/providers/Microsoft\.ContainerService/locations/[^/]+/operations/[^/]+",
        f"{_CS}/locations/operations/read",
    ),
    (
        "GET",
        _SUB + r"/providers/Microsoft\.ContainerService/locations/[^/]+/operationresults/[^/]+",
        f"{_CS}/locations/operationresults/read",
    ),
    ("GET", _VMSS + r"(/[^/]+)?", f"{_COMPUTE}/virtualMachineScaleSets/read"),
    (
        "GET",
        _VMSS + r"/[^/]+/virtualMachines(/[^/]+(/instanceView)?)?",
        f"{_COMPUTE}/virtualMachineScaleSets/virtualMachines/read",
    ),
    (
        "POST",
        _VMSS + r"/[^/]+/virtualMachines/[^/]+/runCommand",
        f"{_COMPUTE}/virtualMachineScaleSets/virtualMachines/runCommand/action",
    ),
    (
        "GET",
        _SUB + r"/providers/Microsoft\.Compute/locations/[^/]+/operations/[^/]+",
        f"{_COMPUTE}/locations/operations/read",
    ),
]


def action_of(method: str, path: str) -> str:
    for known_method, pattern, action in ACTIONS:
        if method == known_method and re.fullmatch(pattern, path, re.IGNORECASE):
            return action
    raise AssertionError(f"{method} {path}: no ARM action known for this request; add it to ACTIONS and the role")


def actions_of(requests) -> set[str]:
    return {action_of(r.method, r.path) for r in requests}


def adapter_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(Arm, inspect.isfunction)
        if not name.startswith("_") and name not in ADAPTER_PLUMBING
    }


@pytest.fixture
def adapter_calls(monkeypatch) -> set[str]:
    """The names of the ARM adapter's methods called while the test runs."""
    called: set[str] = set()
    for name in adapter_methods():
        original = getattr(Arm, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            called.add(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Arm, name, spy)
    return called


def role_actions(key_rotation: bool) -> set[str]:
    return custom_role_actions(
        load(INFRA / "modules" / "warden-role.bicep"), "wardenRole", {"keyRotationEnabled": key_rotation}
    )


def rsa_public_key() -> str:
    key = rsa.generate_private_key(65537, 3072).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def rotate_keys(w) -> None:
    async def ask(client):
        await request_work(
            client, w.runtime.store, Target(DEV), "test", "tester", WorkKind.ROTATE_KEYS, rsa_public_key()
        )

    w.functions.with_client(ask)
    w.functions.run()


def enforce_and_verify(w) -> None:
    """An event for a drifted pool, held for the node-OS window; the resync inside the window
    upgrades it and the verification that follows checks its nodes by run-command."""
    [config] = w.runtime.arm.list_maintenance_configurations(DEV)
    gate = upgrade_gate(dict(config.window), w.clock.now())
    w.deliver(arm_event(NODEPOOL1))
    w.clock.advance_to(gate.opens_at - timedelta(minutes=30))
    w.functions.with_client(lambda client: resync(client, w.runtime))
    w.functions.run()
    # Reads that only rarer paths make (a pool judged after its operation URL expired, a lookup
    # of one pool's scale set): called directly, so their requests are checked too.
    assert w.runtime.arm.get_pool(DEV, "nodepool1").name == "nodepool1"
    assert w.runtime.arm.find_pool_vmss(w.runtime.arm.get_cluster(DEV), "nodepool1") is not None


def test_the_role_holds_exactly_the_actions_the_app_performs(warden, arm_emulator, adapter_calls):
    w = warden({"default": "Disabled", "upgrade": {"window": "nodeOSSchedule"}})
    enforce_and_verify(w)
    enforcing = arm_emulator.requests
    arm_emulator.clear_requests()
    rotate_keys(w)
    rotating = arm_emulator.requests

    assert adapter_calls == adapter_methods(), (
        f"ARM adapter methods never run here: {adapter_methods() - adapter_calls}"
    )
    methods = {r.method for r in enforcing}
    assert {"PUT", "POST"} <= methods and any(r.path.endswith("/runCommand") for r in enforcing), "a flow did not run"
    assert actions_of(enforcing) == role_actions(key_rotation=False)
    assert actions_of(enforcing) | actions_of(rotating) == role_actions(key_rotation=True)


def test_the_role_is_built_from_the_one_list_the_doctor_checks():
    """shared/preflight/permissions.py is the code's one list of actions: the Bicep role holds the same."""
    assert role_actions(key_rotation=False) == set(required_actions(key_rotation=False))
    assert role_actions(key_rotation=True) == set(required_actions(key_rotation=True))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"{DEV.id}/agentPools/nodepool1"),
        ("POST", f"{DEV.id}/stop"),
        ("GET", f"/subscriptions/{DEV.subscription}/resourceGroups"),
    ],
    ids=["pool-delete", "cluster-stop", "resource-groups"],
)
def test_a_request_outside_the_table_fails_the_check(method, path):
    with pytest.raises(AssertionError, match="no ARM action known"):
        action_of(method, path)
