"""Render plans for people (a table) and machines (JSON rows). Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.plan import PoolPlan

COLUMNS = ("SUBSCRIPTION", "RESOURCE GROUP", "CLUSTER", "POOL", "OS", "CURRENT", "DESIRED", "STATUS", "REASON")


def plan_row(plan: PoolPlan) -> dict[str, Any]:
    ref = plan.cluster.ref
    return {
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


def plan_table(plans: list[PoolPlan]) -> str:
    rows = [
        (
            r["subscription"][:8],
            r["resourceGroup"],
            r["cluster"],
            r["pool"],
            r["os"],
            r["current"],
            r["desired"],
            r["status"],
            r["reason"],
        )
        for r in map(plan_row, plans)
    ]
    return table(COLUMNS, rows)


def table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(columns, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in [columns, *rows]]
    return "\n".join(lines)
