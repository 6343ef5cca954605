"""ARM's error responses: the `{"error": {"code", "message"}}` body and the codes real services send.

Handlers raise `ArmHttpError`; the server turns it into the response. Messages follow the wording
of the real services (quoted in the comments) so that clients parsing them see what Azure sends.
"""

from __future__ import annotations

from collections.abc import Mapping

PENDING_OPERATION_URL = "https://aka.ms/aks-pending-operation"
RESOURCE_NOT_FOUND_URL = "https://aka.ms/ARMResourceNotFoundFix"


class ArmHttpError(Exception):
    """An error answer: HTTP status, ARM error code and message, optional extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def missing_api_version() -> ArmHttpError:
    return ArmHttpError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def authentication_failed(header_present: bool) -> ArmHttpError:
    if header_present:
        code, message = (
            "AuthenticationFailedInvalidHeader",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
    else:
        code, message = "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
    challenge = 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'
    return ArmHttpError(401, code, message, {"WWW-Authenticate": challenge})


def resource_group_not_found(resource_group: str) -> ArmHttpError:
    return ArmHttpError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmHttpError:
    # ARM's own answer for a top-level resource that does not exist.
    return ArmHttpError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        f"For more details please go to {RESOURCE_NOT_FOUND_URL}",
    )


def child_not_found(message: str) -> ArmHttpError:
    """A child resource the resource provider itself does not know (agent pool, VM instance, operation)."""
    return ArmHttpError(404, "NotFound", message)


def unknown_route(path: str) -> ArmHttpError:
    return ArmHttpError(
        404, "InvalidResourceType", f"The resource type could not be found for the request path '{path}'."
    )


def method_not_allowed(method: str) -> ArmHttpError:
    return ArmHttpError(405, "HttpMethodNotAllowed", f"The requested resource does not support http method '{method}'.")


def operation_in_progress(pool: str | None, state: str) -> ArmHttpError:
    """AKS: "Operation is not allowed: Another agentpool operation (nodepool1 - Creating) is in progress, ..."."""
    what = f"Another agentpool operation ({pool} - {state})" if pool else f"Another operation ({state})"
    return ArmHttpError(
        409,
        "OperationNotAllowed",
        f"Operation is not allowed: {what} is in progress, please wait for it to finish before starting a new "
        f"operation. See {PENDING_OPERATION_URL} for more details",
    )


def cluster_stopped(cluster: str) -> ArmHttpError:
    return ArmHttpError(
        409,
        "OperationNotAllowed",
        f"Operation is not allowed: managed cluster '{cluster}' is in Provisioning State(Succeeded) and "
        "Power State(Stopped); only start and delete can be performed on a stopped cluster.",
    )


def throttled(pool: str, retry_after: int) -> ArmHttpError:
    return ArmHttpError(
        429,
        "Throttled",
        f"Too many requests to create or update agent pool '{pool}' (bucket of 20, refilled 1 per minute). "
        f"Retry after {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
    )


def precondition_failed(expected: str, actual: str) -> ArmHttpError:
    return ArmHttpError(
        412, "PreconditionFailed", f"The If-Match header {expected!r} does not match the current eTag {actual!r}."
    )


def invalid_parameter(target: str, message: str) -> ArmHttpError:
    return ArmHttpError(400, "InvalidParameter", f"The value of parameter {target} is invalid: {message}")


def run_command_conflict() -> ArmHttpError:
    # Compute's answer, verbatim, to a second run-command on a VM while one is running.
    return ArmHttpError(
        409,
        "Conflict",
        "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
    )


def vm_not_running() -> ArmHttpError:
    # Compute's answer, verbatim, to a run-command (or an extension change) on a stopped or
    # deallocated VM: "(OperationNotAllowed) The operation requires the VM to be running (or set to run)."
    return ArmHttpError(409, "OperationNotAllowed", "The operation requires the VM to be running (or set to run).")


def run_command_os_mismatch(command_os: str, target_os: str) -> ArmHttpError:
    # Compute's answer, verbatim, to RunPowerShellScript on a Linux VM (409 Conflict):
    # "Run command OS type 'Windows' does not match the target OS Linux."
    return ArmHttpError(
        409, "Conflict", f"Run command OS type '{command_os}' does not match the target OS {target_os}."
    )
