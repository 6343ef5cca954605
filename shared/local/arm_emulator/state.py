"""The emulated fleet: managed clusters, their agent pools, pool nodes (VMSS instances) and
maintenance configurations, held as ARM bodies plus the little node state ARM does not show.

Lookups raise `ArmHttpError` with the 404 the real service sends. All access goes through
`Fleet.lock` (one re-entrant lock: the emulator serves requests on many threads).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from azure.mgmt.core.tools import parse_resource_id

from shared.local.arm_emulator import errors

AKS_TYPE = "Microsoft.ContainerService/managedClusters"
POOL_TYPE = "Microsoft.ContainerService/managedClusters/agentPools"
MAINTENANCE_TYPE = "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})
REIMAGE_ON_CHANGE_MINOR = (1, 37)  # from Kubernetes 1.37 AKS reimages the pool when sshAccess changes


UBUNTU, AZURE_LINUX, WINDOWS = "ubuntu", "azurelinux", "windows"
# `properties.osSKU` values of Azure Linux pools (CBLMariner and Mariner are its former names).
AZURE_LINUX_SKUS = frozenset({"azurelinux", "azurelinux3", "cblmariner", "mariner"})
POWER_STATES = ("starting", "running", "stopping", "stopped", "deallocating", "deallocated")
PUBKEY_VALUES = ("yes", "no")


@dataclass
class Node:
    """One VMSS instance: the state of the sshd unit that runs on it (Ubuntu `ssh`, Azure Linux
    `sshd`, Windows the `sshd` service) as `systemctl is-active/is-enabled` print it, the SSH
    mode it was imaged with, the effective `PubkeyAuthentication` (`sshd -T`), its power state,
    and what a test made it print instead of the truth."""

    instance_id: str
    active: str
    enabled: str
    mode: str = "localuser"  # securityProfile.sshAccess (lower-case) in effect since the last reimage
    pubkey: str = "yes"  # effective pubkeyauthentication: EntraId nodes set it to "no" globally
    power_state: str = "running"  # the instance view's PowerState/<state>
    stdout_override: str | None = None  # a test's garbled or cut stdout, returned by every run-command
    authorized_key: str = ""  # the cluster's node SSH public key as of this node's last boot
    busy_with: str | None = None  # id of the run-command operation running on it
    runs: int = 0  # run-commands started on it: the agent downloads each script to a new directory

    def as_dict(self, vm_name: str) -> dict:
        return {
            "instanceId": self.instance_id,
            "name": vm_name,
            "active": self.active,
            "enabled": self.enabled,
            "mode": self.mode,
            "pubkey": self.pubkey,
            "powerState": self.power_state,
        }

    def boot(self, mode: str, key: str = "") -> None:
        """A reimage: the unit state, the sshd configuration, the admin user's authorized key
        (the cluster's `linuxProfile` key now: AKS applies a key change only at a reimage) and
        the output are the image's again."""
        self.active, self.enabled = sshd_for_mode(mode)
        self.mode, self.pubkey = mode.lower(), pubkey_for_mode(mode)
        self.authorized_key = key
        self.stdout_override = None


def fresh_node(instance_id: str, mode: str, key: str = "") -> Node:
    node = Node(instance_id, "", "")
    node.boot(mode, key)
    return node


@dataclass
class Pool:
    body: dict
    nodes: list[Node]
    latest_node_image: str | None = None  # None: every node-image upgrade finds a newer image
    cluster: Any = None  # the Cluster it belongs to: its linuxProfile key is what a boot installs

    @property
    def cluster_key(self) -> str:
        """The cluster's node SSH public key (`ssh-rsa ...`), "" without a linuxProfile."""
        props = (self.cluster.body.get("properties") or {}) if self.cluster is not None else {}
        keys = ((props.get("linuxProfile") or {}).get("ssh") or {}).get("publicKeys") or []
        return str(keys[0].get("keyData", "")).strip() if keys else ""

    @property
    def name(self) -> str:
        return self.body["name"]

    @property
    def props(self) -> dict:
        return self.body.setdefault("properties", {})


@dataclass
class Cluster:
    body: dict  # without agentPoolProfiles: those are rendered from `pools`
    pools: dict[str, Pool] = field(default_factory=dict)  # by lower-case name
    maintenance: dict[str, dict] = field(default_factory=dict)  # by lower-case name

    @property
    def name(self) -> str:
        return self.body["name"]

    @property
    def props(self) -> dict:
        return self.body.setdefault("properties", {})

    @property
    def id_parts(self) -> dict:
        return parse_resource_id(self.body["id"])

    @property
    def resource_group(self) -> str:
        return self.id_parts["resource_group"]

    @property
    def subscription(self) -> str:
        return self.id_parts["subscription"]

    @property
    def location(self) -> str:
        return self.body.get("location", "westeurope")

    @property
    def node_resource_group(self) -> str:
        return self.props.get("nodeResourceGroup") or f"MC_{self.resource_group}_{self.name}_{self.location}"

    @property
    def name_suffix(self) -> str:
        """The 8 digits AKS puts in node VMSS names; stable per cluster."""
        return f"{zlib.crc32(self.body['id'].lower().encode()) % 10**8:08d}"

    @property
    def is_stopped(self) -> bool:
        return str(self.props.get("powerState", {}).get("code", "")).lower() == "stopped"

    def pool(self, name: str) -> Pool:
        try:
            return self.pools[name.lower()]
        except KeyError:
            raise errors.child_not_found(
                f"Could not find agent pool '{name}' in managed cluster '{self.name}'."
            ) from None


def new_etag() -> str:
    return str(uuid.uuid4())


def ssh_mode(pool_body: dict) -> str:
    """`securityProfile.sshAccess`, lower-case; absent means `localuser` (the AKS default)."""
    return str((pool_body.get("properties", {}).get("securityProfile") or {}).get("sshAccess") or "LocalUser").lower()


def sshd_for_mode(mode: str) -> tuple[str, str]:
    """What a freshly imaged node runs: EntraId nodes keep sshd too (only key auth is off)."""
    return ("inactive", "disabled") if mode.lower() == "disabled" else ("active", "enabled")


def pubkey_for_mode(mode: str) -> str:
    """AgentBaker's `disableSSHPubkeyAuth` writes `PubkeyAuthentication no` (outside the Entra
    `Match` block) on EntraId nodes; every other image keeps OpenSSH's default `yes`."""
    return "no" if mode.lower() == "entraid" else "yes"


def os_family(pool: Pool) -> str:
    """`windows` (osType Windows), `azurelinux` (osSKU AzureLinux, AzureLinux3, CBLMariner) or `ubuntu` (the default)."""
    if str(pool.props.get("osType", "Linux")).lower() == "windows":
        return WINDOWS
    # The REST API spells it osSKU; SDK dumps and the az CLI print osSku.
    sku = next((str(v) for k, v in pool.props.items() if k.lower() == "ossku" and v), "").lower()
    return AZURE_LINUX if sku in AZURE_LINUX_SKUS else UBUNTU


def kubernetes_minor(version: str) -> tuple[int, int]:
    match = re.match(r"^\s*v?(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def reimages_on_ssh_change(pool: Pool) -> bool:
    return kubernetes_minor(pool.props.get("orchestratorVersion", "")) >= REIMAGE_ON_CHANGE_MINOR


def set_cluster_power(cluster: Cluster, code: str) -> None:
    """A cluster's power state, as start/stop leave it: a stopped cluster's VMs are deallocated."""
    for holder in [cluster.props] + [p.props for p in cluster.pools.values()]:
        holder["powerState"] = {"code": code}
    for pool in cluster.pools.values():
        for node in pool.nodes:
            node.power_state = "deallocated" if code.lower() == "stopped" else "running"


def is_terminal(state: str | None) -> bool:
    return (state or "Succeeded").lower() in TERMINAL_STATES


def reimage(pool: Pool) -> None:
    """Every node boots the current image and configuration (its power state is left alone)."""
    mode = ssh_mode(pool.body)
    for node in pool.nodes:
        node.boot(mode, pool.cluster_key)


def resize(pool: Pool) -> None:
    """Match the node list to `count`: new nodes boot with the current configuration."""
    count = int(pool.props.get("count") or len(pool.nodes))
    del pool.nodes[count:]
    next_id = max((int(n.instance_id) for n in pool.nodes), default=-1) + 1
    while len(pool.nodes) < count:
        pool.nodes.append(fresh_node(str(next_id), ssh_mode(pool.body), pool.cluster_key))
        next_id += 1


def next_node_image(pool: Pool) -> str | None:
    """The image a node-image upgrade moves to, or None when the pool already runs the latest."""
    current = pool.props.get("nodeImageVersion", "")
    if pool.latest_node_image is not None:
        return None if current == pool.latest_node_image else pool.latest_node_image
    match = re.search(r"(\d+)(\D*)$", current)
    if not match:
        return f"{current}.1" if current else "AKSUbuntu-2204gen2containerd-202601.01.0"
    number = str(int(match.group(1)) + 1).zfill(len(match.group(1)))
    return current[: match.start(1)] + number + match.group(2)


class Fleet:
    """Clusters by (subscription, resource group, name), all lower-case: ARM paths are case-insensitive."""

    def __init__(self, document: dict):
        self.lock = threading.RLock()
        self.clusters: dict[tuple[str, str, str], Cluster] = {}
        for entry in document.get("clusters", []):
            self.add_cluster(load_cluster(entry))

    def add_cluster(self, cluster: Cluster) -> None:
        self.clusters[cluster_key(cluster.subscription, cluster.resource_group, cluster.name)] = cluster

    def in_subscription(self, subscription: str) -> Iterator[Cluster]:
        return (c for c in self.clusters.values() if c.subscription.lower() == subscription.lower())

    def resource_group_exists(self, subscription: str, resource_group: str) -> bool:
        wanted = resource_group.lower()
        return any(
            wanted in (c.resource_group.lower(), c.node_resource_group.lower())
            for c in self.in_subscription(subscription)
        )

    def cluster(self, subscription: str, resource_group: str, name: str) -> Cluster:
        found = self.clusters.get(cluster_key(subscription, resource_group, name))
        if found:
            return found
        if not self.resource_group_exists(subscription, resource_group):
            raise errors.resource_group_not_found(resource_group)
        raise errors.resource_not_found(AKS_TYPE, name, resource_group)

    def by_id(self, resource_id: str) -> tuple[Cluster, Pool | None]:
        """A cluster or agent-pool id (any casing) to its state."""
        parts = parse_resource_id(resource_id)
        cluster = self.cluster(parts.get("subscription", ""), parts.get("resource_group", ""), parts.get("name", ""))
        pool_name = parts.get("child_name_1")
        return cluster, cluster.pool(pool_name) if pool_name else None

    def node_pools(self, subscription: str, node_resource_group: str) -> Iterator[tuple[Cluster, Pool]]:
        """The VMSS-backed pools whose nodes live in this node resource group."""
        for cluster in self.in_subscription(subscription):
            if cluster.node_resource_group.lower() == node_resource_group.lower():
                for pool in cluster.pools.values():
                    if pool.props.get("type", "VirtualMachineScaleSets") == "VirtualMachineScaleSets":
                        yield cluster, pool


def cluster_key(subscription: str, resource_group: str, name: str) -> tuple[str, str, str]:
    return subscription.lower(), resource_group.lower(), name.lower()


def cluster_view(cluster: Cluster) -> dict:
    """The managed-cluster body as GET returns it, agentPoolProfiles rendered from the pools."""
    body = copy.deepcopy(cluster.body)
    profiles = [{"name": p.name, **copy.deepcopy(p.props)} for p in cluster.pools.values()]
    body.setdefault("properties", {})["agentPoolProfiles"] = profiles
    return body


def pool_view(pool: Pool) -> dict:
    return copy.deepcopy(pool.body)


def load_cluster(entry: dict) -> Cluster:
    body = copy.deepcopy(entry["managedCluster"])
    if not body.get("id") or not body.get("name"):
        raise ValueError(f"a fleet managedCluster needs 'id' and 'name'; got keys {sorted(body)}")
    body.setdefault("type", AKS_TYPE)
    body.setdefault("eTag", new_etag())
    props = body.setdefault("properties", {})
    props.pop("agentPoolProfiles", None)
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("powerState", {"code": "Running"})
    cluster = Cluster(body)
    for pool_entry in entry.get("agentPools", []):
        pool = load_pool(cluster, pool_entry)
        cluster.pools[pool.name.lower()] = pool
        if cluster.is_stopped:  # its VMs are deallocated, unless the fleet says otherwise
            given = [n.get("powerState") for n in pool_entry.get("nodes") or []]
            for node, power in zip(pool.nodes, given + [None] * len(pool.nodes), strict=False):
                node.power_state = power.lower() if power else "deallocated"
    for config in entry.get("maintenanceConfigurations", []):
        config = copy.deepcopy(config)
        config.setdefault("id", f"{body['id']}/maintenanceConfigurations/{config['name']}")
        config.setdefault("type", MAINTENANCE_TYPE)
        cluster.maintenance[config["name"].lower()] = config
    return cluster


def load_pool(cluster: Cluster, entry: dict, *, boot_nodes: bool = True) -> Pool:
    body = copy.deepcopy(entry["agentPool"])
    name = body.get("name")
    if not name:
        raise ValueError(f"an agentPool in cluster {cluster.name!r} has no 'name'")
    body.setdefault("id", f"{cluster.body['id']}/agentPools/{name}")
    body.setdefault("type", POOL_TYPE)
    props = body.setdefault("properties", {})
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("eTag", new_etag())
    pool = Pool(body, [], entry.get("latestNodeImageVersion"), cluster)
    for index, node in enumerate(entry.get("nodes", [])):
        pool.nodes.append(load_node(ssh_mode(body), node, index))
        pool.nodes[-1].authorized_key = str(node.get("authorizedKey", pool.cluster_key))
    if boot_nodes and not entry.get("nodes"):
        resize(pool)
    return pool


def load_node(pool_mode: str, entry: dict, index: int) -> Node:
    """A fleet node: missing fields as the pool's mode gives them. A node whose sshd state does
    not match that mode was imaged before the mode changed: with LocalUser (AKS's default) when
    it runs sshd under a Disabled pool, else with Disabled."""
    active, enabled = sshd_for_mode(pool_mode)
    active, enabled = entry.get("active", active), entry.get("enabled", enabled)
    if (active, enabled) == sshd_for_mode(pool_mode):
        imaged = pool_mode
    else:
        imaged = "localuser" if pool_mode == "disabled" else "disabled"
    mode = str(entry.get("sshAccess") or imaged).lower()
    node = Node(str(entry.get("instanceId", index)), active, enabled, mode, pubkey_for_mode(mode))
    node.pubkey = check_choice("pubkey", entry.get("pubkey", node.pubkey), PUBKEY_VALUES)
    node.power_state = check_choice("powerState", entry.get("powerState", node.power_state), POWER_STATES)
    return node


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    text = str(value).lower()
    if text not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return text
