"""ARM reads `doctor` makes about the deployment itself, through the ARM adapter's clients (their
credential, retries and errors): the identity's effective permissions at a scope, preview
features, resource providers, Event Grid system topics and their event subscriptions. Plain JSON
out (the doctor judges it in shared/preflight/doctor.py); the project's errors on failure."""

from __future__ import annotations

from typing import Any

from shared.adapters.arm import Arm, get_json, json_request, read_list

AUTHORIZATION_API = "2022-04-01"  # resource groups and resources, as the spec defines them
SUBSCRIPTION_PERMISSIONS_API = "2015-07-01"  # the subscription scope, as ARM's authentication article calls it
FEATURES_API = "2021-07-01"
RESOURCES_API = "2021-04-01"
EVENTGRID_API = "2022-06-15"


class ArmChecks:
    def __init__(self, arm: Arm):
        self._arm = arm

    def permissions(self, subscription: str, scope: str) -> list[dict[str, Any]]:
        """The caller's effective `{actions, notActions, ...}` at `scope` (inherited ones included)."""
        at_subscription = scope.rstrip("/").count("/") == 2  # /subscriptions/{id}
        api = SUBSCRIPTION_PERMISSIONS_API if at_subscription else AUTHORIZATION_API
        return self._list(subscription, f"{scope}/providers/Microsoft.Authorization/permissions", api)

    def feature_state(self, subscription: str, namespace: str, name: str) -> str:
        path = f"/subscriptions/{subscription}/providers/Microsoft.Features/providers/{namespace}/features/{name}"
        return str((self._get(subscription, path, FEATURES_API).get("properties") or {}).get("state") or "")

    def provider_state(self, subscription: str, namespace: str) -> str:
        path = f"/subscriptions/{subscription}/providers/{namespace}"
        return str(self._get(subscription, path, RESOURCES_API).get("registrationState") or "")

    def system_topics(self, subscription: str) -> list[dict[str, Any]]:
        path = f"/subscriptions/{subscription}/providers/Microsoft.EventGrid/systemTopics"
        return self._list(subscription, path, EVENTGRID_API)

    def event_subscriptions(self, subscription: str, topic_id: str) -> list[dict[str, Any]]:
        return self._list(subscription, f"{topic_id}/eventSubscriptions", EVENTGRID_API)

    def _list(self, subscription: str, path: str, api_version: str) -> list[dict[str, Any]]:
        return read_list(self._arm.aks(subscription), path, api_version)

    def _get(self, subscription: str, path: str, api_version: str) -> dict[str, Any]:
        return get_json(self._arm.aks(subscription), json_request(path, api_version))
