"""AKS node-pool rolling events on the local Azure (Azurite, the ARM emulator, the in-process
Durable host on a virtual clock): a rolling that ends wakes the warden's poll of its own upgrade
at once, polling stays the fallback, a rolling someone else ran gets the pool verified, and bad
or repeated events change nothing.

WARDEN_POLL_SECONDS is 600, so a poll woken by its timer comes ten virtual minutes after the
upgrade started. The emulator ends an operation at its first status read (`lro_polls=0`), so
the first poll of the upgrade finds it done, whenever it comes. Events are delivered between two
runs of the host (`run_until` the upgrade's first wait), never from inside one.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta

import pytest

from shared.core.models import ClusterRef
from shared.core.protocol import Outcome
from shared.orchestration import names
from tests.emulator_fixtures import SUB_A
from tests.warden_fixtures import DEV, FIXTURES, PROD, arm_event

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"  # LocalUser in AKS: the policy's Disabled needs a PUT and an upgrade
POLL = timedelta(seconds=600)
ROLLING = "rolling-event"  # the test's own marker in event ids


def rolling_event(
    phase: str, cluster: ClusterRef, pool: str, at: datetime, *, schema: str = "egschema", event_id: str = ""
) -> dict:
    """The real AKS sample of `phase` (started, succeeded, failed), pointed at `cluster` and `pool`."""
    event = json.loads((FIXTURES / f"eventgrid_{schema}_node_pool_rolling_{phase}.json").read_text(encoding="utf-8"))
    cluster_field, time_field = ("source", "time") if schema == "cloudevents" else ("topic", "eventTime")
    event.update({cluster_field: cluster.id, "subject": cluster.name, "id": event_id or f"{ROLLING}-{uuid.uuid4()}"})
    event[time_field] = at.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # as Event Grid writes it: 7 digits
    event["data"]["nodePoolName"] = pool
    return event


def waiting_on_the_upgrade(w) -> bool:
    """The upgrade went out and its first poll waits (its timer is set)."""
    went_out = [i for i, e in enumerate(w.progress) if _sent_the_upgrade(e)]
    return bool(went_out) and any(e.kind == "timer" for e in w.progress[went_out[0] :])


def _sent_the_upgrade(event) -> bool:
    """Its own start, or the update's last poll, which starts the upgrade that follows at once."""
    if event.kind != "activity-completed":
        return False
    sent_next = event.activity == names.POLL_OPERATION and "next" in (event.payload or {}).get("value", {})
    return event.activity == names.START_NODE_IMAGE_UPGRADE or sent_next


def upgrade_polls(w) -> list[datetime]:
    return [
        e.at
        for e in w.progress
        if e.kind == "activity" and e.activity == names.POLL_OPERATION and e.payload["step"] == "upgrade-node-image"
    ]


def event_rows(w, cluster: ClusterRef = DEV, pool: str = "nodepool1") -> list:
    return [r for r in w.audit(cluster) if r.step == "event" and r.pool == pool and "NodePoolRolling" in r.message]


def start_the_upgrade(w) -> datetime:
    """A pool write event, run until the upgrade's first poll waits; returns when the upgrade went out."""
    w.functions.deliver_events([arm_event(NODEPOOL1)])
    assert w.functions.durable.run_until(lambda: waiting_on_the_upgrade(w)), "the upgrade never started"
    return w.clock.now()


@pytest.fixture
def slow_polls(warden, start_arm_emulator):
    return lambda: warden(emulator=start_arm_emulator(lro_polls=0), WARDEN_POLL_SECONDS="600")


def test_a_rolling_that_ended_wakes_the_upgrade_s_poll_at_the_event_s_time(slow_polls):
    w = slow_polls()
    upgrade_out = start_the_upgrade(w)
    waiter = w.pool_state(DEV, "nodepool1")
    assert waiter.upgrade_instance_id.startswith("worker-") and waiter.upgrade_started_time == upgrade_out
    w.clock.advance_to(upgrade_out + timedelta(seconds=90))  # AKS rolled the pool in a minute and a half

    w.deliver(rolling_event("succeeded", DEV, "nodepool1", w.clock.now()))

    assert upgrade_polls(w) == [upgrade_out + timedelta(seconds=90)], "polled at the event, not at the timer"
    assert ("upgrade-node-image", "succeeded") in w.steps(pool="nodepool1")
    assert ("outcome", "succeeded") in w.steps(pool="nodepool1")
    [row] = event_rows(w)
    assert (row.outcome, row.instance_id) == (Outcome.PLANNED, waiter.upgrade_instance_id)
    assert "polled now" in row.message
    state = w.pool_state(DEV, "nodepool1")
    assert state.upgrade_instance_id == "", "nobody polls it any more"
    assert state.upgrade_started_time == upgrade_out, "the latest upgrade's start is kept"
    assert w.writes() == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]


def test_without_an_event_the_timer_still_ends_the_wait(slow_polls):
    w = slow_polls()
    upgrade_out = start_the_upgrade(w)

    w.functions.run()

    assert upgrade_polls(w) == [upgrade_out + POLL]
    assert ("outcome", "succeeded") in w.steps(pool="nodepool1")
    assert w.pool_state(DEV, "nodepool1").upgrade_instance_id == ""


