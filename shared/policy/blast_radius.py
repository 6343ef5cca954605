"""Blast-radius limits on reimages: who may start one now, and the pause after a failed one. Pure.

Every reimage the warden starts (a node-image upgrade; on Kubernetes >= 1.37 the sshAccess PUT
itself) needs room in two budgets at once: `WARDEN_MAX_REIMAGES` across the fleet and
`WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION` in its subscription. Waiters stand in one line, oldest
first: going down the line, each waiter that fits both budgets (after the reimages in flight
and the waiters let in before it) may start; a waiter whose subscription is full lets those
behind it from other subscriptions pass, a full fleet stops the line. So within a
subscription, and across the fleet, reimages start in the order their pools began to wait.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_REIMAGES_SETTING = "WARDEN_MAX_REIMAGES"
PER_SUBSCRIPTION_SETTING = "WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION"
BUDGET_REASON = "reimage budget"  # how every wait for it begins, in the audit trail and the CLI


@dataclass(frozen=True)
class Limits:
    fleet: int
    per_subscription: int


@dataclass(frozen=True)
class Claim:
    """A reimage in flight (a hold) or a pool waiting for one (a ticket): `holder` is the
    orchestration instance that runs it."""

    holder: str
    subscription: str
    cluster_id: str = ""
    pool: str = ""

    @property
    def scope(self) -> str:
        return self.subscription.lower()


@dataclass(frozen=True)
class Turn:
    """The answer to a waiter: may it start now; if not, how the budgets stand."""

    granted: bool
    in_flight: int = 0  # reimages in flight across the fleet (others')
    in_subscription: int = 0  # of them, in the waiter's subscription
    ahead: int = 0  # waiters ahead of it in line
    first_wait: bool = False  # it has just joined the line (its wait is recorded once)
    waited: bool = False  # it stood in line before this answer
    paused: Pause | None = None  # the waiter's cluster is paused: no turn until it is resumed


def let_in(holds: Sequence[Claim], line: Sequence[Claim], limits: Limits) -> list[Claim]:
    """The waiters of `line` (oldest first) that may start now, given the reimages in flight."""
    fleet, per_subscription = len(holds), Counter(h.scope for h in holds)
    chosen = []
    for claim in line:
        if fleet >= limits.fleet:
            break  # nobody behind passes a full fleet
        if per_subscription[claim.scope] >= limits.per_subscription:
            continue  # its subscription is full: those behind it from others may pass
        chosen.append(claim)
        fleet += 1
        per_subscription[claim.scope] += 1
    return chosen


def turn_of(claim: Claim, holds: Sequence[Claim], line: Sequence[Claim], limits: Limits, **facts: bool) -> Turn:
    """`claim`'s turn: `line` holds it (oldest first) and `holds` are the others' reimages in flight."""
    ahead = next((i for i, c in enumerate(line) if c.holder == claim.holder), len(line))
    granted = any(c.holder == claim.holder for c in let_in(holds, line, limits))
    in_subscription = sum(1 for h in holds if h.scope == claim.scope)
    return Turn(granted, len(holds), in_subscription, ahead, **facts)


def waiting_reason(turn: Turn, limits: Limits, subscription: str) -> str:
    """Why a pool waits, naming the setting that bounds it."""
    if turn.in_flight >= limits.fleet:
        why = f"{turn.in_flight} of {limits.fleet} reimages in flight across the fleet ({MAX_REIMAGES_SETTING})"
    elif turn.in_subscription >= limits.per_subscription:
        why = (
            f"{turn.in_subscription} of {limits.per_subscription} reimages in flight in subscription "
            f"{subscription} ({PER_SUBSCRIPTION_SETTING})"
        )
    else:
        why = "pools that began to wait earlier go first"
    ahead = f"; {turn.ahead} pool{'s' * (turn.ahead != 1)} ahead in line" if turn.ahead else ""
    return f"{BUDGET_REASON}: {why}{ahead}"


@dataclass(frozen=True)
class Pause:
    """Reimages of a cluster stopped after one ended failed, until an operator resumes them."""

    cluster_id: str
    pool: str
    failed_at: datetime
    code: str = ""
    message: str = ""
    operation: str = ""
    instance_id: str = ""

    def reason(self) -> str:
        return (
            f"reimages of this cluster are paused after {self.pool}'s reimage failed at {stamp(self.failed_at)}: "
            f"python -m shared resume --cluster {self.cluster_id}"
        )

    def operation_digest(self) -> str:
        """A short, stable name of the failed reimage (its operation URL), for keys."""
        return hashlib.sha256(self.operation.encode()).hexdigest()[:16]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
