"""The key rotation's activities: prepare the key, PUT it on the cluster, plan the LocalUser pools'
reimages, record the rotation. Entry points only; each returns a `Result`."""

from __future__ import annotations

from shared.adapters.publisher import OutcomeKind
from shared.core.errors import ArmError, KeyStoreError
from shared.core.models import Operation
from shared.core.protocol import FailureKind, Outcome, Result, failed, succeeded
from shared.orchestration import arm_steps, key_steps, reimage_budget
from shared.orchestration.envelope import (
    activity,
    cluster_ref,
)
from shared.orchestration.recording import (
    Entry,
    audit,
    publish,
)
from shared.orchestration.runtime import Runtime
from shared.policy import NODE_OS_WINDOW


@activity
def prepare_rotation(rt: Runtime, payload: dict) -> Result:
    """Check the cluster can take a key; the new one (generated into the key store, or supplied)."""
    ref = cluster_ref(payload)
    if why := arm_steps.out_of_scope(rt, ref):
        return failed(FailureKind.PERMANENT, "OutOfScope", why)
    try:
        cluster = rt.arm.get_cluster(ref)
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "read-cluster", e)
    if why := key_steps.cannot_take_a_key(cluster):
        return failed(FailureKind.PERMANENT, "CannotRotate", why)
    try:
        return key_steps.prepare(rt, ref, cluster, payload)
    except KeyStoreError as e:  # its message names the store and the secret, never the key
        kind = FailureKind.TRANSIENT if e.retryable else FailureKind.PERMANENT
        return failed(kind, e.code or "KeyStoreError", str(e), retryable=e.retryable, status=e.status)


@activity
def start_key_update(rt: Runtime, payload: dict) -> Result:
    """PUT the cluster with the new public key, once the cluster is idle and the write still holds."""
    ref, step = cluster_ref(payload), payload["step"]

    def attempt() -> Operation | Result:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        if busy := arm_steps.busy(cluster, pools):
            return succeeded(busy=busy)
        target = rt.arm.cluster_to_write(ref)
        key_steps.recheck_key_write(rt, payload, target.cluster)  # the decision, on the cluster as written
        return rt.arm.set_cluster_ssh_key(target, payload["publicKey"])

    return arm_steps.write(rt, payload, step, attempt)


@activity
def plan_key_reimages(rt: Runtime, payload: dict) -> Result:
    ref = cluster_ref(payload)
    try:
        cluster, pools = rt.arm.get_cluster(ref), rt.arm.list_pools(ref)
        reimage, later = key_steps.pools_to_reimage(cluster, pools)
        window = rt.settings.policy.upgrade_window
        maintenance = arm_steps.node_os_window(rt, ref) if reimage and window == NODE_OS_WINDOW else None
    except ArmError as e:
        return arm_steps.arm_failed(rt, payload, "upgrade-node-image", e)
    return succeeded(reimage=reimage, later=later, upgradeWindow=window, maintenanceWindow=maintenance)


@activity
def record_rotation(rt: Runtime, payload: dict) -> Result:
    """The rotation's row, its audit row and (once) its event. A rotation that did not put the
    new key on the cluster leaves the previous one current: its row says failed or skipped."""
    ref = cluster_ref(payload)
    outcome = Outcome(payload["outcome"])
    reimage_budget.let_go(rt, payload["instanceId"])
    if payload.get("fingerprint") or outcome is not Outcome.SKIPPED:
        rt.store.record_key_rotation(key_steps.rotation_row(payload, ref), key=payload["call"]["id"])
    message = f"{payload.get('oldFingerprint') or '?'} -> {payload.get('fingerprint') or '?'}: {payload['reason']}"
    first = audit(rt, payload, Entry("rotate-keys", outcome, message))
    if first and outcome is Outcome.SUCCEEDED:
        data = {k: payload.get(k) for k in ("fingerprint", "oldFingerprint", "secretId", "poolsReimaged")}
        publish(rt, OutcomeKind.KEY_ROTATED, payload, **data)
    return succeeded()
