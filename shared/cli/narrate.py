"""Progress in the warden's own words, from the in-process host's notices.

The host reports each activity call, its result and each durable timer. This turns them into
lines a platform engineer reads: which cluster and pool, what the warden does (and the manual
`az` step it stands for), what failed with ARM's code, the attempt, and when the next try is.
Bookkeeping (leasing requests, recording rows) is silent unless `verbose`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.local.durable_host import HostEvent
from shared.orchestration import names

QUIET_POLL_SECONDS = 15  # an unchanged operation status is repeated at most this often

# What each activity does, said before it runs. `{where}` is cluster/pool; other fields are
# the payload's. Activities not listed are bookkeeping.
DOING: dict[str, str] = {
    names.LIST_POOLS: "{where}: reading the cluster and its node pools",
    names.PLAN_POOL: "{where}: planning (reading the pool, the policy decides)",
    names.START_SSH_UPDATE: "{where}: setting sshAccess {modeBefore} -> {mode}  (az aks nodepool update --ssh-access)",
    names.START_NODE_IMAGE_UPGRADE: (
        "{where}: starting the node-image upgrade that applies it  (az aks nodepool upgrade --node-image-only)"
    ),
    names.PLAN_VERIFICATION: "{where}: choosing the nodes to check",
    names.START_NODE_CHECK: "{where}: asking sshd on node {node}  (az vmss run-command invoke ... systemctl status)",
    names.PREPARE_ROTATION: "{where}: preparing a new node SSH key",
    names.START_KEY_UPDATE: "{where}: putting the new public key on the cluster  (az aks update --ssh-key-value)",
    names.PLAN_KEY_REIMAGES: "{where}: choosing the LocalUser pools to reimage with the new key",
}

WAITING_FOR: dict[str, str] = {
    names.POLL_OPERATION: "the {what}",
    names.POLL_NODE_CHECK: "the run-command on node {node}",
}

STEP_NAMES = {
    "update-ssh-access": "sshAccess update",
    "upgrade-node-image": "node-image upgrade",
    "update-ssh-key": "cluster's key update",
}


class Narrator:
    """Call with each `HostEvent`; prints through `say`."""

    def __init__(self, say: Callable[[str], None], *, verbose: bool = False, clock=time.monotonic):
        self._say, self._verbose, self._clock = say, verbose, clock
        self._started = clock()
        self._pending: dict[str, str] = {}  # instance -> a wait, told once its timer says how long
        self._operations: dict[tuple[str, str], tuple[float, str, float]] = {}  # first seen, status, last told
        self._doing: dict[str, str] = {}  # instance -> the step last told
        self._input: dict = {}  # of the activity in hand: the host runs one at a time, and reports its result next

    def __call__(self, event: HostEvent) -> None:
        payload = event.payload if isinstance(event.payload, dict) else {}
        if event.kind == "activity":
            self._input = payload
            self._before(event, payload)
        elif event.kind == "activity-completed":
            self._after(event, _value(event.payload), self._input)
        elif event.kind == "timer" and event.instance_id in self._pending:
            self._tell(f"{self._pending.pop(event.instance_id)}; next try in {_until(event)}")

    def _before(self, event: HostEvent, payload: dict) -> None:
        if event.activity == names.RECORD:
            self._recorded(payload)
        elif event.activity in DOING:
            line = DOING[event.activity].format_map(_Fields(payload))
            if self._doing.get(event.instance_id) != line:  # a retry of the same step is told as a retry
                self._doing[event.instance_id] = line
                self._tell(line)
        elif event.activity in WAITING_FOR:
            self._operations.setdefault((event.instance_id, _operation(payload)), (self._clock(), "", 0.0))
        elif self._verbose:
            self._tell(f"{_where(payload)}: {(event.activity or '').removesuffix('_activity').replace('_', ' ')}")

    def _after(self, event: HostEvent, result: dict, payload: dict) -> None:
        value = result.get("value") or {}
        if not result.get("ok", True):
            return  # a failure is told by its retry record, or in the outcome
        if value.get("busy"):
            self._pending[event.instance_id] = f"{_where(payload)}: waiting: {'; '.join(map(str, value['busy']))}"
        elif event.activity in WAITING_FOR and value.get("done") is False:
            self._polled(event, payload, str(value.get("status") or "running"))

    def _polled(self, event: HostEvent, payload: dict, status: str) -> None:
        key = (event.instance_id, _operation(payload))
        first, told_status, told_at = self._operations.get(key, (self._clock(), "", 0.0))
        now = self._clock()
        if not self._should_tell(event.activity, status, now - first, status != told_status, now - told_at):
            return
        self._operations[key] = (first, status, now)
        what = WAITING_FOR[event.activity or ""].format_map(_Fields(payload))
        self._pending[event.instance_id] = f"{_where(payload)}: waiting for {what} ({status}, {_duration(now - first)})"

    def _should_tell(self, activity: str | None, status: str, waited: float, changed: bool, since: float) -> bool:
        """An operation's wait is told when it starts, when its status changes and every so
        often; a node's run-command (seconds, usually) only once it takes long."""
        if self._verbose:
            return True
        if activity == names.POLL_NODE_CHECK and waited < QUIET_POLL_SECONDS:
            return False
        return changed or since >= QUIET_POLL_SECONDS

    def _recorded(self, payload: dict) -> None:
        outcome, error, retry = payload.get("outcome"), payload.get("error") or {}, payload.get("retry")
        if outcome == "retried" and retry:
            failed = _short(f"{error.get('code', '')}: {error.get('message', '')}")
            self._tell(
                f"{_where(payload)}: {payload.get('step', '').removesuffix('_activity').replace('_', ' ')} failed: "
                f"{failed}; attempt {retry['attempt']}/{retry['of']}, next try in {_seconds(retry['inSeconds'])}"
            )
        elif payload.get("step") == "outcome" or outcome in ("failed", "gone", "waiting"):
            self._tell(f"{_where(payload)}: {outcome}: {_short(payload.get('reason') or error.get('message', ''))}")

    def _tell(self, line: str) -> None:
        self._say(f"[warden] +{self._clock() - self._started:6.1f}s {line}")


class _Fields(dict):
    """Payload fields for the templates: `where`, `node`, `what`; a missing one reads `?`."""

    def __init__(self, payload: dict):
        super().__init__(payload)
        self["where"] = _where(payload)
        self["node"] = _node(payload)
        self["what"] = STEP_NAMES.get(payload.get("step", ""), payload.get("step", "operation"))

    def __missing__(self, key: str) -> str:
        return "?"


def _where(payload: dict) -> str:
    cluster = payload.get("cluster") if isinstance(payload.get("cluster"), dict) else {}
    return f"{cluster.get('name', '?')}/{payload.get('pool') or '*'}"


def _node(payload: dict) -> str:
    vmss = payload.get("vmss")
    name = vmss.get("name") if isinstance(vmss, dict) else vmss
    instance = payload.get("instance")
    return f"{name}_{instance}" if name and instance is not None else str(instance or "?")


def _operation(payload: dict) -> str:
    operation = payload.get("operation")
    return operation.get("url", "") if isinstance(operation, dict) else str(payload.get("instance", ""))


def _value(result: Any) -> dict:
    return result if isinstance(result, dict) else {}


def _until(event: HostEvent) -> str:
    fire_at = event.payload
    if isinstance(fire_at, datetime):  # timed from the episode's start: round up, never "0s"
        return _duration(max(math.ceil((fire_at - event.at).total_seconds()), 1))
    return "a moment"


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 10 else _duration(seconds)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
