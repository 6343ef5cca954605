"""Table Storage adapter: the only importer of `azure.data.tables`.

`WardenStore` reads and writes the four tables described in docs/tables.md. Rows are the
records of `shared.records`; this module adds the SDK's typing, batches writes into
transactions, and turns `azure.core` exceptions into the warden's own errors.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential, TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import (
    EdmType,
    EntityProperty,
    TableClient,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from shared.blast_radius import Claim, Limits, Pause, Turn, turn_of
from shared.config import http_client_options, parse_endpoint
from shared.errors import ConfigError, StoreConflictError, StoreError, StoreNotFoundError, shown
from shared.records import (
    CHECK_PREFIX,
    LATEST_CHECK_PREFIX,
    ONCE_PREFIX,
    WORKER_ROW,
    Admission,
    AuditRecord,
    KeyRotation,
    NodeCheck,
    PoolExemption,
    PoolState,
    WorkRequest,
    chronological_row_key,
    cluster_partition,
    column_name,
    from_entity,
    from_table_key,
    once_row_key,
    pool_row_key,
    prefix_range,
    table_key,
    time_key,
    to_entity,
    utc,
)

POOL_STATE_TABLE = "WardenPoolState"
AUDIT_TABLE = "WardenAudit"
TIMELINE = "Timeline"  # on an audit row that is also its step's marker (`_append_one`)
NODE_CHECKS_TABLE = "WardenNodeChecks"
KEY_ROTATIONS_TABLE = "WardenKeyRotations"
REQUESTS_TABLE = "WardenRequests"
SLOTS_TABLE = "WardenSlots"
EXEMPTIONS_TABLE = "WardenExemptions"
# The reimage budget's partition of WardenSlots (its gate, holds and tickets), and the paused clusters'.
REIMAGES_PARTITION, REIMAGE_PAUSES_PARTITION = "reimages", "reimage-pauses"
REIMAGE_GATE, HOLD_PREFIX, TICKET_PREFIX = "gate", "hold-", "turn-"
TABLES = (
    POOL_STATE_TABLE,
    AUDIT_TABLE,
    NODE_CHECKS_TABLE,
    KEY_ROTATIONS_TABLE,
    REQUESTS_TABLE,
    SLOTS_TABLE,
    EXEMPTIONS_TABLE,
)
# Table Storage's limit per transaction; Azurite fails obscurely past it, so it is checked here.
MAX_TRANSACTION_OPERATIONS = 100
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]{0,29})?$")

# Orders rows written by this process within one microsecond (see `chronological_row_key`).
_sequence = itertools.count()

_R = TypeVar("_R")
_UNCHANGED = MatchConditions.IfNotModified
Credential = TokenCredential | AzureNamedKeyCredential | AzureSasCredential


@dataclass(frozen=True)
class SlotHandle:
    """A slot as its holder took it: its row and the ETag of that write."""

    row_key: str
    etag: str

    def to_json(self) -> dict[str, str]:
        return {"row": self.row_key, "etag": self.etag}

    @classmethod
    def from_json(cls, value: dict[str, str] | None) -> SlotHandle | None:
        return cls(value["row"], value["etag"]) if value else None


class WardenStore:
    """The warden's tables in one storage account.

    `setting` is the `WARDEN_TABLES` value: a connection string (Azurite, development) or an
    account URL `https://<account>.table.core.windows.net`, which authenticates with
    `credential` or else `DefaultAzureCredential` (managed identity on Azure). `table_prefix`
    (letters and digits) gives tests their own tables. Use as a context manager, or `close()`.
    """

    def __init__(
        self, setting: str, *, credential: Credential | None = None, table_prefix: str = "", **client_options: Any
    ):
        if not _PREFIX.match(table_prefix):
            raise ConfigError(
                f"table prefix {table_prefix!r} is invalid: use up to 30 letters and digits, starting with a letter"
            )
        self._owned_credential = None
        if "transport" not in client_options:
            client_options = {**http_client_options(), **client_options}
        self._service = self._connect(setting.strip(), credential, client_options)
        self.table_prefix = table_prefix
        self.table_names = {name: table_prefix + name for name in TABLES}
        self._tables: dict[str, TableClient] = {}

    def _connect(self, setting: str, credential: Credential | None, options: dict[str, Any]) -> TableServiceClient:
        if not setting:
            raise ConfigError(
                "WARDEN_TABLES is empty: set a connection string or https://<account>.table.core.windows.net"
            )
        if setting.lower().startswith(("https://", "http://")):
            _check_account_url(setting)
            if credential is None:
                from azure.identity import DefaultAzureCredential  # only account URLs need it

                credential = self._owned_credential = DefaultAzureCredential()
            return TableServiceClient(endpoint=setting, credential=credential, **options)
        try:
            service = TableServiceClient.from_connection_string(setting, **options)
        except (ValueError, TypeError) as error:
            # The value is not shown: a connection string carries the account key.
            raise ConfigError(
                "WARDEN_TABLES is neither an account URL (https://<account>.table.core.windows.net) nor a valid "
                f"connection string ({error}; value not shown, it may hold a key)"
            ) from error
        # Judged after the SDK's own parsing: TableEndpoint=, DefaultEndpointsProtocol= and
        # UseDevelopmentStorage=true all end up in the endpoint it will really call.
        try:
            _check_connection_endpoint(service.url)
        except ConfigError:
            service.close()
            raise
        return service

    def close(self) -> None:
        for table in self._tables.values():
            table.close()
        self._service.close()
        if self._owned_credential is not None:
            self._owned_credential.close()

    def __enter__(self) -> WardenStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _table(self, name: str) -> TableClient:
        if name not in self._tables:
            self._tables[name] = self._service.get_table_client(self.table_names[name])
        return self._tables[name]

    # --- tables -----------------------------------------------------------------------

    def ensure_tables(self) -> None:
        """Create the tables that are missing; safe to call any number of times."""
        for full_name in self.table_names.values():
            with _translated(f"create table {full_name}"):
                self._service.create_table_if_not_exists(full_name)

    def delete_tables(self) -> None:
        """Drop the tables (tests and local resets); missing ones are fine."""
        for full_name in self.table_names.values():
            with _translated(f"delete table {full_name}"):
                self._service.delete_table(full_name)

    # --- pool state -------------------------------------------------------------------

    def get_pool_state(self, cluster_key: str, pool: str) -> PoolState:
        """The pool's row with its ETag; raises `StoreNotFoundError` when there is none."""
        with _translated(f"read pool state {cluster_key!r} pool {pool!r}"):
            entity = self._table(POOL_STATE_TABLE).get_entity(cluster_partition(cluster_key), pool_row_key(pool))
        return _record(PoolState, entity, etag=entity.metadata["etag"])

    def put_pool_state(self, state: PoolState, etag: str | None = None) -> str:
        """Write the pool's row and return its new ETag.

        With `etag` (from `get_pool_state`) the write succeeds only if the row is unchanged;
        without, only if there is no row yet. Otherwise `StoreConflictError`: re-read, decide again.
        """
        if state.updated_time is None:
            state = replace(state, updated_time=datetime.now(UTC))
        entity = _sdk_entity(to_entity(state, state.partition_key, state.row_key))
        table = self._table(POOL_STATE_TABLE)
        with _translated(f"write pool state {state.cluster_id!r} pool {state.pool!r}"):
            if etag is None:
                metadata = table.create_entity(entity)
            else:
                metadata = table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        return metadata["etag"]

    def merge_pool_state(self, state: PoolState, fields: Iterable[str], etag: str | None = None) -> None:
        """Write only `fields` of the pool's row, without reading it (a merge: the other columns
        stay); with `etag`, only if the row is unchanged since (else `StoreConflictError`). Every
        other writer rewrites the row under its ETag, which this changes: they read again and
        keep it. A field without a value is left as it is (Table Storage has no null). Raises
        `StoreNotFoundError` when there is no row."""
        columns = {"PartitionKey", "RowKey", *(column_name(f) for f in fields)}
        entity = to_entity(state, state.partition_key, state.row_key)
        with _translated(f"write pool state {state.cluster_id!r} pool {state.pool!r}"):
            self._table(POOL_STATE_TABLE).update_entity(
                _sdk_entity({k: v for k, v in entity.items() if k in columns}),
                mode=UpdateMode.MERGE,
                **({"etag": etag, "match_condition": _UNCHANGED} if etag else {}),
            )

    def list_pool_states(self, cluster_key: str | None = None) -> list[PoolState]:
        """Rows of one cluster (or all), ordered by cluster then pool, each with its ETag."""
        entities = self._query(POOL_STATE_TABLE, cluster_key)
        return [_record(PoolState, entity, etag=entity.metadata["etag"]) for entity in entities]

    # --- audit ------------------------------------------------------------------------

    def append_audit(self, records: Iterable[AuditRecord], key: str | None = None) -> bool:
        """Append rows in time order; each cluster's rows go in transactions of at most 100.

        `key` makes the write idempotent: with the rows goes a marker row named by it (an
        orchestration's call id, the same on every re-run of the step), in the same
        transaction; a second write with the same key (an activity re-run after its
        completion was lost) changes nothing and returns False. The marker holds the last
        row again: the step's receipt (`step_receipt`).
        """
        nonce = secrets.token_hex(4)
        records = list(records)
        operations = [
            (
                "create",
                to_entity(record, record.partition_key, chronological_row_key(record.time, next(_sequence), nonce)),
            )
            for record in records
        ]
        if not key or not records:
            self._submit(AUDIT_TABLE, operations)
            return True
        if len(records) == 1:
            return self._append_one(records[0], key)
        if len({r.partition_key for r in records}) > 1:
            raise ValueError("an idempotent audit write holds the rows of one cluster")
        # Each transaction carries its own marker: a re-run skips the chunks already written.
        per_chunk, first = MAX_TRANSACTION_OPERATIONS - 1, False
        for index, start in enumerate(range(0, len(records), per_chunk)):
            chunk_records = records[start : start + per_chunk]
            marker = to_entity(
                chunk_records[-1], chunk_records[-1].partition_key, once_row_key(f"{key}-{index}" if index else key)
            )
            try:
                self._submit(AUDIT_TABLE, [*operations[start : start + per_chunk], ("create", marker)])
                first = True
            except StoreConflictError:
                continue
        return first

    def _append_one(self, record: AuditRecord, key: str) -> bool:
        """A step's single row is its own marker: one insert (not a transaction of two) at the
        marker's key, flagged as part of the timeline. A second insert conflicts: False."""
        entity = {**to_entity(record, record.partition_key, once_row_key(key)), TIMELINE: True}
        try:
            with _translated(f"append the audit row of step {key!r}"):
                self._table(AUDIT_TABLE).create_entity(_sdk_entity(entity))
        except StoreConflictError:
            return False
        return True

    def step_receipt(self, cluster_key: str, key: str) -> AuditRecord | None:
        """What a step keyed `key` recorded, if it already ran (see `append_audit`)."""
        try:
            with _translated(f"read the receipt of step {key!r}"):
                entity = self._table(AUDIT_TABLE).get_entity(cluster_partition(cluster_key), once_row_key(key))
        except StoreNotFoundError:
            return None
        return _record(AuditRecord, entity)

    def list_audit(
        self, cluster_key: str | None = None, since: datetime | None = None, step: str | None = None
    ) -> list[AuditRecord]:
        """Rows of one cluster (or all) at or after `since`, oldest first; only those of `step` if given
        (filtered by the service: the compliance report reads the `outcome` rows of a long history)."""
        low = time_key(since) if since is not None else None
        timed = _chronological(self._query(AUDIT_TABLE, cluster_key, low=low, high=ONCE_PREFIX, step=step), cluster_key)
        # Rows that are their own marker (`_append_one`) sort after the time keys: merged by time.
        own = self._query(AUDIT_TABLE, cluster_key, low=ONCE_PREFIX, step=step, flag=TIMELINE, since=since)
        entities = sorted([*timed, *own], key=lambda e: (e["Time"], e["RowKey"])) if own else timed
        return [_record(AuditRecord, entity) for entity in entities]

    # --- node checks ------------------------------------------------------------------

    def record_node_checks(self, checks: Iterable[NodeCheck], key: str | None = None) -> None:
        """Append one history row per check and replace each node's `latest-` row, in the
        same transaction per cluster. Of several checks of one node, the newest is latest.

        `key` (an orchestration call id) makes the rows' keys the same on every re-run of
        the step: a transaction already written fails as a whole and is passed over."""
        nonce = secrets.token_hex(4) if key is None else key.replace("-", "")[:16]
        operations: list[tuple] = []
        latest: dict[tuple[str, str], NodeCheck] = {}
        for index, check in enumerate(checks):
            sequence = index if key is not None else next(_sequence)
            row_key = chronological_row_key(check.time, sequence, nonce, prefix=CHECK_PREFIX)
            operations.append(("create", to_entity(check, check.partition_key, row_key)))
            slot = (check.partition_key, check.node_key)
            if slot not in latest or check.time >= latest[slot].time:
                latest[slot] = check
        for (partition, node), check in latest.items():
            entity = to_entity(check, partition, LATEST_CHECK_PREFIX + node)
            operations.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
        self._submit(NODE_CHECKS_TABLE, operations, written_before_ok=key is not None)

    def list_node_checks(self, cluster_key: str | None = None, since: datetime | None = None) -> list[NodeCheck]:
        """Every check of one cluster (or all) at or after `since`, oldest first."""
        low, high = prefix_range(CHECK_PREFIX)
        if since is not None:
            low = CHECK_PREFIX + time_key(since)
        entities = self._query(NODE_CHECKS_TABLE, cluster_key, low=low, high=high)
        return [_record(NodeCheck, entity) for entity in _chronological(entities, cluster_key)]

    def latest_node_checks(self, cluster_key: str | None = None) -> list[NodeCheck]:
        """The most recent check of each node of one cluster (or all): one range query."""
        low, high = prefix_range(LATEST_CHECK_PREFIX)
        entities = self._query(NODE_CHECKS_TABLE, cluster_key, low=low, high=high)
        return [_record(NodeCheck, entity) for entity in entities]

    # --- key rotations ----------------------------------------------------------------

    def record_key_rotation(self, rotation: KeyRotation, key: str | None = None) -> None:
        """Append a rotation row. `key` (an orchestration step's id) writes it once: a re-run of
        the step finds it written. Its time should then be the step's, the same on every run."""
        nonce = secrets.token_hex(4) if key is None else key.replace("-", "")[:16]
        row_key = chronological_row_key(rotation.time, 0 if key else next(_sequence), nonce)
        operation = ("create", to_entity(rotation, rotation.partition_key, row_key))
        self._submit(KEY_ROTATIONS_TABLE, [operation], written_before_ok=key is not None)

    def list_key_rotations(self, cluster_key: str | None = None) -> list[KeyRotation]:
        """Rotations of one cluster (or all), oldest first."""
        entities = self._query(KEY_ROTATIONS_TABLE, cluster_key)
        return [_record(KeyRotation, entity) for entity in _chronological(entities, cluster_key)]

    # --- work requests: the cluster worker's queue ------------------------------------------
    #
    # Each cluster's partition holds its pending requests and one marker row, `~worker`, whose
    # `Open` says a worker is committed to take every request written before it closes. A
    # trigger writes its request and the marker in one transaction, conditional on the marker's
    # ETag; the worker closes only with a conditional write of the marker after seeing no
    # requests. So either the worker sees the request, or the trigger learns that it must start
    # a new worker: no request can slip in between a worker's last look and its end.

    def add_request(self, request: WorkRequest, attempts: int = 5) -> Admission:
        """Record a request; says whether a worker will take it (joined/pending) or must be started."""
        for _ in range(attempts):
            rows = self._query(REQUESTS_TABLE, request.cluster_id)
            marker = _find(rows, WORKER_ROW)
            is_open = bool(marker and marker.get("Open"))
            existing = _find(rows, request.row_key)
            same = existing is not None and existing.get("Argument", "") == request.argument
            if same and not existing.get("Lease") and is_open:
                return Admission.PENDING  # the same request already waits for this worker
            try:
                self._write_request(request, marker)
            except StoreConflictError:
                continue  # the marker changed under us: look again
            return Admission.JOINED if is_open else Admission.START
        raise StoreConflictError(f"requests of {request.cluster_id} kept changing; gave up after {attempts} attempts")

    def add_own_request(self, request: WorkRequest) -> None:
        """A request the cluster's running worker makes for itself (e.g. verify a pool it has just
        reimaged): one write, without the marker. The worker takes it before it ends, for it ends
        only when it finds no request. The same request already waiting is written again: like
        any request renewed after its lease, it is taken in the worker's next round."""
        entity = _sdk_entity(to_entity(request, request.partition_key, request.row_key))
        with _translated(f"add {request.kind} request {request.cluster_id!r} {request.pool!r}"):
            self._table(REQUESTS_TABLE).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _write_request(self, request: WorkRequest, marker: Any) -> None:
        entity = _sdk_entity(to_entity(request, request.partition_key, request.row_key))
        opened = {"PartitionKey": request.partition_key, "RowKey": WORKER_ROW, "Open": True}
        if marker is None:
            marker_op = ("create", opened)
        else:
            condition = {"etag": marker.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
            marker_op = ("update", opened, {"mode": UpdateMode.REPLACE, **condition})
        with _translated(f"add {request.kind} request {request.cluster_id!r} {request.pool!r}"):
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
                    requests.append(_record(WorkRequest, {**e, "Lease": lease}, etag=etag, stored_key=e["RowKey"]))
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
                        "match_condition": MatchConditions.IfNotModified,
                    },
                )
                for e in chunk
            ]
            with _translated(f"lease {len(chunk)} requests"):
                results = table.submit_transaction(operations)
            etags.update({e["RowKey"]: r["etag"] for e, r in zip(chunk, results, strict=True)})
        return etags

    def request_taken(self, cluster_key: str, row_key: str) -> bool:
        """Whether a worker has leased (or already finished) the request `row_key`."""
        try:
            with _translated(f"read request {row_key!r}"):
                entity = self._table(REQUESTS_TABLE).get_entity(cluster_partition(cluster_key), row_key)
        except StoreNotFoundError:
            return True
        return bool(entity.get("Lease"))

    def finish_requests(self, cluster_key: str, rows: Iterable[tuple[str, str]]) -> int:
        """Delete leased requests whose work is recorded: (RowKey, ETag) pairs. A row renewed
        since its lease (a newer request for the same target) stays for the next round, and
        one already deleted (a re-run) is fine. Returns how many were deleted now.
        The rows go in one transaction; when one of them is renewed or gone, row by row."""
        table, deleted, rows = self._table(REQUESTS_TABLE), 0, list(rows)
        if len(rows) > 1 and len(rows) <= MAX_TRANSACTION_OPERATIONS:
            partition = cluster_partition(cluster_key)
            deletes = [
                ("delete", {"PartitionKey": partition, "RowKey": key}, {"etag": etag, "match_condition": _UNCHANGED})
                for key, etag in rows
            ]
            with _translated(f"finish {len(rows)} requests of {cluster_key!r}"):
                try:
                    table.submit_transaction(deletes)
                    return len(rows)
                except TableTransactionError as error:
                    if error.status_code not in (404, 409, 412):
                        raise  # one of them renewed or already deleted: see each, below
        for row_key, etag in rows:
            try:
                with _translated(f"finish request {row_key!r}"):
                    table.delete_entity(
                        cluster_partition(cluster_key),
                        row_key,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                deleted += 1
            except (StoreConflictError, StoreNotFoundError):
                continue
        return deleted

    def close_worker(self, cluster_key: str) -> bool:
        """End the worker's commitment if no request waits; False when one does (take it first)."""
        rows = self._query(REQUESTS_TABLE, cluster_key)
        marker = _find(rows, WORKER_ROW)
        if any(e["RowKey"] != WORKER_ROW for e in rows):
            return False
        if marker is None or not marker.get("Open"):
            return True
        closed = {"PartitionKey": marker["PartitionKey"], "RowKey": WORKER_ROW, "Open": False}
        try:
            with _translated(f"close the worker of {cluster_key!r}"):
                self._table(REQUESTS_TABLE).update_entity(
                    closed,
                    mode=UpdateMode.REPLACE,
                    etag=marker.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
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
            _record(WorkRequest, e, etag=e.metadata["etag"], stored_key=e["RowKey"])
            for e in rows
            if e["RowKey"] != WORKER_ROW
        ]

    # --- slots: a bound on concurrent work per subscription, across every cluster's worker -----

    def acquire_slot(
        self, scope: str, holder: str, limit: int, now: datetime, ttl: timedelta, attempts: int = 5
    ) -> SlotHandle | None:
        """Take one of `limit` slots of `scope` (e.g. run-commands in flight in a subscription)
        for `holder`; None when all are held. A slot held past its expiry (its holder died) is
        free again; a holder asking again (a re-run) keeps its slot. The handle gives it back
        without a look at the others (`release_slot`)."""
        partition = table_key(scope.lower())
        for _ in range(attempts):
            rows = {e["RowKey"]: e for e in self._query(SLOTS_TABLE, None, partition=partition)}
            if mine := next((e for e in rows.values() if e.get("Holder") == holder), None):
                return SlotHandle(mine["RowKey"], mine.metadata["etag"])
            taken = {"PartitionKey": partition, "Holder": holder, "Expires": utc(now + ttl)}
            free = [k for k, e in sorted(rows.items()) if not e.get("Holder") or utc(e["Expires"]) <= utc(now)]
            unused = [f"slot-{i:04d}" for i in range(limit) if f"slot-{i:04d}" not in rows]
            try:
                with _translated(f"take a slot of {scope!r}"):
                    if free and free[0] < f"slot-{limit:04d}":
                        written = self._table(SLOTS_TABLE).update_entity(
                            {**taken, "RowKey": free[0]},
                            mode=UpdateMode.REPLACE,
                            etag=rows[free[0]].metadata["etag"],
                            match_condition=MatchConditions.IfNotModified,
                        )
                        return SlotHandle(free[0], written["etag"])
                    if unused:
                        written = self._table(SLOTS_TABLE).create_entity({**taken, "RowKey": unused[0]})
                        return SlotHandle(unused[0], written["etag"])
                    return None
            except StoreConflictError:
                continue  # another holder took it first: look again
        return None

    def slot_holders(self, scope: str, now: datetime) -> list[str]:
        """Who holds a slot of `scope` now (expired holds are not counted)."""
        rows = self._query(SLOTS_TABLE, None, partition=table_key(scope.lower()))
        return sorted(e["Holder"] for e in rows if e.get("Holder") and utc(e["Expires"]) > utc(now))

    def release_slot(self, scope: str, holder: str, handle: SlotHandle | None = None) -> None:
        """Give `holder`'s slot back (if it still has one; releasing twice is fine). With the
        `handle` its acquisition gave, one write under that ETag: a slot changed since (taken
        over after it expired) is someone else's now, and stays theirs."""
        partition = table_key(scope.lower())
        if handle is not None:
            rows = [{"RowKey": handle.row_key, "etag": handle.etag}]
        else:
            rows = [
                {"RowKey": e["RowKey"], "etag": e.metadata["etag"]}
                for e in self._query(SLOTS_TABLE, None, partition=partition)
                if e.get("Holder") == holder
            ]
        for row in rows:
            freed = {"PartitionKey": partition, "RowKey": row["RowKey"], "Holder": ""}
            with (
                contextlib.suppress(StoreConflictError, StoreNotFoundError),
                _translated(f"free a slot of {scope!r}"),
            ):
                self._table(SLOTS_TABLE).update_entity(
                    freed, mode=UpdateMode.REPLACE, etag=row["etag"], match_condition=MatchConditions.IfNotModified
                )

    # --- the reimage budget: one line of waiters, the reimages in flight, paused clusters ------

    def take_reimage_turn(
        self, claim: Claim, limits: Limits, now: datetime, hold_ttl: timedelta, ticket_ttl: timedelta, attempts: int = 5
    ) -> Turn:
        """Let `claim`'s reimage start if its turn has come (`blast_radius.let_in`), else keep
        its place in line. A start is a hold written with the gate row under the ETag read with
        the rest of the partition: two starts never count the same room (the later one re-reads).
        A holder asking again keeps its hold; expired holds and tickets count for nothing.
        A paused cluster (see `pause_reimages`) gets no turn: the answer says why."""
        for _ in range(attempts):
            rows, pause = self._reimage_rows(cluster_partition(claim.cluster_id))
            if pause is not None:
                return Turn(False, paused=self._pause(pause))
            claims = [e for e in rows if e["RowKey"] != REIMAGE_GATE]
            expired = {e["RowKey"] for e in claims if utc(e["Expires"]) <= utc(now)}
            holds = [e for e in claims if e["RowKey"].startswith(HOLD_PREFIX) and e["RowKey"] not in expired]
            if any(e.get("Holder") == claim.holder for e in holds):
                return Turn(True)
            ticket = next((e for e in claims if e.get("Waiter") == claim.holder), None)
            line = [
                self._claim(e)
                for e in claims
                if e["RowKey"].startswith(TICKET_PREFIX) and (e["RowKey"] not in expired or e is ticket)
            ]
            line += [claim] if ticket is None else []
            turn = turn_of(claim, [self._claim(e) for e in holds], line, limits, first_wait=ticket is None)
            try:
                if turn.granted:
                    gone = [e for e in claims if e["RowKey"] in expired and e is not ticket]
                    self._grant(claim, _find(rows, REIMAGE_GATE), ticket, gone, now, hold_ttl)
                else:
                    self._keep_place(claim, ticket, now, ticket_ttl)
            except StoreConflictError:
                continue  # someone else started, or a row changed: look again
            return replace(turn, waited=ticket is not None)
        return Turn(False)

    def _reimage_rows(self, paused_key: str) -> tuple[list, Any]:
        """The reimage line's partition and the cluster's pause row (or None), in one query: the
        two partitions are small, and the pause must be seen with the line it would hold back."""
        line, paused = table_key(REIMAGES_PARTITION), table_key(REIMAGE_PAUSES_PARTITION)
        # The SDK finds a parameter's name up to the next space: none may touch a parenthesis.
        query = "PartitionKey eq @line or ( PartitionKey eq @paused and RowKey eq @cluster )"
        table = self._table(SLOTS_TABLE)
        with _translated(f"query {table.table_name}"):
            rows = list(table.query_entities(query, parameters={"line": line, "paused": paused, "cluster": paused_key}))
        return [e for e in rows if e["PartitionKey"] == line], next(
            (e for e in rows if e["PartitionKey"] == paused), None
        )

    def _grant(self, claim: Claim, gate: Any, ticket: Any, expired: list, now: datetime, ttl: timedelta) -> None:
        """The hold, the gate moved on (under its ETag), the waiter's ticket gone, and the expired
        rows removed with it: a hold counted free here can never be renewed afterwards."""
        hold_key = HOLD_PREFIX + table_key(claim.holder)
        hold = {**self._claim_entity(claim, hold_key, now, ttl), "Holder": claim.holder}
        grants = getattr(gate.get("Grants"), "value", gate.get("Grants")) if gate else 0
        operations = [
            ("update", {**gate, "Grants": grants + 1}, {"mode": UpdateMode.REPLACE, **_if_match(gate)})
            if gate
            else ("create", {"PartitionKey": table_key(REIMAGES_PARTITION), "RowKey": REIMAGE_GATE, "Grants": 1}),
            ("upsert", hold, {"mode": UpdateMode.REPLACE}),
        ]
        leaving = ([ticket] if ticket is not None else []) + sorted(
            (e for e in expired if e["RowKey"] != hold_key), key=lambda e: not e["RowKey"].startswith(HOLD_PREFIX)
        )
        operations += [("delete", row, _if_match(row)) for row in leaving[: MAX_TRANSACTION_OPERATIONS - 2]]
        self._commit(operations, f"start a reimage for {claim.holder!r}")

    def _keep_place(self, claim: Claim, ticket: Any, now: datetime, ttl: timedelta) -> None:
        """A waiter's ticket keeps its place while it keeps asking; it expires when it stops."""
        table = self._table(SLOTS_TABLE)
        with _translated(f"keep {claim.holder!r} in line for a reimage"):
            if ticket is None:
                key = f"{TICKET_PREFIX}{time_key(now)}-{table_key(claim.holder)}"
                table.create_entity(_sdk_entity({**self._claim_entity(claim, key, now, ttl), "Waiter": claim.holder}))
            elif utc(ticket["Expires"]) - utc(now) < ttl / 2:
                table.update_entity({**ticket, "Expires": utc(now + ttl)}, mode=UpdateMode.REPLACE, **_if_match(ticket))

    def renew_reimage_hold(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Keep a running reimage's hold from expiring (written when half its time is gone);
        False when it has none any more (it expired and its room was given away)."""
        partition, key = table_key(REIMAGES_PARTITION), HOLD_PREFIX + table_key(holder)
        try:
            with _translated(f"renew the reimage hold of {holder!r}"):
                row = self._table(SLOTS_TABLE).get_entity(partition, key)
                if utc(row["Expires"]) - utc(now) < ttl / 2:
                    renewed = {**row, "Expires": utc(now + ttl)}
                    self._table(SLOTS_TABLE).update_entity(renewed, mode=UpdateMode.REPLACE, **_if_match(row))
        except (StoreNotFoundError, StoreConflictError):
            return False
        return True

    def release_reimage_hold(self, holder: str) -> None:
        """The reimage ended: its room is free (releasing twice is fine)."""
        partition, key = table_key(REIMAGES_PARTITION), HOLD_PREFIX + table_key(holder)
        with contextlib.suppress(StoreNotFoundError), _translated(f"release the reimage hold of {holder!r}"):
            self._table(SLOTS_TABLE).delete_entity(partition, key)

    def leave_reimage_line(self, holder: str) -> None:
        """`holder` no longer reimages nor waits: its hold and its ticket go."""
        rows = self._query(SLOTS_TABLE, None, partition=table_key(REIMAGES_PARTITION))
        for row in rows:
            if holder in (row.get("Holder"), row.get("Waiter")):
                with contextlib.suppress(StoreNotFoundError), _translated(f"take {holder!r} out of the reimage line"):
                    self._table(SLOTS_TABLE).delete_entity(row["PartitionKey"], row["RowKey"])

    def reimage_claims(self, now: datetime) -> tuple[list[Claim], list[Claim]]:
        """The reimages in flight and the line of waiters (oldest first), as of `now`."""
        rows = self._query(SLOTS_TABLE, None, partition=table_key(REIMAGES_PARTITION))
        live = [e for e in rows if e["RowKey"] != REIMAGE_GATE and utc(e["Expires"]) > utc(now)]
        return (
            [self._claim(e) for e in live if e["RowKey"].startswith(HOLD_PREFIX)],
            [self._claim(e) for e in live if e["RowKey"].startswith(TICKET_PREFIX)],
        )

    def pause_reimages(self, pause: Pause) -> None:
        """Stop reimages of the cluster until `clear_reimage_pause` (the latest failure is kept)."""
        entity = {
            "PartitionKey": table_key(REIMAGE_PAUSES_PARTITION),
            "RowKey": cluster_partition(pause.cluster_id),
            "ClusterId": pause.cluster_id,
            "Pool": pause.pool,
            "FailedTime": utc(pause.failed_at),
            "Code": pause.code,
            "Message": pause.message,
            "Operation": pause.operation,
            "InstanceId": pause.instance_id,
        }
        with _translated(f"pause the reimages of {pause.cluster_id!r}"):
            self._table(SLOTS_TABLE).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def reimage_pause(self, cluster_key: str) -> Pause | None:
        try:
            with _translated(f"read the reimage pause of {cluster_key!r}"):
                row = self._table(SLOTS_TABLE).get_entity(
                    table_key(REIMAGE_PAUSES_PARTITION), cluster_partition(cluster_key)
                )
        except StoreNotFoundError:
            return None
        return self._pause(row)

    def clear_reimage_pause(self, cluster_key: str, attempts: int = 5) -> Pause | None:
        """Resume the cluster's reimages; the pause removed (as read just before), or None."""
        for _ in range(attempts):
            try:
                with _translated(f"resume the reimages of {cluster_key!r}"):
                    row = self._table(SLOTS_TABLE).get_entity(
                        table_key(REIMAGE_PAUSES_PARTITION), cluster_partition(cluster_key)
                    )
                    self._table(SLOTS_TABLE).delete_entity(row["PartitionKey"], row["RowKey"], **_if_match(row))
            except StoreNotFoundError:
                return None
            except StoreConflictError:
                continue  # paused again meanwhile: read the newer pause
            return self._pause(row)
        raise StoreConflictError(f"the reimage pause of {cluster_key!r} kept changing; gave up after {attempts} tries")

    def _commit(self, operations: list[tuple], action: str) -> None:
        """One transaction of conditional writes: a row changed or gone meanwhile is a conflict."""
        with _translated(action):
            try:
                self._table(SLOTS_TABLE).submit_transaction(
                    [(op[0], _sdk_entity(dict(op[1])), *op[2:]) for op in operations]
                )
            except TableTransactionError as error:
                if error.status_code == 404:
                    raise StoreConflictError(f"{action}: a row went meanwhile") from error
                raise

    @staticmethod
    def _claim_entity(claim: Claim, row_key: str, now: datetime, ttl: timedelta) -> dict[str, Any]:
        return {
            "PartitionKey": table_key(REIMAGES_PARTITION),
            "RowKey": row_key,
            "Subscription": claim.subscription,
            "ClusterId": claim.cluster_id,
            "Pool": claim.pool,
            "Since": utc(now),
            "Expires": utc(now + ttl),
        }

    @staticmethod
    def _claim(entity: Any) -> Claim:
        holder = entity.get("Holder") or entity.get("Waiter") or ""
        return Claim(holder, entity.get("Subscription", ""), entity.get("ClusterId", ""), entity.get("Pool", ""))

    @staticmethod
    def _pause(row: Any) -> Pause:
        return Pause(
            row.get("ClusterId", ""),
            row.get("Pool", ""),
            utc(row["FailedTime"]),
            row.get("Code", ""),
            row.get("Message", ""),
            row.get("Operation", ""),
            row.get("InstanceId", ""),
        )

    # --- I/O helpers ------------------------------------------------------------------

    def _query(
        self,
        table_name: str,
        cluster_key: str | None,
        low: str | None = None,
        high: str | None = None,
        partition: str | None = None,
        step: str | None = None,
        flag: str | None = None,
        since: datetime | None = None,
    ) -> list:
        """Entities of one partition (a cluster's, or `partition` as is; or all) with RowKey in
        [low, high) (and `Step` equal to `step`, the property `flag` true, `Time` at or after
        `since`), in key order."""
        if partition is None and cluster_key is not None:
            partition = cluster_partition(cluster_key)
        clauses, parameters = [], {}
        for clause, name, value in (
            ("PartitionKey eq @pk", "pk", partition),
            ("RowKey ge @low", "low", low),
            ("RowKey lt @high", "high", high),
            ("Step eq @step", "step", step),
            (f"{flag} eq @flag", "flag", True if flag else None),
            ("Time ge @since", "since", utc(since) if since is not None else None),
        ):
            if value is not None:
                clauses.append(clause)
                parameters[name] = value
        table = self._table(table_name)
        with _translated(f"query {table.table_name}"):
            if not clauses:
                return list(table.list_entities())
            return list(table.query_entities(" and ".join(clauses), parameters=parameters))

    def _submit(self, table_name: str, operations: list[tuple], written_before_ok: bool = False) -> None:
        """Send operations as transactions: one partition each, at most 100 operations.
        `written_before_ok`: a transaction whose rows exist already (a re-run) is passed over."""
        table = self._table(table_name)
        for batch in _transactions(operations):
            batch = [(op[0], _sdk_entity(op[1]), *op[2:]) for op in batch]
            try:
                with _translated(f"write {len(batch)} rows to {table.table_name}"):
                    table.submit_transaction(batch)
            except StoreConflictError:
                if not written_before_ok:
                    raise

    # --- exemptions: one row per exempt pool (expired rows stay until recorded and removed) -----

    def get_exemption(self, cluster_key: str, pool: str) -> PoolExemption | None:
        """The pool's exemption row with its ETag, expired or not; None when there is none."""
        try:
            with _translated(f"read the exemption of {cluster_key!r} pool {pool!r}"):
                entity = self._table(EXEMPTIONS_TABLE).get_entity(cluster_partition(cluster_key), pool_row_key(pool))
        except StoreNotFoundError:
            return None
        return _record(PoolExemption, entity, etag=entity.metadata["etag"])

    def put_exemption(self, exemption: PoolExemption, etag: str | None = None) -> str:
        """Write the pool's exemption and return its new ETag: with `etag` only over that very
        row, without only if the pool has none. Otherwise `StoreConflictError`."""
        entity = _sdk_entity(to_entity(exemption, exemption.partition_key, exemption.row_key))
        table = self._table(EXEMPTIONS_TABLE)
        with _translated(f"write the exemption of {exemption.cluster_id!r} pool {exemption.pool!r}"):
            if etag is None:
                return table.create_entity(entity)["etag"]
            return table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )["etag"]

    def delete_exemption(self, exemption: PoolExemption) -> bool:
        """Remove the row `exemption` was read as (its ETag); False when it changed or went meanwhile."""
        try:
            with _translated(f"delete the exemption of {exemption.cluster_id!r} pool {exemption.pool!r}"):
                self._table(EXEMPTIONS_TABLE).delete_entity(
                    exemption.partition_key,
                    exemption.row_key,
                    etag=exemption.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (StoreConflictError, StoreNotFoundError):
            return False
        return True

    def list_exemptions(self, cluster_key: str | None = None) -> list[PoolExemption]:
        """Every stored exemption of one cluster (or all), expired or not, each with its ETag:
        callers honour only those still in force (`PoolExemption.in_force`)."""
        entities = self._query(EXEMPTIONS_TABLE, cluster_key)
        return [_record(PoolExemption, entity, etag=entity.metadata["etag"]) for entity in entities]


def _transactions(operations: list[tuple]) -> Iterator[list[tuple]]:
    """Group operations by partition (keeping their order) and cut each group into chunks."""
    by_partition: dict[str, list[tuple]] = {}
    for operation in operations:
        by_partition.setdefault(operation[1]["PartitionKey"], []).append(operation)
    for group in by_partition.values():
        for start in range(0, len(group), MAX_TRANSACTION_OPERATIONS):
            yield group[start : start + MAX_TRANSACTION_OPERATIONS]


def _find(entities: list, row_key: str) -> Any:
    return next((e for e in entities if e["RowKey"] == row_key), None)


def _if_match(entity: Any) -> dict[str, Any]:
    """The keywords of a write (or a transaction's operation) that only goes over this very row."""
    return {"etag": entity.metadata["etag"], "match_condition": MatchConditions.IfNotModified}


def _chronological(entities: list, cluster_key: str | None) -> list:
    """One partition is already in RowKey (time) order; several need merging by RowKey."""
    return entities if cluster_key is not None else sorted(entities, key=lambda entity: entity["RowKey"])


def _sdk_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """Every int as Edm.Int64: one type per column, and values above 2**31 survive."""
    return {
        name: EntityProperty(value, EdmType.INT64) if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in entity.items()
    }


def _record(kind: type[_R], entity: Any, **extra: Any) -> _R:
    plain = {name: value.value if isinstance(value, EntityProperty) else value for name, value in entity.items()}
    try:
        return from_entity(kind, plain, **extra)
    except ValueError as error:
        raise StoreError(str(error)) from error


def _check_account_url(url: str) -> None:
    try:
        parse_endpoint(url)
    except ValueError as error:
        raise ConfigError(
            f"WARDEN_TABLES account URL {_without_secrets(url)}: {error}; it must be "
            "https://<account>.table.core.windows.net (plain http only on a loopback host, such as Azurite)"
        ) from error


def _without_secrets(url: str) -> str:
    """The URL without userinfo or query: either could hold a key or a SAS token."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not shown: unreadable)"
    return shown(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}")


def _check_connection_endpoint(url: str) -> None:
    try:
        parse_endpoint(url)
    except ValueError as error:
        raise ConfigError(
            f"WARDEN_TABLES connection string: its table endpoint is refused, {error} (value not shown, it may "
            "hold a key); use an https TableEndpoint, or plain http only on a loopback host such as Azurite"
        ) from error


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """SDK errors -> warden errors. 409/412 only arise from conditional writes (create-if-absent,
    If-Match, transaction inserts): someone else wrote first."""
    try:
        yield
    except ResourceNotFoundError as error:
        raise StoreNotFoundError(f"{action}: not found ({_describe(error)})") from error
    except HttpResponseError as error:
        if error.status_code in (409, 412):
            raise StoreConflictError(f"{action}: changed concurrently ({_describe(error)})") from error
        raise StoreError(f"{action} failed: {_describe(error)}") from error
    except AzureError as error:
        raise StoreError(f"{action} failed: {error}") from error


def _describe(error: HttpResponseError) -> str:
    code = getattr(error, "error_code", None)
    code = getattr(code, "value", code) or "no error code"  # the SDK's TableErrorCode is an Enum
    lines = (error.message or "").strip().splitlines()
    return f"HTTP {error.status_code} {code}" + (f": {lines[0]}" if lines else "")
