"""Registers the orchestrators and activities with Durable Functions (names from `names`)."""

from __future__ import annotations

import azure.durable_functions as df

from shared.orchestration import activities, names, reconcile, worker

bp = df.Blueprint()


@bp.function_name(names.CLUSTER_WORKER)
@bp.orchestration_trigger(context_name="context")
def cluster_worker(context: df.DurableOrchestrationContext):
    return (yield from worker.cluster_worker(context))


@bp.function_name(names.RECONCILE_CLUSTER)
@bp.orchestration_trigger(context_name="context")
def reconcile_cluster(context: df.DurableOrchestrationContext):
    return (yield from reconcile.reconcile_cluster(context))


@bp.function_name(names.RECONCILE_POOL)
@bp.orchestration_trigger(context_name="context")
def reconcile_pool(context: df.DurableOrchestrationContext):
    return (yield from reconcile.reconcile_pool(context))


# Activities take and return JSON (a `shared.protocol.Result`); the implementations live in `activities`.
ACTIVITIES = {
    names.LEASE_REQUESTS: activities.lease_requests,
    names.FINISH_REQUESTS: activities.finish_requests,
    names.CLOSE_WORKER: activities.close_worker,
    names.LIST_POOLS: activities.list_pools,
    names.PLAN_POOL: activities.plan_pool_activity,
    names.START_SSH_UPDATE: activities.start_ssh_update,
    names.START_NODE_IMAGE_UPGRADE: activities.start_node_image_upgrade,
    names.POLL_OPERATION: activities.poll_operation,
    names.RECORD: activities.record,
}
for _name, _activity in ACTIVITIES.items():
    bp.function_name(_name)(bp.activity_trigger(input_name="payload")(_activity))