def test_a_started_rolling_of_the_upgrade_wakes_nothing(slow_polls):
    w = slow_polls()
    upgrade_out = start_the_upgrade(w)

    w.deliver(rolling_event("started", DEV, "nodepool1", upgrade_out))

    assert upgrade_polls(w) == [upgrade_out + POLL]
    [row] = event_rows(w)
    assert row.outcome is Outcome.SKIPPED and "under way" in row.message


def test_copies_of_an_event_wake_the_poll_once(slow_polls):
    w = slow_polls()
    upgrade_out = start_the_upgrade(w)
    w.clock.advance_to(upgrade_out + timedelta(seconds=30))
    event = rolling_event("failed", DEV, "nodepool1", w.clock.now())

    w.deliver(event, event)
    w.deliver(event)  # a redelivery after the run

    assert upgrade_polls(w) == [upgrade_out + timedelta(seconds=30)]
    assert len(event_rows(w)) == 1


@pytest.mark.parametrize("schema", ["egschema", "cloudevents"])
def test_a_rolling_the_warden_did_not_start_gets_the_pool_verified(warden, schema):
    w = warden()

    w.deliver(rolling_event("succeeded", PROD, "system", w.clock.now(), schema=schema))

    assert w.writes() == [], "a verification only reads"
    [row] = event_rows(w, PROD, "system")
    assert row.outcome is Outcome.PLANNED
    assert "someone else" in row.message and "verification started" in row.message
    checks = w.runtime.store.latest_node_checks(PROD.key)
    assert checks and {c.pool for c in checks} == {"system"}
    assert ("verify", "succeeded") in w.steps(PROD, "system")


def test_copies_of_a_foreign_rolling_ask_for_one_verification(warden):
    w = warden()
    event = rolling_event("succeeded", PROD, "system", w.clock.now())

    w.deliver(event, event)
    w.deliver(event)

    assert len(event_rows(w, PROD, "system")) == 1
    assert [s for s in w.steps(PROD, "system") if s[0] == "verify"] == [("verify", "succeeded")]


@pytest.mark.parametrize("phase", ["started", "failed"])
def test_other_rollings_of_a_pool_the_warden_is_not_upgrading_are_only_recorded(warden, arm_emulator, phase):
    w = warden()

    w.deliver(rolling_event(phase, PROD, "system", w.clock.now()))

    assert arm_emulator.requests == []
    assert w.functions.durable.statuses() == [], "no work started"
    [row] = event_rows(w, PROD, "system")
    assert row.outcome is Outcome.SKIPPED and "not upgrading" in row.message


def test_a_late_event_of_the_warden_s_own_upgrade_asks_for_nothing(slow_polls):
    w = slow_polls()
    upgrade_out = start_the_upgrade(w)
    w.functions.run()  # the timer's poll saw the end first
    polls_before = len(upgrade_polls(w))

    w.deliver(rolling_event("succeeded", DEV, "nodepool1", upgrade_out + timedelta(seconds=90)))

    [row] = event_rows(w)
    assert row.outcome is Outcome.SKIPPED and "own node-image upgrade" in row.message
    assert len(upgrade_polls(w)) == polls_before
    assert [s for s in w.steps(pool="nodepool1") if s[0] == "verify"] == [("verify", "succeeded")], "one, its own"


def bad_events(at: datetime) -> dict[str, dict]:
    good = rolling_event("succeeded", DEV, "nodepool1", at)
    other_subscription = ClusterRef("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "rg", "aks")
    return {
        "pool name breaks the AKS rule": {**good, "data": {"nodePoolName": "Bad_Pool!"}},
        "no pool name": {**good, "data": {}},
        "data not an object": {**good, "data": "nodepool1"},
        "topic is a pool, not a cluster": {**good, "topic": NODEPOOL1},
        "topic is not AKS": {
            **good,
            "topic": f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
        },
        "topic missing": {k: v for k, v in good.items() if k != "topic"},
        "subscription out of scope": rolling_event("succeeded", other_subscription, "nodepool1", at),
        "id missing": {k: v for k, v in good.items() if k != "id"},
    }


def test_malformed_rolling_events_are_dropped_with_a_reason_and_no_arm_call(warden, arm_emulator, caplog):
    w = warden()
    events = bad_events(w.clock.now())

    with caplog.at_level(logging.WARNING, logger="shared.triggers.node_events"):
        w.deliver(*events.values())

    assert arm_emulator.requests == []
    assert w.functions.durable.statuses() == []
    assert [r for r in w.audit() if r.step == "event"] == []
    drops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropped event")]
    assert len(drops) == len(events), drops
    for message in drops:
        assert "Traceback" not in message and len(message.splitlines()) == 1
    reasons = " | ".join(drops)
    for expected in ("naming rule", "nodePoolName", "expected a managed cluster", "not in WARDEN_SUBSCRIPTIONS"):
        assert expected in reasons
