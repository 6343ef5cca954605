"""AKS's write rules as plain functions over the fleet state: what a PUT may change, which
writes are refused (stopped cluster, operation in progress, stale eTag, unsupported sshAccess,
non-RSA SSH keys) and what completing an operation does to the nodes.
"""

from __future__ import annotations

import copy

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.state import (
    POOL_TYPE,
    Cluster,
    Fleet,
    Pool,
    is_terminal,
    load_cluster,
    load_pool,
    new_etag,
    next_node_image,
    reimage,
    reimages_on_ssh_change,
    resize,
    ssh_mode,
)
from shared.local.arm_emulator.wire import Request

NAMESPACE = "Microsoft.ContainerService"
POOL_READ_ONLY = ("provisioningState", "currentOrchestratorVersion", "nodeImageVersion", "eTag")
CLUSTER_READ_ONLY = (
    "provisioningState", "powerState", "currentKubernetesVersion", "fqdn", "azurePortalFQDN",
    "privateFQDN", "maxAgentPools", "identityProfile",
)  # fmt: skip
# Nested read-only values the service computes (clients drop them from a PUT; AKS keeps them).
CLUSTER_NESTED_READ_ONLY = (("networkProfile", "loadBalancerProfile", "effectiveOutboundIPs"),)
SSH_MODES = {"disabled": "Disabled", "entraid": "EntraId", "localuser": "LocalUser"}


def check_writable(cluster: Cluster) -> None:
    if cluster.is_stopped:
        raise errors.cluster_stopped(cluster.name)
    check_busy(cluster)


def check_busy(cluster: Cluster) -> None:
    """AKS runs one operation per cluster: a cluster or pool in a transitional state blocks writes."""
    state = cluster.props.get("provisioningState")
    if not is_terminal(state):
        raise errors.operation_in_progress(None, state)
    for pool in cluster.pools.values():
        state = pool.props.get("provisioningState")
        if not is_terminal(state):
            raise errors.operation_in_progress(pool.name, state)


def check_if_match(req: Request, etag: str | None) -> None:
    if_match = req.headers.get("If-Match")
    if if_match and if_match != "*" and if_match.strip('"') != etag:
        raise errors.precondition_failed(if_match, etag or "")
    if req.headers.get("If-None-Match") == "*" and etag is not None:
        raise errors.precondition_failed("If-None-Match: *", etag)


def validate_pool(cluster: Cluster, props: dict, name: str) -> None:
    """The sshAccess rules AKS enforces (EntraId: not Windows nor Automatic; Disabled: VMSS only)."""
    raw = (props.get("securityProfile") or {}).get("sshAccess")
    if raw is None:
        return
    mode = SSH_MODES.get(str(raw).lower())
    target = "properties.securityProfile.sshAccess"
    if mode is None:
        raise errors.invalid_parameter(target, f"{raw!r} is not one of {', '.join(SSH_MODES.values())}.")
    if mode == "EntraId" and str(props.get("osType", "Linux")).lower() == "windows":
        raise errors.invalid_parameter(target, f"EntraId is not supported on Windows agent pool '{name}'.")
    if mode == "EntraId" and str(cluster.body.get("sku", {}).get("name", "")).lower() == "automatic":
        raise errors.invalid_parameter(target, "EntraId is not supported on AKS Automatic clusters.")
    if mode == "Disabled" and props.get("type", "VirtualMachineScaleSets") != "VirtualMachineScaleSets":
        raise errors.invalid_parameter(
            target, f"Disabled requires type VirtualMachineScaleSets, got {props.get('type')!r}."
        )


def replace_pool(cluster: Cluster, existing: Pool | None, name: str, props: dict) -> Pool:
    """A full PUT: the body replaces the pool; only service-owned fields and defaults are filled."""
    for key in POOL_READ_ONLY:
        props.pop(key, None)
    version = props.get("orchestratorVersion") or (
        existing.props.get("orchestratorVersion") if existing else cluster.props.get("kubernetesVersion", "")
    )
    props["orchestratorVersion"] = version
    props["currentOrchestratorVersion"] = version
    props.setdefault("type", "VirtualMachineScaleSets")
    props.setdefault("osType", "Linux")
    props.setdefault("mode", "User")
    props.setdefault(
        "powerState", existing.props.get("powerState", {"code": "Running"}) if existing else {"code": "Running"}
    )
    props.setdefault("count", len(existing.nodes) if existing else 1)
    image = existing.props.get("nodeImageVersion") if existing else cluster_default_image(cluster, props)
    props.update(nodeImageVersion=image, provisioningState="Updating" if existing else "Creating", eTag=new_etag())
    if existing:
        existing.body["properties"] = props
        return existing
    body = {"id": f"{cluster.body['id']}/agentPools/{name}", "name": name, "type": POOL_TYPE, "properties": props}
    pool = load_pool(cluster, {"agentPool": body}, boot_nodes=False)  # nodes appear when the create completes
    cluster.pools[name.lower()] = pool
    return pool


def cluster_default_image(cluster: Cluster, props: dict) -> str:
    """The image of a sibling pool with the same OS, or a plausible default."""
    for pool in cluster.pools.values():
        if pool.props.get("osType", "Linux") == props.get("osType", "Linux") and pool.props.get("nodeImageVersion"):
            return pool.props["nodeImageVersion"]
    return (
        "AKSWindows-2022-containerd-20348.2026.01.0"
        if props.get("osType") == "Windows"
        else "AKSUbuntu-2204gen2containerd-202601.15.0"
    )


