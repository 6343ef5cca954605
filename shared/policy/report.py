"""Render plans for machines (JSON rows, camelCase, full resource ids). Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.policy.plan import Exemption, PoolPlan


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
        "exemption": exemption_row(plan.exemption) if plan.exemption else None,
    }


def exemption_row(exemption: Exemption) -> dict[str, Any]:
    """Who exempted the pool, why, until when, and the mode it gives (null: it keeps its own)."""
    return {
        "actor": exemption.actor,
        "reason": exemption.reason,
        "until": exemption.until,
        "mode": exemption.mode.value if exemption.mode else None,
    }


def summary(plans: list[PoolPlan]) -> dict[str, int]:
    return dict(sorted(Counter(p.status.value for p in plans).items()))
