"""`doctor`: is a real deployment fit to run? The judgements, pure: each takes what was read
(from ARM, the data services) and says `ok`, `warn` or `fail`, what it found, and the exact
command that fixes it. The reads are in shared/triggers/doctor.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.core.models import Cluster, SshAccess
from shared.preflight.permissions import ASSIGN_IDENTITY, READ_WORKSPACE_KEYS, missing

# Preview features a mode needs registered in the subscription (the AKS guide "Manage SSH for
# secure access to AKS nodes"): without it, ARM refuses the pool PUT.
FEATURES = {SshAccess.ENTRA_ID: "EntraIdSSHPreview", SshAccess.DISABLED: "DisableSSHPreview"}
# Resource providers the warden needs: AKS itself, and Event Grid, which delivers ARM's events
# (and fetches the event function's key) only once registered in the subscription.
PROVIDERS = ("Microsoft.ContainerService", "Microsoft.EventGrid")
ARM_TOPIC_TYPE = "Microsoft.Resources.Subscriptions"
LINKED_ROLES = {ASSIGN_IDENTITY: "Managed Identity Operator", READ_WORKSPACE_KEYS: "Log Analytics Reader"}
WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
AKS_WRITES = (  # the operations whose events start the warden's work
    "Microsoft.ContainerService/managedClusters/write",
    "Microsoft.ContainerService/managedClusters/agentPools/write",
)


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    subscription: str
    check: str  # what was checked: permissions, feature, provider, events, node-resource-group, ...
    target: str  # the scope or resource it was checked on
    level: Level
    detail: str
    fix: str = ""  # the command that fixes it ("" when ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "check": self.check,
            "target": self.target,
            "status": self.level.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def summary(self) -> dict[str, int]:
        return {level.value: sum(1 for c in self.checks if c.level is level) for level in Level}

    @property
    def failed(self) -> bool:
        return any(c.level is Level.FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"checks": [c.to_json() for c in self.checks], "summary": self.summary}


def permissions(
    subscription: str,
    scope: str,
    what: str,
    actions: Iterable[str],
    effective: Iterable[Mapping[str, Any]],
    assignee: str,
    role: str,
) -> Check:
    """The identity's effective permissions at `scope` against the actions the warden performs there."""
    absent = missing(actions, effective)
    if not absent:
        return Check(
            subscription, "permissions", scope, Level.OK, f"the identity may do all the warden does here ({what})"
        )
    return Check(
        subscription,
        "permissions",
        scope,
        Level.FAIL,
        f"the identity may not {', '.join(absent)} ({what})",
        f'az role assignment create --assignee {assignee} --role "{role}" --scope {scope}',
    )


def linked_permissions(
    subscription: str, cluster: str, resource: str, action: str, effective: Iterable[Mapping[str, Any]], assignee: str
) -> Check:
    """A permission ARM checks on `resource` when the key rotation PUTs `cluster` (a linked check)."""
    if not missing([action], effective):
        return Check(subscription, "linked-permissions", resource, Level.OK, f"{action}: allowed (PUT of {cluster})")
    return Check(
        subscription,
        "linked-permissions",
        resource,
        Level.FAIL,
        f"a key rotation's PUT of {cluster} needs {action} here: ARM refuses it (LinkedAuthorizationFailed)",
        f'az role assignment create --assignee {assignee} --role "{LINKED_ROLES.get(action, "<a role with it>")}" '
        f"--scope {resource}",
    )


def feature(subscription: str, mode: SshAccess, state: str, pools: list[str]) -> Check:
    name = FEATURES[mode]
    asked = (
        f"the policy asks {len(pools)} pool(s) for {mode.value} ({', '.join(pools[:3])}{'…' if len(pools) > 3 else ''})"
    )
    target = f"/subscriptions/{subscription}/providers/Microsoft.Features/providers/Microsoft.ContainerService/features/{name}"
    if state.lower() == "registered":
        return Check(subscription, "feature", target, Level.OK, f"{name} is Registered; {asked}")
    return Check(
        subscription,
        "feature",
        target,
        Level.FAIL,
        f"{name} is {state or 'NotRegistered'}: {asked}, and ARM may refuse those writes",
        f"az feature register --namespace Microsoft.ContainerService --name {name} --subscription {subscription} "
        f"&& az provider register --namespace Microsoft.ContainerService --subscription {subscription}",
    )


