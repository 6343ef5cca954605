"""ARM adapter: AKS and VMSS calls through the Azure management SDKs.

The only module that talks to Azure Resource Manager. It returns the project's plain
models (`shared.core.models`) and raises the project's errors (`shared.core.errors`), never SDK
types. Long-running operations are *started* here and polled separately (`poll_operation`,
`run_command_output`: one answer each, read by `lro`), so an orchestration can wait between polls
with durable timers instead of blocking an activity for a 30-minute reimage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urljoin, urlparse

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest

from shared.adapters import lro
from shared.adapters.arm_parse import (
    classify,
    cluster_from_arm,
    error_from_response,
    pool_from_arm,
    retry_after_seconds,
    run_command_poll,
    vm_instance_from_arm,
)
from shared.adapters.credentials import arm_client_options
from shared.adapters.lro import Polled
from shared.adapters.pool_bodies import PoolBodies
from shared.core.errors import (
    ArmError,
    ConflictError,
    CredentialError,
    NotFoundError,
    TransientError,
)
from shared.core.models import (
    Cluster,
    ClusterRef,
    MaintenanceConfig,
    Operation,
    OperationState,
    Pool,
    RunCommandPoll,
    SshAccess,
    VmInstance,
    Vmss,
)

T = TypeVar("T")
POOL_NAME_TAG = "aks-managed-poolName"
RUN_SHELL_SCRIPT = "RunShellScript"
RUN_POWERSHELL_SCRIPT = "RunPowerShellScript"
AKS_API_VERSION = "2026-08-01"  # azure-mgmt-containerservice 41.8.0's: the clients and the JSON reads speak it


class Arm:
    """One per ARM endpoint; clients per subscription are made on first use and reused.

    Thread-safe: `plan` reads the fleet from several threads. The SDK clients may be
    shared; only their creation is guarded, so two threads never build two clients.

    `retries`: the SDK's own retries per request. Orchestrations pass 0 because they
    retry with durable timers themselves; the read-only CLI keeps the SDK's default.
    """

    def __init__(self, endpoint: str, *, local: bool, retries: int | None = None):
        self._options = arm_client_options(endpoint, local=local)
        if retries is not None:
            self._options["retry_total"] = retries
        self._aks: dict[str, Any] = {}
        self._compute: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._bodies = PoolBodies()

    def close(self) -> None:
        with self._clients_lock:
            clients = [*self._aks.values(), *self._compute.values()]
            self._aks.clear()
            self._compute.clear()
        for client in clients:
            client.close()

    def __enter__(self) -> Arm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- AKS: reads -------------------------------------------------------------------

    def list_clusters(self, subscription: str) -> list[Cluster]:
        with translated_errors():
            return [cluster_from_arm(c.as_dict()) for c in self.aks(subscription).managed_clusters.list()]

    def get_cluster(self, ref: ClusterRef) -> Cluster:
        with translated_errors():
            return cluster_from_arm(
                self.aks(ref.subscription).managed_clusters.get(ref.resource_group, ref.name).as_dict()
            )

    def list_pools(self, ref: ClusterRef) -> list[Pool]:
        bodies = self._read_list(ref.subscription, f"{ref.id}/agentPools")
        for body in bodies:
            self._bodies.keep(ref, body)
        return [pool_from_arm(ref, body) for body in bodies]

    def get_pool(self, ref: ClusterRef, pool: str) -> Pool:
        body = self._read_pool(ref, pool)
        self._bodies.keep(ref, body)
        return pool_from_arm(ref, body)

    def list_maintenance_configurations(self, ref: ClusterRef) -> list[MaintenanceConfig]:
        with translated_errors():
            configs = self.aks(ref.subscription).maintenance_configurations.list_by_managed_cluster(
                ref.resource_group, ref.name
            )
            return [
                MaintenanceConfig(c.name, (c.as_dict().get("properties") or {}).get("maintenanceWindow") or {})
                for c in configs
            ]

    # --- AKS: writes (each starts a long-running operation) ------------------------------

    def pool_to_write(self, ref: ClusterRef, pool: str, etag: str | None = None) -> PoolWrite:
        """The pool as a whole-pool PUT will send it (a partial body resets what it omits).

        The body this adapter last read of the pool (its list or GET) serves as well as a new GET:
        the PUT goes out on its ETag, so if the pool changed since, ARM refuses it (412) and
        nothing is overwritten. Without one it GETs the pool. `etag`: the pool's ETag as its plan
        read it; a pool that has changed since is refused here as ARM would (412). The caller
        re-checks its decision on `.pool` before it writes.
        """
        read = self._bodies.take(ref, pool) or self._read_pool(ref, pool)
        if etag and (read.get("properties") or {}).get("eTag") != etag:
            raise ConflictError("PreconditionFailed", f"pool {pool} has changed since its plan", status=412)
        return PoolWrite(pool_from_arm(ref, read), read)

    def set_pool_ssh_access(self, target: PoolWrite, mode: SshAccess) -> Operation:
        """PUT the pool as read (`pool_to_write`) with only `securityProfile.sshAccess` changed,
        `If-Match` its ETag."""
        from azure.mgmt.containerservice.models import AgentPool, AgentPoolSecurityProfile

        ref = target.pool.cluster
        try:
            with translated_errors():
                body = AgentPool(target.body)  # the SDK's model of the wire JSON, as its own GET makes it
                profile = body.properties.security_profile or AgentPoolSecurityProfile()
                profile.ssh_access = mode.value
                body.properties.security_profile = profile
                return self._start(
                    self.aks(ref.subscription).agent_pools.begin_create_or_update,
                    ref.resource_group,
                    ref.name,
                    target.pool.name,
                    body,
                    etag=body.properties.e_tag,
                    match_condition=MatchConditions.IfNotModified if body.properties.e_tag else None,
                )
        finally:
            self._bodies.forget(ref, target.pool.name)  # written (or refused): what was read is not the pool any more

    def cluster_to_write(self, ref: ClusterRef) -> ClusterWrite:
        """The cluster as a whole-cluster PUT will send it (GET now); the caller re-checks its
        decision on `.cluster` before it writes."""
        with translated_errors():
            body = self.aks(ref.subscription).managed_clusters.get(ref.resource_group, ref.name)
        return ClusterWrite(cluster_from_arm(body.as_dict()), body)

    def set_cluster_ssh_key(self, target: ClusterWrite, public_key: str) -> Operation:
        """PUT the cluster as read (`cluster_to_write`) with `linuxProfile.ssh.publicKeys` replaced
        by this one key, every other property as read, `If-Match` its ETag."""
        from azure.mgmt.containerservice.models import ContainerServiceSshPublicKey

        ref, body = target.cluster.ref, target.body
        with translated_errors():
            body.linux_profile.ssh.public_keys = [ContainerServiceSshPublicKey(key_data=public_key)]
            return self._start(
                self.aks(ref.subscription).managed_clusters.begin_create_or_update,
                ref.resource_group,
                ref.name,
                body,
                etag=body.e_tag,
                match_condition=MatchConditions.IfNotModified if body.e_tag else None,
            )

    def start_node_image_upgrade(self, ref: ClusterRef, pool: str) -> Operation:
        client = self.aks(ref.subscription)
        with translated_errors():
            return self._start(client.agent_pools.begin_upgrade_node_image_version, ref.resource_group, ref.name, pool)

    def poll_operation(self, operation: Operation, subscription: str) -> Polled:
        """One poll of a started write, read as `ARMPolling` reads it (`lro`). A write's result is
        not read: an operation whose status says it succeeded is done."""
        if operation.ended:
            return lro.Polled(operation, OperationState("Succeeded"))
        return self._poll(self.aks(subscription), operation)

    # --- Compute: the pool's scale set and its nodes --------------------------------------

    def list_pool_scale_sets(self, cluster: Cluster) -> dict[str, Vmss]:
        """The cluster's node VMSS by lower-case pool name, from one list of its node resource group.
        Only those tagged `aks-managed-poolName` are AKS's; any other VMSS there is ignored."""
        ref = cluster.ref
        with translated_errors():
            scale_sets = self.compute(ref.subscription).virtual_machine_scale_sets.list(cluster.node_resource_group)
            found = {}
            for vmss in scale_sets:
                pool = (vmss.tags or {}).get(POOL_NAME_TAG, "")
                if pool:
                    found[pool.lower()] = Vmss(ref.subscription, cluster.node_resource_group, vmss.name, pool)
            return found

    def find_pool_vmss(self, cluster: Cluster, pool: str) -> Vmss | None:
        """The VMSS tagged `aks-managed-poolName=<pool>` in the node resource group, if any."""
        return self.list_pool_scale_sets(cluster).get(pool.lower())

    def list_instances(self, vmss: Vmss) -> list[VmInstance]:
        """The scale set's VMs with their power state (one list, `$expand=instanceView`)."""
        with translated_errors():
            vms = self.compute(vmss.subscription).virtual_machine_scale_set_vms.list(
                vmss.resource_group, vmss.name, expand="instanceView"
            )
            return [vm_instance_from_arm(vm.as_dict()) for vm in vms]

    def start_run_command(
        self, vmss: Vmss, instance_id: str, script: list[str], command_id: str = RUN_SHELL_SCRIPT
    ) -> RunCommandPoll:
        """Start a run-command: `RunShellScript` on Linux nodes, `RunPowerShellScript` on Windows.
        Compute answers 202 with both `Azure-AsyncOperation` and `Location`; an answer that is
        already the result (200) comes back with its output."""
        from azure.mgmt.compute.models import RunCommandInput

        client = self.compute(vmss.subscription)
        with translated_errors():
            begun = self._begin(
                client.virtual_machine_scale_set_vms.begin_run_command,
                vmss.resource_group,
                vmss.name,
                instance_id,
                RunCommandInput(command_id=command_id, script=list(script)),
            )
        return run_command_poll(begun)

    def run_command_output(self, operation: Operation, subscription: str) -> RunCommandPoll:
        """One poll of a started run-command, as `ARMPolling` polls it: the status URL until it
        says the command ended, then its result from `Location` (202 while it is not ready,
        maybe with a new `Location`). `output` is None until the result is read."""
        client = self.compute(subscription)
        polled = self._poll(client, operation)
        if polled.operation.kind == "final":  # the status says it ended: its result, at once
            polled = self._poll(client, polled.operation)
        return run_command_poll(polled)

    # --- plumbing ------------------------------------------------------------------------

    def _read(self, subscription: str, path: str) -> dict[str, Any]:
        """One AKS resource as its JSON, through the client's pipeline (its auth, retries and
        errors). Pools are read so: a fleet's scan reads hundreds of pool lists for a few fields
        of each, and the SDK's models of them (made and turned back into JSON) cost a third of
        the client's time per list. The one pool a PUT sends becomes a model there."""
        return get_json(self.aks(subscription), json_request(path, AKS_API_VERSION))

    def _read_pool(self, ref: ClusterRef, pool: str) -> dict[str, Any]:
        return self._read(ref.subscription, f"{ref.id}/agentPools/{pool}")

    def _read_list(self, subscription: str, path: str) -> list[dict[str, Any]]:
        """An AKS list's items as JSON (see `_read`), page after page (`nextLink`)."""
        return read_list(self.aks(subscription), path, AKS_API_VERSION)

    def aks(self, subscription: str):
        with self._clients_lock:  # check and create as one step: a lost race would leak a client
            if subscription not in self._aks:
                from azure.mgmt.containerservice import ContainerServiceClient

                self._aks[subscription] = ContainerServiceClient(
                    subscription_id=subscription, api_version=AKS_API_VERSION, **self._options
                )
            return self._aks[subscription]

    def compute(self, subscription: str):
        with self._clients_lock:
            if subscription not in self._compute:
                from azure.mgmt.compute import ComputeManagementClient

                self._compute[subscription] = ComputeManagementClient(subscription_id=subscription, **self._options)
            return self._compute[subscription]

    @staticmethod
    def _poll(client: Any, operation: Operation) -> Polled:
        with translated_errors():
            return lro.polled(operation, client.send_request(HttpRequest("GET", operation.url)))

    @staticmethod
    def _begin(begin: Callable[..., Any], *args: Any, **kwargs: Any) -> Polled:
        """Send the initial request of a long-running operation; its answer says where to poll."""
        responses: list[Any] = []
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        begin(*args, polling=False, raw_response_hook=lambda r: responses.append(r.http_response), **kwargs)
        answer = responses[-1]
        return lro.begun(answer.request.method, answer.request.url, answer)

    @classmethod
    def _start(cls, begin: Callable[..., Any], *args: Any, **kwargs: Any) -> Operation:
        """A write's start: where to poll it ("done" or "final" when it ended at once)."""
        return cls._begin(begin, *args, **kwargs).operation


