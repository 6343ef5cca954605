"""Desired vs actual -> a plan for one pool: its status, the reason, and the steps.

Pure. The same function serves the read-only `plan` report and the reconcile
orchestration, so what the report promises is exactly what enforcement does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from shared.core.models import Cluster, Pool, SshAccess, kubernetes_minor
from shared.policy import Policy

# From Kubernetes 1.37 a change of sshAccess reimages the nodes itself: no second upgrade.
SELF_REIMAGE_FROM = (1, 37)
VMSS = "VirtualMachineScaleSets"
AUTO_PROVISIONED = "(auto-provisioned)"  # a name no agent pool can have
AUTO_PROVISIONED_TYPE = "NodeAutoProvisioning"


class Status(StrEnum):
    COMPLIANT = "compliant"
    DRIFTED = "drifted"
    PENDING_REIMAGE = "pending-reimage"
    UNSUPPORTED = "unsupported"
    IGNORED = "ignored"
    EXEMPTED = "exempted"  # a break-glass exemption is in force: the policy waits until it ends


class Step(StrEnum):
    UPDATE_SSH_ACCESS = "update-ssh-access"
    UPGRADE_NODE_IMAGE = "upgrade-node-image"


@dataclass(frozen=True)
class Exemption:
    """A break-glass exemption in force on one pool: who granted it, why, until when, and the
    mode it gives the pool (None: the pool keeps whatever mode it has). The caller passes only
    an exemption whose `until` is still ahead: an expired one is never honoured."""

    actor: str
    reason: str
    until: datetime
    mode: SshAccess | None = None

    def describe(self) -> str:
        until = self.until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"exempted by {self.actor} until {until} ({self.reason})"


@dataclass(frozen=True)
class PoolPlan:
    cluster: Cluster
    pool: Pool
    desired: SshAccess | None
    status: Status
    reason: str
    steps: tuple[Step, ...] = ()
    exemption: Exemption | None = None

    @property
    def current(self) -> SshAccess:
        return self.pool.ssh_access


def auto_provisioned_nodes(cluster: Cluster) -> Pool | None:
    """The nodes node auto-provisioning (Karpenter) adds, as one pool for the report: they are
    no agent pool in ARM and always allow local users (an AKSNodeClass has no SSH setting)."""
    if cluster.node_provisioning_mode.lower() != "auto":
        return None
    return Pool(cluster.ref, AUTO_PROVISIONED, type=AUTO_PROVISIONED_TYPE, ssh_access=SshAccess.LOCAL_USER)


def unsupported_reason(cluster: Cluster, pool: Pool, mode: SshAccess) -> str | None:
    """The AKS limitations: the pools on which `mode` cannot be set at all."""
    if pool.type == AUTO_PROVISIONED_TYPE and mode is not SshAccess.LOCAL_USER:
        return "node auto-provisioning (Karpenter) nodes always allow local users: an AKSNodeClass has no SSH setting"
    if mode is SshAccess.ENTRA_ID and pool.os_type.lower() == "windows":
        return "EntraId SSH is not supported on Windows node pools"
    if mode is SshAccess.ENTRA_ID and cluster.is_automatic:
        return "EntraId SSH is not supported on AKS Automatic clusters"
    if mode is SshAccess.DISABLED and pool.type != VMSS:
        return f"Disabled SSH needs a {VMSS} pool; this pool is of type {pool.type!r}"
    return None


def reimages_itself(pool: Pool) -> bool:
    return kubernetes_minor(pool.orchestrator_version) >= SELF_REIMAGE_FROM


def held_reimage(cluster: Cluster, pool: Pool) -> str:
    """Why the reimage an sshAccess change brings on Kubernetes >= 1.37 does not happen now, by
    the cluster's Node Disruption Policy ("" when it does: `Allow`, or an older pool)."""
    if not reimages_itself(pool):
        return ""
    policy = cluster.node_disruption_policy.lower()
    if policy == "block":
        return (
            "the cluster's Node Disruption Policy is Block: AKS leaves the nodes as they are, "
            "so they keep their SSH until a reimage the cluster's owner allows"
        )
    if policy == "allowduringmaintenancewindow":
        return (
            "the cluster's Node Disruption Policy is AllowDuringMaintenanceWindow: AKS reimages the nodes "
            "in the node-OS maintenance window, and verification confirms it"
        )
    return ""


