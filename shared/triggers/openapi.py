"""The OpenAPI 3.1 document of the HTTP API, served at `GET /api/openapi.json`.

Built from the same limits the validation uses. `tests/unit/test_openapi.py` holds it to the app:
every registered HTTP function has its path and methods here (and nothing else is here), each
operation's `operationId` is its function's name, and the document passes openapi-spec-validator;
the integration tests check the answers against the schemas.
"""

from __future__ import annotations

from typing import Any

from shared.core.models import SshAccess
from shared.evidence.compliance import QUERY_PARAMETERS, VERDICTS
from shared.policy.plan import Status
from shared.preflight.doctor import Level
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
    MAX_REASON_CHARS,
    RETRY_AFTER_SECONDS,
)

VERSION = "0.1.0"
RUNTIME_STATUSES = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Terminated", "Suspended")
CLUSTER_ID = (
    "/subscriptions/3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d/resourceGroups/rg-dev-weu"
    "/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu"
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


RETRY_AFTER = {"description": "seconds to wait before asking again", "schema": {"type": "integer", "minimum": 0}}
WORK_ERRORS = {
    "400": _answer("BadRequest"),
    "401": _answer("Unauthorized"),
    "403": _answer("OutOfScope"),
    "413": _answer("TooLarge"),
    "415": _answer("NotJson"),
    "500": _answer("InternalError"),
    "503": _answer("Unavailable"),
}
ACCEPTED = {
    "description": "Accepted: the cluster's worker has the request (started, or already running and joined). "
    "`Location` is the Durable status URL of that worker; the same instance id answers every request for the "
    "cluster while its worker runs.",
    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}, "Retry-After": RETRY_AFTER},
    "content": {"application/json": {"schema": _ref("StatusLinks")}},
}


def _work(summary: str, schema: str) -> dict[str, Any]:
    return {"summary": summary, "requestBody": _body(schema), "responses": {"202": ACCEPTED, **WORK_ERRORS}}


