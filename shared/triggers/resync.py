"""Resync: the periodic level-triggered sweep, as Kubernetes controllers resync.

Events are hints and can be lost (Event Grid gives up after 24 h). Every `WARDEN_RESYNC_SCHEDULE`
(and on `reconcile --all`) the warden plans the whole fleet in `WARDEN_SUBSCRIPTIONS` — clusters
read concurrently, within ARM's read budget — and requests a reconcile of every cluster with a
pool whose plan has steps; a cluster with requests left in the table gets its worker started.
Exemptions that have ended but are still stored (their timer was lost) are recorded as expired
and removed first, so their pools are planned by the policy again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from shared.core.errors import OutOfScopeError, StoreNotFoundError, WardenError
from shared.core.models import ClusterRef, Target
from shared.core.protocol import Outcome
from shared.core.records import AuditRecord, PoolState, exemptions_in_force
from shared.orchestration.runtime import Runtime, runtime
from shared.policy.plan import Exemption
from shared.triggers.functions import RESYNC_FUNCTION as RESYNC_FUNCTION  # its name, for callers
from shared.triggers.start import StartError, ensure_worker, request_work

log = logging.getLogger(__name__)

ACTOR = "resync"


@dataclass
class ResyncReport:
    clusters: int = 0
    requested: list[str] = field(default_factory=list)  # cluster ids with drifted or pending pools
    resumed: list[str] = field(default_factory=list)  # cluster ids whose requests were left behind
    expired: list[str] = field(default_factory=list)  # pool ids whose ended exemption was still stored
    errors: list[str] = field(default_factory=list)


async def resync_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    report = await resync(client, runtime())
    log.info(
        "resync: %d clusters read, reconcile requested for %d, %d resumed, %d exemptions expired, %d errors",
        report.clusters,
        len(report.requested),
        len(report.resumed),
        len(report.expired),
        len(report.errors),
    )
    for error in report.errors:
        log.warning("resync: %s", error)


async def resync(client, rt: Runtime) -> ResyncReport:
    from shared.policy.fleet import scan_fleet  # the fleet scan's threads and budget: not at start-up

    report = ResyncReport()
    exemptions = _exemptions(rt, datetime.now(UTC), report)
    rows = _pool_rows(rt)
    pending = frozenset(key for key, row in rows.items() if row.pending_reimage)
    fleet = scan_fleet(
        rt.arm, rt.settings.subscriptions, rt.settings.policy, pending_reimage=pending, exemptions=exemptions
    )
    report.clusters, report.errors = len(fleet.by_cluster()), report.errors + fleet.errors
    _record_unwritten(rt, fleet, rows, report)
    for ref in fleet.clusters_with_steps():
        pools = [p for p in fleet.by_cluster()[ref] if p.steps]
        reason = f"resync: {len(pools)} pool(s) drifted or pending a reimage ({', '.join(p.pool.name for p in pools)})"
        if await _request(client, rt, ref, reason, report):
            report.requested.append(ref.id)
    requested = {Target.from_id(cluster_id).cluster.key for cluster_id in report.requested}
    for ref in _left_behind(rt, report):
        if ref.key in requested:
            continue  # its worker was just started or joined
        try:
            await ensure_worker(client, ref)
            report.resumed.append(ref.id)
        except StartError as e:
            report.errors.append(f"cluster {ref.id}: {e}")
    return report


async def _request(client, rt: Runtime, ref: ClusterRef, reason: str, report: ResyncReport) -> bool:
    try:
        instance_id, how = await request_work(client, rt.store, Target(ref), reason, ACTOR)
        _audit(rt, ref, f"{reason}: worker {how}: {instance_id}", instance_id)
    except StartError as e:
        report.errors.append(f"cluster {ref.id}: {e} (the request waits in the table)")
        return False
    except WardenError as e:  # Table Storage: this cluster is not asked now; the next resync will
        report.errors.append(f"cluster {ref.id}: the request could not be recorded: {e}")
        return False
    return True


def _left_behind(rt: Runtime, report: ResyncReport) -> list[ClusterRef]:
    """Clusters in scope with requests in the table (their worker died, or never started)."""
    refs = []
    try:
        keys = rt.store.clusters_with_requests()
    except WardenError as e:
        report.errors.append(f"cannot read the requests left behind: {e}")
        return []
    for key in keys:
        try:
            target = Target.from_id(key)
            rt.settings.require_in_scope(target.cluster.subscription)
        except OutOfScopeError as e:
            report.errors.append(f"requests left for {key} are not acted on: {e}")
            continue
        refs.append(target.cluster)
    return refs


def _pool_rows(rt: Runtime) -> dict[str, PoolState]:
    try:
        return {row.pool_key: row for row in rt.store.list_pool_states()}
    except StoreNotFoundError:
        return {}


def _record_unwritten(rt: Runtime, fleet, rows: dict[str, PoolState], report: ResyncReport) -> None:
    """Pools with work to do get their rows from their reconcile's plan; every other pool the plan
    sees, from here (`record_plans`)."""
    from shared.orchestration.recording import record_plans  # the Table Storage SDK: not at start-up

    plans = [p for plans in fleet.by_cluster().values() for p in plans if not p.steps]
    report.errors += record_plans(rt, plans, rows)


def _exemptions(rt: Runtime, now: datetime, report: ResyncReport) -> dict[str, Exemption]:
    """The exemptions in force, once those that ended are recorded and removed. Unreadable: none
    here (each reconcile's plan still reads its pool's exemption before it writes anything)."""
    from shared.orchestration.exemptions import expire_all_due  # loads the Table Storage SDK

    try:
        report.expired = [row.pool_key for row in expire_all_due(rt, now)]
        return exemptions_in_force(rt.store.list_exemptions(), now)
    except WardenError as e:
        report.errors.append(f"cannot read the exemptions: {e}")
        return {}


def _audit(rt: Runtime, ref: ClusterRef, message: str, instance_id: str) -> None:
    record = AuditRecord(
        time=datetime.now(UTC),
        cluster_id=ref.id,
        step="resync",
        outcome=Outcome.PLANNED,
        message=message,
        instance_id=instance_id,
        actor=ACTOR,
    )
    rt.store.append_audit([record])
