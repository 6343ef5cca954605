"""AKS node-pool rolling events, from the published samples: read and checked, then judged
against what the pool's row says of the warden's own upgrades.

The samples carry placeholders (`{subscription-id}`, `{cluster}`); the tests put a real cluster
id in their `topic` (Event Grid schema) or `source` (CloudEvents)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.events import Drop
from shared.core.models import ClusterRef, Target
from shared.core.node_events import (
    CLOCK_SLACK,
    Action,
    Phase,
    RollingEvent,
    UpgradeWatch,
    decide,
    is_rolling,
    read_rolling,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
SUB = "11111111-1111-1111-1111-111111111111"
SUBS = frozenset({SUB})
CLUSTER = ClusterRef(SUB, "rg-aks", "aks1")
SAMPLE_TIME = datetime(2023, 3, 29, 18, 0, tzinfo=UTC)


def sample(name: str) -> dict:
    event = json.loads((FIXTURES / f"eventgrid_{name}.json").read_text(encoding="utf-8"))
    event["source" if "specversion" in event else "topic"] = CLUSTER.id
    return event


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("egschema_node_pool_rolling_started", Phase.STARTED),
        ("egschema_node_pool_rolling_succeeded", Phase.SUCCEEDED),
        ("egschema_node_pool_rolling_failed", Phase.FAILED),
        ("cloudevents_node_pool_rolling_succeeded", Phase.SUCCEEDED),
    ],
    ids=["started", "succeeded", "failed", "cloudevents-succeeded"],
)
def test_the_published_samples_name_their_cluster_and_pool(name, phase):
    event = read_rolling(sample(name), SUBS)

    assert event == RollingEvent(
        "1234567890abcdef1234567890abcdef12345678",
        f"Microsoft.ContainerService.NodePoolRolling{phase}",
        phase,
        Target(CLUSTER, "nodepool1"),
        SAMPLE_TIME,
    )


def test_the_samples_as_published_have_no_cluster_id():
    verdict = read_rolling(
        json.loads((FIXTURES / "eventgrid_egschema_node_pool_rolling_succeeded.json").read_text()), SUBS
    )

    assert isinstance(verdict, Drop) and "'topic' is not an AKS cluster's id" in verdict.reason


def test_the_subject_is_not_relied_on_and_a_time_without_offset_is_utc():
    event = {**sample("egschema_node_pool_rolling_succeeded"), "subject": "", "eventTime": "2026-11-24T12:00:00"}

    assert read_rolling(event, SUBS).time == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def changed(**fields) -> dict:
    return {**sample("egschema_node_pool_rolling_succeeded"), **fields}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (changed(data={"nodePoolName": "Pool_1!"}), "breaks the naming rule"),
        (changed(data={"nodePoolName": "x" * 13}), "breaks the naming rule"),
        (changed(data={}), "'data.nodePoolName': pool name is None"),
        (changed(data=["nodepool1"]), "'data.nodePoolName'"),
        (changed(topic=CLUSTER.id + "/agentPools/np1"), "expected a managed cluster's resource id"),
        (
            changed(topic="/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s"),
            "not an AKS",
        ),
        (changed(topic=None), "'topic' is None"),
        (
            changed(topic=ClusterRef("22222222-2222-2222-2222-222222222222", "rg", "c").id),
            "not in WARDEN_SUBSCRIPTIONS",
        ),
        (changed(eventType="Microsoft.ContainerService.NodePoolRollingProgress"), "not a node-pool rolling event"),
        (changed(eventTime="yesterday"), "expected an RFC 3339 time"),
        (changed(id=""), "'id' is ''"),
        ({"eventType": "x"}, "'id' is missing"),
        ([1, 2], "expected an object"),
    ],
    ids=[
        "bad-pool-name",
        "pool-name-too-long",
        "no-pool-name",
        "data-not-an-object",
        "topic-is-a-pool",
        "topic-not-aks",
        "no-topic",
        "subscription-out-of-scope",
        "other-rolling-type",
        "bad-time",
        "empty-id",
        "no-id",
        "not-an-object",
    ],
)
def test_bad_events_are_dropped_with_the_reason(event, reason):
    verdict = read_rolling(event, SUBS)

    assert isinstance(verdict, Drop)
    assert reason in verdict.reason and "\n" not in verdict.reason


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_any_json_gives_a_verdict_never_an_exception(document):
    assert isinstance(read_rolling(document, SUBS), Drop | RollingEvent)


@pytest.mark.parametrize(
    ("event_type", "routed"),
    [
        ("Microsoft.ContainerService.NodePoolRollingStarted", True),
        ("Microsoft.ContainerService.NodePoolRollingSucceeded", True),
        ("Microsoft.ContainerService.NodePoolRollingFailed", True),
        ("Microsoft.ContainerService.NodePoolRollingProgress", False),
        ("Microsoft.Resources.ResourceWriteSuccess", False),
        (None, False),
    ],
    ids=["started", "succeeded", "failed", "progress", "arm-write", "none"],
)
def test_only_the_three_rolling_types_are_routed_here(event_type, routed):
    assert is_rolling(event_type) is routed


T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def rolling(phase: Phase, at: datetime | None = T) -> RollingEvent:
    return RollingEvent("e1", f"Microsoft.ContainerService.NodePoolRolling{phase}", phase, Target(CLUSTER, "np1"), at)


WAITING = UpgradeWatch("worker-aks1-0000-np1-abcd", started=T - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("event", "watch", "action"),
    [
        (rolling(Phase.SUCCEEDED), WAITING, Action.WAKE),
        (rolling(Phase.FAILED), WAITING, Action.WAKE),
        (rolling(Phase.SUCCEEDED, at=None), WAITING, Action.WAKE),
        (rolling(Phase.STARTED), WAITING, Action.RECORD),
        (rolling(Phase.SUCCEEDED, at=T - timedelta(minutes=10)), WAITING, Action.RECORD),
        (rolling(Phase.SUCCEEDED, at=WAITING.started - CLOCK_SLACK / 2), WAITING, Action.WAKE),
        (rolling(Phase.SUCCEEDED), UpgradeWatch(), Action.VERIFY),
        (rolling(Phase.SUCCEEDED, at=None), UpgradeWatch(last_ended=T), Action.VERIFY),
        (rolling(Phase.SUCCEEDED), UpgradeWatch(last_ended=T - timedelta(minutes=1)), Action.RECORD),
        (rolling(Phase.SUCCEEDED), UpgradeWatch(last_ended=T - timedelta(hours=1)), Action.VERIFY),
        (rolling(Phase.STARTED), UpgradeWatch(), Action.RECORD),
        (rolling(Phase.FAILED), UpgradeWatch(), Action.RECORD),
    ],
    ids=[
        "own-upgrade-succeeded-wakes",
        "own-upgrade-failed-wakes",
        "no-time-wakes",
        "own-upgrade-started-is-recorded",
        "rolling-before-own-upgrade-is-recorded",
        "within-clock-slack-wakes",
        "foreign-succeeded-verifies",
        "no-time-after-own-upgrade-verifies",
        "late-event-of-own-upgrade-is-recorded",
        "foreign-succeeded-long-after-own-upgrade-verifies",
        "foreign-started-is-recorded",
        "foreign-failed-is-recorded",
    ],
)
def test_what_the_warden_does_with_a_rolling(event, watch, action):
    decision = decide(event, watch)

    assert decision.action is action and decision.reason
