"""The operators' HTTP API: function-key auth, JSON in and out, errors as {"error": {"code", "message"}}.

Every request is validated and scope-checked from the request and the settings alone
(`http_validation`) before anything touches Table Storage or the task hub. An accepted
request for cluster work is recorded with its caller and reason (the request row, then an
audit row) and answered 202 with the cluster worker's Durable status links; a worker already
running for the cluster takes it (the same instance id). Storage or task hub out of reach is a
503 with `Retry-After`; anything unexpected a 500 without internals, logged.

Every route is registered for every method, so a wrong method reaches the handler and gets a
405 with `Allow` (the host would answer an unrouted method itself). `ENDPOINTS` says which
methods each route serves; `openapi.py` documents exactly these (a test holds them together).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.core.errors import ConfigError, KeyMaterialError, StoreConflictError, StoreError
from shared.core.models import Target
from shared.core.protocol import Outcome, WorkKind
from shared.core.records import AuditRecord
from shared.orchestration import runtime as runtimes
from shared.orchestration.names import worker_instance_id
from shared.triggers.http_compliance import read_report, report_query
from shared.triggers.http_progress import UNREACHABLE, instance_status
from shared.triggers.http_routes import (
    COMPLIANCE_FUNCTION,
    DOCTOR_FUNCTION,
    ENDPOINTS,
    OPENAPI_FUNCTION,
    RECONCILE_FUNCTION,
    ROTATE_FUNCTION,
    STATUS_FUNCTION,
    VERIFY_FUNCTION,
)
from shared.triggers.http_validation import (
    JSON_MEDIA_TYPE,
    BadRequest,
    allow_only,
    caller_of,
    error_response,
    instance_id_of,
    json_object,
    only_fields,
    reason_of,
    require_in_scope,
    target_of,
    unavailable,
)
from shared.triggers.start import StartError, request_work
from shared.triggers.verify import verify_fleet

log = logging.getLogger(__name__)

REQUEST_STEP = "http-request"  # the audit row of an accepted request
NOT_STARTED = {
    WorkKind.RECONCILE: "ReconcileNotStarted",
    WorkKind.VERIFY: "VerifyNotStarted",
    WorkKind.ROTATE_KEYS: "RotationNotStarted",
}


def served(name: str) -> Callable[[Callable[..., Awaitable[func.HttpResponse]]], Callable[..., Any]]:
    """The handler of endpoint `name`, guarded: its methods only (else 405 with `Allow`), a
    `BadRequest` as its error response, and any other exception a logged 500."""
    allowed = ENDPOINTS[name].methods

    def wrap(handler: Callable[..., Awaitable[func.HttpResponse]]) -> Callable[..., Any]:
        @functools.wraps(handler)
        async def serve(req: func.HttpRequest, **bindings: Any) -> func.HttpResponse:
            try:
                allow_only(req, allowed)
                return await handler(req, **bindings)
            except BadRequest as e:
                return e.response()
            except Exception as e:  # noqa: BLE001 - the caller gets a 500 without internals; the log has them
                log.exception("%s %s failed", req.method, name)
                return error_response(500, "InternalError", f"the request failed unexpectedly ({type(e).__name__})")

        return serve

    return wrap


# --- cluster work -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkAsked:
    """A validated request for cluster work."""

    target: Target
    reason: str = ""
    argument: str = ""  # a supplied public key for rotate-keys


def reconcile_request(body: dict[str, Any]) -> WorkAsked:
    """`{"cluster": <managed-cluster or agent-pool id>, "pool"?, "reason"?}`, in scope."""
    only_fields(body, ("cluster", "pool", "reason"))
    reason = reason_of(body)
    target = target_of(body, pools=True)
    require_in_scope(settings_before_io(), target.cluster.subscription)
    return WorkAsked(target, reason)


def reconcile_target(body: dict[str, Any]) -> Target:
    """`{"cluster", "pool"?, "reason"?}`: the target, in scope, or a `BadRequest` (the CLI's check too)."""
    return reconcile_request(body).target


def rotation_request(body: dict[str, Any]) -> WorkAsked:
    """`{"cluster": <managed-cluster id>, "publicKey"?, "reason"?}`: without a key, one is generated,
    which needs a key store."""
    # Key handling loads cryptography and the ARM steps: imported by a rotation request, not at start-up.
    from shared.keys import parse_public_key
    from shared.orchestration.key_steps import NO_KEY_STORE

    only_fields(body, ("cluster", "publicKey", "reason"))
    reason = reason_of(body)
    target = target_of(body, pools=False)
    require_in_scope(settings_before_io(), target.cluster.subscription)
    supplied = body.get("publicKey")
    if supplied is None:
        if not _can_keep_private_keys():
            raise BadRequest(400, "NoKeyStore", NO_KEY_STORE)
        return WorkAsked(target, reason)
    if not isinstance(supplied, str):
        raise BadRequest(400, "InvalidPublicKey", "'publicKey' must be a string: one `ssh-rsa AAAA...` line")
    try:
        return WorkAsked(target, reason, parse_public_key(supplied).openssh)
    except KeyMaterialError as e:
        raise BadRequest(400, "InvalidPublicKey", f"'publicKey': {e}") from None


def rotation_target(body: dict[str, Any]) -> tuple[Target, str]:
    """`{"cluster", "publicKey"?}`: the cluster and the validated key ("" to generate one)."""
    asked = rotation_request(body)
    return asked.target, asked.argument


@served(RECONCILE_FUNCTION)
async def http_reconcile(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Reconcile a cluster or one pool now: 202 with the status links of the cluster's worker."""
    return await accept(req, client, WorkKind.RECONCILE, reconcile_request(json_object(req)))


@served(ROTATE_FUNCTION)
async def http_rotate_keys(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """A new node SSH key for a cluster now (generated into Key Vault, or the one given)."""
    return await accept(req, client, WorkKind.ROTATE_KEYS, rotation_request(json_object(req)))


@served(VERIFY_FUNCTION)
async def http_verify(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Verify sshd on the sampled nodes of a cluster (or one pool), or of every cluster in scope."""
    body = json_object(req)
    if "cluster" not in body:
        if "pool" in body:
            raise BadRequest(400, "InvalidBody", "'pool' names a pool of 'cluster': give 'cluster' too")
        only_fields(body, ("reason",))
        return await accept_fleet(req, client, reason_of(body))
    return await accept(req, client, WorkKind.VERIFY, reconcile_request(body))


async def accept(req: func.HttpRequest, client, kind: WorkKind, asked: WorkAsked) -> func.HttpResponse:
    """Audit the request with its caller and reason, queue it, make sure the cluster's worker
    takes it: 202 with that worker's links. The audit row goes first: if it cannot be written,
    nothing is queued and asking again is safe (a rotation, say, never runs twice for one ask)."""
    caller, store = caller_of(req), runtime_or_503().store
    instance_id = worker_instance_id(asked.target.cluster.key)
    _audit(store, [_request_row(kind, asked.target, asked.reason, caller, instance_id)])
    try:
        _, how = await request_work(
            client, store, asked.target, _request_reason(asked.reason), caller, kind, asked.argument
        )
    except (StoreError, StoreConflictError) as e:
        raise unavailable("StorageUnavailable", f"the request could not be queued ({e}); try again") from None
    except StartError as e:
        raise unavailable(NOT_STARTED[kind], f"{e}; the request is queued and waits, try again to start it") from None
    log.info("%s %s by %s: %s", kind.value, how, caller, instance_id)
    return client.create_check_status_response(req, instance_id)


async def accept_fleet(req: func.HttpRequest, client, reason: str) -> func.HttpResponse:
    """Verify work for every cluster in scope (as the timer asks): 202 with each worker's links."""
    caller, rt = caller_of(req), runtime_or_503()
    report = await verify_fleet(client, rt, _request_reason(reason), caller)
    if report.errors and not report.requested:
        raise unavailable("VerifyNotStarted", f"no cluster could be asked: {report.errors[0]}")
    requested = [
        (Target.from_id(cluster_id), worker_instance_id(cluster_id.lower())) for cluster_id in report.requested
    ]
    # Here the clusters are known only once asked; a repeated verification is harmless.
    _audit(rt.store, [_request_row(WorkKind.VERIFY, target, reason, caller, id_) for target, id_ in requested])
    body = {
        "requested": [
            {"cluster": target.id, **client.get_client_response_links(req, instance_id)}
            for target, instance_id in requested
        ],
        "skipped": report.skipped,
        "errors": report.errors,
    }
    return func.HttpResponse(json.dumps(body), status_code=202, mimetype=JSON_MEDIA_TYPE)


def _audit(store, rows: list[AuditRecord]) -> None:
    try:
        store.append_audit(rows)
    except StoreError as e:
        raise unavailable("StorageUnavailable", f"the request could not be recorded ({e}); try again") from None


def _request_reason(reason: str) -> str:
    return f"HTTP request: {reason}" if reason else "HTTP request"


def _request_row(kind: WorkKind, target: Target, reason: str, caller: str, instance_id: str) -> AuditRecord:
    return AuditRecord(
        time=datetime.now(UTC),
        cluster_id=target.cluster.id,
        step=REQUEST_STEP,
        outcome=Outcome.PLANNED,
        pool=target.pool or "",
        message=f"{kind.value} requested: {instance_id}" + (f"; reason: {reason}" if reason else ""),
        instance_id=instance_id,
        actor=caller,
    )


# --- status, compliance, the document -------------------------------------------------------------


@served(STATUS_FUNCTION)
async def http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """An orchestration's status and output, and the pool and step its work is at."""
    instance_id = instance_id_of(req)
    try:
        status = await instance_status(client, instance_id)
    except UNREACHABLE as e:
        raise unavailable("TaskHubUnavailable", f"the task hub could not be asked ({type(e).__name__})") from None
    if status is None:
        raise BadRequest(404, "InstanceNotFound", f"no orchestration with instance id {instance_id!r}")
    return json_response(status)


@served(COMPLIANCE_FUNCTION)
async def http_compliance(req: func.HttpRequest) -> func.HttpResponse:
    """The compliance report from the tables, one page of pools at a time."""
    settings = settings_before_io()
    query = report_query(req, settings)
    try:
        return json_response(read_report(runtime_or_503().store, query, settings))
    except StoreError as e:
        raise unavailable("StorageUnavailable", f"the report could not be read ({e}); try again") from None


@served(DOCTOR_FUNCTION)
async def http_doctor(req: func.HttpRequest) -> func.HttpResponse:
    """The deployment's preflight checks (read-only): 200 with every check, whatever they say."""
    from shared.triggers.doctor import run_doctor  # its reads: imported when asked for

    settings_before_io()
    return json_response(run_doctor(runtime_or_503()).to_json())


@served(OPENAPI_FUNCTION)
async def http_openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 document of these routes."""
    from shared.triggers.openapi import document  # built from the whole API: imported when asked for

    return json_response(document())


def json_response(value: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value, default=str), status_code=status, mimetype=JSON_MEDIA_TYPE)


# --- settings before I/O, resources after ------------------------------------------------------------


def settings_before_io():
    """The settings alone: deciding scope builds no store and no client."""
    try:
        return runtimes.settings()
    except ConfigError as e:
        raise BadRequest(500, "InvalidConfiguration", str(e)) from None


def _can_keep_private_keys() -> bool:
    installed = runtimes.installed()
    return installed.keystore is not None if installed else bool(settings_before_io().keyvault_url)


def runtime_or_503() -> runtimes.Runtime:
    """The store and clients, built on first use; storage out of reach is a 503."""
    try:
        return runtimes.runtime()
    except ConfigError as e:
        raise BadRequest(500, "InvalidConfiguration", str(e)) from None
    except StoreError as e:
        raise unavailable("StorageUnavailable", f"Table Storage is out of reach ({e}); try again") from None
