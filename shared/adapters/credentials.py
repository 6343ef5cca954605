"""Credentials for ARM, following the loopback rule.

A loopback endpoint is the local ARM emulator: it gets a fixed local token over plain
http. Any other endpoint gets `DefaultAzureCredential` (managed identity on Azure,
`az login` on a workstation) over https only — `Settings` refuses http there.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.config import http_client_options

LOCAL_TOKEN = "warden-local-emulator"


class LocalEmulatorAuthPolicy(SansIOHTTPPolicy):
    """Adds the fixed local token; used only for the loopback emulator (no TLS there)."""

    def on_request(self, request: PipelineRequest) -> None:
        request.http_request.headers["Authorization"] = f"Bearer {LOCAL_TOKEN}"


def arm_client_options(endpoint: str, *, local: bool) -> dict[str, Any]:
    """Keyword arguments for a management client: credential, base URL and auth policy."""
    if local:
        return {
            "credential": _NoCredential(),
            "base_url": endpoint,
            "authentication_policy": LocalEmulatorAuthPolicy(),
            **http_client_options(),
        }
    from azure.identity import DefaultAzureCredential

    return {
        "credential": DefaultAzureCredential(),
        "base_url": endpoint,
        "credential_scopes": [f"{endpoint.rstrip('/')}/.default"],
        **http_client_options(),
    }


class _NoCredential:
    """Placeholder: the management clients require a credential object, the local policy ignores it."""

    def get_token(self, *scopes: str, **kwargs: Any):  # pragma: no cover - never called with the local policy
        raise RuntimeError("the local emulator uses a fixed token, not a credential")
