"""Plain data the layers exchange: no SDK types, no I/O.

Adapters build these from ARM payloads; the policy engine and the planner read them;
orchestrations pass them as JSON (`to_json`/`from_json`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any

from azure.mgmt.core.tools import parse_resource_id

from shared.errors import OutOfScopeError

AKS_NAMESPACE = "microsoft.containerservice"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class SshAccess(StrEnum):
    """A pool's `securityProfile.sshAccess`. Compared case-insensitively: the API says
    `EntraId`, the docs `EntraID`, the CLI sends lowercase."""

    DISABLED = "Disabled"
    ENTRA_ID = "EntraId"
    LOCAL_USER = "LocalUser"

    @classmethod
    def parse(cls, value: str | None) -> SshAccess:
        """ARM's value to a mode; a missing value means `LocalUser` (the AKS default)."""
        if value is None or value == "":
            return cls.LOCAL_USER
        for mode in cls:
            if mode.value.lower() == str(value).lower():
                return mode
        raise ValueError(f"unknown sshAccess {value!r}; expected one of {', '.join(m.value for m in cls)}")


@dataclass(frozen=True, order=True)
class ClusterRef:
    """Names one AKS cluster. Fields keep ARM's casing; `key` is the normalised identity."""

    subscription: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )

    @property
    def key(self) -> str:
        """Case-normalised id: ARM ids are case-insensitive and event subjects vary in casing."""
        return self.id.lower()

    def __str__(self) -> str:
        return f"{self.resource_group}/{self.name}"


@dataclass(frozen=True)
class Target:
    """What a trigger names: a cluster, optionally one of its pools."""

    cluster: ClusterRef
    pool: str | None = None

    @classmethod
    def from_id(cls, resource_id: str) -> Target:
        """Parse a managed-cluster or agent-pool id; anything else raises `OutOfScopeError`."""
        parts = parse_resource_id(resource_id or "")
        if (
            not _GUID.match(parts.get("subscription", ""))
            or not parts.get("resource_group")
            or parts.get("namespace", "").lower() != AKS_NAMESPACE
            or parts.get("type", "").lower() != "managedclusters"
            or not parts.get("name")
        ):
            raise OutOfScopeError(f"{resource_id!r} is not an AKS managed-cluster or agent-pool resource id")
        children = parts.get("last_child_num") or 0
        if children > 1 or (children == 1 and parts.get("child_type_1", "").lower() != "agentpools"):
            raise OutOfScopeError(f"{resource_id!r} is not an AKS managed-cluster or agent-pool resource id")
        ref = ClusterRef(parts["subscription"].lower(), parts["resource_group"], parts["name"])
        return cls(ref, parts.get("child_name_1"))


@dataclass(frozen=True)
class Cluster:
    ref: ClusterRef
    location: str = ""
    kubernetes_version: str = ""
    sku_name: str = "Base"
    power_state: str = "Running"
    provisioning_state: str = "Succeeded"
    node_resource_group: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_automatic(self) -> bool:
        return self.sku_name.lower() == "automatic"

    @property
    def is_stopped(self) -> bool:
        return self.power_state.lower() == "stopped"


@dataclass(frozen=True)
class Pool:
    cluster: ClusterRef
    name: str
    os_type: str = "Linux"
    type: str = "VirtualMachineScaleSets"
    mode: str = "User"
    ssh_access: SshAccess = SshAccess.LOCAL_USER
    provisioning_state: str = "Succeeded"
    orchestrator_version: str = ""
    node_image_version: str = ""
    power_state: str = "Running"

    @property
    def id(self) -> str:
        return f"{self.cluster.id}/agentPools/{self.name}"

    @property
    def key(self) -> str:
        return self.id.lower()


def kubernetes_minor(version: str) -> tuple[int, int]:
    """`1.37.2` -> (1, 37); unparsable versions compare lowest."""
    match = re.match(r"^\s*v?(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def to_json(value: Any) -> Any:
    """A dataclass (tree) as JSON-ready data, for orchestration inputs and outputs."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_json(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Operation:
    """A started long-running ARM operation and where to poll it.

    `kind` is "async" for an `Azure-AsyncOperation` URL (a status body) or "location"
    for a `Location` URL (202 until done), the order ARM clients prefer them in.
    """

    url: str
    kind: str = "async"


@dataclass(frozen=True)
class OperationState:
    status: str  # InProgress | Succeeded | Failed | Canceled
    error_code: str = ""
    error_message: str = ""
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        return self.status.lower() in ("succeeded", "failed", "canceled")

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"


@dataclass(frozen=True)
class MaintenanceConfig:
    """A cluster maintenance configuration; `window` is ARM's `maintenanceWindow` as is."""

    name: str
    window: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Vmss:
    """A pool's scale set in the cluster's node resource group."""

    subscription: str
    resource_group: str
    name: str
    pool: str
