"""The verification timer: every `WARDEN_VERIFY_SCHEDULE`, verify work for every cluster in scope.

Each cluster's worker runs it (never during a reimage of that cluster); drift it finds is
recorded, published and, in enforce mode, requested for reconcile.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from shared.models import Cluster
from shared.orchestration.runtime import Runtime, runtime
from shared.protocol import WorkKind
from shared.triggers.functions import VERIFY_FUNCTION as VERIFY_FUNCTION  # its name, for callers
from shared.triggers.start import FleetRequests, request_fleet

log = logging.getLogger(__name__)

ACTOR = "verify-timer"


async def verify_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    (await verify_fleet(client, runtime(), "scheduled verification")).log(log, "verify", skipped="stopped")


async def verify_fleet(client, rt: Runtime, reason: str, actor: str = ACTOR) -> FleetRequests:
    return await request_fleet(client, rt, WorkKind.VERIFY, reason, actor, _stopped)


def _stopped(cluster: Cluster) -> str | None:
    return "the cluster is stopped: its nodes are deallocated" if cluster.is_stopped else None
