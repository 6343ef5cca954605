"""The OpenAPI 3.1 document of the HTTP API, served at `GET /api/openapi.json`.

Built from the same limits the validation uses. `tests/unit/test_openapi.py` holds it to the app:
every registered HTTP function has its path and methods here (and nothing else is here), each
operation's `operationId` is its function's name, and the document passes openapi-spec-validator;
the integration tests check the answers against the schemas.
"""

from __future__ import annotations

from typing import Any

from shared.evidence.compliance import QUERY_PARAMETERS
from shared.policy.plan import Status
from shared.triggers.http_routes import (
    COMPLIANCE_FUNCTION,
    DOCTOR_FUNCTION,
    ENDPOINTS,
    EXEMPTIONS_FUNCTION,
    OPENAPI_FUNCTION,
    RECONCILE_FUNCTION,
    ROTATE_FUNCTION,
    STATUS_FUNCTION,
    VERIFY_FUNCTION,
)
from shared.triggers.http_validation import (
    FUNCTION_KEY_CALLER,
    MAX_BODY_BYTES,
    MAX_INSTANCE_ID_CHARS,
    RETRY_AFTER_SECONDS,
)
from shared.triggers.openapi_schemas import (
    CLUSTER_ID,
    json_body,
    json_content,
    reason_schema,
    response_ref,
    schema_ref,
    schemas,
)

VERSION = "0.1.0"


RETRY_AFTER = {"description": "seconds to wait before asking again", "schema": {"type": "integer", "minimum": 0}}
WORK_ERRORS = {
    "400": response_ref("BadRequest"),
    "401": response_ref("Unauthorized"),
    "403": response_ref("OutOfScope"),
    "413": response_ref("TooLarge"),
    "415": response_ref("NotJson"),
    "500": response_ref("InternalError"),
    "503": response_ref("Unavailable"),
}
ACCEPTED = {
    "description": "Accepted: the cluster's worker has the request (started, or already running and joined). "
    "`Location` is the Durable status URL of that worker; the same instance id answers every request for the "
    "cluster while its worker runs.",
    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}, "Retry-After": RETRY_AFTER},
    "content": {"application/json": {"schema": schema_ref("StatusLinks")}},
}


def _work(summary: str, schema: str) -> dict[str, Any]:
    return {"summary": summary, "requestBody": json_body(schema), "responses": {"202": ACCEPTED, **WORK_ERRORS}}


def _operations() -> dict[str, dict[str, Any]]:
    """Each HTTP function's operation, by function name (its `operationId`)."""
    verify = _work(
        "Verify sshd on the sampled nodes of a cluster (or one pool); without `cluster`, of every cluster in scope",
        "VerifyRequest",
    )
    verify["responses"]["202"] = {
        **ACCEPTED,
        "content": {
            "application/json": {"schema": {"oneOf": [schema_ref("StatusLinks"), schema_ref("FleetAccepted")]}}
        },
        "description": ACCEPTED["description"] + " Without `cluster`: one entry per cluster asked, no `Location`.",
    }
    return {
        RECONCILE_FUNCTION: _work(
            "Reconcile a cluster (or one pool) to the mode its policy asks for", "ReconcileRequest"
        ),
        VERIFY_FUNCTION: verify,
        ROTATE_FUNCTION: _work("Put a new node SSH key on a cluster", "RotateKeysRequest"),
        STATUS_FUNCTION: {
            "summary": "An orchestration's status and output, with the pool and step its work is at",
            "parameters": [
                {
                    "name": "instanceId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "maxLength": MAX_INSTANCE_ID_CHARS},
                }
            ],
            "responses": {
                "200": json_content(schema_ref("InstanceStatus"), "The instance's status"),
                "400": response_ref("BadRequest"),
                "401": response_ref("Unauthorized"),
                "404": response_ref("NotFound"),
                "500": response_ref("InternalError"),
                "503": response_ref("Unavailable"),
            },
        },
        COMPLIANCE_FUNCTION: {
            "summary": "The compliance report from the tables, per pool, paged",
            "parameters": [_query(name) for name in QUERY_PARAMETERS],
            "responses": {
                "200": json_content(schema_ref("ComplianceReport"), "One page of the report"),
                "400": response_ref("BadRequest"),
                "401": response_ref("Unauthorized"),
                "403": response_ref("OutOfScope"),
                "500": response_ref("InternalError"),
                "503": response_ref("Unavailable"),
            },
        },
        DOCTOR_FUNCTION: {
            "summary": "Check the deployment before trusting it (read-only): permissions, features, delivery, services",
            "responses": {
                "200": json_content(schema_ref("DoctorReport"), "Every check, ok, warn or fail, with its fix"),
                "401": response_ref("Unauthorized"),
                "500": response_ref("InternalError"),
                "503": response_ref("Unavailable"),
            },
        },
        OPENAPI_FUNCTION: {
            "summary": "This document",
            "responses": {
                "200": json_content({"type": "object"}, "The OpenAPI 3.1 document"),
                "401": response_ref("Unauthorized"),
            },
        },
    }


