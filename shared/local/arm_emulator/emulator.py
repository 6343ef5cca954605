"""`ArmEmulator`: the fleet, its AKS and Compute APIs, ARM's request checks, and the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.admin import PREFIX, admin_router
from shared.local.arm_emulator.aks import AksApi
from shared.local.arm_emulator.compute import ComputeApi, RunCommandRecord, vmss_name
from shared.local.arm_emulator.faults import Faults
from shared.local.arm_emulator.governance import Governance
from shared.local.arm_emulator.operations import LroShapes, Operations
from shared.local.arm_emulator.server import EmulatorServer
from shared.local.arm_emulator.state import (
    POWER_STATES,
    PUBKEY_VALUES,
    Cluster,
    Fleet,
    Node,
    Pool,
    check_choice,
    cluster_view,
    os_family,
    pool_view,
    reimage,
    set_cluster_power,
    ssh_mode,
)
from shared.local.arm_emulator.throttle import Throttle
from shared.local.arm_emulator.wire import Request, Response, Router

MAX_LATENCY_SECONDS = 60.0  # a longer wait is a mistake, and would outlast every client timeout
MAX_RUN_COMMAND_SECONDS = 5400.0  # run-command's own timeout: 90 minutes


class RecordedRequest(NamedTuple):
    method: str
    path: str
    query: dict


class ArmEmulator:
    """A loopback ARM for a fleet document (see the package docstring for its format).

    `lro_polls`: status reads an operation stays InProgress; `retry_after`: the Retry-After
    seconds on long-running answers (None: none, as AKS and Compute answer; 0, the default, has
    the local stack's clients poll at once); `clock`: monotonic seconds for the PUT agentPool throttle;
    `latency_seconds`: how long every ARM request waits before it is handled, as if ARM were
    across a network (admin requests do not wait). Requests wait side by side, each on its
    own server thread, so concurrent clients see the latency once, not queued. `sleep`:
    how it waits (tests inject their own). `run_command_seconds`: how long (on `clock`) a
    run-command stays InProgress at least, besides its `lro_polls` reads (real ones take ~20 s).
    """

    def __init__(
        self,
        fleet: dict,
        *,
        lro_polls: int = 1,
        retry_after: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
        latency_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        run_command_seconds: float = 0.0,
    ):
        self.latency_seconds = latency_seconds
        self._sleep = sleep
        self.fleet = Fleet(fleet)
        self.faults = Faults()
        self.operations = Operations(self.fleet.lock, lro_polls, clock)
        self.lro_shapes = LroShapes()
        self._router = Router()
        self.aks = AksApi(self.fleet, self.operations, self.faults, Throttle(clock), retry_after, self.lro_shapes)
        self.aks.register(self._router)
        self._compute = ComputeApi(self.fleet, self.operations, self.faults, retry_after, clock, self.lro_shapes)
        self._compute.register(self._router)
        self.governance = Governance(self.fleet)  # what `doctor` reads: permissions, features, providers, topics
        self.governance.register(self._router)
        self.run_command_seconds = run_command_seconds
        self._admin = admin_router(self)
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._server: EmulatorServer | None = None
        self.base_url: str | None = None

    # --- lifecycle ---

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:`port` (0: a free port) in a daemon thread; returns the base URL."""
        if self._server is not None:
            raise RuntimeError(f"the ARM emulator is already serving at {self.base_url}")
        self._server = EmulatorServer(port, self.handle)
        self._server.start()
        self.base_url = self._server.base_url
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> ArmEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- requests ---

    def handle(self, request: Request) -> Response:
        """One request, ARM's way: api-version, then the bearer token, then faults, then the API."""
        try:
            if request.path.lower().startswith(PREFIX + "/"):
                return self._admin.dispatch(request)
            self._record(request)
            if self._latency:
                self._sleep(self._latency)  # outside every lock, so waits overlap
            check_api_version(request)
            check_bearer(request)
            fault = self.faults.take_request_fault(request.method, request.path)
            if fault is not None:
                raise fault
            return self._router.dispatch(request)
        except errors.ArmHttpError as error:
            return Response(error.status, error.body(), error.headers)

    @property
    def latency_seconds(self) -> float:
        return self._latency

    @latency_seconds.setter
    def latency_seconds(self, seconds: float) -> None:
        if not 0 <= float(seconds) <= MAX_LATENCY_SECONDS:
            raise ValueError(f"latency_seconds must be between 0 and {MAX_LATENCY_SECONDS:g}, got {seconds!r}")
        self._latency = float(seconds)

    @property
    def retry_after(self) -> int | None:
        """The Retry-After of long-running answers (None: none, as AKS and Compute answer)."""
        return self.aks.retry_after

    @retry_after.setter
    def retry_after(self, seconds: int | None) -> None:
        self.aks.retry_after = self._compute.retry_after = seconds

    @property
    def run_command_seconds(self) -> float:
        return self._compute.run_command_seconds

    @run_command_seconds.setter
    def run_command_seconds(self, seconds: float) -> None:
        if not 0 <= float(seconds) <= MAX_RUN_COMMAND_SECONDS:
            raise ValueError(f"run_command_seconds must be between 0 and {MAX_RUN_COMMAND_SECONDS:g}, got {seconds!r}")
        self._compute.run_command_seconds = float(seconds)

    @property
    def run_command_log(self) -> list[RunCommandRecord]:
        """Every run-command Compute accepted, in start order: (start, end, subscription, vmss,
        instance), times on the emulator's clock, end None while it runs. Refused ones (409) are
        not in it."""
        with self.fleet.lock:
            return list(self._compute.log)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every ARM request served so far (admin requests excluded), oldest first."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def _record(self, request: Request) -> None:
        with self._requests_lock:
            self._requests.append(RecordedRequest(request.method, request.path, dict(request.query)))

    # --- state, for tests and the admin API (ids in any casing) ---

    def cluster_body(self, cluster_id: str) -> dict:
        with self.fleet.lock:
            return cluster_view(self.fleet.by_id(cluster_id)[0])

    def pool_body(self, pool_id: str) -> dict:
        with self.fleet.lock:
            return pool_view(self._pool(pool_id)[1])

    def pool_ids(self) -> list[str]:
        with self.fleet.lock:
            return [p.body["id"] for c in self.fleet.clusters.values() for p in c.pools.values()]

    def nodes(self, pool_id: str) -> list[dict]:
        """The pool's nodes: instanceId, VM name, `os`, sshd `active`/`enabled` as systemctl prints them
        for the unit that runs, the `mode` it was imaged with, `pubkey`, `powerState`."""
        with self.fleet.lock:
            cluster, pool = self._pool(pool_id)
            prefix = vmss_name(cluster, pool)
            return [{**node.as_dict(f"{prefix}_{node.instance_id}"), "os": os_family(pool)} for node in pool.nodes]

    def set_node_disruption_policy(self, cluster_id: str, policy: str) -> None:
        """The cluster's `nodeDisruptionProfile.nodeDisruptionPolicy` (Allow, AllowDuringMaintenanceWindow, Block)."""
        with self.fleet.lock:
            cluster = self.fleet.by_id(cluster_id)[0]
            cluster.props["nodeDisruptionProfile"] = {"nodeDisruptionPolicy": policy}

    def run_node_os_window(self, cluster_id: str) -> list[str]:
        """The cluster's node-OS maintenance window opens: under AllowDuringMaintenanceWindow,
        AKS reimages every pool whose nodes run another sshAccess than the pool's. Returns them."""
        with self.fleet.lock:
            cluster = self.fleet.by_id(cluster_id)[0]
            stale = [p for p in cluster.pools.values() if any(n.mode != ssh_mode(p.body) for n in p.nodes)]
            for pool in stale:
                reimage(pool)
            return [p.body["name"] for p in stale]

    def sshd_states(self, pool_id: str) -> set[tuple[str, str]]:
        """The distinct (active, enabled) pairs on the pool's nodes, e.g. {("inactive", "disabled")}."""
        return {(n["active"], n["enabled"]) for n in self.nodes(pool_id)}

    def delete_pool(self, pool_id: str) -> None:
        """Remove a pool at once, as if someone else deleted it."""
        with self.fleet.lock:
            cluster, pool = self._pool(pool_id)
            cluster.pools.pop(pool.name.lower())

    def set_provisioning_state(self, resource_id: str, state: str) -> None:
        """Set a cluster's or pool's provisioningState; a non-terminal one blocks writes on the cluster."""
        with self.fleet.lock:
            cluster, pool = self.fleet.by_id(resource_id)
            (pool or cluster).props["provisioningState"] = state

    def set_power_state(self, cluster_id: str, code: str) -> None:
        """A cluster's (and its pools') power state, `Running` or `Stopped` (its VMs deallocated)."""
        with self.fleet.lock:
            set_cluster_power(self.fleet.by_id(cluster_id)[0], code)

    def set_node_sshd(
        self,
        pool_id: str,
        instance_id: str | None = None,
        *,
        active: str | None = None,
        enabled: str | None = None,
        pubkey: str | None = None,
    ) -> None:
        """Change sshd on a node (all the pool's nodes when `instance_id` is None) behind AKS's back,
        e.g. SSH back on after an update: `active`/`enabled` as systemctl prints them for the unit
        that runs, `pubkey` the effective pubkeyauthentication ("yes"/"no"). A reimage undoes it."""
        for name, value in (("active", active), ("enabled", enabled)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a systemctl state such as 'active' or 'enabled', got {value!r}")
        pubkey = check_choice("pubkey", pubkey, PUBKEY_VALUES) if pubkey is not None else None
        with self.fleet.lock:
            for node in self._nodes(pool_id, instance_id):
                node.active = active if active is not None else node.active
                node.enabled = enabled if enabled is not None else node.enabled
                node.pubkey = pubkey if pubkey is not None else node.pubkey

    def set_node_power_state(self, pool_id: str, instance_id: str | None, state: str) -> None:
        """A VM's power state as its instance view shows it (`deallocated`, `running`, ...)."""
        state = check_choice("power state", state, POWER_STATES)
        with self.fleet.lock:
            for node in self._nodes(pool_id, instance_id):
                node.power_state = state

    def override_node_output(self, pool_id: str, instance_id: str | None, stdout: str | None) -> None:
        """Every later run-command on the node prints `stdout` (garbled, cut, anything) instead of the
        script's; None restores the truth. A reimage restores it too."""
        if stdout is not None and not isinstance(stdout, str):
            raise ValueError(f"stdout must be text or None, got {type(stdout).__name__}")
        with self.fleet.lock:
            for node in self._nodes(pool_id, instance_id):
                node.stdout_override = stdout

    def _nodes(self, pool_id: str, instance_id: str | None) -> list[Node]:
        pool = self._pool(pool_id)[1]
        if instance_id is None:
            return list(pool.nodes)
        found = [n for n in pool.nodes if n.instance_id == str(instance_id)]
        if not found:
            known = ", ".join(n.instance_id for n in pool.nodes) or "none"
            raise ValueError(f"pool {pool.name!r} has no node with instance id {instance_id!r}; it has {known}")
        return found

    def _pool(self, pool_id: str) -> tuple[Cluster, Pool]:
        cluster, pool = self.fleet.by_id(pool_id)
        if pool is None:
            raise ValueError(f"{pool_id!r} is a cluster id; expected an agent-pool id (.../agentPools/NAME)")
        return cluster, pool


def check_api_version(request: Request) -> None:
    if not request.api_version:
        raise errors.missing_api_version()


def check_bearer(request: Request) -> None:
    header = request.headers.get("Authorization")
    if header is None:
        raise errors.authentication_failed(header_present=False)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.authentication_failed(header_present=True)
