"""The key-rotation timer: every `WARDEN_ROTATE_SCHEDULE`, rotate-keys work for every cluster in
scope that has a node SSH key (a `linuxProfile`) and can take a new one. Each cluster's worker
runs it, never during a reconcile or a verification of that cluster."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import azure.durable_functions as df
import azure.functions as func

from shared.errors import ArmError, WardenError
from shared.models import Target
from shared.orchestration.key_steps import NO_KEY_STORE, cannot_take_a_key
from shared.orchestration.runtime import Runtime, runtime
from shared.protocol import WorkKind
from shared.triggers.start import StartError, request_work

bp = df.Blueprint()
log = logging.getLogger(__name__)

ROTATE_FUNCTION = "rotate_keys_timer"
ACTOR = "rotate-timer"


@dataclass
class FleetRotation:
    requested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<cluster id>: why"
    errors: list[str] = field(default_factory=list)


@bp.function_name(ROTATE_FUNCTION)
@bp.timer_trigger(schedule="%WARDEN_ROTATE_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def rotate_keys_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    report = await rotate_fleet(client, runtime(), "scheduled key rotation")
    log.info("rotate-keys: requested for %d clusters, %d skipped, %d errors", *map(len, vars(report).values()))
    for error in report.errors:
        log.warning("rotate-keys: %s", error)


async def rotate_fleet(client, rt: Runtime, reason: str, actor: str = ACTOR) -> FleetRotation:
    report = FleetRotation()
    if rt.keystore is None:
        report.errors.append(NO_KEY_STORE)
        return report
    for subscription in sorted(rt.settings.subscriptions):
        try:
            clusters = rt.arm.list_clusters(subscription)
        except ArmError as e:
            report.errors.append(f"subscription {subscription}: cannot list clusters: {e}")
            continue
        for cluster in sorted(clusters, key=lambda c: c.ref):
            if why := cannot_take_a_key(cluster):
                report.skipped.append(f"{cluster.ref.id}: {why}")
                continue
            try:
                await request_work(client, rt.store, Target(cluster.ref), reason, actor, WorkKind.ROTATE_KEYS)
                report.requested.append(cluster.ref.id)
            except StartError as e:
                report.errors.append(f"cluster {cluster.ref.id}: {e} (the request waits in the table)")
            except WardenError as e:  # Table Storage: this cluster is not asked; the others still are
                report.errors.append(f"cluster {cluster.ref.id}: the request could not be recorded: {e}")
    return report
