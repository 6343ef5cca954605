"""Function names and instance ids: defined once, used by registration and call sites alike."""

import hashlib
import re
from datetime import UTC, datetime

CLUSTER_WORKER = "cluster_worker"
RECONCILE_CLUSTER = "reconcile_cluster"
RECONCILE_POOL = "reconcile_pool"
VERIFY_CLUSTER = "verify_cluster"
VERIFY_NODE = "verify_node"
ROTATE_KEYS = "rotate_keys"
EXEMPTION_EXPIRY = "exemption_expiry"

LEASE_REQUESTS = "lease_requests_activity"
FINISH_REQUESTS = "finish_requests_activity"
CLOSE_WORKER = "close_worker_activity"
LIST_POOLS = "list_pools_activity"
PLAN_POOL = "plan_pool_activity"
START_SSH_UPDATE = "start_ssh_update_activity"
START_NODE_IMAGE_UPGRADE = "start_node_image_upgrade_activity"
POLL_OPERATION = "poll_operation_activity"
RECORD = "record_activity"
PLAN_VERIFICATION = "plan_verification_activity"
START_NODE_CHECK = "start_node_check_activity"
POLL_NODE_CHECK = "poll_node_check_activity"
RELEASE_SLOT = "release_slot_activity"
RECORD_VERIFICATION = "record_verification_activity"
PREPARE_ROTATION = "prepare_rotation_activity"
START_KEY_UPDATE = "start_key_update_activity"
PLAN_KEY_REIMAGES = "plan_key_reimages_activity"
RECORD_ROTATION = "record_rotation_activity"
EXPIRE_EXEMPTION = "expire_exemption_activity"

# Instance ids hold only these: `?`, `#`, `/` or `%2F` would break status URLs or address another instance.
_UNSAFE = re.compile(r"[^a-z0-9-]+")
READABLE_PART = 40  # characters of the cluster or pool name kept for people


def safe_part(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")[:READABLE_PART] or "x"


def worker_instance_id(cluster_key: str) -> str:
    """One singleton worker per cluster, from its normalised id: readable (the cluster's name,
    made safe), unique (a digest of the whole id) and short enough for every Durable backend."""
    digest = hashlib.sha256(cluster_key.lower().encode()).hexdigest()[:16]
    return f"worker-{safe_part(cluster_key.rstrip('/').rsplit('/', 1)[-1])}-{digest}"


def child_instance_id(parent: str, label: str, unique: str) -> str:
    """A sub-orchestration's id: the parent's, a safe label and a replay-stable unique part."""
    return f"{parent}-{safe_part(label)}-{safe_part(unique)[:8]}"


def wake_event_name(pool: str) -> str:
    """The external event a wait on the pool's node-image upgrade listens for (raised when AKS
    says the pool's rolling ended). One per pool: an orchestration that reimages pools one after
    another is woken only by the one it polls."""
    return "node-pool-rolling-" + safe_part(pool)


def exemption_instance_id(pool_key: str, until: datetime) -> str:
    """The timer of one exemption: one per pool and end time, so a renewal gets its own and the
    old one, when it fires, finds the exemption moved and does nothing."""
    digest = hashlib.sha256(pool_key.lower().encode()).hexdigest()[:16]
    return f"exemption-{safe_part(pool_key.rsplit('/', 1)[-1])}-{digest}-{until.astimezone(UTC):%Y%m%d%H%M%S}"
