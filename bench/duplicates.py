"""A duplicate event in a storm: what one more copy of an event already handled costs.

One event for the drifted `localuser` pool is delivered and run to idle; then `COPIES` more
copies of it (the same id, as Event Grid redelivers) are delivered, one trigger call each, as
`LocalFunctions` calls the real trigger with a real Durable client, and timed: seconds per copy.
Each must start nothing (no new orchestration, no ARM request) and write no Table row.

The floor: one Table `upsert_entity` of a row like the event's audit row, on the same Azurite,
by the same SDK, in rounds alternating with the copies'. Ratio = copy / upsert (goal <= 2).
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime

from azure.data.tables import TableServiceClient

from bench import fleets
from bench.stack import Run
from shared.core.table_keys import cluster_partition

ROUNDS = 5
COPIES = 40  # per round


def measure(tables: str) -> dict:
    """Milliseconds per duplicate copy and per upsert: `ROUNDS` rounds of `COPIES` of each,
    alternating (the machine's load moves both alike); the median round of each."""
    event = fleets.write_event(fleets.LOCALUSER_POOL, event_id=f"duplicate-{uuid.uuid4()}")
    with Run(tables, fleets.demo_fleet()) as run, _UpsertTable(tables) as upsert:
        run.deliver(event)
        statuses, requests = len(run.functions.durable.statuses()), len(run.emulator.requests)
        copies, upserts = [], []
        for _ in range(ROUNDS):
            began = time.perf_counter()
            run.functions.deliver_events([event] * COPIES)
            copies.append((time.perf_counter() - began) / COPIES)
            upserts.append(upsert.seconds(COPIES))
        started = len(run.functions.durable.statuses()) - statuses
        arm = len(run.emulator.requests) - requests
    if started or arm:
        raise RuntimeError(f"duplicate copies started {started} orchestrations and sent {arm} ARM requests")
    return {
        "copies": ROUNDS * COPIES,
        "ms": 1000 * statistics.median(copies),
        "floor_ms": 1000 * statistics.median(upserts),
    }


class _UpsertTable:
    """A table of its own on the same Azurite, for the floor: `upsert_entity` of an audit-sized row."""

    def __init__(self, tables: str):
        self._service = TableServiceClient.from_connection_string(tables)
        self._name = f"bupsert{uuid.uuid4().hex[:10]}"
        self._table = self._service.create_table(self._name)
        self._count = 0
        self.seconds(1)  # the first request pays for the connection

    def seconds(self, count: int) -> float:
        """Mean seconds of `count` upserts of new rows."""
        row = {
            "PartitionKey": cluster_partition(fleets.DEV_CLUSTER),
            "Step": "event",
            "Outcome": "planned",
            "Message": "agentPools/write: reconcile started: warden-worker-0123456789abcdef",
            "Time": datetime.now(UTC),
        }
        began = time.perf_counter()
        for _ in range(count):
            self._count += 1
            self._table.upsert_entity({**row, "RowKey": f"row-{self._count:06d}"})
        return (time.perf_counter() - began) / count

    def __enter__(self) -> _UpsertTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._service.delete_table(self._name)
        finally:
            self._service.close()
