"""Function and event names: defined once, used by registration and call sites alike."""

import hashlib

RECONCILE_CLUSTER = "reconcile_cluster"
RECONCILE_POOL = "reconcile_pool"

LIST_POOLS = "list_pools_activity"
PLAN_POOL = "plan_pool_activity"
CHECK_IDLE = "check_idle_activity"
START_SSH_UPDATE = "start_ssh_update_activity"
START_NODE_IMAGE_UPGRADE = "start_node_image_upgrade_activity"
POLL_OPERATION = "poll_operation_activity"
RECORD = "record_activity"
TAKE_REQUESTS = "take_requests_activity"

# Raised on a running cluster reconcile to wake it: new requests wait in the requests table.
JOIN_EVENT = "reconcile-requested"


def reconcile_instance_id(cluster_key: str) -> str:
    """One singleton instance per cluster, from its normalised id: readable (the cluster's
    name), unique (a digest of the whole id) and short enough for every Durable backend."""
    digest = hashlib.sha256(cluster_key.lower().encode()).hexdigest()[:16]
    return f"reconcile-{cluster_key.rstrip('/').rsplit('/', 1)[-1]}-{digest}"
