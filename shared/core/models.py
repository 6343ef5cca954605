"""Plain data the layers exchange: no SDK types, no I/O.

Adapters build these from ARM payloads; the policy engine and the planner read them;
orchestrations pass them as JSON (`to_json`/`from_json`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any

from shared.core.errors import OutOfScopeError, shown

AKS_NAMESPACE = "microsoft.containerservice"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Naming rules of AKS and ARM (the REST specs' patterns, learn.microsoft.com "Naming rules and
# restrictions for Azure resources"). Every path a name comes in by (event subject, HTTP body,
# CLI) goes through them, so a name no resource can have is refused before any I/O or row key.
CLUSTER_NAME_RULE = (
    "an AKS cluster name is 1-63 letters, digits, underscores and hyphens, starting and ending with a letter or digit"
)
POOL_NAME_RULE = "an AKS pool name is 1-12 lowercase letters and digits, starting with a letter"
RESOURCE_GROUP_RULE = (
    "a resource group name is 1-90 letters, digits, underscores, hyphens, periods and parentheses, "
    "not ending in a period"
)
# fullmatch, never `$`: `$` would also accept a trailing newline.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_POOL_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
# ARM's resource group pattern is .NET's `^[-\w\._\(\)]+$`; .NET's `\w` is these Unicode
# categories (letters, nonspacing marks, decimal digits, connector punctuation such as `_`).
# Never stricter than ARM: a real group must always pass.
_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Nd", "Pc"})


def validate_cluster_name(name: object) -> str:
    """`name` unchanged if it can name an AKS cluster; else `OutOfScopeError` naming the rule."""
    return _named("cluster name", name, _CLUSTER_NAME.fullmatch, CLUSTER_NAME_RULE)


def validate_pool_name(name: object) -> str:
    """`name` unchanged (its casing kept) if it can name an AKS pool; else `OutOfScopeError`."""
    # Compared lowercased: ARM ids are case-insensitive and event subjects vary in casing.
    return _named("pool name", name, lambda n: _POOL_NAME.fullmatch(n.lower()), POOL_NAME_RULE)


def validate_resource_group(name: object) -> str:
    """`name` unchanged if it can name a resource group; else `OutOfScopeError` naming the rule."""
    return _named("resource group name", name, _is_resource_group, RESOURCE_GROUP_RULE)


def _is_resource_group(name: str) -> bool:
    return (
        1 <= len(name) <= 90
        and not name.endswith(".")
        and all(c in "-.()" or unicodedata.category(c) in _WORD_CATEGORIES for c in name)
    )


def _named(what: str, name: object, valid: Callable[[str], object], rule: str) -> str:
    if not isinstance(name, str) or not valid(name):
        raise OutOfScopeError(f"{what} is {shown(name)}, which breaks the naming rule: {rule}")
    return name


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

    @property
    def id(self) -> str:
        return f"{self.cluster.id}/agentPools/{self.pool}" if self.pool else self.cluster.id

    @classmethod
    def from_id(cls, resource_id: str) -> Target:
        """Parse a managed-cluster or agent-pool id whose names follow the AKS and ARM naming
        rules; anything else raises `OutOfScopeError`."""
        from azure.mgmt.core.tools import (
            parse_resource_id,
        )  # azure.mgmt.core loads azure.core's pipeline: not at start-up

        text = resource_id if isinstance(resource_id, str) else ""
        parts = parse_resource_id(text)
        if not _is_cluster_or_pool(parts):
            raise _not_aks(resource_id)
        ref = ClusterRef(
            parts["subscription"].lower(),
            validate_resource_group(parts["resource_group"]),
            validate_cluster_name(parts["name"]),
        )
        target = cls(ref, validate_pool_name(parts["child_name_1"]) if parts.get("last_child_num") else None)
        # parse_resource_id ignores what follows a newline, a third segment or an odd child
        # ("/agentPools/np1/x" parses as np1): the id must be the target's own, in any casing.
        if text.rstrip("/").lower() != target.id.lower():
            raise _not_aks(resource_id)
        return target


def _is_cluster_or_pool(parts: Mapping[str, Any]) -> bool:
    children = parts.get("last_child_num") or 0
    return bool(
        _GUID.match(parts.get("subscription", ""))
        and parts.get("resource_group")
        and parts.get("namespace", "").lower() == AKS_NAMESPACE
        and parts.get("type", "").lower() == "managedclusters"
        and parts.get("name")
        and (children == 0 or (children == 1 and parts.get("child_type_1", "").lower() == "agentpools"))
    )


def _not_aks(resource_id: object) -> OutOfScopeError:
    # A valid pool id is at most 297 characters: show it whole, cut anything longer.
    return OutOfScopeError(f"{shown(resource_id, 300)} is not an AKS managed-cluster or agent-pool resource id")


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
    node_provisioning_mode: str = "Manual"  # `Auto`: node auto-provisioning (Karpenter) adds nodes
    ssh_public_keys: tuple[str, ...] | None = None  # linuxProfile.ssh.publicKeys; None: no linuxProfile
    # nodeDisruptionProfile.nodeDisruptionPolicy: when AKS may reimage for a change (Kubernetes >= 1.37)
    node_disruption_policy: str = "Allow"
    # nodeResourceGroupProfile.restrictionLevel: `ReadOnly` puts a deny assignment on the node
    # resource group that allows only */read (AKS "node resource group lockdown"): no run-command there
    node_resource_group_restriction: str = "Unrestricted"
    # Checked by ARM on a PUT of the cluster as linked permissions of the caller: the cluster
    # identity's user-assigned identities (assigned again) and the monitoring add-on's workspace
    user_assigned_identities: tuple[str, ...] = ()
    monitoring_workspace: str = ""

    @property
    def node_resource_group_locked(self) -> bool:
        return self.node_resource_group_restriction.lower() == "readonly"

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
    os_sku: str = ""  # `osSKU` as ARM reports it (Ubuntu, AzureLinux, Windows2022, ...); "" when absent
    type: str = "VirtualMachineScaleSets"
    mode: str = "User"
    ssh_access: SshAccess = SshAccess.LOCAL_USER
    provisioning_state: str = "Succeeded"
    orchestrator_version: str = ""
    node_image_version: str = ""
    power_state: str = "Running"
    etag: str = field(default="", compare=False)  # `properties.eTag` as read: what a write's If-Match names

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
    """A started long-running ARM operation: where to poll it next, and how to read the answer
    (`shared.adapters.lro`, which reads them as azure-mgmt-core's `ARMPolling` does).

    `kind`: "async" polls an `Azure-AsyncOperation` status body; "location" a `Location` URL
    (202 until done); "resource" the resource's `provisioningState`; "final" has succeeded, its
    result one GET of `url` away; "done" has ended. `method` and `resource` are the request that
    started it, `location` the `Location` that came with a status URL (a POST's result), and
    `final_via` the operation's `final-state-via` where its API names one. Histories written
    before these fields existed carry `url` and `kind` only, and read as they did.
    """

    url: str
    kind: str = "async"
    method: str = ""
    resource: str = ""
    location: str = ""
    final_via: str = ""

    @classmethod
    def from_url(cls, url: str) -> Operation:
        """An operation known only by the URL it was polled at (a step's receipt), by ARM's
        convention: status URLs end in `/operations/{id}`, `Location` URLs in
        `/operationresults/{id}`; anything else is the resource itself."""
        path = url.lower().split("?", 1)[0]
        if "/operationresults/" in path:
            return cls(url, "location")
        return cls(url, "async" if "/operations/" in path else "resource")

    @property
    def ended(self) -> bool:
        """Its outcome is known: "done", or "final" (succeeded, the result not read yet)."""
        return self.kind in ("done", "final")


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


@dataclass(frozen=True)
class VmInstance:
    """One VM of a scale set; `power_state` is the instance view's `PowerState/<state>` suffix
    (`running`, `deallocated`, ...), "" when the instance view does not say."""

    instance_id: str
    power_state: str = ""

    @property
    def running(self) -> bool:
        return self.power_state.lower() == "running"


@dataclass(frozen=True)
class RunCommandOutput:
    """What a finished run-command printed: the script's stdout and stderr (each the last
    4,096 bytes, as run-command keeps them)."""

    stdout: str
    stderr: str = ""


@dataclass(frozen=True)
class RunCommandPoll:
    """Where a run-command stands: `operation` is what to poll next, `output` what the command
    printed once it ended and its result was read (None before)."""

    operation: Operation
    output: RunCommandOutput | None = None
    retry_after: float | None = None
