"""HTTP endpoints (function-key auth, JSON in and out, errors as {"error": {"code", "message"}})."""

from __future__ import annotations

import json

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)

STATUS_FUNCTION = "http_status"


def error_response(status: int, code: str, message: str) -> func.HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status, mimetype="application/json")


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
