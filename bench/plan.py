"""Section 4: `plan` over many clusters, with an ARM that answers after a simulated latency.

Per fleet size, on one emulator (`latency_seconds` on every request):
- the warden: `scan_fleet` with the real ARM adapter (SDK clients), `WORKERS` reads at once;
- the floor: a plain `http.client` replaying the very GETs the warden sent (the cluster list,
  then the pool lists on as many threads), with no SDK and no planning;
- `workers=1`: the scan one cluster after another, as `plan` read before it had workers.
The warden and the floor are the median of `REPEATS` runs; workers=1 runs once (it is slow).
The emulator runs in a process of its own (`python -m shared.local.arm_emulator`), as ARM is not
in the warden's: its request handling does not take the scan's interpreter lock.
"""

from __future__ import annotations

import http.client
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench import fleets
from shared.adapters.arm import Arm
from shared.local.arm_emulator import RecordedRequest
from shared.local.demo import DEMO_POLICY
from shared.policy import load_policy
from shared.policy.fleet import DEFAULT_WORKERS, ReadBudget, scan_fleet

PLAN_SIZES = (10, 50, 200)
LATENCY_SECONDS = 0.05
WORKERS = DEFAULT_WORKERS
REPEATS = 3
ROOT = Path(__file__).resolve().parents[1]
POLICY = load_policy(DEMO_POLICY.read_text(encoding="utf-8"))


def measure_plan(clusters: int) -> dict:
    """The figures of one fleet size (see the module docstring)."""
    with _emulator(fleets.many_clusters_fleet(clusters), LATENCY_SECONDS) as emulator:
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
    with _emulator(fleets.many_clusters_fleet(2), 0.0) as emulator:
        _replay(emulator.base_url, _scan(emulator, WORKERS)["sent"], WORKERS)


def _scan(emulator: _EmulatorProcess, workers: int) -> dict:
    """One `plan`'s read of the fleet, as the CLI makes it: a fresh adapter, the SDK's default retries."""
    emulator.clear_requests()
    budget = ReadBudget()
    began = time.perf_counter()
    with Arm(emulator.base_url, local=True) as arm:
        report = scan_fleet(arm, [fleets.SUBSCRIPTION], POLICY, workers=workers, budget=budget)
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "sent": emulator.requests(),
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


class _EmulatorProcess:
    """The ARM emulator in a process of its own: its URL, and its request log over its admin API."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._admin = _Client(base_url)

    def requests(self) -> list[RecordedRequest]:
        log = self._admin.admin("GET", "/_emulator/requests")
        return [RecordedRequest(r["method"], r["path"], r["query"]) for r in log["requests"]]

    def clear_requests(self) -> None:
        self._admin.admin("DELETE", "/_emulator/requests")

    def close(self) -> None:
        self._admin.close()


@contextmanager
def _emulator(fleet: dict, latency_seconds: float) -> Iterator[_EmulatorProcess]:
    with tempfile.TemporaryDirectory() as scratch:
        fleet_file = Path(scratch) / "fleet.json"
        fleet_file.write_text(json.dumps(fleet), encoding="utf-8")
        command = [sys.executable, "-m", "shared.local.arm_emulator", "--fleet", str(fleet_file)]
        command += ["--latency-seconds", str(latency_seconds)]
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
            try:
                base_url = process.stdout.readline().strip()
                if not base_url.startswith("http://127.0.0.1:"):
                    raise RuntimeError(f"the ARM emulator did not start (it printed {base_url!r})")
                emulator = _EmulatorProcess(base_url)
                try:
                    yield emulator
                finally:
                    emulator.close()
            finally:
                process.terminate()
                process.wait(timeout=30)


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

    def admin(self, method: str, path: str) -> dict:
        """A call of the emulator's admin API (its answer, {} when it has none)."""
        connection = self._connection()
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        if response.status >= 300:
            raise RuntimeError(f"emulator {method} {path} answered {response.status}: {body[:200]!r}")
        return json.loads(body) if body else {}

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
