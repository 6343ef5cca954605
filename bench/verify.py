"""Section 5: a fleet verification (sshd checked by run-command on every sampled node), timed
against the ideal schedule, with its ARM and Table Storage requests counted.

Per case, on a fresh emulator fleet and fresh tables: `verify_fleet` (what the verify timer
does) requests verify work for every cluster, then the Durable host runs until idle. Every
run-command stays InProgress `run_command_seconds` on the emulator's clock, which is the Durable
host's clock. Measured:
- *makespan*: the Durable host's clock from the request to idle, against the ideal
  `ceil(checks / concurrency) x run_command_seconds` (concurrency: WARDEN_VERIFY_CONCURRENCY, the
  run-commands allowed in flight in one subscription; the fleet is in one subscription);
- from the emulator's `run_command_log` (a run-command counts from its POST until the poll that
  finds it ended: the VM is busy, and the slot held, that long): the peak run-commands in flight
  and the peak run-command starts (ARM writes) in any 1 s and any 10 s of the subscription;
- the slots' use: seconds of run-command / (concurrency x makespan);
- the `busy` answers of `start_node_check` (no slot free: the node waits and asks again);
- ARM requests by kind, per node check; Table requests by table, per 100 node rows (one row per
  check: the `WardenNodeChecks` history row), counted by a transport under the Tables SDK.

The clock: `virtual` cases run on the Durable host's virtual clock, which jumps to the next
durable timer when nothing else can run, so a fleet whose run-commands take the real ~20 s
each is verified in minutes, and the makespan is what the orchestrations' own waits (slot
retries, polls) give when ARM, Table Storage and the workers take no time; the wall seconds
are then what the whole local stack costs on this machine. The `real` case runs the same
code on the real clock (run-commands of 2 s), small enough that one process on 2 cores keeps
up, and its virtual twin shows how far the two clocks agree.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import RequestsTransport

from bench import fleets
from bench.stack import START, Run
from shared.config import DEFAULT_VERIFY_CONCURRENCY
from shared.local.arm_emulator import RecordedRequest
from shared.local.arm_emulator.compute import RunCommandRecord
from shared.local.durable_host import HostEvent, RealClock, VirtualClock
from shared.orchestration import names
from shared.triggers.verify import verify_fleet

MAX_EPISODES = 10_000_000  # a fleet verification runs tens of thousands of episodes
HEARTBEAT_SECONDS = 20.0  # wall seconds between progress lines on stderr


@dataclass(frozen=True)
class Case:
    key: str
    clusters: int
    pools: int  # per cluster
    nodes: int  # per pool; the policy samples 2 (its default), so at most 2 are checked
    run_command_seconds: float
    poll_seconds: int  # WARDEN_POLL_SECONDS
    concurrency: int = DEFAULT_VERIFY_CONCURRENCY  # WARDEN_VERIFY_CONCURRENCY
    clock: str = "virtual"  # or "real"

    @property
    def total_pools(self) -> int:
        return self.clusters * self.pools

    @property
    def checks(self) -> int:
        return self.total_pools * min(self.nodes, 2)

    @property
    def ideal_seconds(self) -> float:
        return math.ceil(self.checks / self.concurrency) * self.run_command_seconds


# The cross-check (one fleet on both clocks, run-commands of 2 s), then 100 and 1,000 pools of 2 nodes
# with run-commands of the real ~20 s, polled once each (WARDEN_POLL_SECONDS = the run-command's
# duration), and 100 pools with the default WARDEN_POLL_SECONDS of 30.
CASES = (
    Case("x50-real", 25, 2, 2, 2.0, 2, clock="real"),
    Case("x50-virtual", 25, 2, 2, 2.0, 2),
    Case("x100", 25, 4, 2, 20.0, 20),
    Case("x100-poll30", 25, 4, 2, 20.0, 30),
    Case("x1000", 250, 4, 2, 20.0, 20),
)


def measure(tables: str, case: Case) -> dict:
    """One fleet verification of `case` on a fresh fleet and fresh tables (see the module docstring)."""
    clock = RealClock() if case.clock == "real" else VirtualClock(START)
    origin = clock.now()

    def seconds() -> float:  # the emulator's clock: the Durable host's, in seconds from the start
        return (clock.now() - origin).total_seconds()

    transport = CountingTransport()
    env = {
        "WARDEN_POLL_SECONDS": str(case.poll_seconds),
        "WARDEN_VERIFY_CONCURRENCY": str(case.concurrency),
    }
    emulator = {"clock": seconds, "run_command_seconds": case.run_command_seconds}
    fleet = fleets.verify_fleet(case.clusters, case.pools, case.nodes)
    with Run(
        tables,
        fleet,
        lro_polls=0,  # a run-command ends by time alone
        env=env,
        clock=clock,
        emulator_options=emulator,
        store_options={"transport": transport},
    ) as run:
        watch = _Watch(case, seconds)
        run.watchers.append(watch)
        transport.clear()  # creating the tables is not the verification's
        began, began_wall = seconds(), time.perf_counter()
        report = run.functions.with_client(lambda client: verify_fleet(client, run.runtime, "bench", "bench"))
        run.functions.durable.run_until_idle(max_episodes=MAX_EPISODES)
        makespan, wall = seconds() - began, time.perf_counter() - began_wall
        tables_sent = Counter(transport.sent)
        prefix = run.runtime.store.table_prefix
        rows = run.runtime.store.list_node_checks()
        log, requests = run.emulator.run_command_log, run.emulator.requests
        history = _node_histories(run)
    verdicts = dict(sorted(Counter(r.verdict for r in rows).items()))
    by_table = _by_table(tables_sent, prefix)
    table_total = sum(by_table.values())
    arm = Counter(arm_kind(r) for r in requests)
    checks = len(log)
    in_flight, starts_1s, starts_10s, busy_seconds = _run_commands(log, makespan)
    return {
        "case": case.key,
        "clock": case.clock,
        "clusters": case.clusters,
        "pools": case.total_pools,
        "nodes_per_pool": case.nodes,
        "run_command_seconds": case.run_command_seconds,
        "poll_seconds": case.poll_seconds,
        "concurrency": case.concurrency,
        "requested": len(report.requested),
        "errors": len(report.errors),
        "checks": checks,
        "expected_checks": case.checks,
        "node_rows": len(rows),
        "verdicts": verdicts,
        "makespan_seconds": makespan,
        "ideal_seconds": case.ideal_seconds,
        "vs_ideal": makespan / case.ideal_seconds,
        "wall_seconds": wall,
        "peak_in_flight": in_flight,
        "peak_starts_1s": starts_1s,
        "peak_starts_10s": starts_10s,
        "mean_starts_per_second": checks / makespan if makespan else 0.0,
        "slot_use": busy_seconds / (case.concurrency * makespan) if makespan else 0.0,
        "busy_answers": watch.busy,
        "busy_per_check": watch.busy / checks if checks else 0.0,
        "history_per_check": history / checks if checks else 0.0,
        "arm": dict(sorted(arm.items())),
        "arm_per_check": sum(arm.values()) / checks if checks else 0.0,
        "tables": by_table,
        "tables_total": table_total,
        "tables_per_100_rows": 100 * table_total / len(rows) if rows else 0.0,
        "tables_per_100_rows_by_table": {k: 100 * v / len(rows) for k, v in by_table.items()} if rows else {},
    }


class CountingTransport(RequestsTransport):
    """The Tables SDK's transport, counting what it sends: (method, table) -> requests, where
    the table of a transaction (`$batch`) is that of its first operation."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: Counter[tuple[str, str]] = Counter()

    def clear(self) -> None:
        self.sent.clear()

    def send(self, request, **kwargs):
        self.sent[(request.method, _table_of(request))] += 1
        return super().send(request, **kwargs)