def _operations() -> dict[str, dict[str, Any]]:
    """Each HTTP function's operation, by function name (its `operationId`)."""
    verify = _work(
        "Verify sshd on the sampled nodes of a cluster (or one pool); without `cluster`, of every cluster in scope",
        "VerifyRequest",
    )
    verify["responses"]["202"] = {
        **ACCEPTED,
        "content": {"application/json": {"schema": {"oneOf": [_ref("StatusLinks"), _ref("FleetAccepted")]}}},
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
                "200": _json(_ref("InstanceStatus"), "The instance's status"),
                "400": _answer("BadRequest"),
                "401": _answer("Unauthorized"),
                "404": _answer("NotFound"),
                "500": _answer("InternalError"),
                "503": _answer("Unavailable"),
            },
        },
        COMPLIANCE_FUNCTION: {
            "summary": "The compliance report from the tables, per pool, paged",
            "parameters": [_query(name) for name in QUERY_PARAMETERS],
            "responses": {
                "200": _json(_ref("ComplianceReport"), "One page of the report"),
                "400": _answer("BadRequest"),
                "401": _answer("Unauthorized"),
                "403": _answer("OutOfScope"),
                "500": _answer("InternalError"),
                "503": _answer("Unavailable"),
            },
        },
        DOCTOR_FUNCTION: {
            "summary": "Check the deployment before trusting it (read-only): permissions, features, delivery, services",
            "responses": {
                "200": _json(_ref("DoctorReport"), "Every check, ok, warn or fail, with its fix"),
                "401": _answer("Unauthorized"),
                "500": _answer("InternalError"),
                "503": _answer("Unavailable"),
            },
        },
        OPENAPI_FUNCTION: {
            "summary": "This document",
            "responses": {
                "200": _json({"type": "object"}, "The OpenAPI 3.1 document"),
                "401": _answer("Unauthorized"),
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
    error = _ref("Error")
    common = {"401": _answer("Unauthorized"), "500": _answer("InternalError"), "503": _answer("Unavailable")}
    checked = {"400": _answer("BadRequest"), "403": _answer("OutOfScope"), **common}
    pool_id = {"type": "string", "description": "an AKS agent-pool resource id"}
    return {
        EXEMPTIONS_FUNCTION: {
            "POST": {
                "summary": "Exempt a pool until a deadline: it keeps its SSH mode, or is given `mode`",
                "requestBody": _body("ExemptionRequest"),
                "responses": {
                    "201": _json(_ref("ExemptionGranted"), "Granted; with `mode`, the pool's reconcile is requested"),
                    "200": _json(_ref("ExemptionGranted"), "The pool's exemption changed, or was asked again as it is"),
                    **checked,
                    "413": _answer("TooLarge"),
                    "415": _answer("NotJson"),
                },
            },
            "GET": {
                "summary": "The exemptions in force (an expired one is never listed nor honoured)",
                "parameters": [_query("cluster")],
                "responses": {"200": _json(_ref("ExemptionList"), "The exemptions in force"), **checked},
            },
            "DELETE": {
                "summary": "End a pool's exemption now; its reconcile back to the policy is requested",
                "parameters": [
                    {"name": "pool", "in": "query", "required": True, "schema": pool_id},
                    {"name": "reason", "in": "query", "required": True, "schema": _reason()},
                ],
                "responses": {
                    "200": _json(_ref("ExemptionRemoved"), "Removed"),
                    "404": _json(error, "The pool has no exemption in force (code ExemptionNotFound)"),
                    **checked,
                },
            },
        }
    }


def _reason() -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_REASON_CHARS,
        "description": "why, for the audit trail: one line, no control characters",
    }


def _exemption_schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    mode = {"type": ["string", "null"], "enum": [*(m.value for m in SshAccess), None]}
    exemption = {
        "clusterId": {"type": "string"},
        "poolId": {"type": "string"},
        "subscription": {"type": "string"},
        "resourceGroup": {"type": "string"},
        "cluster": {"type": "string"},
        "pool": {"type": "string"},
        "mode": {**mode, "description": "the mode the pool is given; null: it keeps its own"},
        "until": time,
        "reason": {"type": "string"},
        "actor": {"type": "string", "description": "who granted it"},
        "grantedAt": time,
    }
    instance = {"type": ["string", "null"]}
    return {
        "ExemptionRequest": _object(
            {
                "pool": {"type": "string", "description": "an AKS agent-pool resource id"},
                "until": {
                    **time,
                    "description": "when it ends, with its offset; after now, at most WARDEN_MAX_EXEMPTION away",
                },
                "reason": _reason(),
                "mode": {
                    "type": "string",
                    "enum": [m.value for m in SshAccess],
                    "description": "give the pool this mode while exempt (compared case-insensitively); "
                    "omit to keep its own",
                },
            },
            ("pool", "until", "reason"),
        ),
        "Exemption": _object(exemption, tuple(exemption)),
        "ExemptionGranted": _object(
            {
                "exemption": _ref("Exemption"),
                "change": {"type": "string", "enum": ["granted", "changed", "unchanged"]},
                "expiryInstanceId": {"type": "string", "description": "the exemption's durable timer"},
                "reconcileInstanceId": {**instance, "description": "the pool's worker, when it is given a mode"},
            },
            ("exemption", "change", "expiryInstanceId", "reconcileInstanceId"),
        ),
        "ExemptionList": _object({"exemptions": {"type": "array", "items": _ref("Exemption")}}, ("exemptions",)),
        "ExemptionRemoved": _object(
            {"exemption": _ref("Exemption"), "reconcileInstanceId": instance}, ("exemption", "reconcileInstanceId")
        ),
    }


def _query(name: str) -> dict[str, Any]:
    schemas = {
        "subscription": {"type": "string", "format": "uuid", "description": "a subscription in scope"},
        "cluster": {"type": "string", "description": "a managed-cluster resource id", "examples": [CLUSTER_ID]},
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "continuationToken": {"type": "string", "description": "from the previous page, with the same filters"},
    }
    return {"name": name, "in": "query", "required": False, "schema": schemas[name]}


def _schemas() -> dict[str, Any]:
    cluster = {"type": "string", "description": "an AKS managed-cluster resource id", "examples": [CLUSTER_ID]}
    pool = {
        "type": "string",
        "pattern": "^[A-Za-z][A-Za-z0-9]{0,11}$",
        "description": "an AKS pool name: 1-12 lowercase letters and digits, starting with a letter",
    }
    reason = {
        "type": "string",
        "maxLength": MAX_REASON_CHARS,
        "description": "why, for the audit trail: one line, no control characters",
    }
    text_list = {"type": "array", "items": {"type": "string"}}
    links = {name: {"type": "string"} for name in ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri")}
    level = {"type": "string", "enum": [level.value for level in Level]}
    check = _object(
        {name: {"type": "string"} for name in ("subscription", "check", "target", "detail", "fix")} | {"status": level},
        ("subscription", "check", "target", "status", "detail", "fix"),
    )
    return {
        "DoctorReport": _object(
            {
                "checks": {"type": "array", "items": check},
                "summary": _object(
                    {lv.value: {"type": "integer", "minimum": 0} for lv in Level}, tuple(lv.value for lv in Level)
                ),
            },
            ("checks", "summary"),
        ),
        "Error": _object(
            {"error": _object({"code": {"type": "string"}, "message": {"type": "string"}}, ("code", "message"))},
            ("error",),
        ),
        "ReconcileRequest": _object(
            {
                "cluster": {**cluster, "description": "an AKS managed-cluster or agent-pool resource id"},
                "pool": pool,
                "reason": reason,
            },
            ("cluster",),
        ),
        "VerifyRequest": _object(
            {
                "cluster": {**cluster, "description": "omit to verify every cluster in scope"},
                "pool": pool,
                "reason": reason,
            }
        ),
        "RotateKeysRequest": _object(
            {
                "cluster": cluster,
                "publicKey": {
                    "type": "string",
                    "description": "one `ssh-rsa` public key of at least 2048 bits; omit to have one generated "
                    "(its private half kept in Key Vault)",
                },
                "reason": reason,
            },
            ("cluster",),
        ),
        "StatusLinks": _object({"id": {"type": "string"}, **links}, ("id", *links), closed=False),
        "FleetAccepted": _object(
            {
                "requested": {
                    "type": "array",
                    "items": _object(
                        {"cluster": cluster, "id": {"type": "string"}, **links}, ("cluster", "id"), closed=False
                    ),
                },
                "skipped": text_list,
                "errors": text_list,
            },
            ("requested", "skipped", "errors"),
        ),
        "InstanceStatus": _object(
            {
                "instanceId": {"type": "string"},
                "name": {"type": "string"},
                "runtimeStatus": {"type": "string", "enum": list(RUNTIME_STATUSES)},
                "createdTime": {"type": ["string", "null"], "format": "date-time"},
                "lastUpdatedTime": {"type": ["string", "null"], "format": "date-time"},
                "customStatus": {},
                "output": {},
                "progress": _ref("Progress"),
            },
            ("instanceId", "name", "runtimeStatus", "progress"),
        ),
        "Progress": _object(
            {
                "work": {"type": ["string", "null"], "description": "reconcile, verify or rotate-keys"},
                "pool": {"type": ["string", "null"]},
                "step": {"type": ["string", "null"], "description": "e.g. plan, update-ssh-access, upgrade-node-image"},
                "instances": {
                    "type": "array",
                    "description": "the running chain: worker, work item, pool",
                    "items": _object(
                        {
                            "instanceId": {"type": "string"},
                            "name": {"type": "string"},
                            "runtimeStatus": {"type": "string", "enum": list(RUNTIME_STATUSES)},
                            "customStatus": {},
                        },
                        ("instanceId", "name", "runtimeStatus"),
                    ),
                },
            },
            ("work", "pool", "step", "instances"),
        ),
        "ComplianceReport": _object(
            {
                "generatedAt": {"type": "string", "format": "date-time"},
                "filters": {"type": "object"},
                "summary": {"type": "object", "required": ["pools", "byStatus", "byMode"]},
                "stigRules": {"type": "array", "items": {"type": "object"}},
                "pools": {"type": "array", "items": _ref("PoolCompliance")},
                "continuationToken": {"type": ["string", "null"], "description": "null on the last page"},
            },
            ("generatedAt", "summary", "pools", "continuationToken"),
            closed=False,
        ),
        **_exemption_schemas(),
        "PoolCompliance": _object(
            {
                "clusterId": {"type": "string"},
                "poolId": {"type": "string"},
                "subscription": {"type": "string"},
                "cluster": {"type": "string"},
                "pool": {"type": "string"},
                "status": {"type": "string", "enum": [s.value for s in Status]},
                "verdict": {"type": "string", "enum": list(VERDICTS)},
                "stig": {"type": "object"},
            },
            ("clusterId", "poolId", "subscription", "cluster", "pool", "status", "verdict", "stig"),
            closed=False,
        ),
    }


def _responses() -> dict[str, Any]:
    error = _ref("Error")
    return {
        "BadRequest": _json(error, "The request is malformed: its body, a field, a name or a parameter"),
        "Unauthorized": {"description": "No or a wrong function key (the Functions host answers, with no body)"},
        "OutOfScope": _json(error, "The subscription is not in WARDEN_SUBSCRIPTIONS (code OutOfScope)"),
        "NotFound": _json(error, "No orchestration with this instance id (code InstanceNotFound)"),
        "TooLarge": _json(error, f"The body is over {MAX_BODY_BYTES} bytes (code BodyTooLarge)"),
        "NotJson": _json(error, "A body whose Content-Type is not application/json (code UnsupportedMediaType)"),
        "InternalError": _json(error, "An unexpected failure (code InternalError); the logs have the details"),
        "Unavailable": _json(
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
            "schemas": _schemas(),
            "responses": _responses(),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
