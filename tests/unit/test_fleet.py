"""`scan_fleet` with a fake adapter (threads, order, errors, progress) and the per-subscription `ReadBudget`."""

from __future__ import annotations

import threading

import pytest

from shared.core.errors import PermanentError
from shared.core.models import Cluster, ClusterRef, Pool, SshAccess
from shared.policy import parse_policy
from shared.policy.fleet import FleetReport, ReadBudget, scan_fleet

SUB = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"
OTHER = "8d41e7b2-0c9f-4e35-a6d8-1b2c3d4e5f60"
POLICY = parse_policy({"default": "Disabled"})


def ref(name: str, subscription: str = SUB) -> ClusterRef:
    return ClusterRef(subscription, "rg", name)


class FakeArm:
    """Clusters by subscription and pools by cluster; `fail` names clusters/subscriptions that
    answer 403; `on_read` runs inside every pool-list read (to meet other threads)."""

    def __init__(self, clusters: dict[str, list[str]], *, fail=(), on_read=lambda: None, mode=SshAccess.DISABLED):
        self.clusters = clusters
        self.fail = set(fail)
        self.on_read = on_read
        self.mode = mode

    def list_clusters(self, subscription: str) -> list[Cluster]:
        if subscription in self.fail:
            raise PermanentError("AuthorizationFailed", f"no access to {subscription}")
        return [Cluster(ref(name, subscription)) for name in self.clusters[subscription]]

    def list_pools(self, cluster: ClusterRef) -> list[Pool]:
        self.on_read()
        if cluster.name in self.fail:
            raise PermanentError("AuthorizationFailed", f"no access to {cluster.name}")
        mode = SshAccess.LOCAL_USER if cluster.name.startswith("drift") else self.mode
        return [Pool(cluster, name, ssh_access=mode) for name in ("user", "System")]


class InFlight:
    """Counts pool-list reads running at once; each waits until `parties` are in, so a scan
    with fewer threads than that breaks the barrier instead of passing."""

    def __init__(self, parties: int):
        self.barrier = threading.Barrier(parties, timeout=5)
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            self.barrier.wait()
        finally:
            with self.lock:
                self.now -= 1


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_reads_run_on_exactly_the_workers_asked_for():
    in_flight = InFlight(4)
    arm = FakeArm({SUB: [f"c{i}" for i in range(8)]}, on_read=in_flight)
    report = scan_fleet(arm, [SUB], POLICY, workers=4)
    assert in_flight.most == 4 and len(report.plans) == 16


def test_the_report_is_sorted_and_errors_keep_the_sequential_order():
    arm = FakeArm({SUB: ["b", "denied", "a"], OTHER: ["x"]}, fail={"denied", OTHER})
    progress: list[tuple[str, threading.Thread]] = []
    report = scan_fleet(
        arm, [OTHER, SUB], POLICY, workers=3, progress=lambda m: progress.append((m, threading.current_thread()))
    )
    assert [(p.cluster.ref.name, p.pool.name) for p in report.plans] == [
        ("a", "System"),
        ("a", "user"),
        ("b", "System"),
        ("b", "user"),
    ]
    assert report.errors == [
        f"cluster {ref('denied').id}: cannot list pools: AuthorizationFailed: no access to denied",
        f"subscription {OTHER}: cannot list clusters: AuthorizationFailed: no access to {OTHER}",
    ]
    # Progress: once per cluster read, always on the caller's thread.
    assert len(progress) == 3 and {t for _, t in progress} == {threading.current_thread()}


def test_clusters_with_steps_are_the_ones_with_a_drifted_pool():
    arm = FakeArm({SUB: ["ok", "drift-1", "denied", "drift-2"]}, fail={"denied"})
    report = scan_fleet(arm, [SUB], POLICY, workers=2)
    assert list(report.by_cluster()) == [ref("drift-1"), ref("drift-2"), ref("ok")]
    assert [len(plans) for plans in report.by_cluster().values()] == [2, 2, 2]
    assert report.clusters_with_steps() == [ref("drift-1"), ref("drift-2")]
    assert FleetReport().clusters_with_steps() == []


def test_reads_beyond_the_budget_wait_for_its_refill():
    time = FakeTime()
    budget = ReadBudget(2, 10.0, clock=time.clock, sleep=time.sleep)
    arm = FakeArm({SUB: [f"c{i}" for i in range(5)]})
    report = scan_fleet(arm, [SUB], POLICY, workers=1, budget=budget)  # one thread: the waits are deterministic
    assert len(report.plans) == 10
    assert time.slept == pytest.approx([0.1] * 4)  # 6 reads, 2 from the burst, 4 at 10/s
    assert budget.waited_seconds == pytest.approx(0.4)


def test_budget_is_per_subscription_any_casing_and_refills_up_to_its_size():
    time = FakeTime()
    budget = ReadBudget(3, 2.0, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        budget.take(SUB)
    budget.take(OTHER)  # its own bucket
    assert time.slept == []
    budget.take(SUB.upper())
    assert time.slept == [0.5]
    time.now += 60  # a long idle refills to 3, not to 120
    for _ in range(3):
        budget.take(SUB)
    budget.take(SUB)
    assert time.slept == [0.5, 0.5]


@pytest.mark.parametrize(("size", "rate"), [(0, 25), (250, 0)], ids=["no-burst", "no-refill"])
def test_a_budget_that_could_never_read_is_refused(size, rate):
    with pytest.raises(ValueError, match="size >= 1 and per_second > 0"):
        ReadBudget(size, rate)
