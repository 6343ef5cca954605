"""What the warden's identity may do in ARM, and how ARM decides it. Pure.

`ENFORCEMENT_ACTIONS` and `KEY_ROTATION_ACTIONS` are the one list of the ARM actions the warden
performs: the custom role in infra/modules/warden-role.bicep is built from the same actions
(tests/infra/test_arm_permissions.py keeps them equal, and maps every request the app makes to
one of them), and `doctor` checks a deployment's effective permissions against them.

ARM's effective permissions at a scope (`GET {scope}/providers/Microsoft.Authorization/permissions`)
are a list of `{actions, notActions}` (one per role assignment that reaches the scope); an action
is allowed when one entry's `actions` match it and that entry's `notActions` do not. Patterns
compare case-insensitively, with `*` matching any run of characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

# Reads of clusters, pools and maintenance windows; the pool PUT that sets sshAccess; the
# node-image upgrade that makes it take effect; the operation-status reads of both; and, in each
# cluster's node resource group, the scale sets, their VMs and run-command on a VM.
LIST_CLUSTERS = "Microsoft.ContainerService/managedClusters/read"  # also what lists a subscription's clusters
ENFORCEMENT_ACTIONS = (
    LIST_CLUSTERS,
    "Microsoft.ContainerService/managedClusters/agentPools/read",
    "Microsoft.ContainerService/managedClusters/agentPools/write",
    "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action",
    "Microsoft.ContainerService/managedClusters/maintenanceConfigurations/read",
    "Microsoft.ContainerService/locations/operations/read",
    "Microsoft.Compute/virtualMachineScaleSets/read",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action",
    "Microsoft.Compute/locations/operations/read",
)
# The key rotation PUTs the managed cluster with the new key.
KEY_ROTATION_ACTIONS = ("Microsoft.ContainerService/managedClusters/write",)
# Run-command and the reads of the nodes happen in the cluster's node resource group.
NODE_ACTIONS = tuple(a for a in ENFORCEMENT_ACTIONS if a.startswith("Microsoft.Compute/"))
CLUSTER_ACTIONS = tuple(a for a in ENFORCEMENT_ACTIONS if a not in NODE_ACTIONS)
# Checked by ARM on a managed-cluster PUT besides managedClusters/write ("linked" checks): the
# cluster identity is assigned again (AKS GitHub issue 4980), and the monitoring add-on's workspace
# keys are read (azure-cli issue 22232: LinkedAuthorizationFailed on a cluster PUT).
ASSIGN_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
READ_WORKSPACE_KEYS = "Microsoft.OperationalInsights/workspaces/sharedkeys/read"


def required_actions(key_rotation: bool) -> tuple[str, ...]:
    return ENFORCEMENT_ACTIONS + (KEY_ROTATION_ACTIONS if key_rotation else ())


def missing(actions: Iterable[str], permissions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The `actions` that the effective `permissions` do not allow, in their order."""
    entries = [(_patterns(p.get("actions")), _patterns(p.get("notActions"))) for p in permissions]
    return [a for a in actions if not any(_any(allow, a) and not _any(deny, a) for allow, deny in entries)]


def _patterns(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or () if isinstance(v, str))


def _any(patterns: tuple[str, ...], action: str) -> bool:
    return any(_compiled(p).fullmatch(action) for p in patterns)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)
