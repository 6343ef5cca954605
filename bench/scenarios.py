"""The scenarios, and what one run of each measures.

Floors (the baseline of every ratio): a remediation of a pool on Kubernetes < 1.37 needs 2 ARM
writes (PUT sshAccess + POST upgradeNodeImageVersion); on 1.37+ the PUT alone (AKS reimages).
An ideal client reads the pool once (the PUT must carry the whole body) and polls each
long-running operation until it ends: the emulator answers `InProgress` for `lro_polls` reads,
so each operation costs `lro_polls + 1` reads. Read floor = 1 + writes_floor * (lro_polls + 1):
with operations that end at the first poll (lro_polls=0) that is GET pool + PUT + one poll +
POST + one poll = 3 reads. A compliant pool: 1 read, 0 writes. A cluster-wide reconcile could
take the pool bodies from one list instead of N GETs; the per-pool floor ignores that 1/N saving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench import fleets
from bench.stack import Run

WIDE_POOLS = 10
STORM_COPIES = (1, 10, 100, 1000)
STORM_REPEATS = 3  # runs of each storm up to 100 copies; the median time is reported
READ_FLOOR = "1 GET pool + writes_floor * (lro_polls + 1) operation polls"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    events: Callable[[], list[dict]]
    write_floor: int  # ARM writes per pool an ideal client needs
    pools: int = 1
    lro_polls: int = 1
    fleet: Callable[[], dict] = field(default=fleets.demo_fleet)

    @property
    def read_floor(self) -> int:
        return 1 + self.write_floor * (self.lro_polls + 1)


def _pool_event(pool_id: str) -> Callable[[], list[dict]]:
    return lambda: [fleets.write_event(pool_id)]


SCENARIOS = (
    Scenario("localuser", "pool write, LocalUser -> Disabled", _pool_event(fleets.LOCALUSER_POOL), 2),
    Scenario("k8s-1.37", "pool write, Kubernetes 1.37", _pool_event(fleets.K8S_137_POOL), 1),
    Scenario(
        f"cluster-x{WIDE_POOLS}",
        f"cluster write, {WIDE_POOLS} drifted pools",
        lambda: [fleets.write_event(fleets.DEV_CLUSTER, fleets.CLUSTER_WRITE)],
        2,
        pools=WIDE_POOLS,
        fleet=lambda: fleets.wide_cluster_fleet(WIDE_POOLS),
    ),
    Scenario("compliant", "pool write, already Disabled", _pool_event(fleets.COMPLIANT_POOL), 0),
    Scenario("lro-polls-0", "LocalUser, lro_polls=0", _pool_event(fleets.LOCALUSER_POOL), 2, lro_polls=0),
    Scenario("lro-polls-1", "LocalUser, lro_polls=1", _pool_event(fleets.LOCALUSER_POOL), 2, lro_polls=1),
    Scenario("lro-polls-5", "LocalUser, lro_polls=5", _pool_event(fleets.LOCALUSER_POOL), 2, lro_polls=5),
)


def measure(tables: str, scenario: Scenario) -> dict:
    """One fresh run of `scenario`: totals, per-pool figures and their floors."""
    with Run(tables, scenario.fleet(), lro_polls=scenario.lro_polls) as run:
        seconds = run.deliver(*scenario.events())
        arm, history, outcomes = run.arm_counts(), run.histories(), run.outcomes()
    per_pool = {k: v / scenario.pools for k, v in arm.items()}
    return {
        "scenario": scenario.key,
        "label": scenario.label,
        "pools": scenario.pools,
        "lro_polls": scenario.lro_polls,
        "outcomes": outcomes,
        "seconds": seconds,
        "arm": arm,
        "history": history,
        "writes_per_pool": per_pool["writes"],
        "write_floor": scenario.write_floor,
        "reads_per_pool": per_pool["reads"],
        "read_floor": scenario.read_floor,
        "reads_by_kind_per_pool": {k.removeprefix("reads."): v for k, v in per_pool.items() if k.startswith("reads.")},
        "history_per_pool": (history["cluster"] + history["pools"]) / scenario.pools,
    }


def storm(tables: str, copies: int) -> dict:
    """`copies` deliveries of one and the same event (same id) for a drifted LocalUser pool,
    each on a fresh fleet; small storms run `STORM_REPEATS` times (the 1000 one, once)."""
    runs = [_storm_once(tables, copies) for _ in range(STORM_REPEATS if copies <= 100 else 1)]
    times = sorted(r["seconds"] for r in runs)
    return {**runs[0], "runs": len(runs), "seconds": times[len(times) // 2], "seconds_all": times}


def _storm_once(tables: str, copies: int) -> dict:
    event = fleets.write_event(fleets.LOCALUSER_POOL, event_id="storm-event")
    with Run(tables, fleets.demo_fleet()) as run:
        seconds = run.deliver(*[event] * copies)
        arm, history, outcomes = run.arm_counts(), run.histories(), run.outcomes()
    return {
        "copies": copies,
        "writes": arm["writes"],
        "reads": arm["reads"],
        "outcomes": outcomes,
        "history": history["cluster"] + history["pools"],
        "pool_instances": history["pool_instances"],
        "seconds": seconds,
    }


def warm_up(tables: str) -> None:
    """One unmeasured run, so the first scenario does not pay for imports and first connections."""
    with Run(tables, fleets.demo_fleet()) as run:
        run.deliver(fleets.write_event(fleets.COMPLIANT_POOL))
