"""What `doctor` reads about a subscription, as ARM answers it (shapes from the spec examples in
tests/fixtures/SOURCES.md): the caller's effective permissions at a scope
(Microsoft.Authorization/permissions), preview features (Microsoft.Features), resource providers,
and Event Grid system topics with their event subscriptions.

By default every subscription of the fleet is fully granted: the warden's role (and the linked
right to assign the clusters' identities) at the subscription, its features and providers
registered, and a system topic delivering ARM's resource writes to the event function. Tests take
any of it away (`set_permissions`, `set_feature`, `set_provider`, `remove_event_subscriptions`).
"""

from __future__ import annotations

import copy
import threading

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.state import Fleet
from shared.local.arm_emulator.wire import Request, Response, Router
from shared.preflight.permissions import ASSIGN_IDENTITY, READ_WORKSPACE_KEYS, required_actions

FEATURES = ("EntraIdSSHPreview", "DisableSSHPreview")
PROVIDERS = ("Microsoft.ContainerService", "Microsoft.Compute", "Microsoft.EventGrid")
WARDEN_RG = "rg-warden"
SITE = "func-warden"  # the event function's app, as the deployment names it
EVENT_FUNCTION = "on_arm_event"


class Governance:
    def __init__(self, fleet: Fleet):
        self._lock = threading.Lock()
        self._permissions: dict[str, list[dict]] = {}
        self._features: dict[tuple[str, str], str] = {}
        self._providers: dict[tuple[str, str], str] = {}
        self._event_subscriptions: dict[str, list[dict]] = {}
        self._subscriptions = sorted({c.subscription.lower() for c in fleet.clusters.values()})
        for subscription in self._subscriptions:
            granted = [*required_actions(key_rotation=True), ASSIGN_IDENTITY, READ_WORKSPACE_KEYS]
            self._permissions[f"/subscriptions/{subscription}"] = [_entry(granted)]
            for name in FEATURES:
                self._features[(subscription, name.lower())] = "Registered"
            for namespace in PROVIDERS:
                self._providers[(subscription, namespace.lower())] = "Registered"
            self._event_subscriptions[subscription] = [_event_subscription(subscription)]

    def register(self, router: Router) -> None:
        router.add("GET", "/subscriptions/{s}/providers/Microsoft.Authorization/permissions", self.permissions)
        router.add(
            "GET",
            "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Authorization/permissions",
            self.permissions,
        )
        router.add(
            "GET",
            "/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{kind}/{name}/providers/Microsoft.Authorization/permissions",
            self.permissions,
        )
        router.add(
            "GET", "/subscriptions/{s}/providers/Microsoft.Features/providers/{ns}/features/{name}", self.feature
        )
        router.add("GET", "/subscriptions/{s}/providers/Microsoft.EventGrid/systemTopics", self.system_topics)
        router.add(
            "GET",
            "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.EventGrid/systemTopics/{topic}/eventSubscriptions",
            self.event_subscriptions,
        )
        router.add("GET", "/subscriptions/{s}/providers/{ns}", self.provider)

    # --- what tests change ---

    def set_permissions(self, scope: str, entries: list[dict]) -> None:
        """The role assignments' permissions that reach `scope` from it (replacing what was there)."""
        with self._lock:
            self._permissions[scope.rstrip("/").lower()] = copy.deepcopy(entries)

    def set_feature(self, subscription: str, name: str, state: str) -> None:
        with self._lock:
            self._features[(subscription.lower(), name.lower())] = state

    def set_provider(self, subscription: str, namespace: str, state: str) -> None:
        with self._lock:
            self._providers[(subscription.lower(), namespace.lower())] = state

    def remove_event_subscriptions(self, subscription: str) -> None:
        with self._lock:
            self._event_subscriptions[subscription.lower()] = []

    def set_event_filter(self, subscription: str, event_filter: dict) -> None:
        """The filter of the warden's event subscription in `subscription` (replacing it)."""
        with self._lock:
            for event_subscription in self._event_subscriptions.get(subscription.lower(), []):
                event_subscription["properties"]["filter"] = copy.deepcopy(event_filter)

    # --- ARM ---

    def permissions(self, req: Request, s: str, **_: str) -> Response:
        """The entries of every scope from the subscription down to the one asked (inherited)."""
        scope = req.path.rsplit("/providers/Microsoft.Authorization/permissions", 1)[0].lower()
        with self._lock:
            entries = [e for key, found in self._permissions.items() if _within(scope, key) for e in found]
        return Response(200, {"value": copy.deepcopy(entries)})

    def feature(self, req: Request, s: str, ns: str, name: str) -> Response:
        with self._lock:
            state = self._features.get((s.lower(), name.lower()), "NotRegistered")
        return Response(
            200,
            {
                "properties": {"state": state},
                "id": f"/subscriptions/{s}/providers/Microsoft.Features/providers/{ns}/features/{name}",
                "type": "Microsoft.Features/providers/features",
                "name": f"{ns}/{name}",
            },
        )

    def provider(self, req: Request, s: str, ns: str) -> Response:
        with self._lock:
            state = self._providers.get((s.lower(), ns.lower()), "NotRegistered")
        return Response(200, {"id": f"/subscriptions/{s}/providers/{ns}", "namespace": ns, "registrationState": state})

    def system_topics(self, req: Request, s: str) -> Response:
        if s.lower() not in self._subscriptions:
            return Response(200, {"value": []})
        return Response(200, {"value": [_system_topic(s.lower())]})

    def event_subscriptions(self, req: Request, s: str, rg: str, topic: str) -> Response:
        if s.lower() not in self._subscriptions or topic.lower() != _topic_name(s.lower()):
            raise errors.resource_not_found("Microsoft.EventGrid/systemTopics", topic, rg)
        with self._lock:
            return Response(200, {"value": copy.deepcopy(self._event_subscriptions.get(s.lower(), []))})