def plan_pool(
    cluster: Cluster, pool: Pool, policy: Policy, *, pending_reimage: bool = False, exemption: Exemption | None = None
) -> PoolPlan:
    """`pending_reimage`: sshAccess was set earlier but the node-image upgrade has not run yet.
    `exemption`: the pool's exemption in force, which stands in for the policy until it ends."""
    if exemption is not None:
        return _exempted(cluster, pool, exemption, pending_reimage)
    decision = policy.decide(cluster, pool)
    desired = decision.desired
    if desired is None:
        return PoolPlan(cluster, pool, None, Status.IGNORED, f"{decision.rule} says ignore")
    unsupported = unsupported_reason(cluster, pool, desired)
    if unsupported:
        return PoolPlan(
            cluster, pool, desired, Status.UNSUPPORTED, f"{unsupported} ({decision.rule} asks for {desired.value})"
        )
    if pool.ssh_access is desired and not pending_reimage:
        return PoolPlan(cluster, pool, desired, Status.COMPLIANT, f"{decision.rule}: {desired.value}")
    if pool.ssh_access is desired and (held := held_reimage(cluster, pool)):
        # Not forced with an upgrade of its own: the cluster's owner chose when nodes may be reimaged.
        return PoolPlan(
            cluster, pool, desired, Status.PENDING_REIMAGE, f"{decision.rule}: {desired.value} is set; {held}"
        )
    if pool.ssh_access is desired:
        return PoolPlan(
            cluster,
            pool,
            desired,
            Status.PENDING_REIMAGE,
            f"{decision.rule}: {desired.value} is set; nodes wait for a node-image upgrade",
            (Step.UPGRADE_NODE_IMAGE,),
        )
    return _drifted(cluster, pool, desired, decision.rule)


def _drifted(cluster: Cluster, pool: Pool, desired: SshAccess, rule: str) -> PoolPlan:
    change = f"{rule}: {pool.ssh_access.value} -> {desired.value}"
    if cluster.is_stopped:
        return PoolPlan(
            cluster, pool, desired, Status.DRIFTED, f"{change}; cluster is stopped (only start/delete are allowed)"
        )
    steps = (Step.UPDATE_SSH_ACCESS,) if reimages_itself(pool) else (Step.UPDATE_SSH_ACCESS, Step.UPGRADE_NODE_IMAGE)
    if held := held_reimage(cluster, pool):
        suffix = f"; no reimage follows now: {held}"
    elif reimages_itself(pool):
        suffix = "; the update reimages the nodes (Kubernetes >= 1.37)"
    else:
        suffix = "; then a node-image upgrade"
    return PoolPlan(cluster, pool, desired, Status.DRIFTED, change + suffix, steps)


def _exempted(cluster: Cluster, pool: Pool, exemption: Exemption, pending_reimage: bool) -> PoolPlan:
    """While exempt the pool keeps its mode, or is given the exemption's: never the policy's."""
    terms, mode = exemption.describe(), exemption.mode
    if mode is None:
        return PoolPlan(
            cluster, pool, pool.ssh_access, Status.EXEMPTED, f"{terms}: keeps {pool.ssh_access.value}", (), exemption
        )
    if unsupported := unsupported_reason(cluster, pool, mode):
        reason = f"{terms}: {mode.value} cannot be set ({unsupported}); left as it is"
        return PoolPlan(cluster, pool, mode, Status.EXEMPTED, reason, (), exemption)
    if pool.ssh_access is mode:
        if not pending_reimage:
            return PoolPlan(cluster, pool, mode, Status.EXEMPTED, f"{terms}: {mode.value}", (), exemption)
        reason = f"{terms}: {mode.value} is set; nodes wait for a node-image upgrade"
        return PoolPlan(cluster, pool, mode, Status.EXEMPTED, reason, (Step.UPGRADE_NODE_IMAGE,), exemption)
    drifted = _drifted(cluster, pool, mode, terms)
    return replace(drifted, status=Status.EXEMPTED, exemption=exemption)


def write_still_applies(
    cluster: Cluster, pool: Pool, policy: Policy, desired: SshAccess, exemption: Exemption | None = None
) -> str | None:
    """Re-check, just before a write, that the policy (or the pool's exemption in force) still
    wants `desired` on this pool and AKS can take it; None if so, else why not. A reconcile may
    have waited hours meanwhile, and an exemption may have been granted or have ended."""
    if exemption is not None:
        if exemption.mode is not desired:
            gives = f"gives it {exemption.mode.value}" if exemption.mode else "keeps its mode"
            return f"the pool is {exemption.describe()} and {gives}, not {desired.value}: not writing"
    elif (decision := policy.decide(cluster, pool)).desired is not desired:
        wanted = decision.desired.value if decision.desired else "ignore"
        return f"the policy now says {wanted} ({decision.rule}), not {desired.value}: not writing"
    unsupported = unsupported_reason(cluster, pool, desired)
    if unsupported:
        return f"{unsupported}: not writing"
    if cluster.is_stopped:
        return "the cluster is stopped now (only start/delete are allowed): not writing"
    return None


def apply_plan(plan: PoolPlan) -> Pool:
    """The pool as it is once the plan's steps have run (used to prove plans converge)."""
    if Step.UPDATE_SSH_ACCESS in plan.steps and plan.desired is not None:
        return replace(plan.pool, ssh_access=plan.desired)
    return plan.pool
