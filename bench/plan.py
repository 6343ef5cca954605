"""Section 4: `plan` over many clusters, with an ARM that answers after a simulated latency.

Per fleet size, on one emulator (`latency_seconds` on every request):
- the warden: `scan_fleet` with the real ARM adapter (SDK clients), `WORKERS` reads at once;
- the floor: a plain `http.client` replaying the very GETs the warden sent (the cluster list,
  then the pool lists on as many threads), with no SDK and no planning;
- `workers=1`: the scan one cluster after another, as `plan` read before it had workers.
The warden and the floor are the median of `REPEATS` runs; workers=1 runs once (it is slow).
"""

from __future__ import annotations

import http.client
import json
import math
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

from bench import fleets
from shared.adapters.arm import Arm
from shared.fleet import DEFAULT_WORKERS, ReadBudget, scan_fleet
from shared.local.arm_emulator import ArmEmulator, RecordedRequest
from shared.local.demo import DEMO_POLICY
from shared.policy import load_policy

PLAN_SIZES = (10, 50, 200)
LATENCY_SECONDS = 0.05
WORKERS = DEFAULT_WORKERS
REPEATS = 3
POLICY = load_policy(DEMO_POLICY.read_text(encoding="utf-8"))


def measure_plan(clusters: int) -> dict:
    """The figures of one fleet size (see the module docstring)."""
    with ArmEmulator(fleets.many_clusters_fleet(clusters), latency_seconds=LATENCY_SECONDS) as emulator:
        runs = [_scan(emulator, WORKERS) for _ in range(REPEATS)]
        floors = [_replay(emulator.base_url, runs[-1]["sent"], WORKERS) for _ in range(REPEATS)]
        sequential = _scan(emulator, 1)
    last = runs[-1]
    warden, floor = statistics.median(r["seconds"] for r in runs), statistics.median(floors)
    theory = math.ceil(clusters / WORKERS) * LATENCY_SECONDS
    return {
        "clusters": clusters,
        "workers": WORKERS,
        "latency_seconds": LATENCY_SECONDS,
        "pools": last["pools"],
        "errors": last["errors"],
        "requests": dict(Counter(r.method for r in last["sent"])),
        "budget_wait_seconds": last["budget_wait"],
        "seconds": warden,
        "seconds_all": sorted(r["seconds"] for r in runs),
        "floor_seconds": floor,
        "theory_seconds": theory,
        "sequential_seconds": sequential["seconds"],
    }


def warm_up() -> None:
    """One unmeasured scan and replay, so the first size does not pay for imports and first connections."""
    with ArmEmulator(fleets.many_clusters_fleet(2)) as emulator:
        _replay(emulator.base_url, _scan(emulator, WORKERS)["sent"], WORKERS)


def _scan(emulator: ArmEmulator, workers: int) -> dict:
    """One `plan`'s read of the fleet, as the CLI makes it: a fresh adapter, the SDK's default retries."""
    emulator.clear_requests()
    budget = ReadBudget()
    began = time.perf_counter()
    with Arm(emulator.base_url, local=True) as arm:
        report = scan_fleet(arm, [fleets.SUBSCRIPTION], POLICY, workers=workers, budget=budget)
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "sent": emulator.requests,
        "pools": len(report.plans),
        "errors": len(report.errors),
        "budget_wait": budget.waited_seconds,
    }


def _replay(base_url: str, sent: list[RecordedRequest], workers: int) -> float:
    """Wall seconds for a plain HTTP client to GET the same URLs: the cluster list(s) first (the
    pool lists are known only from it), then the rest on `workers` threads, one keep-alive
    connection each."""
    is_list = [r.path.lower().endswith("/managedclusters") for r in sent]
    lists = [r for r, first in zip(sent, is_list, strict=True) if first]
    rest = [r for r, first in zip(sent, is_list, strict=True) if not first]
    client = _Client(base_url)
    began = time.perf_counter()
    try:
        for request in lists:
            client.get(request)
        with ThreadPoolExecutor(max_workers=workers) as executor:
            list(executor.map(client.get, rest))
    finally:
        client.close()
    return time.perf_counter() - began


class _Client:
    """http.client with one connection per thread; it reads and parses every body, as any client must."""

    def __init__(self, base_url: str):
        self._address = urlsplit(base_url)
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, request: RecordedRequest) -> None:
        connection = self._connection()
        connection.request("GET", f"{request.path}?{urlencode(request.query)}", headers={"Authorization": "Bearer x"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"floor GET {request.path} answered {response.status}: {body[:200]!r}")
        json.loads(body)

    def _connection(self) -> http.client.HTTPConnection:
        if not hasattr(self._local, "connection"):
            self._local.connection = http.client.HTTPConnection(self._address.hostname, self._address.port, timeout=30)
            with self._lock:
                self._connections.append(self._local.connection)
        return self._local.connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
