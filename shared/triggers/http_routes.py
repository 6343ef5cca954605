"""The HTTP functions: their names, routes and the methods each serves (one table for the
registrations, the 405 answers and the OpenAPI document)."""

from __future__ import annotations

from dataclasses import dataclass

RECONCILE_FUNCTION = "http_reconcile"
VERIFY_FUNCTION = "http_verify"
ROTATE_FUNCTION = "http_rotate_keys"
STATUS_FUNCTION = "http_status"
COMPLIANCE_FUNCTION = "http_compliance"
OPENAPI_FUNCTION = "http_openapi"
EXEMPTIONS_FUNCTION = "http_exemptions"
DOCTOR_FUNCTION = "http_doctor"


@dataclass(frozen=True)
class Endpoint:
    route: str  # under the host's /api prefix
    methods: tuple[str, ...]  # the methods it serves; every other one is a 405

    @property
    def path(self) -> str:
        return f"/{self.route}"


ENDPOINTS = {
    RECONCILE_FUNCTION: Endpoint("reconcile", ("POST",)),
    VERIFY_FUNCTION: Endpoint("verify", ("POST",)),
    ROTATE_FUNCTION: Endpoint("rotate-keys", ("POST",)),
    STATUS_FUNCTION: Endpoint("status/{instanceId}", ("GET",)),
    COMPLIANCE_FUNCTION: Endpoint("compliance", ("GET",)),
    DOCTOR_FUNCTION: Endpoint("doctor", ("GET",)),
    OPENAPI_FUNCTION: Endpoint("openapi.json", ("GET",)),
    # Pool ids hold slashes: they go in the body (POST) or the query (GET, DELETE), not the path.
    EXEMPTIONS_FUNCTION: Endpoint("exemptions", ("GET", "POST", "DELETE")),
}
# Every route is registered for all of these, so a wrong method reaches the function and gets
# a 405 with `Allow` (the host answers a method it does not route to the function itself).
ROUTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
