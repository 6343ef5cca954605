"""The whole warden on the local Azure, for one benchmark scenario at a time.

`local_tables()` starts Azurite once per run and always stops it. `Run` is one scenario: its
own ARM emulator (fleet and `lro_polls` of the scenario), its own tables, the function app run
by `LocalFunctions` on a virtual clock; `close()` stops and drops all of it.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from bench.fleets import SUBSCRIPTION
from shared.config import Settings
from shared.local.arm_emulator import ArmEmulator
from shared.local.azurite import start_azurite
from shared.local.durable_host import HostEvent, VirtualClock
from shared.local.durable_host.clock import Clock
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday, like the tests
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})


@contextmanager
def local_tables() -> Iterator[str]:
    """Azurite's Table service for the whole run; yields its connection string."""
    with start_azurite() as azurite:
        yield azurite.connection_string


class Run:
    """One scenario: `deliver()` events, then read the ARM requests and orchestration histories."""

    def __init__(
        self,
        tables: str,
        fleet: dict,
        *,
        lro_polls: int = 1,
        policy: dict | None = None,
        env: dict[str, str] | None = None,
        clock: Clock | None = None,
        emulator_options: dict | None = None,
        store_options: dict | None = None,
    ):
        """`env` overrides settings (e.g. WARDEN_POLL_SECONDS); `clock` is the Durable host's
        (a virtual clock from START by default); `emulator_options` and `store_options` go to
        `ArmEmulator` and `runtime.build` (e.g. a counting `transport`)."""
        self.emulator = ArmEmulator(fleet, lro_polls=lro_polls, **(emulator_options or {}))
        self.emulator.start()
        self._runtime = None
        self._functions = None
        try:
            self._open(tables, policy or {"default": "Disabled"}, env or {}, clock, store_options or {})
        except BaseException:
            self.close()
            raise

    def _open(self, tables: str, policy: dict, env: dict, clock: Clock | None, store_options: dict) -> None:
        settings = Settings.from_env(
            {
                "WARDEN_SUBSCRIPTIONS": SUBSCRIPTION,
                "WARDEN_POLICY": json.dumps(policy),
                "WARDEN_MODE": "enforce",
                "AZURE_RESOURCE_MANAGER_ENDPOINT": self.emulator.base_url,
                "WARDEN_TABLES": tables,
                "WARDEN_POLL_SECONDS": "10",
                **env,
            }
        )
        self._runtime = runtime.build(
            settings, table_prefix=f"b{uuid.uuid4().hex[:10]}", retry_total=0, **store_options
        )
        runtime.install(self._runtime)
        self.continued_as_new = 0
        self.enforcement_requests: int | None = None  # ARM requests when the last reconcile ended
        self.watchers: list[Callable[[HostEvent], None]] = []  # called with every progress notice
        self.clock = clock or VirtualClock(START)
        self._functions = LocalFunctions(clock=self.clock, on_progress=self._on_progress).__enter__()

    def _on_progress(self, event: HostEvent) -> None:
        self.continued_as_new += event.kind == "continued-as-new"
        if event.kind == "completed" and event.orchestration == names.RECONCILE_CLUSTER:
            # What the reconcile itself sent; the verification it asks for runs after it.
            self.enforcement_requests = len(self.emulator.requests)
        for watcher in self.watchers:
            watcher(event)

    @property
    def runtime(self) -> runtime.Runtime:
        return self._runtime

    @property
    def functions(self) -> LocalFunctions:
        return self._functions

    def close(self) -> None:
        try:
            if self._functions is not None:
                self._functions.__exit__(None, None, None)
            if self._runtime is not None:
                self._runtime.store.delete_tables()
                runtime.reset()
        finally:
            self.emulator.stop()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def deliver(self, *events: dict) -> float:
        """Deliver the events (one trigger call each) and run until idle; returns wall seconds."""
        copies = [copy.deepcopy(e) for e in events]
        began = time.perf_counter()
        self._functions.deliver_events(copies)
        self._functions.run()
        return time.perf_counter() - began

    def arm_counts(self) -> dict[str, int]:
        """AKS requests the reconcile sent (enforcement): reads (GET), writes, and the reads by
        what they read; and apart, every request of the verification that follows a remediation
        (its cluster and pool reads, scale sets, VMs, run-commands)."""
        served = self.emulator.requests
        until = len(served) if self.enforcement_requests is None else self.enforcement_requests
        aks = [r for r in served[:until] if "/microsoft.containerservice/" in r.path.lower()]
        kinds = Counter(read_kind(r.path) for r in aks if r.method == "GET")
        writes = sum(1 for r in aks if r.method in WRITE_METHODS)
        verify = len(served) - len(aks)
        return {
            "reads": sum(kinds.values()),
            "writes": writes,
            "verify_requests": verify,
            **{f"reads.{k}": v for k, v in sorted(kinds.items())},
        }

    def histories(self) -> dict[str, int]:
        """History events per orchestration name, summed over instances (current executions),
        plus the executions begun by continue-as-new."""
        durable = self._functions.durable
        totals: Counter[str] = Counter()
        for status in durable.statuses():
            totals[status.name] += durable.history_length(status.instance_id)
        return {
            # The worker's last execution (its earlier ones end by continue-as-new and are not kept).
            "worker": totals[names.CLUSTER_WORKER],
            "cluster": totals[names.RECONCILE_CLUSTER],
            "pools": totals[names.RECONCILE_POOL],
            "pool_instances": sum(1 for s in durable.statuses() if s.name == names.RECONCILE_POOL),
            "continued_as_new": self.continued_as_new,
        }

    def outcomes(self) -> dict[str, int]:
        """How the pool reconciles ended, e.g. {"succeeded": 10}; unfinished ones count by status."""
        ended: Counter[str] = Counter()
        for status in self._functions.durable.statuses():
            if status.name == names.RECONCILE_POOL:
                output = status.output if isinstance(status.output, dict) else {}
                ended[output.get("outcome") or str(status.runtime_status).lower()] += 1
        return dict(sorted(ended.items()))


def read_kind(path: str) -> str:
    """What a GET reads, from its path: an operation poll, a pool, the pool list, the cluster..."""
    lowered = path.lower().rstrip("/")
    if "/operations/" in lowered or "/operationresults/" in lowered:
        return "poll"
    if "/maintenanceconfigurations" in lowered:
        return "maintenance"
    if "/agentpools/" in lowered:
        return "pool"
    if lowered.endswith("/agentpools"):
        return "pool-list"
    if "/managedclusters/" in lowered:
        return "cluster"
    return "other"
