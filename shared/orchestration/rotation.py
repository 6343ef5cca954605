"""Rotate-keys work: a new node SSH key for a cluster, its private half only in Key Vault.

Runs inside the cluster's worker, so it never overlaps a reconcile or a verification of the
same cluster. Deterministic generator:

    rotate_keys(cluster, supplied public key | "")
      prepare: check the cluster can take a key; generate one (private half stored in Key
               Vault and read back) or validate the supplied one; record it as planned
      PUT the cluster with the new key (once idle, re-checked, If-Match) -> poll
      node-image upgrade of each LocalUser Linux pool, one after another (window, backoff)
      record: the rotation (old and new fingerprints, secret id, pools reimaged), its event

Only public values travel through the orchestration: the public key, fingerprints, the
secret's id. The private key never leaves the prepare activity.
"""

from __future__ import annotations

from shared.core.protocol import Outcome, WorkKind
from shared.orchestration import names
from shared.orchestration.operations import (
    DEFAULT_BASE_SECONDS,
    Task,
    call,
    record_failure,
    run_operation,
    wait_for_window,
)
from shared.policy import NODE_OS_WINDOW

KEY_STEP = "update-ssh-key"
UPGRADE = "upgrade-node-image"


def rotate_keys(context) -> Task:
    """Input: {"cluster", "argument": a supplied `ssh-rsa` public key or "", "reason", "actor"}."""
    work = context.get_input()
    common = {"cluster": work["cluster"], "instanceId": context.instance_id, "actor": work.get("actor", "")}
    first = work.get("pollSeconds") or DEFAULT_BASE_SECONDS
    prepare = {**common, "publicKey": work.get("argument", "")}
    prepared = yield from call(context, names.PREPARE_ROTATION, prepare, first)
    if not prepared.ok:  # the rotation's own row says why
        return (yield from _finish(context, common, {}, Outcome.FAILED, prepared.error.message))
    key = prepared.value
    if key.get("skipped"):
        return (yield from _finish(context, common, key, Outcome.SKIPPED, key["skipped"]))
    base = key["pollSeconds"]
    change = {**common, "step": KEY_STEP, "publicKey": key["publicKey"], "fingerprint": key["fingerprint"]}
    applied = yield from run_operation(context, names.START_KEY_UPDATE, change, base)
    if stopped := (yield from _stopped(context, change, applied)):
        return (yield from _finish(context, common, key, *stopped))
    pools = yield from call(context, names.PLAN_KEY_REIMAGES, common, base)
    if not pools.ok:
        yield from record_failure(context, common, UPGRADE, pools.error)
        return (yield from _finish(context, common, key, Outcome.FAILED, f"the key is set; {pools.error.message}"))
    reimaged, failed = yield from _reimage(context, common, pools.value, base)
    later = [f"{p['pool']}: {p['reason']}" for p in pools["later"]]
    outcome = Outcome.FAILED if failed else Outcome.SUCCEEDED
    reason = "; ".join([*(f"{p}: {why}" for p, why in failed), *later]) or "every LocalUser pool reimaged"
    done = yield from _finish(context, common, key, outcome, reason, reimaged)
    if reimaged:  # the nodes are the truth: the worker has the cluster checked next (`followUps`)
        done["followUps"] = [{"kind": WorkKind.VERIFY.value, "reason": "after the warden's key rotation"}]
    return done


def _reimage(context, common: dict, pools: dict, base: float) -> Task:
    """The LocalUser pools, one after another: only their nodes use the key, and only after a
    reimage. Returns (reimaged pool names, [(pool, why) that failed])."""
    reimaged, failed = [], []
    for pool in pools["reimage"]:
        target = {**common, "pool": pool, "mode": "LocalUser", "purpose": "key", "step": UPGRADE}
        if pools["upgradeWindow"] == NODE_OS_WINDOW and not (
            yield from wait_for_window(context, target, pools.get("maintenanceWindow"))
        ):
            failed.append((pool, "no usable node-OS maintenance window: the reimage waits"))
            continue
        done = yield from run_operation(context, names.START_NODE_IMAGE_UPGRADE, target, base)
        if done.ok and not done.get("skipped"):
            reimaged.append(pool)
        else:
            if not done.ok:
                yield from record_failure(context, target, UPGRADE, done.error)
            failed.append((pool, done.get("skipped") or (done.error.message if done.error else "not reimaged")))
    return reimaged, failed


def _stopped(context, payload: dict, done) -> Task:
    """None when the key went on; else (outcome, reason) for the rotation."""
    if done.ok and done.get("skipped"):
        return Outcome.SKIPPED, done["skipped"]
    if done.ok:
        return None
    yield from record_failure(context, payload, KEY_STEP, done.error)
    return done.error.outcome, f"the cluster kept its old key: {done.error.message}"


def _finish(context, common: dict, key: dict, outcome: Outcome, reason: str, reimaged: list | None = None) -> Task:
    result = {
        "outcome": outcome.value,
        "reason": reason,
        "fingerprint": key.get("fingerprint", ""),
        "oldFingerprint": key.get("oldFingerprint", ""),
        "secretId": key.get("secretId", ""),
        "poolsReimaged": reimaged or [],
    }
    base = key.get("pollSeconds") or DEFAULT_BASE_SECONDS
    recorded = yield from call(context, names.RECORD_ROTATION, {**common, **key, **result}, base)
    if not recorded.ok:
        result["error"] = recorded.error.to_json()
    return result