def _table_of(request: Any) -> str:
    inner = getattr(request, "multipart_mixed_info", None)
    if inner:  # a transaction: a batch holding one changeset holding the operations
        changeset = inner[0][0]
        operations = (getattr(changeset, "multipart_mixed_info", None) or [[]])[0]
        return _table_of(operations[0]) if operations else "$batch"
    path = unquote(urlsplit(request.url).path).strip("/").split("/")
    return path[-1].split("(")[0] if len(path) >= 2 else "?"


def _by_table(sent: Counter, prefix: str) -> dict[str, int]:
    """Requests by table, prefix dropped (`Tables` is the table service itself)."""
    totals: Counter[str] = Counter()
    for (_method, table), count in sent.items():
        totals[table.removeprefix(prefix).removeprefix("Warden")] += count
    return dict(sorted(totals.items()))


def arm_kind(request: RecordedRequest) -> str:
    """What an ARM request of a verification is, from its method and path."""
    path = request.path.lower().rstrip("/")
    if request.method == "POST" and path.endswith("/runcommand"):
        return "run-command"
    if "/operations/" in path:
        return "poll"
    for suffix, kind in (
        ("/virtualmachines", "vm-list"),
        ("/virtualmachinescalesets", "vmss-list"),
        ("/agentpools", "pool-list"),
        ("/managedclusters", "cluster-list"),
    ):
        if path.endswith(suffix):
            return kind
    if "/managedclusters/" in path and "/agentpools/" not in path:
        return "cluster"
    return f"{request.method} other"


