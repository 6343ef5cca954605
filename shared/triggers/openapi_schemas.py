"""The OpenAPI document's parts: its schema builders, and the schemas of the HTTP API's bodies and
answers (`openapi` assembles the document from them and the routes)."""

from __future__ import annotations

from typing import Any

from shared.core.models import SshAccess
from shared.evidence.compliance import VERDICTS
from shared.policy.plan import Status
from shared.preflight.doctor import Level
from shared.triggers.http_validation import MAX_REASON_CHARS

RUNTIME_STATUSES = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Terminated", "Suspended")
CLUSTER_ID = (
    "/subscriptions/3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d/resourceGroups/rg-dev-weu"
    "/providers/Microsoft.ContainerService/managedClusters/aks-dev-weu"
)


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def response_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def json_content(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema_ref(schema)}}}


def object_schema(properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def reason_schema() -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_REASON_CHARS,
        "description": "why, for the audit trail: one line, no control characters",
    }


def exemption_schemas() -> dict[str, Any]:
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
        "ExemptionRequest": object_schema(
            {
                "pool": {"type": "string", "description": "an AKS agent-pool resource id"},
                "until": {
                    **time,
                    "description": "when it ends, with its offset; after now, at most WARDEN_MAX_EXEMPTION away",
                },
                "reason": reason_schema(),
                "mode": {
                    "type": "string",
                    "enum": [m.value for m in SshAccess],
                    "description": "give the pool this mode while exempt (compared case-insensitively); "
                    "omit to keep its own",
                },
            },
            ("pool", "until", "reason"),
        ),
        "Exemption": object_schema(exemption, tuple(exemption)),
        "ExemptionGranted": object_schema(
            {
                "exemption": schema_ref("Exemption"),
                "change": {"type": "string", "enum": ["granted", "changed", "unchanged"]},
                "expiryInstanceId": {"type": "string", "description": "the exemption's durable timer"},
                "reconcileInstanceId": {**instance, "description": "the pool's worker, when it is given a mode"},
            },
            ("exemption", "change", "expiryInstanceId", "reconcileInstanceId"),
        ),
        "ExemptionList": object_schema(
            {"exemptions": {"type": "array", "items": schema_ref("Exemption")}}, ("exemptions",)
        ),
        "ExemptionRemoved": object_schema(
            {"exemption": schema_ref("Exemption"), "reconcileInstanceId": instance},
            ("exemption", "reconcileInstanceId"),
        ),
    }


def schemas() -> dict[str, Any]:
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
    check = object_schema(
        {name: {"type": "string"} for name in ("subscription", "check", "target", "detail", "fix")} | {"status": level},
        ("subscription", "check", "target", "status", "detail", "fix"),
    )
    return {
        "DoctorReport": object_schema(
            {
                "checks": {"type": "array", "items": check},
                "summary": object_schema(
                    {lv.value: {"type": "integer", "minimum": 0} for lv in Level}, tuple(lv.value for lv in Level)
                ),
            },
            ("checks", "summary"),
        ),
        "Error": object_schema(
            {"error": object_schema({"code": {"type": "string"}, "message": {"type": "string"}}, ("code", "message"))},
            ("error",),
        ),
        "ReconcileRequest": object_schema(
            {
                "cluster": {**cluster, "description": "an AKS managed-cluster or agent-pool resource id"},
                "pool": pool,
                "reason": reason,
            },
            ("cluster",),
        ),
        "VerifyRequest": object_schema(
            {
                "cluster": {**cluster, "description": "omit to verify every cluster in scope"},
                "pool": pool,
                "reason": reason,
            }
        ),
        "RotateKeysRequest": object_schema(
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
        "StatusLinks": object_schema({"id": {"type": "string"}, **links}, ("id", *links), closed=False),
        "FleetAccepted": object_schema(
            {
                "requested": {
                    "type": "array",
                    "items": object_schema(
                        {"cluster": cluster, "id": {"type": "string"}, **links}, ("cluster", "id"), closed=False
                    ),
                },
                "skipped": text_list,
                "errors": text_list,
            },
            ("requested", "skipped", "errors"),
        ),
        "InstanceStatus": object_schema(
            {
                "instanceId": {"type": "string"},
                "name": {"type": "string"},
                "runtimeStatus": {"type": "string", "enum": list(RUNTIME_STATUSES)},
                "createdTime": {"type": ["string", "null"], "format": "date-time"},
                "lastUpdatedTime": {"type": ["string", "null"], "format": "date-time"},
                "customStatus": {},
                "output": {},
                "progress": schema_ref("Progress"),
            },
            ("instanceId", "name", "runtimeStatus", "progress"),
        ),
        "Progress": object_schema(
            {
                "work": {"type": ["string", "null"], "description": "reconcile, verify or rotate-keys"},
                "pool": {"type": ["string", "null"]},
                "step": {"type": ["string", "null"], "description": "e.g. plan, update-ssh-access, upgrade-node-image"},
                "instances": {
                    "type": "array",
                    "description": "the running chain: worker, work item, pool",
                    "items": object_schema(
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
        "ComplianceReport": object_schema(
            {
                "generatedAt": {"type": "string", "format": "date-time"},
                "filters": {"type": "object"},
                "summary": {"type": "object", "required": ["pools", "byStatus", "byMode"]},
                "stigRules": {"type": "array", "items": {"type": "object"}},
                "pools": {"type": "array", "items": schema_ref("PoolCompliance")},
                "continuationToken": {"type": ["string", "null"], "description": "null on the last page"},
            },
            ("generatedAt", "summary", "pools", "continuationToken"),
            closed=False,
        ),
        **exemption_schemas(),
        "PoolCompliance": object_schema(
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
