"""What the key-rotation activities do: prepare the new key (the only place a private key
exists, on its way to the key store), check the cluster write, choose the pools to reimage,
record the rotation. Used by `activities` only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from shared.core.errors import KeyMaterialError, Superseded
from shared.core.models import Cluster, ClusterRef, Pool, SshAccess
from shared.core.protocol import FailureKind, Outcome, Result, failed, succeeded
from shared.core.records import KeyRotation
from shared.keys import PublicKey, fingerprint, generate_key_pair, parse_public_key
from shared.orchestration.arm_steps import IDLE_STATES, still_writing
from shared.policy.plan import AUTO_PROVISIONED, VMSS, auto_provisioned_nodes

NO_KEY_STORE = (
    "no key store (WARDEN_KEYVAULT_URL is not set): the warden generates keys only where it can keep the "
    "private half in Key Vault; supply a public key instead"
)


def cannot_take_a_key(cluster: Cluster) -> str | None:
    if cluster.is_automatic:
        return "AKS Automatic clusters with managed system node pools refuse customer SSH keys"
    if cluster.ssh_public_keys is None:
        return "the cluster has no linuxProfile: it has no node SSH key to rotate"
    if cluster.is_stopped:
        return "the cluster is stopped (only start/delete are allowed)"
    return None


def prepare(rt, ref: ClusterRef, cluster: Cluster, payload: dict) -> Result:
    """The new key of this rotation, stored and recorded as planned before the cluster changes.
    A re-run of the same rotation (its instance) finds its planned row and reuses that key."""
    old = fingerprint(cluster.ssh_public_keys[0]) if cluster.ssh_public_keys else ""
    common = {"oldFingerprint": old, "pollSeconds": rt.settings.poll_seconds}
    if not rt.settings.enforcing:
        return succeeded(skipped=f"WARDEN_MODE is {rt.settings.mode}: no key generated, nothing written", **common)
    planned = _planned(rt, ref, payload["instanceId"])
    if planned is not None and planned.source == "generated" and not planned.secret_id:
        planned = _stored_earlier(rt, ref, planned)  # the key of a run that stopped after storing it
    if planned is None and not payload.get("publicKey") and rt.keystore is None:
        return failed(FailureKind.PERMANENT, "NoKeyStore", NO_KEY_STORE)
    if planned is None:
        try:
            planned = _new_key(rt, ref, payload, old)
        except KeyMaterialError as e:
            return failed(FailureKind.PERMANENT, "UnusableKey", str(e))
    return succeeded(
        publicKey=planned.public_key,
        fingerprint=planned.fingerprint,
        secretId=planned.secret_id,
        secretVersion=planned.secret_version,
        bits=planned.key_bits,
        source=planned.source,
        **common,
    )


def _planned(rt, ref: ClusterRef, instance_id: str) -> KeyRotation | None:
    """This rotation's latest planned key (a re-run reuses it rather than make a second one)."""
    rows = [r for r in rt.store.list_key_rotations(ref.key) if r.instance_id == instance_id]
    return next((r for r in reversed(rows) if r.outcome is Outcome.PLANNED), None)


def _stored_earlier(rt, ref: ClusterRef, planned: KeyRotation) -> KeyRotation | None:
    stored = rt.keystore.find_by_fingerprint(ref.id, planned.fingerprint) if rt.keystore else None
    if stored is None:
        return None  # the run stopped before the key was stored: that key is gone, make another
    rt.keystore.verify_stored(stored, planned.fingerprint)  # read back, as for a new one
    return replace(planned, secret_id=stored.secret_id, secret_version=stored.version)


def _new_key(rt, ref: ClusterRef, payload: dict, old: str) -> KeyRotation:
    """The planned row goes first (fingerprint only), then the private key to the store, read
    back before anything changes; the row with the secret's id goes last."""
    row = KeyRotation(
        ref.id, datetime.now(UTC), "", Outcome.PLANNED, instance_id=payload["instanceId"], old_fingerprint=old
    )
    if payload.get("publicKey"):
        planned = _with_key(row, parse_public_key(payload["publicKey"]), source="supplied")
        rt.store.record_key_rotation(planned)
        return planned
    pair = generate_key_pair()
    planned = _with_key(row, pair.public, "generated")
    rt.store.record_key_rotation(planned)
    stored = rt.keystore.store_private_key(ref.id, pair.private_pem, pair.public.fingerprint)
    rt.keystore.verify_stored(stored, pair.public.fingerprint)
    planned = replace(planned, time=datetime.now(UTC), secret_id=stored.secret_id, secret_version=stored.version)
    rt.store.record_key_rotation(planned)  # a re-run reads the newest planned row: this one
    return planned


def _with_key(row: KeyRotation, key: PublicKey, source: str) -> KeyRotation:
    return replace(row, fingerprint=key.fingerprint, public_key=key.openssh, key_bits=key.bits, source=source)


def recheck_key_write(rt, payload: dict, cluster: Cluster) -> None:
    """Raise `Superseded` unless the cluster PUT is still wanted: enforcing, in scope, and the
    cluster not already on this key."""
    still_writing(rt, cluster.ref.subscription)
    keys = cluster.ssh_public_keys or ()
    if len(keys) == 1 and fingerprint(keys[0]) == payload["fingerprint"]:
        raise Superseded(f"the cluster already has key {payload['fingerprint']}: no PUT", done=True)


def pools_to_reimage(cluster: Cluster, pools: list[Pool]) -> tuple[list[str], list[dict]]:
    """(LocalUser Linux scale-set pools, [{pool, reason}] of those that pick the key up later)."""
    reimage, later = [], []
    for pool in sorted(pools, key=lambda p: p.name.lower()):
        if why := _why_later(pool):
            later.append({"pool": pool.name, "reason": why})
        else:
            reimage.append(pool.name)
    if auto_provisioned_nodes(cluster):
        reason = "node auto-provisioning nodes cannot be reimaged through ARM: they take the key when Karpenter replaces them"
        later.append({"pool": AUTO_PROVISIONED, "reason": reason})
    return reimage, later


def _why_later(pool: Pool) -> str | None:
    if pool.os_type.lower() == "windows":
        return "Windows nodes do not use the Linux SSH key"
    if pool.ssh_access is not SshAccess.LOCAL_USER:
        return f"sshAccess {pool.ssh_access.value}: its nodes take no SSH key now, and pick the new one up at their next reimage"
    if pool.type != VMSS:
        return f"a {pool.type} pool is not reimaged by node-image upgrade here: pending until its nodes are replaced"
    if pool.provisioning_state.lower() not in IDLE_STATES:
        return f"the pool is {pool.provisioning_state}: its nodes take the key at their next reimage"
    return None


def rotation_row(payload: dict, ref: ClusterRef) -> KeyRotation:
    call = payload.get("call") or {}
    return KeyRotation(
        ref.id,
        datetime.fromisoformat(call["at"]) if call.get("at") else datetime.now(UTC),
        payload.get("fingerprint", ""),
        Outcome(payload["outcome"]),
        secret_id=payload.get("secretId", ""),
        secret_version=payload.get("secretVersion", ""),
        key_bits=payload.get("bits", 0),
        message=payload.get("reason", ""),
        instance_id=payload.get("instanceId", ""),
        old_fingerprint=payload.get("oldFingerprint", ""),
        public_key=payload.get("publicKey", ""),
        pools_reimaged=",".join(payload.get("poolsReimaged", [])),
        source=payload.get("source", ""),
    )
