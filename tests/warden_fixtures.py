"""The whole warden on a local Azure, for the integration and reliability tiers (a plugin of
tests/conftest.py).

`warden(policy=..., mode=..., store_options=..., app=...)` builds one: settings pointing at the ARM emulator and
Azurite (tables of its own), the function app (`function_app.app` unless `app` is given) run by `LocalFunctions`
on a virtual clock. Everything is closed and its tables dropped after the test.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.core.models import ClusterRef
from shared.local.durable_host import HostEvent, VirtualClock
from shared.local.functions_host import LocalFunctions
from shared.orchestration import runtime
from tests.emulator_fixtures import SUB_A

FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday
DEV = ClusterRef(SUB_A, "rg-dev-weu", "aks-dev-weu")
PROD = ClusterRef(SUB_A, "rg-prod-weu", "aks-prod-weu")
POOL_WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"


def arm_event(
    resource_id: str, operation: str = POOL_WRITE, *, event_id: str | None = None, caller_appid: str = ""
) -> dict:
    """The real ResourceWriteSuccess sample, pointed at an AKS resource."""
    event = json.loads((FIXTURES / "eventgrid_egschema_resource_write_success.json").read_text(encoding="utf-8"))
    subscription = resource_id.split("/")[2]
    event.update(subject=resource_id, id=event_id or str(uuid.uuid4()), topic=f"/subscriptions/{subscription}")
    data = event["data"]
    data.update(
        resourceUri=resource_id,
        operationName=operation,
        subscriptionId=subscription,
        resourceProvider="Microsoft.ContainerService",
    )
    data["authorization"].update(scope=resource_id, action=operation)
    if caller_appid:
        data["claims"]["appid"] = caller_appid
    return event


def cloud_event(resource_id: str, operation: str = POOL_WRITE) -> dict:
    """The real CloudEvents 1.0 ResourceWriteSuccess sample, pointed at an AKS resource."""
    event = json.loads((FIXTURES / "eventgrid_cloudevents_resource_write_success.json").read_text(encoding="utf-8"))
    subscription = resource_id.split("/")[2]
    event.update(subject=resource_id, source=f"/subscriptions/{subscription}", id=str(uuid.uuid4()))
    event["data"].update(resourceUri=resource_id, operationName=operation, subscriptionId=subscription)
    return event


def is_run_command(path: str) -> bool:
    return path.lower().endswith("/runcommand")


def set_cli_env(monkeypatch, emulator, tables: str, **overrides: str) -> None:
    """The CLI's environment on the local Azure: SUB_A in scope, all pools Disabled, enforce
    mode, 1 s polls; `overrides` replace any of them."""
    values = {
        "WARDEN_SUBSCRIPTIONS": SUB_A,
        "WARDEN_POLICY": '{"default": "Disabled"}',
        "WARDEN_MODE": "enforce",
        "AZURE_RESOURCE_MANAGER_ENDPOINT": emulator.base_url,
        "WARDEN_TABLES": tables,
        "WARDEN_POLL_SECONDS": "1",
        **overrides,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


class Warden:
    def __init__(
        self,
        emulator,
        tables: str,
        policy: dict,
        mode: str,
        extra: dict[str, str],
        store_options: dict | None = None,
        app: Any = None,
    ):
        self.emulator = emulator
        self.settings = Settings.from_env(
            {
                "WARDEN_SUBSCRIPTIONS": SUB_A,
                "WARDEN_POLICY": json.dumps(policy),
                "WARDEN_MODE": mode,
                "AZURE_RESOURCE_MANAGER_ENDPOINT": emulator.base_url,
                "WARDEN_TABLES": tables,
                "WARDEN_POLL_SECONDS": "10",
                **extra,
            }
        )
        self.runtime = runtime.build(
            self.settings, table_prefix=f"w{uuid.uuid4().hex[:10]}", retry_total=0, **(store_options or {})
        )
        runtime.install(self.runtime)
        self.clock = VirtualClock(T0)
        self.progress: list[HostEvent] = []
        self.on_progress: Callable[[HostEvent], None] = lambda _: None
        self.functions = LocalFunctions(app, clock=self.clock, on_progress=self._progress).__enter__()

    def _progress(self, event: HostEvent) -> None:
        self.progress.append(event)
        self.on_progress(event)

    def close(self) -> None:
        if self.functions is None:
            return
        self.functions.__exit__(None, None, None)
        self.functions = None
        self.runtime.store.delete_tables()
        runtime.reset()

    def deliver(self, *events: dict) -> None:
        self.functions.deliver_events([copy.deepcopy(e) for e in events])
        self.functions.run()

    def writes(self) -> list[tuple[str, str]]:
        """(method, last path segments) of every ARM write to AKS, in order (run-commands,
        which only read a node's state, are `run_commands()`)."""
        return [
            (r.method, "/".join(r.path.split("/")[-2:]))
            for r in self.emulator.requests
            if r.method != "GET" and not is_run_command(r.path)
        ]

    def run_commands(self) -> list[str]:
        """The VMSS instance ids run-commands went to, in order."""
        return [r.path.split("/")[-2] for r in self.emulator.requests if r.method == "POST" and is_run_command(r.path)]

    def reads(self) -> int:
        return sum(1 for r in self.emulator.requests if r.method == "GET")

    def audit(self, cluster: ClusterRef = DEV) -> list[Any]:
        return self.runtime.store.list_audit(cluster.key)

    def steps(self, cluster: ClusterRef = DEV, pool: str | None = None) -> list[tuple[str, str]]:
        return [(r.step, r.outcome.value) for r in self.audit(cluster) if pool is None or r.pool == pool]

    def pool_state(self, cluster: ClusterRef, pool: str):
        return self.runtime.store.get_pool_state(cluster.key, pool)

    def activity_times(self, activity: str) -> list[datetime]:
        return [e.at for e in self.progress if e.kind == "activity" and e.activity == activity]


@pytest.fixture
def warden(azurite: str, arm_emulator) -> Iterator[Callable[..., Warden]]:
    made: list[Warden] = []

    def make(
        policy: dict | None = None,
        mode: str = "enforce",
        emulator=None,
        store_options: dict | None = None,
        app: Any = None,
        **extra: str,
    ) -> Warden:
        policy = policy or {"default": "Disabled"}
        made.append(Warden(emulator or arm_emulator, azurite, policy, mode, extra, store_options, app))
        return made[-1]

    try:
        yield make
    finally:
        for w in made:
            w.close()
