"""Bounds that every cluster's worker shares, in `WardenSlots`: run-command slots per
subscription, and the reimage budget's line, holds and paused clusters (docs/tables.md). A mixin
of `WardenStore`, which gives it `_table` and `_query`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.table_io import (
    MAX_TRANSACTION_OPERATIONS,
    SLOTS_TABLE,
    UNCHANGED,
    find_row,
    if_match,
    sdk_entity,
    translated,
)
from shared.core.errors import StoreConflictError, StoreNotFoundError
from shared.core.table_keys import cluster_partition, table_key, time_key, utc
from shared.policy.blast_radius import Claim, Limits, Pause, Turn, turn_of

# The reimage budget's partition of WardenSlots (its gate, holds and tickets), and the paused clusters'.
REIMAGES_PARTITION, REIMAGE_PAUSES_PARTITION = "reimages", "reimage-pauses"
REIMAGE_GATE, HOLD_PREFIX, TICKET_PREFIX = "gate", "hold-", "turn-"


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


class Slots:
    """Bounds on concurrent work across every cluster's worker: run-command slots per
    subscription, and the reimage budget (its line of waiters, the reimages in flight, paused
    clusters)."""

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
                with translated(f"take a slot of {scope!r}"):
                    if free and free[0] < f"slot-{limit:04d}":
                        written = self._table(SLOTS_TABLE).update_entity(
                            {**taken, "RowKey": free[0]},
                            mode=UpdateMode.REPLACE,
                            etag=rows[free[0]].metadata["etag"],
                            match_condition=UNCHANGED,
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
                translated(f"free a slot of {scope!r}"),
            ):
                self._table(SLOTS_TABLE).update_entity(
                    freed, mode=UpdateMode.REPLACE, etag=row["etag"], match_condition=UNCHANGED
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
                    self._grant(claim, find_row(rows, REIMAGE_GATE), ticket, gone, now, hold_ttl)
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
        with translated(f"query {table.table_name}"):
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
            ("update", {**gate, "Grants": grants + 1}, {"mode": UpdateMode.REPLACE, **if_match(gate)})
            if gate
            else ("create", {"PartitionKey": table_key(REIMAGES_PARTITION), "RowKey": REIMAGE_GATE, "Grants": 1}),
            ("upsert", hold, {"mode": UpdateMode.REPLACE}),
        ]
        leaving = ([ticket] if ticket is not None else []) + sorted(
            (e for e in expired if e["RowKey"] != hold_key), key=lambda e: not e["RowKey"].startswith(HOLD_PREFIX)
        )
        operations += [("delete", row, if_match(row)) for row in leaving[: MAX_TRANSACTION_OPERATIONS - 2]]
        self._commit(operations, f"start a reimage for {claim.holder!r}")

    def _keep_place(self, claim: Claim, ticket: Any, now: datetime, ttl: timedelta) -> None:
        """A waiter's ticket keeps its place while it keeps asking; it expires when it stops."""
        table = self._table(SLOTS_TABLE)
        with translated(f"keep {claim.holder!r} in line for a reimage"):
            if ticket is None:
                key = f"{TICKET_PREFIX}{time_key(now)}-{table_key(claim.holder)}"
                table.create_entity(sdk_entity({**self._claim_entity(claim, key, now, ttl), "Waiter": claim.holder}))
            elif utc(ticket["Expires"]) - utc(now) < ttl / 2:
                table.update_entity({**ticket, "Expires": utc(now + ttl)}, mode=UpdateMode.REPLACE, **if_match(ticket))

    def renew_reimage_hold(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Keep a running reimage's hold from expiring (written when half its time is gone);
        False when it has none any more (it expired and its room was given away)."""
        partition, key = table_key(REIMAGES_PARTITION), HOLD_PREFIX + table_key(holder)
        try:
            with translated(f"renew the reimage hold of {holder!r}"):
                row = self._table(SLOTS_TABLE).get_entity(partition, key)
                if utc(row["Expires"]) - utc(now) < ttl / 2:
                    renewed = {**row, "Expires": utc(now + ttl)}
                    self._table(SLOTS_TABLE).update_entity(renewed, mode=UpdateMode.REPLACE, **if_match(row))
        except (StoreNotFoundError, StoreConflictError):
            return False
        return True

    def release_reimage_hold(self, holder: str) -> None:
        """The reimage ended: its room is free (releasing twice is fine)."""
        partition, key = table_key(REIMAGES_PARTITION), HOLD_PREFIX + table_key(holder)
        with contextlib.suppress(StoreNotFoundError), translated(f"release the reimage hold of {holder!r}"):
            self._table(SLOTS_TABLE).delete_entity(partition, key)

    def leave_reimage_line(self, holder: str) -> None:
        """`holder` no longer reimages nor waits: its hold and its ticket go."""
        rows = self._query(SLOTS_TABLE, None, partition=table_key(REIMAGES_PARTITION))
        for row in rows:
            if holder in (row.get("Holder"), row.get("Waiter")):
                with contextlib.suppress(StoreNotFoundError), translated(f"take {holder!r} out of the reimage line"):
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
        with translated(f"pause the reimages of {pause.cluster_id!r}"):
            self._table(SLOTS_TABLE).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def reimage_pause(self, cluster_key: str) -> Pause | None:
        try:
            with translated(f"read the reimage pause of {cluster_key!r}"):
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
                with translated(f"resume the reimages of {cluster_key!r}"):
                    row = self._table(SLOTS_TABLE).get_entity(
                        table_key(REIMAGE_PAUSES_PARTITION), cluster_partition(cluster_key)
                    )
                    self._table(SLOTS_TABLE).delete_entity(row["PartitionKey"], row["RowKey"], **if_match(row))
            except StoreNotFoundError:
                return None
            except StoreConflictError:
                continue  # paused again meanwhile: read the newer pause
            return self._pause(row)
        raise StoreConflictError(f"the reimage pause of {cluster_key!r} kept changing; gave up after {attempts} tries")

    def _commit(self, operations: list[tuple], action: str) -> None:
        """One transaction of conditional writes: a row changed or gone meanwhile is a conflict."""
        with translated(action):
            try:
                self._table(SLOTS_TABLE).submit_transaction(
                    [(op[0], sdk_entity(dict(op[1])), *op[2:]) for op in operations]
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
