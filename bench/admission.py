"""Event admission: what the Event Grid trigger spends on an event before any I/O.

A subscription's system topic delivers every successful ARM write, action and delete in the
subscription; very few are about AKS pools. `MIX` is one such stretch of 20 events (Event Grid
schema, as the trigger hands them over), each built from a real sample in tests/fixtures:
- 1 in scope: the ResourceWriteSuccess sample pointed at an AKS agent pool (kept: a `Hint`);
- 10 ResourceWriteSuccess of other resource types (the same sample, its provider and type changed);
- 1 ResourceWriteSuccess of an AKS maintenance configuration (an AKS write the warden ignores);
- 5 ResourceActionSuccess: the action sample's `listKeys` data in the Event Grid envelope, on
  storage, Event Hubs and Service Bus, and AKS `listClusterUserCredential` (what `az aks
  get-credentials` does) and `runCommand` (dropped: neither can change SSH access);
- 3 ResourceDeleteSuccess (the delete sample, with its `httpRequest`).

Per pass over the mix: `json.loads` of every event's text alone (the floor), then `json.loads`
and `classify` together, as the trigger does; the best of `ROUNDS` passes each, interleaved.
Throughput ratio = floor seconds / admission seconds (goal >= 0.5: admission at most doubles
what reading the JSON costs). The kept event alone is measured the same way, for honesty.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path

from shared.core.events import Hint, classify

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SUBSCRIPTION = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"
SUBSCRIPTIONS = frozenset({SUBSCRIPTION})
OWN = frozenset({"11111111-2222-3333-4444-555555555555"})
ROUNDS = 7
PASSES = 200  # passes over the mix per round
AKS_POOL = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dev-weu/providers/Microsoft.ContainerService"
    "/managedClusters/aks-dev-weu/agentPools/nodepool1"
)
OTHER_WRITES = (
    "Microsoft.Storage/storageAccounts/st01",
    "Microsoft.Compute/virtualMachines/vm-build-01",
    "Microsoft.Network/networkSecurityGroups/nsg-web",
    "Microsoft.Network/networkInterfaces/nic-vm-build-01",
    "Microsoft.KeyVault/vaults/kv-app",
    "Microsoft.Web/sites/app-frontend",
    "Microsoft.Insights/diagnosticSettings/diag-01",
    "Microsoft.Authorization/roleAssignments/0b6b4c4e-66f1-4e58-9b0f-1d2f5a6e7c8d",
    "Microsoft.Compute/disks/disk-vm-build-01",
    "Microsoft.Sql/servers/sql-orders",
)
ACTIONS = (
    ("Microsoft.Storage/storageAccounts/st01", "Microsoft.Storage/storageAccounts/listKeys/action"),
    (
        "Microsoft.EventHub/namespaces/ehns/AuthorizationRules/RootManageSharedAccessKey",
        "Microsoft.EventHub/namespaces/AuthorizationRules/listKeys/action",
    ),
    (
        "Microsoft.ServiceBus/namespaces/sbns/AuthorizationRules/RootManageSharedAccessKey",
        "Microsoft.ServiceBus/namespaces/AuthorizationRules/listKeys/action",
    ),
    (
        "Microsoft.ContainerService/managedClusters/aks-dev-weu",
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    ),
    (
        "Microsoft.ContainerService/managedClusters/aks-dev-weu",
        "Microsoft.ContainerService/managedClusters/runCommand/action",
    ),
)
DELETES = (
    "Microsoft.Storage/storageAccounts/st02",
    "Microsoft.Compute/virtualMachines/vm-old",
    "Microsoft.Network/publicIPAddresses/pip-old",
)


def _sample(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _resource(path: str, group: str = "rg-app") -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/{path}"


def _pointed(event: dict, resource_id: str, operation: str) -> dict:
    """`event` (a sample) about `resource_id`, with `operation` and a fresh id."""
    event = copy.deepcopy(event)
    provider = operation.split("/", 1)[0]
    event.update(subject=resource_id, id=str(uuid.uuid4()), topic=f"/subscriptions/{SUBSCRIPTION}")
    event["data"].update(
        resourceUri=resource_id, operationName=operation, resourceProvider=provider, subscriptionId=SUBSCRIPTION
    )
    event["data"]["authorization"].update(scope=resource_id, action=operation)
    return event


def _operation(path: str, verb: str) -> str:
    """`Microsoft.Compute/virtualMachines/vm1` -> `Microsoft.Compute/virtualMachines/<verb>`."""
    parts = path.split("/")
    types = [parts[0]] + [parts[i] for i in range(1, len(parts), 2)]
    return "/".join(types) + f"/{verb}"


def mix() -> list[dict]:
    """The 20 events of the module docstring, the kept one first."""
    write, delete = (
        _sample("eventgrid_egschema_resource_write_success.json"),
        _sample("eventgrid_egschema_resource_delete_success.json"),
    )
    action_cloud = _sample("eventgrid_cloudevents_resource_action_success.json")
    action = {**write, "eventType": "Microsoft.Resources.ResourceActionSuccess", "data": action_cloud["data"]}
    maintenance = "Microsoft.ContainerService/managedClusters/aks-dev-weu/maintenanceConfigurations/aksManagedNodeOSUpgradeSchedule"
    events = [_pointed(write, AKS_POOL, "Microsoft.ContainerService/managedClusters/agentPools/write")]
    events += [_pointed(write, _resource(p), _operation(p, "write")) for p in OTHER_WRITES]
    events.append(_pointed(write, _resource(maintenance, "rg-dev-weu"), _operation(maintenance, "write")))
    events += [_pointed(action, _resource(p), operation) for p, operation in ACTIONS]
    events += [_pointed(delete, _resource(p), _operation(p, "delete")) for p in DELETES]
    return events


def measure() -> dict:
    """Microseconds per event (best round) for the floor and for admission, over the mix and over
    the kept event alone; checks first that the mix is judged as documented."""
    events = mix()
    verdicts = [classify(e, SUBSCRIPTIONS, OWN) for e in events]
    kept = [isinstance(v, Hint) for v in verdicts]
    if kept != [True] + [False] * (len(events) - 1):
        raise RuntimeError(f"the admission mix is not judged as documented: {verdicts}")
    texts = [json.dumps(e) for e in events]
    mixed = _pair(texts)
    alone = _pair(texts[:1] * len(texts))
    return {
        "events": len(texts),
        "kept": sum(kept),
        "bytes_per_event": sum(len(t) for t in texts) / len(texts),
        "json_us": 1e6 * mixed[0],
        "admission_us": 1e6 * mixed[1],
        "kept_json_us": 1e6 * alone[0],
        "kept_admission_us": 1e6 * alone[1],
    }


def _pair(texts: list[str]) -> tuple[float, float]:
    """(json.loads, json.loads + classify) seconds per event, best of `ROUNDS` interleaved rounds."""
    floor, admission = [], []
    for _ in range(ROUNDS):
        floor.append(_time(texts, _loads))
        admission.append(_time(texts, _admit))
    return min(floor), min(admission)


def _loads(text: str) -> object:
    return json.loads(text)


def _admit(text: str) -> object:
    return classify(json.loads(text), SUBSCRIPTIONS, OWN)


def _time(texts: list[str], function) -> float:
    began = time.perf_counter()
    for _ in range(PASSES):
        for text in texts:
            function(text)
    return (time.perf_counter() - began) / (PASSES * len(texts))
