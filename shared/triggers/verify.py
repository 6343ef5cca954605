"""The verification timer: every `WARDEN_VERIFY_SCHEDULE`, verify work for every cluster in scope.

Each cluster's worker runs it (never during a reimage of that cluster); drift it finds is
recorded, published and, in enforce mode, requested for reconcile.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from shared.core.errors import WardenError
from shared.core.models import Cluster
from shared.core.protocol import WorkKind
from shared.orchestration.runtime import Runtime, runtime
from shared.triggers.functions import VERIFY_FUNCTION as VERIFY_FUNCTION  # its name, for callers
from shared.triggers.start import FleetRequests, request_fleet

log = logging.getLogger(__name__)

ACTOR = "verify-timer"


async def verify_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    (await verify_fleet(client, runtime(), "scheduled verification")).log(log, "verify", skipped="stopped")


async def verify_fleet(client, rt: Runtime, reason: str, actor: str = ACTOR) -> FleetRequests:
    def stopped(cluster: Cluster) -> str | None:
        if not cluster.is_stopped:
            return None
        _record_stopped(rt, cluster)
        return "the cluster is stopped: its nodes are deallocated"

    return await request_fleet(client, rt, WorkKind.VERIFY, reason, actor, stopped)


def _record_stopped(rt: Runtime, cluster: Cluster) -> None:
    """A stopped cluster's pools are not verified; their rows still say where they stand, so the
    compliance report lists them (best effort: the resync writes them too)."""
    from shared.orchestration.recording import record_plans  # the Table Storage SDK: not at start-up
    from shared.policy.plan import plan_pool

    try:
        plans = [plan_pool(cluster, pool, rt.settings.policy) for pool in rt.arm.list_pools(cluster.ref)]
        errors = record_plans(rt, plans)
    except WardenError as e:
        errors = [str(e)]
    for error in errors:
        log.warning("verify: cluster %s is stopped; its pools' rows: %s", cluster.ref.id, error)
