"""Break-glass exemptions: `POST/GET/DELETE /api/exemptions`, and the activity that ends one at
its timer. The request checks are shared with the CLI (`python -m shared exempt`).

A pool may keep its mode, or be given another, until a deadline at most `WARDEN_MAX_EXEMPTION`
away. Granting starts the exemption's durable timer (`exemption_expiry`, one instance per pool
and end) before the row is written, so no exemption is left without one; a pool given a mode is
reconciled to it now. At the end the timer's activity records the expiry and requests a reconcile
of the pool through the normal request path, which brings it back to policy and verifies it.
Removing one early requests that reconcile too. Requests are checked from the request and the
settings alone before any I/O, as every route is (see `http_validation`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.config import Settings
from shared.config.durations import describe_duration
from shared.core.errors import OutOfScopeError, WardenError, shown
from shared.core.models import ClusterRef, SshAccess, Target
from shared.core.protocol import FailureKind, failed, succeeded
from shared.core.records import PoolExemption
from shared.core.table_keys import clip, iso
from shared.orchestration import names
from shared.orchestration import runtime as runtimes
from shared.orchestration.envelope import cluster_json, cluster_ref
from shared.triggers.http_api import json_response, runtime_or_503, served, settings_before_io
from shared.triggers.http_compliance import PLATFORM_PARAMETERS
from shared.triggers.http_routes import EXEMPTIONS_FUNCTION
from shared.triggers.http_validation import (
    BadRequest,
    caller_of,
    json_object,
    only_fields,
    reason_of,
    require_in_scope,
    unavailable,
)
from shared.triggers.start import StartError, is_running, request_work

log = logging.getLogger(__name__)

GRANTED, EXPIRED = "granted", "expired"  # `shared.orchestration.exemptions.Change` values
MODES = ", ".join(m.value for m in SshAccess)
UNTIL_FORM = "an ISO-8601 time with its offset, e.g. 2026-12-01T18:00:00Z"


# --- the checks, before any I/O ---------------------------------------------------------------


@dataclass(frozen=True)
class ExemptionAsked:
    """A validated request for an exemption of one pool."""

    target: Target
    until: datetime
    reason: str
    mode: SshAccess | None = None

    def row(self, actor: str, now: datetime) -> PoolExemption:
        ref = self.target.cluster
        mode = self.mode.value if self.mode else ""
        return PoolExemption(ref.id, self.target.pool or "", self.until, self.reason, actor, now, mode)


def exemption_request(body: dict[str, Any], settings: Settings, now: datetime) -> ExemptionAsked:
    """`{"pool": <agent-pool id>, "until": <ISO time>, "reason", "mode"?}`: in scope, ending after
    `now` and at most `WARDEN_MAX_EXEMPTION` later, with a reason; else a `BadRequest`."""
    only_fields(body, ("pool", "until", "reason", "mode"))
    target = pool_target(body.get("pool"), "pool" in body)
    require_in_scope(settings, target.cluster.subscription)
    until = until_of(body.get("until"), "until" in body, settings, now)
    return ExemptionAsked(target, until, required_reason(body), mode_of(body))


def pool_target(value: Any, given: bool = True) -> Target:
    """An AKS agent-pool resource id (an exemption is of one pool)."""
    if not isinstance(value, str) or not value:
        kind = f", not {type(value).__name__}" if given else ""
        raise BadRequest(400, "InvalidPool", f"'pool' is required: an AKS agent-pool resource id as a string{kind}")
    try:
        target = Target.from_id(value)
    except OutOfScopeError as e:
        raise BadRequest(400, "InvalidPool", f"'pool': {e}") from None
    if not target.pool:
        raise BadRequest(
            400, "InvalidPool", "'pool' names a cluster: give one of its pools (<cluster id>/agentPools/<name>)"
        )
    return target


def until_of(value: Any, given: bool, settings: Settings, now: datetime) -> datetime:
    if not isinstance(value, str) or not value.strip():
        kind = f", not {type(value).__name__}" if given and not isinstance(value, str) else ""
        raise BadRequest(400, "InvalidUntil", f"'until' is required: when the exemption ends, {UNTIL_FORM}{kind}")
    try:
        until = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(400, "InvalidUntil", f"'until' is {shown(value)}, which is not {UNTIL_FORM}") from None
    if until.tzinfo is None or until.utcoffset() is None:
        raise BadRequest(400, "InvalidUntil", f"'until' {shown(value)} has no offset: add one, e.g. Z for UTC")
    until, latest = until.astimezone(UTC), now + settings.max_exemption
    if until <= now:
        raise BadRequest(400, "InvalidUntil", f"'until' {iso(until)} is not in the future (now is {iso(now)})")
    if until > latest:
        raise BadRequest(
            400,
            "InvalidUntil",
            f"'until' {iso(until)} is more than WARDEN_MAX_EXEMPTION ({describe_duration(settings.max_exemption)}) "
            f"away: end it by {iso(latest)} at the latest",
        )
    return until


def required_reason(body: dict[str, Any]) -> str:
    reason = reason_of(body)
    if not reason:
        raise BadRequest(400, "InvalidReason", "'reason' is required: why the pool is exempted, for the audit trail")
    return reason


def mode_of(body: dict[str, Any]) -> SshAccess | None:
    mode = body.get("mode")
    if mode is None:
        return None
    try:
        if not isinstance(mode, str) or not mode:
            raise ValueError
        return SshAccess.parse(mode)
    except ValueError:
        raise BadRequest(
            400, "InvalidMode", f"'mode' is {shown(mode)}; expected one of {MODES}, or leave it out to keep the pool's"
        ) from None


def removal_request(params: dict[str, str], settings: Settings) -> tuple[Target, str]:
    """`?pool=<agent-pool id>&reason=<why>`: in scope, with a reason."""
    query = _query(params, ("pool", "reason"))
    target = pool_target(query.get("pool"), "pool" in query)
    require_in_scope(settings, target.cluster.subscription)
    return target, required_reason(query)


def listing_scope(params: dict[str, str], settings: Settings) -> ClusterRef | None:
    """`?cluster=<managed-cluster id>` (optional), in scope."""
    query = _query(params, ("cluster",))
    if "cluster" not in query:
        return None
    try:
        target = Target.from_id(query["cluster"])
    except OutOfScopeError as e:
        raise BadRequest(400, "InvalidQuery", f"'cluster': {e}") from None
    if target.pool:
        raise BadRequest(400, "InvalidQuery", f"'cluster' names the pool {target.pool!r}: give the managed-cluster id")
    require_in_scope(settings, target.cluster.subscription)
    return target.cluster


def _query(params: dict[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    query = {name: value for name, value in params.items() if name not in PLATFORM_PARAMETERS}
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        expected = ", ".join(repr(name) for name in allowed)
        raise BadRequest(
            400, "InvalidQuery", f"unknown parameter {shown(unknown[0])}; this request takes only {expected}"
        )
    return query


# --- what an exemption looks like to callers --------------------------------------------------


def exemption_json(row: PoolExemption) -> dict[str, Any]:
    ref = Target.from_id(row.cluster_id).cluster
    return {
        "clusterId": ref.id,
        "poolId": f"{ref.id}/agentPools/{row.pool}",
        "subscription": ref.subscription,
        "resourceGroup": ref.resource_group,
        "cluster": ref.name,
        "pool": row.pool,
        "mode": row.mode or None,
        "until": iso(row.until),
        "reason": row.reason,
        "actor": row.actor,
        "grantedAt": iso(row.granted_time),
    }


def listed(rows: list[PoolExemption], settings: Settings, now: datetime) -> list[PoolExemption]:
    """What a list shows: the rows still in force, of subscriptions in scope, by cluster and pool."""
    kept = [r for r in rows if r.in_force(now) and r.cluster_id.split("/")[2].lower() in settings.subscriptions]
    return sorted(kept, key=lambda r: (r.cluster_id.lower(), r.pool.lower()))


# --- the steps with I/O, shared with the CLI ----------------------------------------------------


async def start_timer(client, row: PoolExemption) -> str:
    """Start the exemption's timer (before its row is written: none is left without one). A start
    refused because that very timer runs (the same end asked again) is fine."""
    instance_id = names.exemption_instance_id(row.pool_key, row.until)
    ref = Target.from_id(row.cluster_id).cluster
    timer = {"cluster": cluster_json(ref), "pool": row.pool, "until": row.until.isoformat()}
    try:
        await client.start_new(names.EXEMPTION_EXPIRY, instance_id, timer)
    except OSError as e:
        raise StartError(
            f"could not start the exemption's timer {instance_id}: the task hub is unreachable: {e}"
        ) from None
    except Exception as refused:  # noqa: BLE001 - the SDK's only signal for a refused start
        if not await is_running(client, instance_id):
            raise StartError(f"could not start the exemption's timer {instance_id}: {refused}") from None
    return instance_id


async def request_reconcile(client, rt, row: PoolExemption, why: str, actor: str) -> str:
    """A reconcile of the exemption's pool through the normal request path; its worker's id."""
    target = Target(Target.from_id(row.cluster_id).cluster, row.pool)
    instance_id, how = await request_work(client, rt.store, target, why, actor)
    log.info("exemption of %s: reconcile %s (%s)", row.pool_key, how, instance_id)
    return instance_id


# --- HTTP -------------------------------------------------------------------------------------------


@served(EXEMPTIONS_FUNCTION)
async def http_exemptions(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Grant (POST), list (GET) or end early (DELETE) break-glass exemptions of pools."""
    method = req.method.upper()
    if method == "POST":
        return await _grant(req, client)
    if method == "DELETE":
        return await _remove(req, client)
    return _list(req)