@dataclass(frozen=True)
class PoolWrite:
    """A pool about to be written: the plain model to re-check a decision on, and the wire JSON
    the PUT sends back whole."""

    pool: Pool
    body: Any


@dataclass(frozen=True)
class ClusterWrite:
    """A cluster about to be written: the plain model, and the SDK's model the PUT sends back whole."""

    cluster: Cluster
    body: Any


def json_request(path: str, api_version: str) -> HttpRequest:
    """A GET of an ARM path, each name in it quoted as the SDK quotes it."""
    quoted = "/".join(quote(segment, safe="") for segment in path.split("/"))
    return HttpRequest("GET", quoted, params={"api-version": api_version})


def get_json(client: Any, request: HttpRequest) -> dict[str, Any]:
    """One ARM answer as JSON, through a management client's pipeline (its auth, retries and
    errors); the project's errors for an error status or an answer that is not JSON."""
    with translated_errors():
        response = client.send_request(request)
    if response.status_code >= 400:
        raise error_from_response(response)
    try:
        return response.json() or {}
    except ValueError as e:
        raise TransientError("InvalidResponse", f"ARM's answer to {request.method} {request.url} is not JSON") from e


def read_list(client: Any, path: str, api_version: str) -> list[dict[str, Any]]:
    """An ARM list's items as JSON, page after page (`nextLink`)."""
    page = get_json(client, json_request(path, api_version))
    items = list(page.get("value") or [])
    while next_link := page.get("nextLink"):
        page = get_json(client, _next_page(next_link, api_version))
        items += page.get("value") or []
    return items


