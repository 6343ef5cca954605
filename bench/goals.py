"""The performance goals: each figure against its floor or baseline measured in the same run.

`rows(figures)` reads the figures of a whole run (sections 1, 4 and 6-9) into one `Goal` per
row; bench/README.md says how each floor is computed. A ratio is measured / floor (throughput:
floor time / measured time), compared with the goal's bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# ARM reads an ideal client needs per pool, LocalUser -> Disabled on Kubernetes < 1.37 with the
# emulator's lro_polls = 1 (each operation answers InProgress once, then Succeeded).
POOL_READ_FLOOR = 1 + 2 * 2  # GET the pool; the PUT and the upgrade, 2 polls each
CLUSTER_POOLS = 10
CLUSTER_READ_FLOOR = 1 / CLUSTER_POOLS + 2 * 2  # one pool list serves all 10 pools; 2 polls per operation
PLAN_CLUSTERS = 200


@dataclass(frozen=True)
class Goal:
    figure: str
    measured: str
    floor: str
    ratio: float
    bound: float
    at_most: bool = True  # False: the ratio must be at least `bound` (a throughput)

    @property
    def met(self) -> bool:
        return self.ratio <= self.bound if self.at_most else self.ratio >= self.bound

    @property
    def goal(self) -> str:
        return f"{'<=' if self.at_most else '>='} x{self.bound:g}"

    def to_json(self) -> dict:
        return {"figure": self.figure, "ratio": self.ratio, "goal": self.goal, "met": self.met}


def rows(figures: dict) -> list[Goal]:
    """The rows whose figures this run measured (a section left out with `--only` has none)."""
    makers = (_pool_reads, _cluster_reads, _cold_start, _admission, _duplicate, _plan, _reconcile_time)
    return [row for make in makers if (row := make(figures)) is not None]


def _scenario(figures: dict, key: str) -> dict | None:
    return next((s for s in figures.get("scenarios", []) if s["scenario"] == key), None)


def _pool_reads(figures: dict) -> Goal | None:
    if (s := _scenario(figures, "localuser")) is None:
        return None
    return Goal(
        "ARM reads per remediated pool (LocalUser -> Disabled, 1 poll per operation)",
        f"{s['reads_per_pool']:g}",
        f"{POOL_READ_FLOOR} (GET pool, 2 polls of the PUT, 2 of the upgrade)",
        s["reads_per_pool"] / POOL_READ_FLOOR,
        1.2,
    )


def _cluster_reads(figures: dict) -> Goal | None:
    if (s := _scenario(figures, f"cluster-x{CLUSTER_POOLS}")) is None:
        return None
    return Goal(
        f"ARM reads per pool, cluster write with {CLUSTER_POOLS} drifted pools",
        f"{s['reads_per_pool']:g}",
        f"{CLUSTER_READ_FLOOR:g} (one pool list serves all {CLUSTER_POOLS}, 4 polls per pool)",
        s["reads_per_pool"] / CLUSTER_READ_FLOOR,
        1.3,
    )


def _cold_start(figures: dict) -> Goal | None:
    if (c := figures.get("cold_start")) is None:
        return None
    return Goal(
        "cold start: import function_app + get_functions()",
        f"{c['seconds']:.3f} s",
        f"{c['floor_seconds']:.3f} s (a bare DFApp with the same {c['functions']} functions)",
        c["seconds"] / c["floor_seconds"],
        1.2,
    )


def _admission(figures: dict) -> Goal | None:
    if (a := figures.get("admission")) is None:
        return None
    kept = a["kept_json_us"] / a["kept_admission_us"]
    return Goal(
        f"event admission (parse + classify), a topic's mix: {a['kept']} kept in {a['events']}",
        f"{a['admission_us']:.1f} us/event (kept alone: {a['kept_admission_us']:.1f} us, x{kept:.2f})",
        f"{a['json_us']:.1f} us (json.loads of the same payloads)",
        a["json_us"] / a["admission_us"],
        0.5,
        at_most=False,
    )


def _duplicate(figures: dict) -> Goal | None:
    if (d := figures.get("duplicate")) is None:
        return None
    return Goal(
        "a duplicate event in a storm",
        f"{d['ms']:.2f} ms/copy",
        f"{d['floor_ms']:.2f} ms (one Table upsert_entity)",
        d["ms"] / d["floor_ms"],
        2.0,
    )


def _plan(figures: dict) -> Goal | None:
    run = next((p for p in figures.get("plan", []) if p["clusters"] == PLAN_CLUSTERS), None)
    if run is None:
        return None
    floor = plan_floor(run["clusters"], run["workers"], run["latency_seconds"])
    return Goal(
        f"plan of {PLAN_CLUSTERS} clusters ({1000 * run['latency_seconds']:g} ms ARM latency, {run['workers']} workers)",
        f"{run['seconds']:.3f} s",
        f"{floor:.3f} s ((1 + ceil({run['clusters']}/{run['workers']})) x latency)",
        run["seconds"] / floor,
        1.5,
    )


def plan_floor(clusters: int, workers: int, latency: float) -> float:
    """The cluster list, then the clusters' pool lists `workers` at a time, each one latency."""
    return (1 + math.ceil(clusters / workers)) * latency


def _reconcile_time(figures: dict) -> Goal | None:
    if (r := figures.get("reconcile_time")) is None:
        return None
    return Goal(
        "reconcile wall time per pool (in-process host, cluster write of 10 pools, until the reconcile ends)",
        f"{r['seconds_per_pool']:.3f} s",
        f"{r['baseline_seconds_per_pool']:.3f} s ({r['baseline']})",
        r["ratio"],
        0.5,
    )
