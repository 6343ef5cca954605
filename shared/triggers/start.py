"""Request cluster work: record it, then make sure the cluster's worker will take it.

The requests table decides (see `WardenStore.add_request`): a worker committed to the
cluster takes every request written before it closes, so the trigger only starts one
when none is. A refused start then means the previous worker is in its last moments
(closed, not yet completed): it is tried again shortly. Nothing is ever lost: if no
start goes through, the request stays in the table and the caller fails (Event Grid
redelivers, HTTP answers 503) — the next request or the resync starts the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.core.errors import ArmError, WardenError
from shared.core.models import Cluster, ClusterRef, Target
from shared.core.protocol import WorkKind
from shared.core.records import Admission, WorkRequest
from shared.orchestration.envelope import cluster_json
from shared.orchestration.names import CLUSTER_WORKER, worker_instance_id
from shared.orchestration.runtime import runtime

START_TRIES = 8  # with doubling pauses from 0.05 s: about 13 s in all
FIRST_PAUSE_SECONDS = 0.05
ACTIVE = ("Pending", "Running", "ContinuedAsNew")


class StartError(Exception):
    """The worker could not be started: the caller should fail so the request is retried."""


async def request_work(
    client, store, target: Target, reason: str, actor: str = "", kind: WorkKind = WorkKind.RECONCILE, argument: str = ""
) -> tuple[str, str]:
    """Returns (worker instance id, "started" | "joined" | "pending"). `argument`: what the kind
    needs besides the target (a supplied public key for rotate-keys); never a secret."""
    request = WorkRequest(
        target.cluster.id, target.pool or "", datetime.now(UTC), kind, reason, actor, argument=argument
    )
    instance_id = worker_instance_id(target.cluster.key)
    admission = store.add_request(request)
    if admission is not Admission.START and await is_running(client, instance_id):
        return instance_id, admission.value
    taken = lambda: store.request_taken(target.cluster.key, request.row_key)  # noqa: E731
    return instance_id, await start_worker(client, target.cluster, taken)


async def ensure_worker(client, cluster: ClusterRef) -> str:
    """Start the cluster's worker unless one runs (the resync, for requests left behind)."""
    instance_id = worker_instance_id(cluster.key)
    if not await is_running(client, instance_id):
        await start_worker(client, cluster)
    return instance_id


async def start_worker(client, cluster: ClusterRef, taken=lambda: False) -> str:
    """Start the cluster's worker; "started", or "joined" when another trigger's start won and
    that worker has already taken our request (`taken`).

    The host refuses a second start of a running instance id (host.json
    `overridableExistingInstanceStates: NonRunningStates`); the Python client raises a bare
    `Exception` for it. A refusal means either the last worker is in its final moments (it
    closed before our request) or another trigger just started one: wait a moment, then try
    again — unless a worker has taken our request meanwhile."""
    instance_id, pause, failures = worker_instance_id(cluster.key), FIRST_PAUSE_SECONDS, []
    for _ in range(START_TRIES):
        try:
            await client.start_new(CLUSTER_WORKER, instance_id, worker_input(cluster))
            return "started"
        except OSError as unreachable:  # aiohttp's connection errors: no use waiting here
            raise StartError(f"could not start {instance_id}: the task hub is unreachable: {unreachable}") from None
        except Exception as refused:  # noqa: BLE001 - the SDK's only signal
            failures.append(str(refused))
        if taken():
            return "joined"
        await asyncio.sleep(pause)
        pause *= 2
    raise StartError(f"could not start {instance_id}: {failures[-1]}")


def worker_input(cluster: ClusterRef) -> dict:
    """The worker's first input: its cluster, and the poll setting for its very first waits."""
    return {"cluster": cluster_json(cluster), "pollSeconds": runtime().settings.poll_seconds}


async def is_running(client, instance_id: str) -> bool:
    try:
        status = await client.get_status(instance_id)
    except Exception:  # noqa: BLE001 - an unreachable task hub: say not running, the start tells why
        return False
    runtime_status = getattr(status, "runtime_status", None)
    return bool(runtime_status) and getattr(runtime_status, "value", runtime_status) in ACTIVE


@dataclass
class FleetRequests:
    requested: list[str] = field(default_factory=list)  # cluster ids
    skipped: list[str] = field(default_factory=list)  # "<cluster id>: why"
    errors: list[str] = field(default_factory=list)

    def log(self, log, what: str, skipped: str = "skipped") -> None:
        """What a timer's sweep did, for Application Insights: one line, then each error."""
        log.info(
            "%s: requested for %d clusters, %d %s, %d errors",
            what,
            len(self.requested),
            len(self.skipped),
            skipped,
            len(self.errors),
        )
        for error in self.errors:
            log.warning("%s: %s", what, error)


async def request_fleet(
    client, rt, kind: WorkKind, reason: str, actor: str, why_not: Callable[[Cluster], str | None]
) -> FleetRequests:
    """Work of `kind` for every cluster in scope that `why_not` does not rule out (the timers').
    One failing subscription or cluster is reported; the others are still asked."""
    report = FleetRequests()
    for subscription in sorted(rt.settings.subscriptions):
        try:
            clusters = rt.arm.list_clusters(subscription)
        except ArmError as e:
            report.errors.append(f"subscription {subscription}: cannot list clusters: {e}")
            continue
        for cluster in sorted(clusters, key=lambda c: c.ref):
            if why := why_not(cluster):
                report.skipped.append(f"{cluster.ref.id}: {why}")
                continue
            try:
                await request_work(client, rt.store, Target(cluster.ref), reason, actor, kind)
                report.requested.append(cluster.ref.id)
            except StartError as e:
                report.errors.append(f"cluster {cluster.ref.id}: {e} (the request waits in the table)")
            except WardenError as e:  # Table Storage: this cluster is not asked; the others still are
                report.errors.append(f"cluster {cluster.ref.id}: the request could not be recorded: {e}")
    return report