def _entry(actions: list[str]) -> dict:
    return {"actions": actions, "notActions": [], "dataActions": [], "notDataActions": []}


def _within(scope: str, ancestor: str) -> bool:
    return scope == ancestor or scope.startswith(ancestor + "/")


def _topic_name(subscription: str) -> str:
    return f"warden-arm-events-{subscription[:8]}"


def _topic_id(subscription: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{WARDEN_RG}/providers/Microsoft.EventGrid/systemTopics/{_topic_name(subscription)}"


def _system_topic(subscription: str) -> dict:
    return {
        "properties": {
            "provisioningState": "Succeeded",
            "source": f"/subscriptions/{subscription}",
            "topicType": "Microsoft.Resources.Subscriptions",
            "metricResourceId": subscription,
        },
        "id": _topic_id(subscription),
        "name": _topic_name(subscription),
        "type": "Microsoft.EventGrid/systemTopics",
        "location": "global",
    }


def _event_subscription(subscription: str) -> dict:
    site = f"/subscriptions/{subscription}/resourceGroups/{WARDEN_RG}/providers/Microsoft.Web/sites/{SITE}"
    return {
        "properties": {
            "topic": _topic_id(subscription),
            "provisioningState": "Succeeded",
            "destination": {
                "endpointType": "AzureFunction",
                "properties": {
                    "resourceId": f"{site}/functions/{EVENT_FUNCTION}",
                    "maxEventsPerBatch": 1,
                    "preferredBatchSizeInKilobytes": 64,
                },
            },
            "filter": {  # as infra/modules/arm-event-subscription.bicep sets it
                "includedEventTypes": [
                    "Microsoft.Resources.ResourceWriteSuccess",
                    "Microsoft.Resources.ResourceActionSuccess",
                ],
                "advancedFilters": [
                    {
                        "operatorType": "StringIn",
                        "key": "data.operationName",
                        "values": [
                            "Microsoft.ContainerService/managedClusters/write",
                            "Microsoft.ContainerService/managedClusters/agentPools/write",
                        ],
                    }
                ],
            },
            "eventDeliverySchema": "EventGridSchema",
        },
        "id": f"{_topic_id(subscription)}/eventSubscriptions/aks-ssh-warden",
        "name": "aks-ssh-warden",
        "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
    }
