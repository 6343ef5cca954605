"""The Event Grid trigger's part for AKS's node-pool rolling events (`shared.core.node_events`).

A rolling that ends (Succeeded, Failed) while the warden polls that pool's node-image upgrade
wakes the poll now (`raise_event` to the orchestration the pool's row names) instead of at its
next timer: polling stays the fallback. A successful rolling the warden did not start (AKS
auto-upgrade, another client) requests a verification of the pool: SSH has come back after
node-image updates before. Everything else is recorded.

Like ARM events, each is handled once: its audit row is keyed by the event, and written only
after the wake or the request. Bad events are dropped with the reason; only a failure to read
the pool's row, to wake, or to request the work raises, so that Event Grid delivers it again.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.core.errors import StoreNotFoundError
from shared.core.node_events import Action, RollingEvent, UpgradeWatch, decide, is_rolling, read_rolling
from shared.core.protocol import WorkKind
from shared.core.records import Outcome
from shared.orchestration.names import wake_event_name
from shared.triggers.event_grid import audit_event, event_handled
from shared.triggers.start import is_running, request_work

log = logging.getLogger(__name__)
ACTOR = "aks-event"


def is_rolling_event(event: Any) -> bool:
    """Whether the worker's decoded event (either schema) is a node-pool rolling event."""
    return is_rolling(getattr(event, "event_type", None) or getattr(event, "type", None))


async def on_rolling_event(event: dict[str, Any], client, rt) -> None:
    """Handle one rolling event, given as its wire fields (`as_event_dict`)."""
    verdict = read_rolling(event, rt.settings.subscriptions)
    if not isinstance(verdict, RollingEvent):
        log.warning("dropped event %s: %s", verdict.event_id or "?", verdict.reason)
        return
    if _handled(rt.store, verdict):
        log.info("event %s was handled before (a copy or a redelivery): nothing to do", verdict.event_id)
        return
    watch = _watch(rt.store, verdict)
    decision = decide(verdict, watch)
    if decision.action is Action.WAKE:
        if await _wake(client, watch.instance_id, verdict):
            _audit(rt, verdict, Outcome.PLANNED, f"{decision.reason}: {watch.instance_id}", watch.instance_id)
            return
        # The orchestration the row names has ended without clearing it: nobody upgrades the pool now.
        decision = decide(verdict, UpgradeWatch(last_ended=watch.last_ended))
    if decision.action is Action.VERIFY:
        instance_id, how = await request_work(client, rt.store, verdict.target, decision.reason, ACTOR, WorkKind.VERIFY)
        _audit(rt, verdict, Outcome.PLANNED, f"{decision.reason}: verification {how}: {instance_id}", instance_id)
        return
    _audit(rt, verdict, Outcome.SKIPPED, decision.reason)


def _watch(store, event: RollingEvent) -> UpgradeWatch:
    """The pool's row, as far as the warden's upgrades go (no row: none yet). A failed read
    raises: the event is delivered again rather than judged blind."""
    try:
        state = store.get_pool_state(event.target.cluster.key, event.target.pool)
    except StoreNotFoundError:
        return UpgradeWatch()
    return UpgradeWatch(state.upgrade_instance_id, state.upgrade_started_time, state.last_upgrade_time)


async def _wake(client, instance_id: str, event: RollingEvent) -> bool:
    """Raise the wake event to the polling orchestration; False when it no longer runs."""
    if not await is_running(client, instance_id):
        return False
    payload = {"phase": event.phase.value, "eventId": event.event_id}
    await client.raise_event(instance_id, wake_event_name(event.target.pool), payload)
    return True


def _handled(store, event: RollingEvent) -> bool:
    """Handling it twice is harmless anyway: the poll listens for one wake only, a second
    request joins the first."""
    return event_handled(store, event.target, event.event_id)


def _audit(rt, event: RollingEvent, outcome: Outcome, message: str, instance_id: str = "") -> None:
    audit_event(
        rt,
        event.target,
        event.event_id,
        outcome,
        f"{event.short_type}: {message}",
        instance_id=instance_id,
        actor=ACTOR,
    )
