"""Read the fleet from ARM and plan every pool: the read-only report behind `plan`.

Takes the ARM adapter as an argument (anything with `list_clusters`/`list_pools`), so
this module stays free of SDK imports. Sends only GET requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared.errors import ArmError
from shared.models import Cluster
from shared.plan import PoolPlan, plan_pool
from shared.policy import Policy


@dataclass
class FleetReport:
    plans: list[PoolPlan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def scan_fleet(
    arm,
    subscriptions: Iterable[str],
    policy: Policy,
    *,
    pending_reimage: frozenset[str] = frozenset(),
    progress: Callable[[str], None] = lambda _: None,
) -> FleetReport:
    """Plan every pool of every cluster in the subscriptions.

    `pending_reimage` holds the keys (`Pool.key`) of pools whose sshAccess was set but
    whose node-image upgrade has not run yet (from the pool-state table). A failure to
    read one subscription or cluster is reported and the scan goes on.
    """
    report = FleetReport()
    for subscription in sorted(subscriptions):
        try:
            clusters = arm.list_clusters(subscription)
        except ArmError as e:
            report.errors.append(f"subscription {subscription}: cannot list clusters: {e}")
            continue
        for cluster in sorted(clusters, key=lambda c: c.ref):
            progress(f"{cluster.ref}: reading pools")
            _plan_cluster(arm, cluster, policy, pending_reimage, report)
    return report


def _plan_cluster(arm, cluster: Cluster, policy: Policy, pending: frozenset[str], report: FleetReport) -> None:
    try:
        pools = arm.list_pools(cluster.ref)
    except ArmError as e:
        report.errors.append(f"cluster {cluster.ref.id}: cannot list pools: {e}")
        return
    for pool in sorted(pools, key=lambda p: p.name.lower()):
        report.plans.append(plan_pool(cluster, pool, policy, pending_reimage=pool.key in pending))
