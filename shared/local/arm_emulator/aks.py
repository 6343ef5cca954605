"""Microsoft.ContainerService: managed clusters, agent pools, maintenance configurations and the
AKS operation-status URLs: routing, locking and long-running answers. The rules themselves
(what a write may do, and what its completion does to the nodes) are in `aks_rules`.
"""

from __future__ import annotations

import copy
from urllib.parse import urlencode

from shared.local.arm_emulator import errors
from shared.local.arm_emulator.aks_rules import (
    NAMESPACE,
    check_busy,
    check_if_match,
    check_writable,
    create_cluster,
    finish_cluster_put,
    finish_pool_put,
    finish_upgrade,
    node_disruption_policy,
    replace_pool,
    update_cluster,
    validate_pool,
    validate_ssh_keys,
)
from shared.local.arm_emulator.faults import Faults
from shared.local.arm_emulator.operations import (
    BODY,
    BOTH,
    LroShapes,
    Operation,
    Operations,
    location_result,
    lro_headers,
    retry_after_header,
)
from shared.local.arm_emulator.state import (
    Cluster,
    Fleet,
    cluster_view,
    new_etag,
    pool_view,
    set_cluster_power,
    ssh_mode,
)
from shared.local.arm_emulator.throttle import Throttle
from shared.local.arm_emulator.wire import Request, Response, Router

CLUSTERS = "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters"
CLUSTER = CLUSTERS + "/{c}"
POOL = CLUSTER + "/agentPools/{p}"
LOCATIONS = "/subscriptions/{s}/providers/Microsoft.ContainerService/locations/{loc}"


