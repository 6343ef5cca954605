"""The activity side of the protocol: every activity returns a `Result` as JSON, whatever happens.

ARM errors become failures that say whether to retry. Any other exception (Table Storage
down, a bug) becomes a retryable `internal` failure: the orchestrator retries it with
backoff, then records the pool as failed; it never surfaces as a bare `Exception` text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.core.errors import ArmError, ConflictError, NotFoundError, OperationFailedError, ThrottledError
from shared.core.models import Cluster, ClusterRef, Operation, to_json
from shared.core.protocol import Failure, FailureKind, Result, failed
from shared.core.table_keys import clip

if TYPE_CHECKING:
    from shared.orchestration.runtime import Runtime

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 1000  # a failure's message travels through the orchestration history

_KINDS = {
    NotFoundError: FailureKind.NOT_FOUND,
    ConflictError: FailureKind.CONFLICT,
    ThrottledError: FailureKind.THROTTLED,
    OperationFailedError: FailureKind.OPERATION_FAILED,
}


def activity(function: Callable[[Runtime, dict], Result]) -> Callable[[Runtime, dict], dict]:
    """Wrap an activity: the runtime (resolved once per invocation where it is registered,
    `functions.lazy_activity`) and JSON in, `Result` JSON out, unexpected exceptions as internal
    failures."""

    @functools.wraps(function)
    def run(rt: Runtime, payload: dict) -> dict:
        try:
            return function(rt, payload).to_json()
        except Exception as e:  # noqa: BLE001 - unknown errors are temporary: the orchestrator retries
            log.warning("activity %s failed: %s: %s", function.__name__, type(e).__name__, e)
            return failed(FailureKind.INTERNAL, type(e).__name__, clip(str(e), MESSAGE_LIMIT), retryable=True).to_json()

    return run


def arm_failure(e: ArmError, *, recorded: bool = False) -> Failure:
    kind = _KINDS.get(type(e), FailureKind.TRANSIENT if e.retryable else FailureKind.PERMANENT)
    return Failure(
        kind, e.code, clip(e.message, MESSAGE_LIMIT), e.retryable, e.retry_after, e.status, recorded=recorded
    )


def moved(operation: Operation, polled: Any) -> dict[str, Any]:
    """A poll's answer that moved the operation (a new `Location` to follow, its result due next)
    hands the orchestrator what to poll next: `{"operation": ...}`, else nothing."""
    return {"operation": asdict(polled.operation)} if polled.operation != operation else {}


def cluster_ref(payload: dict) -> ClusterRef:
    c = payload["cluster"]
    return ClusterRef(c["subscription"], c["resourceGroup"], c["name"])


def cluster_json(ref: ClusterRef) -> dict[str, Any]:
    return {"subscription": ref.subscription, "resourceGroup": ref.resource_group, "name": ref.name}


def cluster_snapshot(cluster: Cluster) -> dict[str, Any]:
    """A cluster as read, for the orchestration to hand to later steps (no secret: ARM's GET
    returns none; the SSH keys are public)."""
    return {**to_json(cluster), "ref": cluster_json(cluster.ref)}


def cluster_from_snapshot(snapshot: dict[str, Any]) -> Cluster:
    fields = {k: v for k, v in snapshot.items() if k in Cluster.__dataclass_fields__}
    keys = fields.get("ssh_public_keys")
    return Cluster(
        **{**fields, "ref": cluster_ref({"cluster": snapshot["ref"]}), "ssh_public_keys": tuple(keys) if keys else keys}
    )


def step_time(payload: dict) -> datetime:
    """The orchestration's time of the step: what other steps of it compare with (not the wall clock)."""
    at = (payload.get("call") or {}).get("at")
    return datetime.fromisoformat(at) if at else datetime.now(UTC)
