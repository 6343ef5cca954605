"""Event Grid trigger: ARM events from the subscription's system topic -> reconcile targets.

Never lets a bad event escape: Event Grid would redeliver it for 24 hours. Malformed,
irrelevant and out-of-scope events are logged and dropped without any ARM call. Only a
failure to start or join the reconcile raises, so that Event Grid retries the delivery.

Event Grid delivers at least once: a storm brings copies of one event (the same id), and a
delivery whose function failed comes again. An event is handled when its audit row is written,
keyed by the event (`WardenStore.append_audit`), which happens only after its request is
recorded and its worker started or joined. A copy that finds that row ends there, after one
Table read; a redelivery of an event whose first try failed before it (no worker could be
started, Table Storage was down) finds none and does the work.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df
import azure.functions as func

from shared.core.errors import StoreError
from shared.core.records import AuditRecord, Outcome
from shared.orchestration.runtime import runtime
from shared.triggers.functions import EVENT_FUNCTION as EVENT_FUNCTION  # its name, for callers
from shared.triggers.start import request_work

if TYPE_CHECKING:
    from shared.core.events import Hint
    from shared.core.models import Target

log = logging.getLogger(__name__)

EVENT_KEY_PREFIX = "event-"  # the audit write of a handled event is keyed "event-<event id>"
MAX_PLAIN_ID = 128  # longer ids are hashed: a RowKey holds at most 1 KiB


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


async def on_arm_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    from shared.core.events import Drop, EventError, classify  # the first event imports them, not the start-up
    from shared.triggers.node_events import is_rolling_event, on_rolling_event

    rt = runtime()
    if is_rolling_event(event):  # AKS's own cluster events, from the cluster's system topic
        return await on_rolling_event(as_event_dict(event), client, rt)
    try:
        verdict = classify(as_event_dict(event), rt.settings.subscriptions, rt.settings.own_identities)
    except EventError as e:
        log.warning("dropped an unreadable event %s: %s", getattr(event, "id", "?"), e)
        return
    if isinstance(verdict, Drop):
        log.info("dropped event %s: %s", verdict.event_id, verdict.reason)
        return
    hint = verdict
    if _handled(rt.store, hint):
        log.info("event %s was handled before (a copy or a redelivery): nothing to do", hint.event_id)
        return
    if hint.own_write:
        _audit(rt, hint, Outcome.SKIPPED, "caused by the warden's own write: nothing to start")
        return
    reason = f"event {hint.operation} by {hint.caller or 'unknown'}"
    instance_id, how = await request_work(client, rt.store, hint.target, reason, hint.caller)
    _audit(rt, hint, Outcome.PLANNED, f"reconcile {how}: {instance_id}", instance_id)


def event_key(event_id: str) -> str:
    """The key of the event's audit write: the same for every copy and redelivery of the event."""
    if len(event_id) > MAX_PLAIN_ID:
        event_id = "sha256-" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    return EVENT_KEY_PREFIX + event_id


def event_handled(store, target: Target, event_id: str) -> bool:
    """Whether the event's audit row is written. A failed read says no: the work is done again
    (a request joins the one waiting), never skipped."""
    try:
        return store.step_receipt(target.cluster.key, event_key(event_id)) is not None
    except StoreError as e:
        log.warning("could not tell whether event %s was handled (%s): handling it", event_id, e)
        return False


def audit_event(
    rt, target: Target, event_id: str, outcome: Outcome, message: str, *, instance_id="", actor="", correlation_id=""
) -> None:
    """The event's one audit row, keyed by the event: every copy and redelivery writes it once."""
    row = AuditRecord(
        time=datetime.now(UTC),
        cluster_id=target.cluster.id,
        step="event",
        outcome=outcome,
        pool=target.pool or "",
        correlation_id=correlation_id,
        message=message,
        instance_id=instance_id,
        actor=actor,
    )
    rt.store.append_audit([row], key=event_key(event_id))


def _handled(store, hint: Hint) -> bool:
    return event_handled(store, hint.target, hint.event_id)


def _audit(rt, hint: Hint, outcome: Outcome, message: str, instance_id: str = "") -> None:
    what = hint.operation.split("/", 1)[-1] or hint.event_type
    audit_event(
        rt,
        hint.target,
        hint.event_id,
        outcome,
        f"{what}: {message}",
        instance_id=instance_id,
        actor=hint.caller,
        correlation_id=hint.correlation_id,
    )
