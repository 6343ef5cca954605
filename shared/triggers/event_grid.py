"""Event Grid trigger: ARM events from the subscription's system topic -> reconcile targets.

Never lets a bad event escape: Event Grid would redeliver it for 24 hours. Malformed,
irrelevant and out-of-scope events are logged and dropped without any ARM call. Only a
failure to start or join the reconcile raises, so that Event Grid retries the delivery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.events import Drop, EventError, classify
from shared.orchestration.runtime import runtime
from shared.records import AuditRecord, Outcome
from shared.triggers.start import request_work

bp = df.Blueprint()
log = logging.getLogger(__name__)

EVENT_FUNCTION = "on_arm_event"


def as_event_dict(event: Any) -> dict[str, Any]:
    """The worker's decoded event (Event Grid schema or CloudEvent) back to its wire fields."""
    time = getattr(event, "event_time", None) or getattr(event, "time", None)
    if hasattr(event, "specversion"):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": time.isoformat() if time else None,
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": time.isoformat() if time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


@bp.function_name(EVENT_FUNCTION)
@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_arm_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    rt = runtime()
    try:
        verdict = classify(as_event_dict(event), rt.settings.subscriptions, rt.settings.own_identities)
    except EventError as e:
        log.warning("dropped an unreadable event %s: %s", getattr(event, "id", "?"), e)
        return
    if isinstance(verdict, Drop):
        log.info("dropped event %s: %s", verdict.event_id, verdict.reason)
        return
    hint = verdict
    if hint.own_write:
        _audit(rt, hint, Outcome.SKIPPED, "caused by the warden's own write: nothing to start")
        return
    reason = f"event {hint.operation} by {hint.caller or 'unknown'}"
    instance_id, how = await request_work(client, rt.store, hint.target, reason, hint.caller)
    _audit(rt, hint, Outcome.PLANNED, f"reconcile {how}: {instance_id}", instance_id)


def _audit(rt, hint, outcome: Outcome, message: str, instance_id: str = "") -> None:
    rt.store.append_audit(
        [
            AuditRecord(
                time=datetime.now(UTC),
                cluster_id=hint.target.cluster.id,
                step="event",
                outcome=outcome,
                pool=hint.target.pool or "",
                correlation_id=hint.correlation_id,
                message=f"{hint.operation.split('/', 1)[-1] or hint.event_type}: {message}",
                instance_id=instance_id,
                actor=hint.caller,
            )
        ]
    )