def _run_commands(log: list[RunCommandRecord], makespan: float) -> tuple[int, int, int, float]:
    """Peak in flight, peak starts in any 1 s and any 10 s (per subscription: the largest), and
    the run-command seconds in all."""
    in_flight = starts_1s = starts_10s = 0
    busy = 0.0
    for subscription in {r.subscription for r in log}:
        mine = [r for r in log if r.subscription == subscription]
        ends = [r.end if r.end is not None else makespan for r in mine]
        busy += sum(end - r.start for r, end in zip(mine, ends, strict=True))
        # Ends before starts at the same moment: a slot freed and taken again is not two in flight.
        events = sorted([(r.start, 1) for r in mine] + [(end, -1) for end in ends], key=lambda e: (e[0], e[1]))
        current = 0
        for _, step in events:
            current += step
            in_flight = max(in_flight, current)
        starts = sorted(r.start for r in mine)
        starts_1s = max(starts_1s, _most_in_window(starts, 1.0))
        starts_10s = max(starts_10s, _most_in_window(starts, 10.0))
    return in_flight, starts_1s, starts_10s, busy


def _most_in_window(times: list[float], width: float) -> int:
    """The most of the sorted `times` in any half-open window [t, t + width)."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= width:
            first += 1
        most = max(most, last - first + 1)
    return most


def _node_histories(run: Run) -> int:
    durable = run.functions.durable
    return sum(durable.history_length(s.instance_id) for s in durable.statuses() if s.name == names.VERIFY_NODE)


class _Watch:
    """Counts `busy` answers of start_node_check, and prints progress to stderr now and then."""

    def __init__(self, case: Case, seconds):
        self.case, self.seconds = case, seconds
        self.busy = self.checked = 0
        self._next = time.perf_counter() + HEARTBEAT_SECONDS

    def __call__(self, event: HostEvent) -> None:
        if event.kind == "activity-completed" and event.activity == names.START_NODE_CHECK:
            value = event.payload.get("value") if isinstance(event.payload, dict) else None
            self.busy += bool(value and value.get("busy"))
        elif event.kind == "completed" and event.orchestration == names.VERIFY_NODE:
            self.checked += 1
            if time.perf_counter() >= self._next:
                self._next = time.perf_counter() + HEARTBEAT_SECONDS
                print(
                    f"[bench]   {self.case.key}: {self.checked} of {self.case.checks} nodes checked, "
                    f"clock {self.seconds():.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