def node_disruption_policy(cluster: Cluster) -> str:
    """`properties.nodeDisruptionProfile.nodeDisruptionPolicy`: Allow (the default),
    AllowDuringMaintenanceWindow or Block."""
    return ((cluster.props.get("nodeDisruptionProfile") or {}).get("nodeDisruptionPolicy")) or "Allow"


def finish_pool_put(pool: Pool, ok: bool, old_mode: str | None, disruption: str = "Allow") -> None:
    """From Kubernetes 1.37 an sshAccess change reimages the pool, as the cluster's Node
    Disruption Policy allows: at once (Allow), in the node-OS maintenance window (the window
    runs through `ArmEmulator.run_node_os_window`), or not at all (Block) until a node-image
    upgrade, which the policy does not hold."""
    pool.props["provisioningState"] = "Succeeded" if ok else "Failed"
    if not ok:
        return
    resize(pool)
    changed = old_mode is not None and old_mode != ssh_mode(pool.body)
    if changed and reimages_on_ssh_change(pool) and disruption.lower() == "allow":
        reimage(pool)


def finish_cluster_put(cluster: Cluster, ok: bool) -> None:
    """The cluster write ends; pools created with it get their nodes."""
    cluster.props["provisioningState"] = "Succeeded" if ok else "Failed"
    for pool in cluster.pools.values():
        if pool.props.get("provisioningState") == "Creating":
            pool.props["provisioningState"] = "Succeeded" if ok else "Failed"
            resize(pool)


def finish_upgrade(pool: Pool, ok: bool) -> None:
    pool.props["provisioningState"] = "Succeeded" if ok else "Failed"
    image = next_node_image(pool) if ok else None
    if image:
        pool.props["nodeImageVersion"] = image
        reimage(pool)


def validate_ssh_keys(body: dict) -> None:
    """AKS accepts RSA keys only (ed25519 is refused with InvalidParameter)."""
    keys = ((body.get("properties") or {}).get("linuxProfile") or {}).get("ssh", {}).get("publicKeys") or []
    for index, key in enumerate(keys):
        data = str(key.get("keyData", ""))
        target = f"linuxProfile.ssh.publicKeys[{index}].keyData"
        try:
            loaded = load_ssh_public_key(data.encode())
        except (ValueError, TypeError):
            raise errors.invalid_parameter(target, f"{data[:40]!r} is not an OpenSSH public key.") from None
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise errors.invalid_parameter(target, f"only ssh-rsa keys are supported, got {data.split(' ')[0]!r}.")


def update_cluster(cluster: Cluster, body: dict) -> None:
    """Full PUT of an existing cluster; agentPoolProfiles are managed through the agentPools API."""
    old = cluster.body
    new = copy.deepcopy(body)
    props = new.setdefault("properties", {})
    props.pop("agentPoolProfiles", None)
    for key in CLUSTER_READ_ONLY:
        props.pop(key, None)
        if key in old["properties"]:
            props[key] = old["properties"][key]
    for path in CLUSTER_NESTED_READ_ONLY:
        _keep_nested(old["properties"], props, path)
    strip_secrets(props)
    props["nodeResourceGroup"] = old["properties"].get("nodeResourceGroup", cluster.node_resource_group)
    props["provisioningState"] = "Updating"
    new.update(id=old["id"], name=old["name"], type=old.get("type"), eTag=new_etag())
    new.setdefault("location", old.get("location"))
    cluster.body = new


def _keep_nested(old: dict, new: dict, path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        old, new = old.get(key), new.get(key)
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
    if path[-1] in old:
        new[path[-1]] = old[path[-1]]


def create_cluster(fleet: Fleet, s: str, rg: str, c: str, body: dict) -> Cluster:
    entry = copy.deepcopy(body)
    entry.update(id=f"/subscriptions/{s}/resourceGroups/{rg}/providers/{NAMESPACE}/managedClusters/{c}", name=c)
    props = entry.setdefault("properties", {})
    profiles = props.pop("agentPoolProfiles", None) or []
    strip_secrets(props)
    props["provisioningState"] = "Creating"
    version = props.get("kubernetesVersion") or "1.33.0"
    props.update(kubernetesVersion=version, currentKubernetesVersion=version)
    props.setdefault("nodeResourceGroup", f"MC_{rg}_{c}_{entry.get('location', 'westeurope')}")
    cluster = load_cluster({"managedCluster": entry})
    for profile in profiles:
        pool_props = {k: v for k, v in profile.items() if k != "name"}
        pool_props.update(
            provisioningState="Creating", orchestratorVersion=pool_props.get("orchestratorVersion") or version
        )
        pool = load_pool(cluster, {"agentPool": {"name": profile["name"], "properties": pool_props}}, boot_nodes=False)
        cluster.pools[pool.name.lower()] = pool
    fleet.add_cluster(cluster)
    return cluster


def strip_secrets(props: dict) -> None:
    """Secrets are write-only in ARM: GET never returns them."""
    (props.get("servicePrincipalProfile") or {}).pop("secret", None)
    (props.get("windowsProfile") or {}).pop("adminPassword", None)
