"""AKS cluster events about a node pool's rolling (its nodes replaced: a reimage), read and judged. No I/O.

AKS publishes `Microsoft.ContainerService.NodePoolRollingStarted`, `...Succeeded` and `...Failed`
on each managed cluster's own system topic (topic type `Microsoft.ContainerService.ManagedClusters`),
not on the subscription's ARM topic. The cluster is the event's `topic` (Event Grid schema) or
`source` (CloudEvents), `subject` is the cluster's name, and `data.nodePoolName` names the pool.

`read_rolling` checks one event into a `RollingEvent`, or a `Drop` with the reason; `decide` says
what the warden does with it, given what the pool's row says of the warden's own upgrades:
wake the poll of the upgrade it has under way, verify a pool someone else reimaged, or record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.core.errors import OutOfScopeError, shown
from shared.core.events import CLOUD_EVENT_SCHEMA, Drop, EventError, parse_event
from shared.core.models import Target, validate_pool_name


class Phase(StrEnum):
    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


ROLLING_PREFIX = "Microsoft.ContainerService.NodePoolRolling"
ROLLING_TYPES = {f"{ROLLING_PREFIX}{phase.value}": phase for phase in Phase}
# Clocks of AKS and of the orchestration differ a little: an event this close to one of the
# warden's upgrades is taken to be about it.
CLOCK_SLACK = timedelta(minutes=2)


def is_rolling(event_type: object) -> bool:
    return isinstance(event_type, str) and event_type in ROLLING_TYPES


@dataclass(frozen=True)
class RollingEvent:
    event_id: str
    event_type: str
    phase: Phase
    target: Target  # the cluster and the pool
    time: datetime | None = None

    @property
    def short_type(self) -> str:
        return self.event_type.rsplit(".", 1)[-1]


def read_rolling(item: Mapping[str, Any], subscriptions: frozenset[str]) -> RollingEvent | Drop:
    """One event of either schema as a `RollingEvent` of a cluster in `subscriptions`; a `Drop`
    naming what is wrong for anything else. Never raises for bad input."""
    try:
        raw = parse_event(item)
    except EventError as e:
        return Drop(_text(item.get("id")) if isinstance(item, Mapping) else "", str(e), "")
    phase = ROLLING_TYPES.get(raw.type)
    if phase is None:
        return Drop(raw.id, f"event type {shown(raw.type)} is not a node-pool rolling event", raw.type)
    where = "source" if raw.schema == CLOUD_EVENT_SCHEMA else "topic"
    cluster_id = item.get(where)
    try:
        target = Target.from_id(cluster_id) if isinstance(cluster_id, str) else None
    except OutOfScopeError as e:
        return Drop(raw.id, f"'{where}' is not an AKS cluster's id: {e}", raw.type)
    if target is None or target.pool is not None:
        return Drop(raw.id, f"'{where}' is {shown(cluster_id)}; expected a managed cluster's resource id", raw.type)
    if target.cluster.subscription not in {s.lower() for s in subscriptions}:
        return Drop(raw.id, f"subscription {target.cluster.subscription} not in WARDEN_SUBSCRIPTIONS", raw.type)
    data = raw.data if isinstance(raw.data, Mapping) else {}
    try:
        pool = validate_pool_name(data.get("nodePoolName"))
    except OutOfScopeError as e:
        return Drop(raw.id, f"'data.nodePoolName': {e}", raw.type)
    time = raw.time.replace(tzinfo=UTC) if raw.time and raw.time.tzinfo is None else raw.time  # no offset: UTC
    return RollingEvent(raw.id, raw.type, phase, Target(target.cluster, pool), time)


class Action(StrEnum):
    WAKE = "wake"  # the warden polls this pool's upgrade now: poll at once
    VERIFY = "verify"  # someone else reimaged the pool: check its nodes
    RECORD = "record"  # nothing to do but write it down


@dataclass(frozen=True)
class UpgradeWatch:
    """What the pool's row says of the warden's node-image upgrades of it."""

    instance_id: str = ""  # the orchestration polling one now ("" none)
    started: datetime | None = None  # when that one went out
    last_ended: datetime | None = None  # when the warden saw its last one end


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(event: RollingEvent, watch: UpgradeWatch) -> Decision:
    """Wake the warden's own poll on an end; verify after someone else's successful rolling;
    record everything else. An event from before the warden's latest upgrade is about an
    earlier rolling: that upgrade, whose nodes are verified after it ends, covers the pool."""
    if watch.instance_id:
        if _earlier(event.time, watch.started - CLOCK_SLACK if watch.started else None):
            return Decision(Action.RECORD, "an earlier rolling: the warden's node-image upgrade under way covers it")
        if event.phase is Phase.STARTED:
            return Decision(Action.RECORD, "the warden's node-image upgrade of the pool is under way; its poll goes on")
        return Decision(Action.WAKE, f"the warden's node-image upgrade rolled to its end ({event.phase}): polled now")
    if _earlier(event.time, watch.last_ended + CLOCK_SLACK if watch.last_ended else None):
        return Decision(Action.RECORD, "about the warden's own node-image upgrade (or one before it), which has ended")
    if event.phase is Phase.SUCCEEDED:
        return Decision(
            Action.VERIFY,
            "nodes reimaged by someone else (auto-upgrade or another client): SSH has come back after "
            "node-image updates before, so the nodes are verified",
        )
    return Decision(Action.RECORD, f"rolling {event.phase.lower()} of a pool the warden is not upgrading: recorded")


def _earlier(moment: datetime | None, mark: datetime | None) -> bool:
    """Whether `moment` is before `mark` (False when either is unknown)."""
    return moment is not None and mark is not None and moment < mark


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
