"""The verification timer: every `WARDEN_VERIFY_SCHEDULE`, verify work for every cluster in scope.

Each cluster's worker runs it (never during a reimage of that cluster); drift it finds is
recorded, published and, in enforce mode, requested for reconcile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import azure.durable_functions as df
import azure.functions as func

from shared.errors import ArmError, WardenError
from shared.models import Target
from shared.orchestration.runtime import Runtime, runtime
from shared.protocol import WorkKind
from shared.triggers.start import StartError, request_work

bp = df.Blueprint()
log = logging.getLogger(__name__)

VERIFY_FUNCTION = "verify_timer"
ACTOR = "verify-timer"


@dataclass
class FleetVerification:
    requested: list[str] = field(default_factory=list)  # cluster ids
    skipped: list[str] = field(default_factory=list)  # stopped clusters: their nodes are deallocated
    errors: list[str] = field(default_factory=list)


@bp.function_name(VERIFY_FUNCTION)
@bp.timer_trigger(schedule="%WARDEN_VERIFY_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def verify_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    report = await verify_fleet(client, runtime(), "scheduled verification")
    log.info("verify: requested for %d clusters, %d stopped, %d errors", *map(len, vars(report).values()))
    for error in report.errors:
        log.warning("verify: %s", error)


async def verify_fleet(client, rt: Runtime, reason: str, actor: str = ACTOR) -> FleetVerification:
    report = FleetVerification()
    for subscription in sorted(rt.settings.subscriptions):
        try:
            clusters = rt.arm.list_clusters(subscription)
        except ArmError as e:
            report.errors.append(f"subscription {subscription}: cannot list clusters: {e}")
            continue
        for cluster in sorted(clusters, key=lambda c: c.ref):
            if cluster.is_stopped:
                report.skipped.append(cluster.ref.id)
                continue
            try:
                await request_work(client, rt.store, Target(cluster.ref), reason, actor, WorkKind.VERIFY)
                report.requested.append(cluster.ref.id)
            except StartError as e:
                report.errors.append(f"cluster {cluster.ref.id}: {e} (the request waits in the table)")
            except WardenError as e:  # Table Storage: this cluster is not asked; the others still are
                report.errors.append(f"cluster {cluster.ref.id}: the request could not be recorded: {e}")
    return report
