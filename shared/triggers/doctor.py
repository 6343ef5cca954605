"""`doctor`: check a real deployment before trusting it. Read-only. Per subscription in scope:
the identity's effective permissions at each scope the warden acts on (against the one list of
actions in shared/preflight/permissions.py), the linked permissions a key rotation's cluster PUT needs, the
preview features the policy's modes need, the resource providers, the ARM system topic's delivery
to the event function, and node resource groups locked down; then the data services (Table
Storage, Key Vault, the events topic) as the identity. The judgements are in shared/preflight/doctor.py.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.adapters.arm_checks import ArmChecks
from shared.core.errors import StoreNotFoundError, WardenError
from shared.core.models import Cluster, SshAccess
from shared.orchestration.runtime import Runtime
from shared.policy.plan import plan_pool
from shared.preflight import doctor
from shared.preflight.doctor import Check, DoctorReport, Level
from shared.preflight.permissions import (
    ASSIGN_IDENTITY,
    CLUSTER_ACTIONS,
    KEY_ROTATION_ACTIONS,
    LIST_CLUSTERS,
    NODE_ACTIONS,
    READ_WORKSPACE_KEYS,
)
from shared.triggers.functions import EVENT_FUNCTION

IDENTITY_PLACEHOLDER = "<the warden's identity (AZURE_CLIENT_ID)>"


def run_doctor(rt: Runtime) -> DoctorReport:
    assignee = next(iter(sorted(rt.settings.own_identities)), IDENTITY_PLACEHOLDER)
    checks: list[Check] = []
    for subscription in sorted(rt.settings.subscriptions):
        checks += _subscription(rt, ArmChecks(rt.arm), subscription, assignee)
    checks += _services(rt, assignee)
    return DoctorReport(tuple(checks))


def _subscription(rt: Runtime, arm: ArmChecks, subscription: str, assignee: str) -> list[Check]:
    settings = rt.settings
    role = f"AKS SSH Warden ({settings.environment_name or '<azd environment>'}, {subscription})"
    rotation = settings.keyvault_url is not None
    checks = [
        doctor.provider(subscription, ns, _read(lambda ns=ns: arm.provider_state(subscription, ns)))
        for ns in doctor.PROVIDERS
    ]
    scope = f"/subscriptions/{subscription}"
    try:
        clusters = rt.arm.list_clusters(subscription)
    except WardenError as e:
        fix = f'az role assignment create --assignee {assignee} --role "{role}" --scope {scope}'
        return [
            *checks,
            Check(subscription, "permissions", scope, Level.FAIL, f"cannot list the AKS clusters: {e}", fix),
        ]
    checks.append(_permissions(arm, subscription, scope, "list clusters", (LIST_CLUSTERS,), assignee, role))
    cluster_actions = CLUSTER_ACTIONS + (KEY_ROTATION_ACTIONS if rotation else ())
    scopes = {f"{scope}/resourceGroups/{c.ref.resource_group}".lower(): c for c in clusters}
    for rg_scope, cluster in sorted(scopes.items()):
        what = f"clusters and pools in {cluster.ref.resource_group}"
        checks.append(_permissions(arm, subscription, rg_scope, what, cluster_actions, assignee, role))
    nodes = {f"{scope}/resourceGroups/{c.node_resource_group}".lower(): c for c in clusters if c.node_resource_group}
    for rg_scope, cluster in sorted(nodes.items()):
        what = f"scale sets and run-command on the nodes of {cluster.ref.name}"
        checks.append(_permissions(arm, subscription, rg_scope, what, NODE_ACTIONS, assignee, role))
    for cluster in clusters:
        checks.append(doctor.node_resource_group(subscription, cluster))
        if rotation:
            checks += _linked(arm, subscription, cluster, assignee)
    checks += _features(rt, arm, subscription, clusters)
    checks.append(_events(arm, subscription, settings.site_name))
    return checks


def _permissions(arm: ArmChecks, subscription: str, scope: str, what: str, actions, assignee: str, role: str) -> Check:
    try:
        effective = arm.permissions(subscription, scope)
    except WardenError as e:
        return Check(subscription, "permissions", scope, Level.FAIL, f"cannot read the permissions here: {e}")
    return doctor.permissions(subscription, scope, what, actions, effective, assignee, role)


def _linked(arm: ArmChecks, subscription: str, cluster: Cluster, assignee: str) -> list[Check]:
    """The permissions ARM checks on other resources when the key rotation PUTs `cluster`."""
    linked = [(identity, ASSIGN_IDENTITY) for identity in cluster.user_assigned_identities]
    if cluster.monitoring_workspace:
        linked.append((cluster.monitoring_workspace, READ_WORKSPACE_KEYS))
    checks = []
    for resource, action in linked:
        resource_subscription = resource.split("/")[2] if resource.count("/") > 2 else subscription
        try:
            effective = arm.permissions(resource_subscription, resource)
        except WardenError as e:
            checks.append(Check(subscription, "linked-permissions", resource, Level.FAIL, f"cannot read: {e}"))
            continue
        checks.append(doctor.linked_permissions(subscription, cluster.ref.id, resource, action, effective, assignee))
    return checks


def _features(rt: Runtime, arm: ArmChecks, subscription: str, clusters: list[Cluster]) -> list[Check]:
    """The preview features the modes the policy gives this subscription's pools need."""
    wanted: dict[SshAccess, list[str]] = {}
    for cluster in clusters:
        try:
            pools = rt.arm.list_pools(cluster.ref)
        except WardenError:
            continue  # its permissions check says why
        for pool in pools:
            plan = plan_pool(cluster, pool, rt.settings.policy)
            if plan.desired in doctor.FEATURES:
                wanted.setdefault(plan.desired, []).append(f"{cluster.ref.name}/{pool.name}")
    return [
        doctor.feature(
            subscription,
            mode,
            _read(lambda m=mode: arm.feature_state(subscription, "Microsoft.ContainerService", doctor.FEATURES[m])),
            pools,
        )
        for mode, pools in sorted(wanted.items())
    ]


