"""Table Storage adapter: the only importer of `azure.data.tables` (with the modules it is made of).

`WardenStore` reads and writes the tables described in docs/tables.md. Rows are the records of
`shared.core.records`; the adapter adds the SDK's typing, batches writes into transactions, and turns
`azure.core` exceptions into the warden's own errors. The workers' queue (`work_queue`), the
slots and the reimage budget (`slots`) are parts of it of their own; what they all share is in
`table_io`. Here: the connection and the tables, pool state, audit, node checks, key rotations
and exemptions.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential, TokenCredential
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.adapters.slots import SlotHandle, Slots
from shared.adapters.table_io import (
    AUDIT_TABLE,
    EXEMPTIONS_TABLE,
    KEY_ROTATIONS_TABLE,
    MAX_TRANSACTION_OPERATIONS,
    NODE_CHECKS_TABLE,
    POOL_STATE_TABLE,
    TABLES,
    UNCHANGED,
    chronological,
    record_of,
    sdk_entity,
    transactions,
    translated,
)
from shared.adapters.work_queue import WorkQueue
from shared.config import http_client_options
from shared.config.endpoints import parse_endpoint
from shared.core.errors import ConfigError, StoreConflictError, StoreError, StoreNotFoundError, shown
from shared.core.records import (
    Admission,
    AuditRecord,
    KeyRotation,
    NodeCheck,
    PoolExemption,
    PoolState,
    column_name,
    to_entity,
)
from shared.core.table_keys import (
    CHECK_PREFIX,
    LATEST_CHECK_PREFIX,
    ONCE_PREFIX,
    chronological_row_key,
    cluster_partition,
    once_row_key,
    pool_row_key,
    prefix_range,
    time_key,
    utc,
)

__all__ = [  # what callers take from here: the store, its errors and the values its methods answer
    "MAX_TRANSACTION_OPERATIONS",
    "Admission",
    "SlotHandle",
    "StoreConflictError",
    "StoreError",
    "StoreNotFoundError",
    "WardenStore",
]

TIMELINE = "Timeline"  # on an audit row that is also its step's marker (`_append_one`)
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]{0,29})?$")

# Orders rows written by this process within one microsecond (see `chronological_row_key`).
_sequence = itertools.count()

Credential = TokenCredential | AzureNamedKeyCredential | AzureSasCredential


class WardenStore(WorkQueue, Slots):
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
            with translated(f"create table {full_name}"):
                self._service.create_table_if_not_exists(full_name)

    def delete_tables(self) -> None:
        """Drop the tables (tests and local resets); missing ones are fine."""
        for full_name in self.table_names.values():
            with translated(f"delete table {full_name}"):
                self._service.delete_table(full_name)

    # --- pool state -------------------------------------------------------------------

    def get_pool_state(self, cluster_key: str, pool: str) -> PoolState:
        """The pool's row with its ETag; raises `StoreNotFoundError` when there is none."""
        with translated(f"read pool state {cluster_key!r} pool {pool!r}"):
            entity = self._table(POOL_STATE_TABLE).get_entity(cluster_partition(cluster_key), pool_row_key(pool))
        return record_of(PoolState, entity, etag=entity.metadata["etag"])

    def put_pool_state(self, state: PoolState, etag: str | None = None) -> str:
        """Write the pool's row and return its new ETag.

        With `etag` (from `get_pool_state`) the write succeeds only if the row is unchanged;
        without, only if there is no row yet. Otherwise `StoreConflictError`: re-read, decide again.
        """
        if state.updated_time is None:
            state = replace(state, updated_time=datetime.now(UTC))
        entity = sdk_entity(to_entity(state, state.partition_key, state.row_key))
        table = self._table(POOL_STATE_TABLE)
        with translated(f"write pool state {state.cluster_id!r} pool {state.pool!r}"):
            if etag is None:
                metadata = table.create_entity(entity)
            else:
                metadata = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=UNCHANGED)
        return metadata["etag"]

    def merge_pool_state(self, state: PoolState, fields: Iterable[str], etag: str | None = None) -> None:
        """Write only `fields` of the pool's row, without reading it (a merge: the other columns
        stay); with `etag`, only if the row is unchanged since (else `StoreConflictError`). Every
        other writer rewrites the row under its ETag, which this changes: they read again and
        keep it. A field without a value is left as it is (Table Storage has no null). Raises
        `StoreNotFoundError` when there is no row."""
        columns = {"PartitionKey", "RowKey", *(column_name(f) for f in fields)}
        entity = to_entity(state, state.partition_key, state.row_key)
        with translated(f"write pool state {state.cluster_id!r} pool {state.pool!r}"):
            self._table(POOL_STATE_TABLE).update_entity(
                sdk_entity({k: v for k, v in entity.items() if k in columns}),
                mode=UpdateMode.MERGE,
                **({"etag": etag, "match_condition": UNCHANGED} if etag else {}),
            )

    def list_pool_states(self, cluster_key: str | None = None) -> list[PoolState]:
        """Rows of one cluster (or all), ordered by cluster then pool, each with its ETag."""
        entities = self._query(POOL_STATE_TABLE, cluster_key)
        return [record_of(PoolState, entity, etag=entity.metadata["etag"]) for entity in entities]

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
            with translated(f"append the audit row of step {key!r}"):
                self._table(AUDIT_TABLE).create_entity(sdk_entity(entity))
        except StoreConflictError:
            return False
        return True

    def step_receipt(self, cluster_key: str, key: str) -> AuditRecord | None:
        """What a step keyed `key` recorded, if it already ran (see `append_audit`)."""
        try:
            with translated(f"read the receipt of step {key!r}"):
                entity = self._table(AUDIT_TABLE).get_entity(cluster_partition(cluster_key), once_row_key(key))
        except StoreNotFoundError:
            return None
        return record_of(AuditRecord, entity)

    def list_audit(
        self, cluster_key: str | None = None, since: datetime | None = None, step: str | None = None
    ) -> list[AuditRecord]:
        """Rows of one cluster (or all) at or after `since`, oldest first; only those of `step` if given
        (filtered by the service: the compliance report reads the `outcome` rows of a long history)."""
        low = time_key(since) if since is not None else None
        timed = chronological(self._query(AUDIT_TABLE, cluster_key, low=low, high=ONCE_PREFIX, step=step), cluster_key)
        # Rows that are their own marker (`_append_one`) sort after the time keys: merged by time.
        own = self._query(AUDIT_TABLE, cluster_key, low=ONCE_PREFIX, step=step, flag=TIMELINE, since=since)
        entities = sorted([*timed, *own], key=lambda e: (e["Time"], e["RowKey"])) if own else timed
        return [record_of(AuditRecord, entity) for entity in entities]

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
        return [record_of(NodeCheck, entity) for entity in chronological(entities, cluster_key)]

    def latest_node_checks(self, cluster_key: str | None = None) -> list[NodeCheck]:
        """The most recent check of each node of one cluster (or all): one range query."""
        low, high = prefix_range(LATEST_CHECK_PREFIX)
        entities = self._query(NODE_CHECKS_TABLE, cluster_key, low=low, high=high)
        return [record_of(NodeCheck, entity) for entity in entities]

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
        return [record_of(KeyRotation, entity) for entity in chronological(entities, cluster_key)]

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
        with translated(f"query {table.table_name}"):
            if not clauses:
                return list(table.list_entities())
            return list(table.query_entities(" and ".join(clauses), parameters=parameters))

    def _submit(self, table_name: str, operations: list[tuple], written_before_ok: bool = False) -> None:
        """Send operations as transactions: one partition each, at most 100 operations.
        `written_before_ok`: a transaction whose rows exist already (a re-run) is passed over."""
        table = self._table(table_name)
        for batch in transactions(operations):
            batch = [(op[0], sdk_entity(op[1]), *op[2:]) for op in batch]
            try:
                with translated(f"write {len(batch)} rows to {table.table_name}"):
                    table.submit_transaction(batch)
            except StoreConflictError:
                if not written_before_ok:
                    raise

    # --- exemptions: one row per exempt pool (expired rows stay until recorded and removed) -----

    def get_exemption(self, cluster_key: str, pool: str) -> PoolExemption | None:
        """The pool's exemption row with its ETag, expired or not; None when there is none."""
        try:
            with translated(f"read the exemption of {cluster_key!r} pool {pool!r}"):
                entity = self._table(EXEMPTIONS_TABLE).get_entity(cluster_partition(cluster_key), pool_row_key(pool))
        except StoreNotFoundError:
            return None
        return record_of(PoolExemption, entity, etag=entity.metadata["etag"])

    def put_exemption(self, exemption: PoolExemption, etag: str | None = None) -> str:
        """Write the pool's exemption and return its new ETag: with `etag` only over that very
        row, without only if the pool has none. Otherwise `StoreConflictError`."""
        entity = sdk_entity(to_entity(exemption, exemption.partition_key, exemption.row_key))
        table = self._table(EXEMPTIONS_TABLE)
        with translated(f"write the exemption of {exemption.cluster_id!r} pool {exemption.pool!r}"):
            if etag is None:
                return table.create_entity(entity)["etag"]
            return table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=UNCHANGED)["etag"]

    def delete_exemption(self, exemption: PoolExemption) -> bool:
        """Remove the row `exemption` was read as (its ETag); False when it changed or went meanwhile."""
        try:
            with translated(f"delete the exemption of {exemption.cluster_id!r} pool {exemption.pool!r}"):
                self._table(EXEMPTIONS_TABLE).delete_entity(
                    exemption.partition_key,
                    exemption.row_key,
                    etag=exemption.etag,
                    match_condition=UNCHANGED,
                )
        except (StoreConflictError, StoreNotFoundError):
            return False
        return True

    def list_exemptions(self, cluster_key: str | None = None) -> list[PoolExemption]:
        """Every stored exemption of one cluster (or all), expired or not, each with its ETag:
        callers honour only those still in force (`PoolExemption.in_force`)."""
        entities = self._query(EXEMPTIONS_TABLE, cluster_key)
        return [record_of(PoolExemption, entity, etag=entity.metadata["etag"]) for entity in entities]


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
