"""Read the fleet from ARM and plan every pool: the read-only report behind `plan`.

Takes the ARM adapter as an argument (anything with `list_clusters`/`list_pools`), so
this module stays free of SDK imports. Sends only GET requests.

The reads run on a small pool of worker threads: a plan of a large fleet is one pool-list
GET per cluster, and one after another they cost `clusters x ARM latency`. Every read
first takes a token from its subscription's `ReadBudget`, so the concurrency never
outruns what ARM allows a subscription (reads: a bucket of 250 refilled 25/s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import ArmError
from shared.core.models import Cluster, ClusterRef
from shared.policy import Policy
from shared.policy.plan import Exemption, PoolPlan, auto_provisioned_nodes, plan_pool

DEFAULT_WORKERS = 8  # above 10 connections churn: the SDK's requests session pools 10 per host
ARM_READ_BUCKET = 250  # ARM's read throttle per subscription: burst...
ARM_READS_PER_SECOND = 25.0  # ...and refill


@dataclass(frozen=True)
class FleetFailure:
    """A subscription or cluster that could not be read: its id, what failed, ARM's error."""

    target: str
    what: str
    error: ArmError

    def __str__(self) -> str:
        kind = "subscription" if "/" not in self.target else "cluster"
        return f"{kind} {self.target}: {self.what}: {self.error}"


@dataclass
class FleetReport:
    plans: list[PoolPlan] = field(default_factory=list)
    failures: list[FleetFailure] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [str(f) for f in self.failures]

    def by_cluster(self) -> dict[ClusterRef, list[PoolPlan]]:
        """The plans grouped per cluster, in report order. A cluster that could not be
        read is absent (it is in `errors`), as is one without pools."""
        grouped: dict[ClusterRef, list[PoolPlan]] = {}
        for plan in self.plans:
            grouped.setdefault(plan.cluster.ref, []).append(plan)
        return grouped

    def clusters_with_steps(self) -> list[ClusterRef]:
        """Clusters with at least one pool whose plan has steps (drifted or pending a
        reimage): the ones a reconcile would change."""
        return [ref for ref, plans in self.by_cluster().items() if any(p.steps for p in plans)]


class ReadBudget:
    """A token bucket per subscription, shared by the worker threads of one scan.

    It starts full, so a fleet of up to `size` reads never waits; a larger one is paced
    at `per_second` instead of drawing 429s (which the SDK would retry, but only after
    ARM's Retry-After). `clock` and `sleep` are injectable for tests. One token per adapter
    call: the further pages of a paged list go uncounted (a pool list is one page; only a
    subscription with very many clusters pages its cluster list).
    """

    def __init__(
        self,
        size: float = ARM_READ_BUCKET,
        per_second: float = ARM_READS_PER_SECOND,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if size < 1 or per_second <= 0:
            raise ValueError(f"a read budget needs size >= 1 and per_second > 0, got {size} and {per_second}")
        self.size, self.per_second = size, per_second
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, tuple[float, float]] = {}  # subscription -> (tokens, when counted)
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # total time readers slept for a token (a benchmark figure)

    def take(self, subscription: str) -> None:
        """Spend one read of `subscription`'s budget, sleeping until one is there."""
        while (wait := self._try_take(subscription.lower())) > 0:
            self._sleep(wait)

    def _try_take(self, key: str) -> float:
        """0 when a token was spent, else the seconds until the next one (slept outside the lock)."""
        with self._lock:  # the clock too: a `now` older than the bucket's would undo a refill
            now = self._clock()
            tokens, since = self._buckets.get(key, (self.size, now))
            tokens = min(self.size, tokens + (now - since) * self.per_second)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.per_second
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            self.waited_seconds += wait
            return wait


def scan_fleet(
    arm,
    subscriptions: Iterable[str],
    policy: Policy,
    *,
    pending_reimage: frozenset[str] = frozenset(),
    exemptions: Mapping[str, Exemption] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    workers: int = DEFAULT_WORKERS,
    budget: ReadBudget | None = None,
) -> FleetReport:
    """Plan every pool of every cluster in the subscriptions.

    `pending_reimage` holds the keys (`Pool.key`) of pools whose sshAccess was set but
    whose node-image upgrade has not run yet (from the pool-state table); `exemptions` the
    exemptions in force, by pool key (read from the exemptions table: expired ones left out). A failure to
    read one subscription or cluster is reported and the scan goes on. `workers` reads
    run at once; the report is in the same order whatever their number. `progress` is
    called from this thread only, so it need not be thread-safe.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    budget = budget if budget is not None else ReadBudget()
    subscriptions = sorted(subscriptions)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-read") as executor:
        # Two phases: every subscription's client makes its first request (and gets its
        # token) alone in phase 1, so phase 2's threads share a cached token.
        listed = _read_all(executor, budget, arm.list_clusters, {s: s for s in subscriptions})
        clusters = [c for s in subscriptions if not isinstance(listed[s], ArmError) for c in _sorted(listed[s])]
        pools = _read_all(executor, budget, arm.list_pools, {c.ref: c.ref.subscription for c in clusters}, progress)
    return _report(subscriptions, listed, pools, policy, pending_reimage, exemptions or {})


def _read_all(
    executor: ThreadPoolExecutor,
    budget: ReadBudget,
    read: Callable[[Any], list],
    subscription_of: dict[Any, str],
    progress: Callable[[str], None] | None = None,
) -> dict[Hashable, list | ArmError]:
    """`read(key)` for every key of `subscription_of` (key -> whose budget it spends) on the
    workers: its list, or the `ArmError` it raised."""
    futures = {executor.submit(_budgeted_read, budget, s, read, key): key for key, s in subscription_of.items()}
    results: dict[Hashable, list | ArmError] = {}
    try:
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()  # anything but an ArmError is a bug: raise it
            if progress is not None:
                progress(f"{futures[future]}: pools read ({done}/{len(futures)} clusters)")
    except BaseException:
        for future in futures:  # a bug or Ctrl-C: do not read the rest of the fleet before stopping
            future.cancel()
        raise
    return results


def _budgeted_read(budget: ReadBudget, subscription: str, read: Callable[[Any], list], key: Any) -> list | ArmError:
    budget.take(subscription)
    try:
        return read(key)
    except ArmError as e:  # one unreadable subscription or cluster must not stop the scan
        return e


def _sorted(clusters: Sequence[Cluster]) -> list[Cluster]:
    return sorted(clusters, key=lambda c: c.ref)


def _report(
    subscriptions: list[str],
    listed: dict[Hashable, list | ArmError],
    pools: dict[Hashable, list | ArmError],
    policy: Policy,
    pending: frozenset[str],
    exemptions: Mapping[str, Exemption],
) -> FleetReport:
    """Assemble in the order a sequential scan would: subscriptions sorted, clusters by ref, pools by name."""
    report = FleetReport()
    for subscription in subscriptions:
        if isinstance(listed[subscription], ArmError):
            report.failures.append(FleetFailure(subscription, "cannot list clusters", listed[subscription]))
            continue
        for cluster in _sorted(listed[subscription]):
            found = pools[cluster.ref]
            if isinstance(found, ArmError):
                report.failures.append(FleetFailure(cluster.ref.id, "cannot list pools", found))
                continue
            for pool in sorted(found, key=lambda p: p.name.lower()):
                plan = plan_pool(
                    cluster, pool, policy, pending_reimage=pool.key in pending, exemption=exemptions.get(pool.key)
                )
                report.plans.append(plan)
            if auto := auto_provisioned_nodes(cluster):
                report.plans.append(plan_pool(cluster, auto, policy))
    return report