def _next_page(link: str, api_version: str) -> HttpRequest:
    """A list's next page asked for as the SDK's pagers ask: the link's path, and its query as
    parameters with the client's api-version."""
    parsed = urlparse(link)
    params = {key: [quote(value) for value in values] for key, values in parse_qs(parsed.query).items()}
    return HttpRequest("GET", urljoin(link, parsed.path), params={**params, "api-version": api_version})


@contextmanager
def translated_errors() -> Iterator[None]:
    """SDK exceptions -> the project's error classes, chained for the traceback."""
    try:
        yield
    except ArmError:
        raise
    except ResourceNotFoundError as e:
        raise NotFoundError(*_code_message(e), status=404) from e
    except ClientAuthenticationError as e:
        if e.status_code is None:  # raised by the credential before any request went out
            raise CredentialError("CredentialUnavailable", " ".join(str(e.message or e).split())) from e
        raise classify(e.status_code, *_code_message(e), _retry_after(e)) from e
    except HttpResponseError as e:
        raise classify(e.status_code, *_code_message(e), _retry_after(e)) from e
    except (ServiceRequestError, ServiceResponseError) as e:
        raise TransientError("ConnectionError", str(e)) from e


def _code_message(e: HttpResponseError) -> tuple[str, str]:
    error = getattr(e, "error", None)
    code = getattr(error, "code", None) or type(e).__name__
    message = getattr(error, "message", None) or e.message or str(e)
    return str(code), str(message)


def _retry_after(e: HttpResponseError) -> float | None:
    response = getattr(e, "response", None)
    return retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
