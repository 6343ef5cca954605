"""Registers the orchestrators and activities with Durable Functions (names from `names`)."""

from __future__ import annotations

import azure.durable_functions as df

from shared.orchestration import activities, names, reconcile, rotation, verification, worker

bp = df.Blueprint()


# Orchestrators are deterministic generators of `context`; the implementations live in their modules.
ORCHESTRATORS = {
    names.CLUSTER_WORKER: worker.cluster_worker,
    names.RECONCILE_CLUSTER: reconcile.reconcile_cluster,
    names.RECONCILE_POOL: reconcile.reconcile_pool,
    names.VERIFY_CLUSTER: verification.verify_cluster,
    names.VERIFY_NODE: verification.verify_node,
    names.ROTATE_KEYS: rotation.rotate_keys,
}
for _name, _orchestrator in ORCHESTRATORS.items():
    bp.function_name(_name)(bp.orchestration_trigger(context_name="context")(_orchestrator))


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
    names.REQUEST_FOLLOW_UP: activities.request_follow_up,
    names.PLAN_VERIFICATION: activities.plan_verification,
    names.START_NODE_CHECK: activities.start_node_check,
    names.POLL_NODE_CHECK: activities.poll_node_check,
    names.RELEASE_SLOT: activities.release_slot,
    names.RECORD_VERIFICATION: activities.record_verification,
    names.PREPARE_ROTATION: activities.prepare_rotation,
    names.START_KEY_UPDATE: activities.start_key_update,
    names.PLAN_KEY_REIMAGES: activities.plan_key_reimages,
    names.RECORD_ROTATION: activities.record_rotation,
}
for _name, _activity in ACTIVITIES.items():
    bp.function_name(_name)(bp.activity_trigger(input_name="payload")(_activity))