class AksApi:
    def __init__(
        self,
        fleet: Fleet,
        operations: Operations,
        faults: Faults,
        throttle: Throttle,
        retry_after: int | None,
        shapes: LroShapes,
    ):
        self.fleet = fleet
        self.shapes = shapes
        self.operations = operations
        self.faults = faults
        self.throttle = throttle
        self.retry_after = retry_after
        # Items per page of a list; None: all in one page, as AKS answers (100 pools at most).
        # ARM's paging when set: `nextLink`, absolute, with api-version and `$skiptoken`.
        self.page_size: int | None = None

    def register(self, router: Router) -> None:
        router.add("GET", "/subscriptions/{s}/providers/Microsoft.ContainerService/managedClusters", self.list_all)
        router.add("GET", CLUSTER, self.get_cluster)
        router.add("PUT", CLUSTER, self.put_cluster)
        router.add("POST", CLUSTER + "/start", lambda req, **ids: self.set_power(req, "Running", **ids))
        router.add("POST", CLUSTER + "/stop", lambda req, **ids: self.set_power(req, "Stopped", **ids))
        router.add("GET", CLUSTER + "/agentPools", self.list_pools)
        router.add("GET", POOL, self.get_pool)
        router.add("PUT", POOL, self.put_pool)
        router.add("DELETE", POOL, self.delete_pool)
        router.add("POST", POOL + "/upgradeNodeImageVersion", self.upgrade_node_image)
        router.add("GET", CLUSTER + "/maintenanceConfigurations", self.list_maintenance)
        router.add("GET", CLUSTER + "/maintenanceConfigurations/{m}", self.get_maintenance)
        router.add("GET", LOCATIONS + "/operations/{op}", self.operation_status)
        router.add("GET", LOCATIONS + "/operationresults/{op}", self.operation_result)

    # --- reads ---

    def list_all(self, req: Request, s: str) -> Response:
        with self.fleet.lock:
            return Response(200, self._page(req, [cluster_view(c) for c in self.fleet.in_subscription(s)]))

    def get_cluster(self, req: Request, s: str, rg: str, c: str) -> Response:
        with self.fleet.lock:
            return Response(200, cluster_view(self._read(s, rg, c)))

    def list_pools(self, req: Request, s: str, rg: str, c: str) -> Response:
        with self.fleet.lock:
            return Response(200, self._page(req, [pool_view(p) for p in self._read(s, rg, c).pools.values()]))

    def get_pool(self, req: Request, s: str, rg: str, c: str, p: str) -> Response:
        with self.fleet.lock:
            return Response(200, pool_view(self._read(s, rg, c).pool(p)))

    def _page(self, req: Request, items: list[dict]) -> dict:
        if not self.page_size:
            return {"value": items}
        try:
            start = int(req.query.get("$skiptoken", "0"))
        except ValueError:
            raise errors.ArmHttpError(400, "InvalidSkipToken", "The $skiptoken is not valid.") from None
        page = {"value": items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            query = urlencode({"api-version": req.api_version, "$skiptoken": start + self.page_size})
            page["nextLink"] = f"{req.base_url}{req.path}?{query}"
        return page

    def _read(self, s: str, rg: str, c: str) -> Cluster:
        """The cluster, once its operations in progress had the time this read takes."""
        cluster = self.fleet.cluster(s, rg, c)
        self.operations.advance(cluster.body["id"])
        return cluster

    def list_maintenance(self, req: Request, s: str, rg: str, c: str) -> Response:
        with self.fleet.lock:
            configs = self.fleet.cluster(s, rg, c).maintenance.values()
            return Response(200, {"value": copy.deepcopy(list(configs))})

    def get_maintenance(self, req: Request, s: str, rg: str, c: str, m: str) -> Response:
        with self.fleet.lock:
            config = self.fleet.cluster(s, rg, c).maintenance.get(m.lower())
            if config is None:
                raise errors.child_not_found(
                    f"Could not find maintenance configuration '{m}' in managed cluster '{c}'."
                )
            return Response(200, copy.deepcopy(config))

    # --- agent pool writes ---

    def put_pool(self, req: Request, s: str, rg: str, c: str, p: str) -> Response:
        self.throttle.take(req.path.lower(), p)
        with self.fleet.lock:
            cluster = self.fleet.cluster(s, rg, c)
            existing = cluster.pools.get(p.lower())
            check_if_match(req, existing.props.get("eTag") if existing else None)
            check_writable(cluster)
            props = copy.deepcopy(req.json().get("properties") or {})
            validate_pool(cluster, props, p)
            old_mode = ssh_mode(existing.body) if existing else None
            pool = replace_pool(cluster, existing, p, props)
            operation = self._start(
                req, cluster, lambda ok: finish_pool_put(pool, ok, old_mode, node_disruption_policy(cluster))
            )
            operation.result = lambda: (200, pool_view(pool))
            headers = self._lro_headers(req, s, operation, self.shapes["agentPools/write"])
            return Response(200 if existing else 201, pool_view(pool), headers)

    def upgrade_node_image(self, req: Request, s: str, rg: str, c: str, p: str) -> Response:
        with self.fleet.lock:
            cluster = self.fleet.cluster(s, rg, c)
            pool = cluster.pool(p)
            check_writable(cluster)
            self._begin_write(pool.body, "UpgradingNodeImageVersion")
            operation = self._start(req, cluster, lambda ok: finish_upgrade(pool, ok))
            operation.result = lambda: (200, pool_view(pool))
            return self._accepted(req, s, operation, "agentPools/upgradeNodeImageVersion", pool_view(pool))

    def delete_pool(self, req: Request, s: str, rg: str, c: str, p: str) -> Response:
        with self.fleet.lock:
            cluster = self.fleet.cluster(s, rg, c)
            pool = cluster.pools.get(p.lower())
            if pool is None:
                return Response(204)
            check_busy(cluster)
            self._begin_write(pool.body, "Deleting")

            def finish(ok: bool) -> None:
                if ok:
                    cluster.pools.pop(p.lower(), None)
                else:
                    pool.props["provisioningState"] = "Failed"

            operation = self._start(req, cluster, finish)
            operation.result = lambda: (204, None)
            return self._accepted(req, s, operation, "agentPools/delete", None)

    # --- managed cluster writes ---

    def put_cluster(self, req: Request, s: str, rg: str, c: str) -> Response:
        with self.fleet.lock:
            try:
                cluster = self.fleet.cluster(s, rg, c)
            except errors.ArmHttpError as error:
                if error.code != "ResourceNotFound":
                    raise
                cluster = None
            body = req.json()
            validate_ssh_keys(body)
            if cluster is None:
                cluster = create_cluster(self.fleet, s, rg, c, body)
            else:
                check_writable(cluster)
                check_if_match(req, cluster.body.get("eTag"))
                update_cluster(cluster, body)
            target = cluster
            operation = self._start(req, cluster, lambda ok: finish_cluster_put(target, ok))
            operation.result = lambda: (200, cluster_view(target))
            created = cluster.props["provisioningState"] == "Creating"
            headers = self._lro_headers(req, s, operation, self.shapes["managedClusters/write"])
            return Response(201 if created else 200, cluster_view(cluster), headers)

    def set_power(self, req: Request, code: str, s: str, rg: str, c: str) -> Response:
        with self.fleet.lock:
            cluster = self.fleet.cluster(s, rg, c)
            current = cluster.props.get("powerState", {}).get("code", "Running")
            if current.lower() == code.lower():
                verb = "starting" if code == "Running" else "stopping"
                raise errors.ArmHttpError(
                    409,
                    "OperationNotAllowed",
                    f"managed cluster is in Provisioning State({cluster.props.get('provisioningState')}) and "
                    f"Power State({current}), {verb} cannot be performed",
                )
            check_busy(cluster)
            self._begin_write(cluster.body, "Starting" if code == "Running" else "Stopping", etag_in_props=False)

            def finish(ok: bool) -> None:
                cluster.props["provisioningState"] = "Succeeded" if ok else "Failed"
                if ok:
                    set_cluster_power(cluster, code)

            operation = self._start(req, cluster, finish)
            operation.result = lambda: (204, None)
            # start and stop: no recording to follow; both URLs, as the emulator always answered
            return Response(202, None, self._lro_headers(req, s, operation, BOTH))

    # --- operation status ---

    def operation_status(self, req: Request, s: str, loc: str, op: str) -> Response:
        operation = self.operations.poll(NAMESPACE, op)
        headers = retry_after_header(self.retry_after) if not operation.done else {}
        return Response(200, operation.status_body(s), headers)

    def operation_result(self, req: Request, s: str, loc: str, op: str) -> Response:
        return location_result(self.operations.poll(NAMESPACE, op), req, self.retry_after)

    # --- helpers ---

    def _start(self, req: Request, cluster: Cluster, on_end) -> Operation:
        fault = self.faults.take_operation_fault(req.path)
        location = cluster.location.replace(" ", "").lower()
        return self.operations.start(NAMESPACE, location, on_end, fault=fault, scope=cluster.body["id"])

    @staticmethod
    def _begin_write(body: dict, state: str, etag_in_props: bool = True) -> None:
        body["properties"]["provisioningState"] = state
        if etag_in_props:
            body["properties"]["eTag"] = new_etag()
        else:
            body["eTag"] = new_etag()

    def _lro_headers(self, req: Request, s: str, operation: Operation, shape: str) -> dict[str, str]:
        """The headers announcing `operation` in `shape` (`LroShapes`): AKS's status URL and Location."""
        base = f"{req.base_url}/subscriptions/{s}/providers/{NAMESPACE}/locations/{operation.location}"
        query = f"?api-version={req.api_version}"
        status_url = f"{base}/operations/{operation.id}{query}"
        return lro_headers(shape, status_url, f"{base}/operationresults/{operation.id}{query}", self.retry_after)

    def _accepted(self, req: Request, s: str, operation: Operation, name: str, body: dict | None) -> Response:
        """A POST or DELETE: 202 with the operation's headers; in the "body" shape, answered once done."""
        if self.shapes[name] == BODY:
            self.operations.end_now(operation)
            return location_result(operation, req, self.retry_after)
        return Response(202, body, self._lro_headers(req, s, operation, self.shapes[name]))