def provider(subscription: str, namespace: str, state: str) -> Check:
    target = f"/subscriptions/{subscription}/providers/{namespace}"
    if state.lower() == "registered":
        return Check(subscription, "provider", target, Level.OK, f"{namespace} is Registered")
    return Check(
        subscription,
        "provider",
        target,
        Level.FAIL,
        f"{namespace} is {state or 'NotRegistered'}"
        + (": Event Grid delivers no ARM event to the warden" if namespace == "Microsoft.EventGrid" else ""),
        f"az provider register --namespace {namespace} --subscription {subscription}",
    )


def event_delivery(
    subscription: str,
    topics: list[Mapping[str, Any]],
    subscriptions_of: Mapping[str, list[Mapping[str, Any]]],
    function_name: str,
    site: str,
) -> Check:
    """The subscription's ARM system topic delivers resource writes to this app's event function."""
    source = f"/subscriptions/{subscription}"
    topic = next(
        (
            t
            for t in topics
            if str(_props(t).get("topicType", "")).lower() == ARM_TOPIC_TYPE.lower()
            and str(_props(t).get("source", "")).lower() == source.lower()
        ),
        None,
    )
    fix = "azd deploy (its postdeploy hook creates the system topic and the event subscription; infra/eventgrid.bicep)"
    if topic is None:
        return Check(subscription, "events", source, Level.FAIL, "no Event Grid system topic for ARM events here", fix)
    delivering = [
        s for s in subscriptions_of.get(str(topic.get("id", "")).lower(), []) if _delivers(s, function_name, site)
    ]
    if not delivering:
        where = f"{site}/{function_name}" if site else function_name
        detail = (
            f"system topic {topic.get('name')} has no event subscription delivering AKS resource writes to {where} "
            f"({WRITE_SUCCESS} of {' and '.join(AKS_WRITES)})"
        )
        return Check(subscription, "events", str(topic.get("id", "")), Level.FAIL, detail, fix)
    return Check(
        subscription,
        "events",
        str(delivering[0].get("id", topic.get("id", ""))),
        Level.OK,
        f"system topic {topic.get('name')} delivers {WRITE_SUCCESS} to the event function",
    )


def _delivers(event_subscription: Mapping[str, Any], function_name: str, site: str) -> bool:
    props = _props(event_subscription)
    destination = props.get("destination") or {}
    resource = str(_props(destination).get("resourceId", "")).lower()
    if str(destination.get("endpointType", "")).lower() != "azurefunction":
        return False
    if not resource.endswith(f"/functions/{function_name.lower()}"):
        return False
    if site and f"/sites/{site.lower()}/" not in resource:
        return False
    if str(props.get("provisioningState", "Succeeded")).lower() != "succeeded":
        return False
    event_filter = props.get("filter") or {}
    types = event_filter.get("includedEventTypes")
    if types is not None and WRITE_SUCCESS.lower() not in {str(t).lower() for t in types}:
        return False
    return all(_passes_pool_writes(f) for f in event_filter.get("advancedFilters") or [])


def _passes_pool_writes(advanced: Mapping[str, Any]) -> bool:
    """An advanced filter on the operation's name must let the AKS writes through (StringIn, as
    infra/modules/arm-event-subscription.bicep sets it); filters on other keys are not judged."""
    if str(advanced.get("key", "")).lower() != "data.operationname":
        return True
    if str(advanced.get("operatorType", "")).lower() != "stringin":
        return False
    values = {str(v).lower() for v in advanced.get("values") or []}
    return {w.lower() for w in AKS_WRITES} <= values


def node_resource_group(subscription: str, cluster: Cluster) -> Check:
    target = f"/subscriptions/{subscription}/resourceGroups/{cluster.node_resource_group}"
    if not cluster.node_resource_group_locked:
        return Check(
            subscription,
            "node-resource-group",
            target,
            Level.OK,
            f"{cluster.ref.name}: run-command can reach its nodes",
        )
    return Check(
        subscription,
        "node-resource-group",
        target,
        Level.WARN,
        f"{cluster.ref.name}: the node resource group is locked down (restrictionLevel ReadOnly): its pools cannot be "
        "verified on the nodes (run-command is an action; only */read is allowed there)",
        f"az aks update --resource-group {cluster.ref.resource_group} --name {cluster.ref.name} "
        "--nrg-restriction-level Unrestricted  (only if node verification matters more than the lockdown)",
    )


def service(subscription: str, check: str, target: str, error: str | None, fix: str) -> Check:
    """A data service the warden uses (Table Storage, Key Vault, the events topic), as the identity."""
    if error is None:
        return Check(subscription, check, target, Level.OK, "answers the identity")
    return Check(subscription, check, target, Level.FAIL, error, fix)


def _props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return resource.get("properties") or {}