async def _grant(req: func.HttpRequest, client) -> func.HttpResponse:
    settings, now = settings_before_io(), datetime.now(UTC)
    asked = exemption_request(json_object(req), settings, now)
    caller, rt = caller_of(req), runtime_or_503()
    row = asked.row(caller, now)
    try:
        expiry = await start_timer(client, row)
    except StartError as e:
        raise unavailable("ExemptionNotStarted", f"{e}; nothing was recorded, try again") from None
    granted = _stored(lambda: _exemptions().grant(rt, row, now), "the exemption could not be recorded")
    worker = None
    if granted.exemption.mode:  # the pool is given a mode now (again, if asked again: harmless)
        why = f"exemption gives {granted.exemption.mode}: {granted.exemption.reason}"
        worker = await _reconcile(client, rt, granted.exemption, why, caller, "the exemption is recorded")
    body = {
        "exemption": exemption_json(granted.exemption),
        "change": granted.change.value,
        "expiryInstanceId": expiry,
        "reconcileInstanceId": worker,
    }
    return json_response(body, 201 if granted.change == GRANTED else 200)


async def _remove(req: func.HttpRequest, client) -> func.HttpResponse:
    settings, now = settings_before_io(), datetime.now(UTC)
    target, reason = removal_request(dict(req.params), settings)
    caller, rt = caller_of(req), runtime_or_503()
    ended = _stored(
        lambda: _exemptions().remove(rt, target.cluster, target.pool or "", caller, reason, now),
        "the exemption could not be removed",
    )
    if ended is None:
        raise BadRequest(404, "ExemptionNotFound", f"pool {target.id} has no exemption")
    why = f"exemption {ended.change.value}: {reason}"
    worker = await _reconcile(client, rt, ended.exemption, why, caller, f"the exemption is {ended.change.value}")
    if ended.change == EXPIRED:
        raise BadRequest(
            404,
            "ExemptionNotFound",
            f"pool {target.id} has no exemption in force: it ended at {iso(ended.exemption.until)} "
            f"(recorded now; its pool is being reconciled by {worker})",
        )
    return json_response({"exemption": exemption_json(ended.exemption), "reconcileInstanceId": worker})


