"""HTTP endpoints (function-key auth, JSON in and out, errors as {"error": {"code", "message"}})."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.adapters.store import StoreError
from shared.errors import ConfigError, KeyMaterialError, OutOfScopeError
from shared.keys import parse_public_key
from shared.models import Target, validate_pool_name
from shared.orchestration.key_steps import NO_KEY_STORE
from shared.orchestration.runtime import runtime
from shared.protocol import WorkKind
from shared.triggers.start import StartError, request_work

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)

STATUS_FUNCTION = "http_status"
RECONCILE_FUNCTION = "http_reconcile"
VERIFY_FUNCTION = "http_verify"
ROTATE_FUNCTION = "http_rotate_keys"


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> func.HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status, mimetype="application/json")


def json_body(req: func.HttpRequest) -> dict[str, Any]:
    try:
        body = req.get_json()
    except RecursionError as e:  # json gives up on deep nesting with a RecursionError, not a ValueError
        raise BadRequest(
            400, "InvalidJson", "the request body is not JSON this API accepts: it nests too deeply"
        ) from e
    except ValueError as e:
        raise BadRequest(400, "InvalidJson", f"the request body is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise BadRequest(400, "InvalidBody", f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def reconcile_target(body: dict[str, Any]) -> Target:
    """`{"cluster": <managed-cluster id>, "pool"?: <name>}`, in scope, or a `BadRequest`."""
    unknown = sorted(set(body) - {"cluster", "pool"})
    if unknown:
        raise BadRequest(400, "InvalidBody", f"unknown field {unknown[0]!r}; expected 'cluster' and optionally 'pool'")
    cluster, pool = body.get("cluster"), body.get("pool")
    if not isinstance(cluster, str) or not cluster:
        raise BadRequest(400, "InvalidCluster", "'cluster' is required: an AKS managed-cluster resource id")
    if pool is not None:
        try:
            validate_pool_name(pool)
        except OutOfScopeError as e:
            raise BadRequest(400, "InvalidPool", f"'pool': {e}") from e
    try:
        target = Target.from_id(cluster)
    except OutOfScopeError as e:
        raise BadRequest(400, "InvalidCluster", f"'cluster': {e}") from e
    if target.pool and pool and target.pool.lower() != pool.lower():
        raise BadRequest(400, "InvalidPool", f"'cluster' names pool {target.pool!r} but 'pool' says {pool!r}")
    try:
        runtime().settings.require_in_scope(target.cluster.subscription)
    except OutOfScopeError as e:
        raise BadRequest(403, "OutOfScope", str(e)) from e
    return Target(target.cluster, pool or target.pool)


@bp.function_name(RECONCILE_FUNCTION)
@bp.route(route="reconcile", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_reconcile(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or join) the reconcile of a cluster or one pool; 202 with the Durable status links."""
    return await _request_work(req, client, WorkKind.RECONCILE, reconcile_target)


@bp.function_name(VERIFY_FUNCTION)
@bp.route(route="verify", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_verify(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """`{"cluster"}`: verify sshd on that cluster's sampled nodes now; 202 with the status links."""
    return await _request_work(req, client, WorkKind.VERIFY, reconcile_target)


@bp.function_name(ROTATE_FUNCTION)
@bp.route(route="rotate-keys", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_rotate_keys(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """`{"cluster", "publicKey"?}`: a new node SSH key now (generated into Key Vault, or the one given)."""
    return await _request_work(req, client, WorkKind.ROTATE_KEYS, rotation_target)


def rotation_target(body: dict[str, Any]) -> tuple[Target, str]:
    """`{"cluster", "publicKey"?}`: the cluster and the validated key ("" to generate one)."""
    body = dict(body)
    supplied = body.pop("publicKey", None)
    if "pool" in body:
        raise BadRequest(400, "InvalidBody", "'pool' does not go with rotate-keys: a node key is the cluster's")
    target = reconcile_target(body)
    if supplied is None:
        if runtime().keystore is None:
            raise BadRequest(400, "NoKeyStore", NO_KEY_STORE)
        return target, ""
    if not isinstance(supplied, str):
        raise BadRequest(400, "InvalidPublicKey", "'publicKey' must be a string: one `ssh-rsa AAAA...` line")
    try:
        return target, parse_public_key(supplied).openssh
    except KeyMaterialError as e:
        raise BadRequest(400, "InvalidPublicKey", f"'publicKey': {e}") from e


async def _request_work(req: func.HttpRequest, client, kind: WorkKind, parse) -> func.HttpResponse:
    """Validate (before any I/O), record the request, answer 202 with the worker's status links."""
    try:
        parsed = parse(json_body(req))
    except BadRequest as e:
        return error_response(e.status, e.code, e.message)
    except ConfigError as e:
        return error_response(500, "InvalidConfiguration", str(e))
    target, argument = parsed if isinstance(parsed, tuple) else (parsed, "")
    try:
        instance_id, _ = await request_work(client, runtime().store, target, "HTTP request", "", kind, argument)
    except StoreError as e:
        return error_response(503, "StorageUnavailable", f"the request could not be recorded ({e}); try again")
    except StartError as e:
        code = {WorkKind.RECONCILE: "ReconcileNotStarted", WorkKind.VERIFY: "VerifyNotStarted"}.get(
            kind, "RotationNotStarted"
        )
        return error_response(503, code, f"{e}; the request is recorded and waits, try again to start it")
    return client.create_check_status_response(req, instance_id)


@bp.function_name(STATUS_FUNCTION)
@bp.route(route="status/{instanceId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The status of one orchestration (a reconcile, verification or key rotation)."""
    instance_id = req.route_params.get("instanceId", "")
    status = await client.get_status(instance_id)
    if status is None or status.runtime_status is None:
        return error_response(404, "InstanceNotFound", f"no orchestration with instance id {instance_id!r}")
    return func.HttpResponse(json.dumps(status.to_json(), default=str), status_code=200, mimetype="application/json")