def operation_id(name: str, method: str) -> str:
    """A function's name; a function serving several methods gives each its own `<name>_<method>`
    (an operation id names one operation in the document)."""
    methods = ENDPOINTS[name].methods if name in ENDPOINTS else (method,)
    return name if len(methods) == 1 else f"{name}_{method.lower()}"


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    per_method = _per_method_operations()
    for name, operation in [*_operations().items(), *per_method.items()]:
        endpoint = ENDPOINTS[name]
        for method in endpoint.methods:
            chosen = operation[method] if name in per_method else operation
            paths.setdefault(endpoint.path, {})[method.lower()] = {"operationId": operation_id(name, method), **chosen}
    return paths


def _per_method_operations() -> dict[str, dict[str, Any]]:
    """The operations of functions serving several methods: by function name, then method."""
    error = schema_ref("Error")
    common = {
        "401": response_ref("Unauthorized"),
        "500": response_ref("InternalError"),
        "503": response_ref("Unavailable"),
    }
    checked = {"400": response_ref("BadRequest"), "403": response_ref("OutOfScope"), **common}
    pool_id = {"type": "string", "description": "an AKS agent-pool resource id"}
    return {
        EXEMPTIONS_FUNCTION: {
            "POST": {
                "summary": "Exempt a pool until a deadline: it keeps its SSH mode, or is given `mode`",
                "requestBody": json_body("ExemptionRequest"),
                "responses": {
                    "201": json_content(
                        schema_ref("ExemptionGranted"), "Granted; with `mode`, the pool's reconcile is requested"
                    ),
                    "200": json_content(
                        schema_ref("ExemptionGranted"), "The pool's exemption changed, or was asked again as it is"
                    ),
                    **checked,
                    "413": response_ref("TooLarge"),
                    "415": response_ref("NotJson"),
                },
            },
            "GET": {
                "summary": "The exemptions in force (an expired one is never listed nor honoured)",
                "parameters": [_query("cluster")],
                "responses": {"200": json_content(schema_ref("ExemptionList"), "The exemptions in force"), **checked},
            },
            "DELETE": {
                "summary": "End a pool's exemption now; its reconcile back to the policy is requested",
                "parameters": [
                    {"name": "pool", "in": "query", "required": True, "schema": pool_id},
                    {"name": "reason", "in": "query", "required": True, "schema": reason_schema()},
                ],
                "responses": {
                    "200": json_content(schema_ref("ExemptionRemoved"), "Removed"),
                    "404": json_content(error, "The pool has no exemption in force (code ExemptionNotFound)"),
                    **checked,
                },
            },
        }
    }


def _query(name: str) -> dict[str, Any]:
    schemas = {
        "subscription": {"type": "string", "format": "uuid", "description": "a subscription in scope"},
        "cluster": {"type": "string", "description": "a managed-cluster resource id", "examples": [CLUSTER_ID]},
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "continuationToken": {"type": "string", "description": "from the previous page, with the same filters"},
    }
    return {"name": name, "in": "query", "required": False, "schema": schemas[name]}


def _responses() -> dict[str, Any]:
    error = schema_ref("Error")
    return {
        "BadRequest": json_content(error, "The request is malformed: its body, a field, a name or a parameter"),
        "Unauthorized": {"description": "No or a wrong function key (the Functions host answers, with no body)"},
        "OutOfScope": json_content(error, "The subscription is not in WARDEN_SUBSCRIPTIONS (code OutOfScope)"),
        "NotFound": json_content(error, "No orchestration with this instance id (code InstanceNotFound)"),
        "TooLarge": json_content(error, f"The body is over {MAX_BODY_BYTES} bytes (code BodyTooLarge)"),
        "NotJson": json_content(error, "A body whose Content-Type is not application/json (code UnsupportedMediaType)"),
        "InternalError": json_content(error, "An unexpected failure (code InternalError); the logs have the details"),
        "Unavailable": json_content(
            error,
            "Table Storage or the task hub is out of reach; ask again after Retry-After seconds. "
            "A request that was recorded waits and is not lost.",
            headers={"Retry-After": {**RETRY_AFTER, "example": RETRY_AFTER_SECONDS}},
        ),
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AKS SSH Warden",
            "version": VERSION,
            "description": (
                "Operators' API of the AKS SSH Warden. Every route needs a function key (`x-functions-key` header "
                "or `code` query parameter). Bodies are JSON objects with known fields only; every error is "
                '`{"error": {"code", "message"}}`. A method a route does not serve is a 405 with `Allow`. '
                "Accepted requests are recorded in the audit trail with their reason and caller: the principal "
                "App Service authentication passes in (`X-MS-CLIENT-PRINCIPAL-NAME`/`-ID`), else "
                f"'{FUNCTION_KEY_CALLER}'."
            ),
        },
        "servers": [
            {"url": "https://{app}.azurewebsites.net/api", "variables": {"app": {"default": "func-aks-ssh-warden"}}}
        ],
        "security": [{"functionKeyHeader": []}, {"functionKeyQuery": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas(),
            "responses": _responses(),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
