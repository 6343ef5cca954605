"""The cluster workers' queue: requests in `WardenRequests`, one partition per cluster, and the
marker row that says whether a worker is committed to take them (docs/tables.md). A mixin of
`WardenStore`, which gives it `_table` and `_query`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.table_io import (
    MAX_TRANSACTION_OPERATIONS,
    REQUESTS_TABLE,
    UNCHANGED,
    find_row,
    record_of,
    sdk_entity,
    translated,
)
from shared.core.errors import StoreConflictError, StoreError, StoreNotFoundError
from shared.core.records import WORKER_ROW, Admission, WorkRequest, to_entity
from shared.core.table_keys import cluster_partition, from_table_key


class WorkQueue:
    """Each cluster's partition holds its pending requests and one marker row, `~worker`, whose
    `Open` says a worker is committed to take every request written before it closes. A trigger
    writes its request and the marker in one transaction, conditional on the marker's ETag; the
    worker closes only with a conditional write of the marker after seeing no requests. So either
    the worker sees the request, or the trigger learns that it must start a new worker: no
    request can slip in between a worker's last look and its end."""

    def add_request(self, request: WorkRequest, attempts: int = 5) -> Admission:
        """Record a request; says whether a worker will take it (joined/pending) or must be started."""
        for _ in range(attempts):
            rows = self._query(REQUESTS_TABLE, request.cluster_id)
            marker = find_row(rows, WORKER_ROW)
            is_open = bool(marker and marker.get("Open"))
            existing = find_row(rows, request.row_key)
            same = existing is not None and existing.get("Argument", "") == request.argument
            if same and not existing.get("Lease") and is_open:
                return Admission.PENDING  # the same request already waits for this worker
            try:
                self._write_request(request, marker)
            except StoreConflictError:
                continue  # the marker changed under us: look again
            return Admission.JOINED if is_open else Admission.START
        raise StoreConflictError(f"requests of {request.cluster_id} kept changing; gave up after {attempts} attempts")

    def add_own_requests(self, requests: Iterable[WorkRequest]) -> None:
        """Requests the cluster's running worker makes for itself (e.g. verify the pools it has
        just reimaged), all of one cluster: without the marker, 100 to a write. The worker takes
        them before it ends, for it ends only when it finds no request. The same request already
        waiting is written again: like any request renewed after its lease, it is taken in the
        worker's next round."""
        self._write_upserts(_upserts(requests))

    def _write_upserts(self, upserts: list[tuple]) -> None:
        with translated(f"add {len(upserts)} requests of the cluster's worker"):
            if len(upserts) == 1:  # one row: one upsert, not a transaction of one
                self._table(REQUESTS_TABLE).upsert_entity(upserts[0][1], mode=UpdateMode.REPLACE)
                return
            for start in range(0, len(upserts), MAX_TRANSACTION_OPERATIONS):
                self._table(REQUESTS_TABLE).submit_transaction(upserts[start : start + MAX_TRANSACTION_OPERATIONS])

    def _write_request(self, request: WorkRequest, marker: Any) -> None:
        entity = sdk_entity(to_entity(request, request.partition_key, request.row_key))
        opened = {"PartitionKey": request.partition_key, "RowKey": WORKER_ROW, "Open": True}
        if marker is None:
            marker_op = ("create", opened)
        else:
            condition = {"etag": marker.metadata["etag"], "match_condition": UNCHANGED}
            marker_op = ("update", opened, {"mode": UpdateMode.REPLACE, **condition})
        with translated(f"add {request.kind} request {request.cluster_id!r} {request.pool!r}"):
            self._table(REQUESTS_TABLE).submit_transaction(
                [("upsert", entity, {"mode": UpdateMode.REPLACE}), marker_op]
            )

    def lease_requests(
        self, cluster_key: str, lease: str, attempts: int = 5
    ) -> tuple[list[WorkRequest], list[tuple[str, str, str]]]:
        """Mark the cluster's requests taken by `lease` and return them (with their new ETags),
        oldest first, and apart the rows that are no readable request: (RowKey, ETag, why) —
        leased too, so that one bad row is recorded and removed instead of blocking the queue.
        Rows already held by `lease` (a re-run after a lost completion) are returned as they
        are; rows of any other lease belong to a worker that is gone."""
        for _ in range(attempts):
            rows = [e for e in self._query(REQUESTS_TABLE, cluster_key) if e["RowKey"] != WORKER_ROW]
            updates = [e for e in rows if e.get("Lease") != lease]
            try:
                etags = self._lease(updates, lease)
            except StoreConflictError:
                continue  # a request was renewed meanwhile: read again
            requests, unreadable = [], []
            for e in rows:
                etag = etags.get(e["RowKey"], e.metadata["etag"])
                try:
                    requests.append(record_of(WorkRequest, {**e, "Lease": lease}, etag=etag, stored_key=e["RowKey"]))
                except StoreError as error:
                    unreadable.append((e["RowKey"], etag, str(error)))
            return sorted(requests, key=lambda r: r.time), unreadable
        raise StoreConflictError(f"requests of {cluster_key} kept changing; gave up after {attempts} attempts")

    def _lease(self, rows: list, lease: str) -> dict[str, str]:
        table, etags = self._table(REQUESTS_TABLE), {}
        for start in range(0, len(rows), MAX_TRANSACTION_OPERATIONS):
            chunk = rows[start : start + MAX_TRANSACTION_OPERATIONS]
            operations = [
                (
                    "update",
                    {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"], "Lease": lease},
                    {
                        "mode": UpdateMode.MERGE,
                        "etag": e.metadata["etag"],
                        "match_condition": UNCHANGED,
                    },
                )
                for e in chunk
            ]
            with translated(f"lease {len(chunk)} requests"):
                results = table.submit_transaction(operations)
            etags.update({e["RowKey"]: r["etag"] for e, r in zip(chunk, results, strict=True)})
        return etags

    def request_taken(self, cluster_key: str, row_key: str) -> bool:
        """Whether a worker has leased (or already finished) the request `row_key`."""
        try:
            with translated(f"read request {row_key!r}"):
                entity = self._table(REQUESTS_TABLE).get_entity(cluster_partition(cluster_key), row_key)
        except StoreNotFoundError:
            return True
        return bool(entity.get("Lease"))

    def finish_requests(
        self, cluster_key: str, rows: Iterable[tuple[str, str]], then: Iterable[WorkRequest] = ()
    ) -> int:
        """Delete leased requests whose work is recorded: (RowKey, ETag) pairs; and add the
        requests that work asks for next (`then`, see `add_own_requests`). A row renewed since
        its lease (a newer request for the same target) stays for the next round, and one
        already deleted (a re-run) is fine. Returns how many were deleted now.
        All go in one transaction; when a row is renewed or gone, or a next request is one of
        the rows, the rows are deleted one by one and the next requests written after them."""
        table, rows, upserts = self._table(REQUESTS_TABLE), list(rows), _upserts(then)
        partition = cluster_partition(cluster_key)
        deletes = [
            ("delete", {"PartitionKey": partition, "RowKey": key}, {"etag": etag, "match_condition": UNCHANGED})
            for key, etag in rows
        ]
        apart = {key for key, _ in rows} & {entity["RowKey"] for _, entity, _ in upserts}
        if 1 < len(deletes) + len(upserts) <= MAX_TRANSACTION_OPERATIONS and not apart:
            with translated(f"finish {len(rows)} requests of {cluster_key!r}, {len(upserts)} next"):
                try:
                    table.submit_transaction([*deletes, *upserts])
                    return len(rows)
                except TableTransactionError as error:
                    if error.status_code not in (404, 409, 412):
                        raise  # one of them renewed or already deleted: see each, below
        deleted = self._delete_each(table, cluster_key, rows)
        if upserts:
            self._write_upserts(upserts)
        return deleted

    @staticmethod
    def _delete_each(table: Any, cluster_key: str, rows: list[tuple[str, str]]) -> int:
        deleted = 0
        for row_key, etag in rows:
            try:
                with translated(f"finish request {row_key!r}"):
                    table.delete_entity(
                        cluster_partition(cluster_key),
                        row_key,
                        etag=etag,
                        match_condition=UNCHANGED,
                    )
                deleted += 1
            except (StoreConflictError, StoreNotFoundError):
                continue
        return deleted

    def close_worker(self, cluster_key: str) -> bool:
        """End the worker's commitment if no request waits; False when one does (take it first)."""
        rows = self._query(REQUESTS_TABLE, cluster_key)
        marker = find_row(rows, WORKER_ROW)
        if any(e["RowKey"] != WORKER_ROW for e in rows):
            return False
        if marker is None or not marker.get("Open"):
            return True
        closed = {"PartitionKey": marker["PartitionKey"], "RowKey": WORKER_ROW, "Open": False}
        try:
            with translated(f"close the worker of {cluster_key!r}"):
                self._table(REQUESTS_TABLE).update_entity(
                    closed,
                    mode=UpdateMode.REPLACE,
                    etag=marker.metadata["etag"],
                    match_condition=UNCHANGED,
                )
        except StoreConflictError:
            return False  # a trigger wrote a request meanwhile
        return True

    def clusters_with_requests(self) -> list[str]:
        """The cluster keys whose partition holds a request (for the resync)."""
        entities = self._query(REQUESTS_TABLE, None)
        return sorted({from_table_key(e["PartitionKey"]) for e in entities if e["RowKey"] != WORKER_ROW})

    def list_requests(self, cluster_key: str) -> list[WorkRequest]:
        rows = self._query(REQUESTS_TABLE, cluster_key)
        return [
            record_of(WorkRequest, e, etag=e.metadata["etag"], stored_key=e["RowKey"])
            for e in rows
            if e["RowKey"] != WORKER_ROW
        ]


def _upserts(requests: Iterable[WorkRequest]) -> list[tuple]:
    """Transaction operations writing `requests` whole (a waiting one written again), each row
    once (a transaction refuses a row twice): the last request for a row wins."""
    rows = {r.row_key: r for r in requests}
    return [
        ("upsert", sdk_entity(to_entity(r, r.partition_key, r.row_key)), {"mode": UpdateMode.REPLACE})
        for r in rows.values()
    ]
