"""Start a cluster's reconcile, or join the one already running (one writer per cluster)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.models import Target
from shared.orchestration.names import JOIN_EVENT, RECONCILE_CLUSTER, reconcile_instance_id
from shared.records import ReconcileRequest

# start -> refused (running) -> raise event -> gone (it just finished) -> start again ...
ROUNDS = 3


class StartError(Exception):
    """Neither a start nor a join went through: the caller should fail so the request is retried."""


ACTIVE = ("Pending", "Running", "ContinuedAsNew")


async def request_reconcile(client, store, target: Target, reason: str, actor: str = "") -> tuple[str, str]:
    """Record the request, then make sure a reconcile will take it.

    Returns (instance id, "started" | "joined" | "pending"). "pending": the same target is
    already requested and its cluster's reconcile runs, which takes every request before
    it finishes: a storm of events for one pool costs one table write each, nothing more.
    """
    request = ReconcileRequest(target.cluster.id, target.pool or "", datetime.now(UTC), reason, actor)
    instance_id = reconcile_instance_id(target.cluster.key)
    if not store.add_request(request) and await _is_running(client, instance_id):
        return instance_id, "pending"
    try:
        return await start_or_join(client, target, reason)
    except StartError:
        store.drop_request(request)  # let the redelivery add it again
        raise


async def _is_running(client, instance_id: str) -> bool:
    status = await client.get_status(instance_id)
    runtime_status = getattr(status, "runtime_status", None)
    return bool(runtime_status) and getattr(runtime_status, "value", runtime_status) in ACTIVE


def reconcile_input(target: Target, reason: str) -> dict:
    ref = target.cluster
    cluster = {"subscription": ref.subscription, "resourceGroup": ref.resource_group, "name": ref.name}
    return {"cluster": cluster, "pools": [target.pool] if target.pool else None, "reason": reason}


async def start_or_join(client, target: Target, reason: str) -> tuple[str, str]:
    """Returns (instance id, "started" | "joined").

    The host refuses a second start of a running instance id (host.json
    `overridableExistingInstanceStates: NonRunningStates`), so a refused start means a
    reconcile is running: hand it the target as an external event instead. The Python
    client raises a bare `Exception` for both refusals, hence the broad catches.
    """
    instance_id = reconcile_instance_id(target.cluster.key)
    failures = []
    for _ in range(ROUNDS):
        try:
            await client.start_new(RECONCILE_CLUSTER, instance_id, reconcile_input(target, reason))
            return instance_id, "started"
        except Exception as refused:  # noqa: BLE001 - the SDK's only signal
            failures.append(f"start: {refused}")
        try:
            await client.raise_event(instance_id, JOIN_EVENT, {"pool": target.pool, "reason": reason})
            return instance_id, "joined"
        except Exception as gone:  # noqa: BLE001 - finished meanwhile: start again
            failures.append(f"join: {gone}")
    raise StartError(f"could not start or join {instance_id}: {'; '.join(failures)}")
