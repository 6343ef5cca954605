"""ARM JSON (as the SDK models' `as_dict()` give it, i.e. the wire format) -> plain models."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from shared.core.errors import (
    ArmError,
    ConflictError,
    NotFoundError,
    OperationFailedError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from shared.core.models import (
    Cluster,
    ClusterRef,
    Pool,
    RunCommandOutput,
    RunCommandPoll,
    SshAccess,
    Target,
    VmInstance,
)

if TYPE_CHECKING:
    from shared.adapters.lro import Polled

STDOUT_MARK, STDERR_MARK = "[stdout]\n", "\n[stderr]\n"


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
        node_provisioning_mode=(props.get("nodeProvisioningProfile") or {}).get("mode") or "Manual",
        ssh_public_keys=_ssh_keys(props.get("linuxProfile")),
        node_disruption_policy=(props.get("nodeDisruptionProfile") or {}).get("nodeDisruptionPolicy") or "Allow",
        node_resource_group_restriction=(props.get("nodeResourceGroupProfile") or {}).get("restrictionLevel")
        or "Unrestricted",
        user_assigned_identities=_identities(body),
        monitoring_workspace=_monitoring_workspace(props),
    )


def _identities(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The cluster identity's user-assigned identities: a PUT of the cluster assigns them again."""
    return tuple(str(i) for i in ((body.get("identity") or {}).get("userAssignedIdentities") or {}))


def _monitoring_workspace(props: Mapping[str, Any]) -> str:
    """The Log Analytics workspace of the monitoring add-on (`omsagent`), "" when off or none."""
    addon = next((v for k, v in (props.get("addonProfiles") or {}).items() if k.lower() == "omsagent"), None) or {}
    if not addon.get("enabled"):
        return ""
    config = addon.get("config") or {}
    return str(next((v for k, v in config.items() if k.lower() == "loganalyticsworkspaceresourceid"), "") or "")


def _ssh_keys(linux_profile: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    if not linux_profile:
        return None
    keys = ((linux_profile.get("ssh") or {}).get("publicKeys")) or []
    return tuple(str(k.get("keyData", "")).strip() for k in keys if k.get("keyData"))


def pool_from_arm(cluster: ClusterRef, body: Mapping[str, Any]) -> Pool:
    props = body.get("properties") or {}
    return Pool(
        cluster=cluster,
        name=body["name"],
        os_type=props.get("osType") or "Linux",
        # The REST API spells it osSKU; some payloads (SDK dumps, the az CLI) say osSku.
        os_sku=next((str(v) for k, v in props.items() if k.lower() == "ossku" and v), ""),
        type=props.get("type") or "VirtualMachineScaleSets",
        mode=props.get("mode") or "User",
        ssh_access=SshAccess.parse((props.get("securityProfile") or {}).get("sshAccess")),
        provisioning_state=props.get("provisioningState") or "",
        orchestrator_version=props.get("currentOrchestratorVersion") or props.get("orchestratorVersion") or "",
        node_image_version=props.get("nodeImageVersion") or "",
        power_state=(props.get("powerState") or {}).get("code") or "Running",
        etag=str(props.get("eTag") or ""),
    )


def vm_instance_from_arm(body: Mapping[str, Any]) -> VmInstance:
    """A VMSS VM (listed with `$expand=instanceView`): its instance id and the `PowerState/<state>`
    of its instance view ("" when there is none)."""
    instance_id = body.get("instanceId") or str(body.get("id") or "").rsplit("/", 1)[-1]
    statuses = ((body.get("properties") or {}).get("instanceView") or {}).get("statuses") or []
    power = next((str(s.get("code"))[len("PowerState/") :] for s in statuses if _is_power_state(s)), "")
    return VmInstance(str(instance_id), power)


def _is_power_state(status: Mapping[str, Any]) -> bool:
    return str(status.get("code") or "").lower().startswith("powerstate/")


def run_command_output_from_arm(body: Mapping[str, Any]) -> RunCommandOutput:
    """A RunCommandResult in either shape: Windows (RunCommandWindows) reports one status per
    stream, `ComponentStatus/StdOut/succeeded` and `ComponentStatus/StdErr/succeeded`; Linux
    (RunCommandLinux) one `ProvisioningState/succeeded` status whose message is
    "Enable succeeded: \\n[stdout]\\n<stdout>\\n[stderr]\\n<stderr>". A message without the
    markers is all stderr: it is not the script's output."""
    statuses = [s for s in body.get("value") or [] if isinstance(s, Mapping)]
    streams = {_stream(s): str(s.get("message") or "") for s in statuses if _stream(s)}
    if streams:
        return RunCommandOutput(streams.get("stdout", ""), streams.get("stderr", ""))
    stdout, stderr = [], []
    for status in statuses:
        message = str(status.get("message") or "")
        start = message.find(STDOUT_MARK)
        end = message.find(STDERR_MARK, start + len(STDOUT_MARK)) if start >= 0 else -1
        if end < 0:
            stderr.append(message)
            continue
        stdout.append(message[start + len(STDOUT_MARK) : end])
        stderr.append(message[end + len(STDERR_MARK) :])
    return RunCommandOutput("".join(stdout), "".join(stderr))


def _stream(status: Mapping[str, Any]) -> str | None:
    parts = str(status.get("code") or "").lower().split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "componentstatus" and parts[1] in ("stdout", "stderr") else None


def error_from_response(response: Any) -> ArmError:
    try:
        error = (response.json() or {}).get("error") or {}
    except ValueError:
        error = {}
    return classify(
        response.status_code,
        error.get("code") or f"HTTP{response.status_code}",
        error.get("message") or response.text()[:500],
        retry_after_seconds(response.headers.get("Retry-After")),
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


def retry_after_seconds(value: str | None) -> float | None:
    """ARM's `Retry-After` as seconds: a delay or an HTTP date (RFC 9110); None when absent or
    unusable (`nan`, `inf`, negative, junk). How long we really wait is capped by the caller."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def run_command_poll(polled: Polled) -> RunCommandPoll:
    """A run-command's result is the `RunCommandResult` (`value`) its `Location` answers; where
    no `Location` came with the status URL, the status body's `properties.output` holds it."""
    if polled.state.done and not polled.state.succeeded:
        raise OperationFailedError(polled.state.error_code or polled.state.status, polled.state.error_message)
    if polled.operation.kind != "done":  # running, or ended with its result still to read
        return RunCommandPoll(polled.operation, None, polled.state.retry_after)
    result = polled.result if isinstance(polled.result, dict) else {}
    if "value" not in result:
        result = (result.get("properties") or {}).get("output") or result
    return RunCommandPoll(polled.operation, run_command_output_from_arm(result), polled.state.retry_after)