def _events(arm: ArmChecks, subscription: str, site: str) -> Check:
    try:
        topics = arm.system_topics(subscription)
        subscriptions_of = {
            str(t.get("id", "")).lower(): arm.event_subscriptions(subscription, str(t.get("id", "")))
            for t in topics
            if str((t.get("properties") or {}).get("topicType", "")).lower() == doctor.ARM_TOPIC_TYPE.lower()
        }
    except WardenError as e:
        return Check(subscription, "events", f"/subscriptions/{subscription}", Level.FAIL, f"cannot read: {e}")
    return doctor.event_delivery(subscription, topics, subscriptions_of, EVENT_FUNCTION, site)


def _services(rt: Runtime, assignee: str) -> list[Check]:
    settings = rt.settings

    def fix(role: str, where: str) -> str:
        return f'az role assignment create --assignee {assignee} --role "{role}" --scope <the resource id of {where}>'

    tables = fix("Storage Table Data Contributor", "the storage account")
    if rt.store is None:
        return [
            Check(
                "", "tables", "WARDEN_TABLES", Level.FAIL, "WARDEN_TABLES (or AzureWebJobsStorage) is not set", tables
            )
        ]
    checks = [doctor.service("", "tables", "WARDEN_TABLES", _error(lambda: _read_tables(rt)), tables)]
    if settings.keyvault_url and rt.keystore is not None:
        vault = fix("Key Vault Secrets Officer", settings.keyvault_url)
        checks.append(doctor.service("", "key-vault", settings.keyvault_url, _error(rt.keystore.check), vault))
    if settings.events_endpoint and rt.publisher is not None:
        topic = fix("EventGrid Data Sender", "the topic")
        checks.append(doctor.service("", "events-topic", settings.events_endpoint, _error(rt.publisher.check), topic))
    return checks


def _read_tables(rt: Runtime) -> None:
    try:
        rt.store.get_pool_state("doctor", "doctor")  # one point read: any answer from the service will do
    except StoreNotFoundError:
        pass


def _read(read: Callable[[], str]) -> str:
    try:
        return read()
    except WardenError as e:
        return f"unreadable ({e})"


def _error(call: Callable[[], object]) -> str | None:
    try:
        call()
    except Exception as e:  # noqa: BLE001 - any failure of the service, as the identity sees it
        return f"{type(e).__name__}: {e}"
    return None
