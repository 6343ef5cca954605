"""Reconcile wall time per pool on the in-process host, against the code of a baseline commit.

The scenario is `cluster-x10` (section 1): one managedClusters/write event for a cluster of 10
drifted LocalUser pools, delivered and run by `LocalFunctions` on a virtual clock, with Azurite
and the ARM emulator. Two figures per run, seconds / 10:
- reconcile: from the delivery until the cluster's `reconcile_cluster` has ended (the goal's
  figure, like the ARM read rows of section 1, which count until then);
- to idle: until nothing is left to run, the verification that each remediation asks for
  included (informational: its cost per node is section 5's).

Each side runs the same `timed_run` (its source is sent along) in a subprocess of its own, on the
same Azurite: this tree, and the tree of `BASELINE_COMMIT`, the commit before the reconcile was
made cheaper, taken with `git archive` into a temporary directory (the checkout is not touched).
The two alternate, `RUNS` times each. Each run of ours is divided by the baseline's run next to
it, and the ratio is the median of those pairs: the machine's speed drifts over a run of the
bench, and a pair sees the same drift. The seconds shown are the medians of each side. Without
git or the commit (an exported tree, a shallow clone) the baseline is the figure recorded in
bench/README.md, `RECORDED_BASELINE` (the ratio: the median of ours divided by it), and the
report says so.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "0f37603"
RECORDED_BASELINE = {"reconcile": 0.178, "idle": 0.263}  # seconds per pool on BASELINE_COMMIT (bench/README.md)
SCENARIO = "cluster-x10"
RUNS = 11


def timed_run(tables: str, key: str) -> dict:
    """One fresh run of scenario `key`: seconds per pool until the reconcile ended and until idle.
    Uses only what the baseline tree has too: its source runs there as it is."""
    import time

    from bench.scenarios import SCENARIOS
    from bench.stack import Run
    from shared.orchestration import names

    [scenario] = [s for s in SCENARIOS if s.key == key]
    ended = []
    with Run(tables, scenario.fleet(), lro_polls=scenario.lro_polls) as run:
        run.watchers.append(
            lambda e: (
                e.kind == "completed"
                and e.orchestration == names.RECONCILE_CLUSTER
                and ended.append(time.perf_counter())
            )
        )
        events = scenario.events()
        began = time.perf_counter()
        run.deliver(*events)
        idle = time.perf_counter()
    return {"reconcile": (ended[0] - began) / scenario.pools, "idle": (idle - began) / scenario.pools}


# Runs in each tree (this one and the baseline's), in a process of its own: one `timed_run` per
# line read, its figures back as JSON. Both sides are measured alike, after one unmeasured run.
_CHILD = f"""
import json, logging, sys
logging.basicConfig(level=logging.ERROR)
{inspect.getsource(timed_run)}
timed_run(sys.argv[1], sys.argv[2])  # unmeasured: the imports and first connections of the scenario
print("ready", flush=True)
for _ in sys.stdin:
    print(json.dumps(timed_run(sys.argv[1], sys.argv[2])), flush=True)
"""


def measure(tables: str) -> dict:
    ours_process = _Tree.start(ROOT, tables)
    if ours_process is None:
        raise RuntimeError("this tree's reconcile measurement did not start (see the log above)")
    baseline, source = _Tree.start(_baseline_tree(), tables), f"commit {BASELINE_COMMIT}, measured in this run"
    ours, theirs = [], []
    try:
        for _ in range(RUNS):
            ours.append(ours_process.measure())
            if baseline is not None:
                theirs.append(baseline.measure())
    finally:
        for tree in (ours_process, baseline):
            if tree is not None:
                tree.close()
    if not theirs:
        theirs, source = [RECORDED_BASELINE], f"commit {BASELINE_COMMIT}, recorded in bench/README.md"
    medians = {k: statistics.median(r[k] for r in ours) for k in _SUFFIX}
    return {
        "scenario": SCENARIO,
        "runs": RUNS,
        "baseline": source,
        **{f"seconds_per_pool{_SUFFIX[k]}": medians[k] for k in _SUFFIX},
        **{f"baseline_seconds_per_pool{_SUFFIX[k]}": statistics.median(r[k] for r in theirs) for k in _SUFFIX},
        **{f"ratio{_SUFFIX[k]}": paired_ratio(ours, theirs, k) for k in _SUFFIX},
        "seconds_all": [r["reconcile"] for r in ours],
        "baseline_seconds_all": [r["reconcile"] for r in theirs],
    }


def paired_ratio(ours: list[dict], theirs: list[dict], key: str) -> float:
    """The median of ours / theirs over the runs made side by side (with one recorded baseline:
    each of ours against it)."""
    pairs = zip(ours, theirs if len(theirs) == len(ours) else theirs * len(ours), strict=True)
    return statistics.median(mine[key] / other[key] for mine, other in pairs)


_SUFFIX = {"reconcile": "", "idle": "_to_idle"}


class _Tree:
    """A tree's `timed_run` in a subprocess, answering one measure per request."""

    def __init__(self, process: subprocess.Popen):
        self._process = process

    @classmethod
    def start(cls, tree: Path | None, tables: str) -> _Tree | None:
        if tree is None:
            return None
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, tables, SCENARIO],
            cwd=tree,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # its own tree, not another
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started = cls(process)
        if started._line() != "ready":
            started.close()
            log.warning("the reconcile measurement in %s did not start", tree)
            return None
        return started

    def measure(self) -> dict:
        self._process.stdin.write("measure\n")
        self._process.stdin.flush()
        return json.loads(self._line())

    def _line(self) -> str:
        return (self._process.stdout.readline() or "").strip()

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _baseline_tree() -> Path | None:
    """The baseline commit's files in a temporary directory (reused across runs); None without git."""
    tree = Path(tempfile.gettempdir()) / f"warden-bench-{BASELINE_COMMIT}"
    if (tree / "function_app.py").exists():
        return tree
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", BASELINE_COMMIT],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("no baseline tree (git archive %s: %s); using the recorded figure", BASELINE_COMMIT, e)
        return None
    partial = tree.with_name(f"{tree.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as files:
        files.extractall(partial, filter="data")
    partial.rename(tree)
    return tree