def _list(req: func.HttpRequest) -> func.HttpResponse:
    settings, now = settings_before_io(), datetime.now(UTC)
    cluster = listing_scope(dict(req.params), settings)
    rt = runtime_or_503()
    rows = _stored(lambda: rt.store.list_exemptions(cluster.key if cluster else None), "exemptions could not be read")
    return json_response({"exemptions": [exemption_json(r) for r in listed(rows, settings, now)]})


async def _reconcile(client, rt, row: PoolExemption, why: str, actor: str, done: str) -> str:
    try:
        return await request_reconcile(client, rt, row, why, actor)
    except StartError as e:
        raise unavailable(
            "ReconcileNotStarted", f"{done}; its reconcile is queued and waits ({e}): try again"
        ) from None
    except WardenError as e:  # Table Storage
        raise unavailable("StorageUnavailable", f"{done}, but its reconcile could not be queued ({e})") from None


def _stored(action, what: str):
    try:
        return action()
    except WardenError as e:  # Table Storage out of reach, or a row that kept changing
        raise unavailable("StorageUnavailable", f"{what} ({e}); try again") from None


def _exemptions():
    """The exemption steps, imported on first use: they load the Table Storage and Event Grid SDKs."""
    from shared.orchestration import exemptions

    return exemptions


# --- the timer's activity ---------------------------------------------------------------------------


async def expire_exemption_activity(payload: dict, client: df.DurableOrchestrationClient) -> dict:
    """At the timer: if the pool's exemption has ended (it may have been renewed or removed
    meanwhile), record its expiry, request a reconcile of the pool, then remove the row. A
    `Result`, as every activity returns; a failure is retried by the orchestrator and each step
    is safe to run again (the record is keyed, the request is one row per target)."""
    try:
        return (await _expire(payload, client)).to_json()
    except Exception as e:  # noqa: BLE001 - unknown errors are temporary: the orchestrator retries
        log.warning("activity %s failed: %s: %s", names.EXPIRE_EXEMPTION, type(e).__name__, e)
        return failed(FailureKind.INTERNAL, type(e).__name__, clip(str(e), 1000), retryable=True).to_json()


async def _expire(payload: dict, client):
    rt, ref, pool = runtimes.runtime(), cluster_ref(payload), payload["pool"]
    now = datetime.fromisoformat(payload["call"]["at"])  # the orchestration's time, not this machine's
    row = rt.store.get_exemption(ref.key, pool)
    if row is None:
        return succeeded(expired=False, reason="the exemption was removed meanwhile")
    if row.in_force(now):
        return succeeded(expired=False, reason=f"the exemption was renewed: it ends at {iso(row.until)}")
    _exemptions().record_expiry(rt, row, payload.get("instanceId", ""))
    why = f"exemption ended at {iso(row.until)} ({row.reason}): back to policy"
    try:
        worker = await request_reconcile(client, rt, row, why, _exemptions().EXPIRY_ACTOR)
    except StartError as e:
        return failed(FailureKind.TRANSIENT, "ReconcileNotStarted", str(e), retryable=True)
    rt.store.delete_exemption(row)  # last: a re-run after a failure above still finds it
    return succeeded(expired=True, worker=worker)
