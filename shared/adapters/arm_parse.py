"""ARM JSON (as the SDK models' `as_dict()` give it, i.e. the wire format) -> plain models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import ArmError, ConflictError, NotFoundError, PermanentError, ThrottledError, TransientError
from shared.models import Cluster, ClusterRef, Operation, OperationState, Pool, SshAccess, Target


def cluster_from_arm(body: Mapping[str, Any]) -> Cluster:
    props = body.get("properties") or {}
    return Cluster(
        ref=Target.from_id(body["id"]).cluster,
        location=body.get("location") or "",
        kubernetes_version=props.get("currentKubernetesVersion") or props.get("kubernetesVersion") or "",
        sku_name=(body.get("sku") or {}).get("name") or "Base",
        power_state=(props.get("powerState") or {}).get("code") or "Running",
        provisioning_state=props.get("provisioningState") or "",
        node_resource_group=props.get("nodeResourceGroup") or "",
        tags=dict(body.get("tags") or {}),
    )


def pool_from_arm(cluster: ClusterRef, body: Mapping[str, Any]) -> Pool:
    props = body.get("properties") or {}
    return Pool(
        cluster=cluster,
        name=body["name"],
        os_type=props.get("osType") or "Linux",
        type=props.get("type") or "VirtualMachineScaleSets",
        mode=props.get("mode") or "User",
        ssh_access=SshAccess.parse((props.get("securityProfile") or {}).get("sshAccess")),
        provisioning_state=props.get("provisioningState") or "",
        orchestrator_version=props.get("currentOrchestratorVersion") or props.get("orchestratorVersion") or "",
        node_image_version=props.get("nodeImageVersion") or "",
        power_state=(props.get("powerState") or {}).get("code") or "Running",
    )


def operation_state_from_response(operation: Operation, response: Any) -> OperationState:
    """Read an `Azure-AsyncOperation` status body, or a `Location` poll (202 = still running)."""
    retry_after = _float(response.headers.get("Retry-After"))
    if response.status_code >= 400:
        raise error_from_response(response)
    if operation.kind == "location":
        return OperationState("InProgress" if response.status_code == 202 else "Succeeded", retry_after=retry_after)
    body = response.json() or {}
    error = body.get("error") or {}
    return OperationState(
        body.get("status") or "InProgress", error.get("code") or "", error.get("message") or "", retry_after
    )


def error_from_response(response: Any) -> ArmError:
    try:
        error = (response.json() or {}).get("error") or {}
    except ValueError:
        error = {}
    return classify(
        response.status_code,
        error.get("code") or f"HTTP{response.status_code}",
        error.get("message") or response.text()[:500],
        _float(response.headers.get("Retry-After")),
    )


def classify(status: int | None, code: str, message: str, retry_after: float | None = None) -> ArmError:
    """An ARM error response -> the error class that says whether to retry."""
    if status == 404:
        return NotFoundError(code, message, status=status)
    if status == 429:
        return ThrottledError(code, message, status=status, retry_after=retry_after)
    if status in (409, 412):
        return ConflictError(code, message, status=status, retry_after=retry_after)
    if status is None or status >= 500:
        return TransientError(code, message, status=status, retry_after=retry_after)
    return PermanentError(code, message, status=status)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
