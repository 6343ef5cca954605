"""The timer of a break-glass exemption: wait until it ends, then have it ended. Deterministic.

    exemption_expiry(cluster, pool, until)
      durable timers until `until` (each within the Durable limit)
      expire_exemption_activity: if the pool's exemption still ends by now, record its expiry
        (audit row and event, once), remove it, and request a reconcile of the pool through the
        normal request path: its worker brings the pool back to its policy, then verifies it

A renewed or removed exemption needs no cancelling: the activity reads the row and does nothing
when it is gone or now ends later (the renewal started a timer of its own).
"""

from __future__ import annotations

from datetime import datetime

from shared.orchestration import names
from shared.orchestration.operations import Task, call
from shared.policy.window import timer_steps


def exemption_expiry(context) -> Task:
    """Input: {"cluster", "pool", "until"}. Output: what the expiry did, or {"error"}."""
    target = context.get_input()
    until = datetime.fromisoformat(target["until"])
    for fire_at in timer_steps(context.current_utc_datetime, until):
        context.set_custom_status({"pool": target["pool"], "step": "exempt", "until": target["until"]})
        yield context.create_timer(fire_at)
    context.set_custom_status({"pool": target["pool"], "step": "expire", "until": target["until"]})
    expired = yield from call(context, names.EXPIRE_EXEMPTION, {**target, "instanceId": context.instance_id})
    return expired.value if expired.ok else {"error": expired.error.to_json()}
