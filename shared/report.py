"""Render plans for machines (JSON rows, camelCase, full resource ids). Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.plan import PoolPlan


def plan_row(plan: PoolPlan) -> dict[str, Any]:
    ref = plan.cluster.ref
    return {
        "clusterId": ref.id,
        "poolId": f"{ref.id}/agentPools/{plan.pool.name}",
        "subscription": ref.subscription,
        "resourceGroup": ref.resource_group,
        "cluster": ref.name,
        "pool": plan.pool.name,
        "os": plan.pool.os_type,
        "poolType": plan.pool.type,
        "current": plan.current.value,
        "desired": plan.desired.value if plan.desired else "ignore",
        "status": plan.status.value,
        "reason": plan.reason,
        "steps": [step.value for step in plan.steps],
    }


def summary(plans: list[PoolPlan]) -> dict[str, int]:
    return dict(sorted(Counter(p.status.value for p in plans).items()))
