"""`verify [--cluster ID]`: check sshd on sampled nodes now, through the app's own triggers and
orchestrations in-process, and print the verdict per pool (the last check of each pool, after
any re-enforcement the drift caused)."""

from __future__ import annotations

import argparse
from collections import Counter

from shared.cli import BadInput, progress
from shared.cli.output import Column, say
from shared.cli.run import RunResult, error_entry, local_functions, run_to_end, show_run
from shared.config import Settings
from shared.core.models import ClusterRef
from shared.core.protocol import Outcome, WorkKind
from shared.evidence.sshd import Verdict
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.triggers.http_api import BadRequest, reconcile_target
from shared.triggers.start import StartError, request_work
from shared.triggers.verify import verify_fleet

ACTOR = "cli"
REIMAGED = "reimaged"  # in a pool's history: the warden remediated it between two checks
VERIFY_SHAPE = (
    '{"pools": [{"clusterId", "poolId", "subscription", "resourceGroup", "cluster", "pool", "os", "mode", "verdict", '
    '"reason", "history": [verdicts, "reimaged", ...], "nodes"}], '
    '"summary": {verdict: count}, "errors": [{"target", "code", "message"}], "left": [...], "stopped": null | why}'
)
COLUMNS = (
    Column("CLUSTER"),
    Column("POOL"),
    Column("OS", drop=1),
    Column("MODE"),
    Column("VERDICT"),
    Column("REASON", flex=True),
)


def run_verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    target = _target(args.cluster) if args.cluster else None
    with local_functions(settings, args) as functions:
        errors = functions.with_client(lambda client: _request(client, target))
        result = run_to_end(functions, args.timeout)
        result.errors += errors
        return report_verification(functions, args, result)


def _target(cluster: str):
    try:
        return reconcile_target({"cluster": cluster})
    except BadRequest as e:
        raise BadInput(f"{e.code}: {e.message}") from e


async def _request(client, target) -> list[dict]:
    rt = runtime.runtime()
    if target is None:
        report = await verify_fleet(client, rt, "verify from the command line", ACTOR)
        progress(f"verify: {len(report.requested)} clusters, {len(report.skipped)} stopped ones skipped")
        return [error_entry("", "VerifyNotRequested", e) for e in report.errors]
    try:
        await request_work(client, rt.store, target, "verify from the command line", ACTOR, WorkKind.VERIFY)
    except StartError as e:
        return [error_entry(target.cluster.id, "VerifyNotStarted", str(e))]
    return []


def report_verification(functions: LocalFunctions, args: argparse.Namespace, result: RunResult) -> int:
    """The last verification of each pool, with what happened to it on the way (`history`: a
    drift the warden reimaged shows as drift, reimaged, ok). Exit 1 when a pool is left drifted
    or unknown: a node nobody could check proves nothing."""
    pools: dict[str, dict] = {}
    history: dict[str, list[str]] = {}
    for status in sorted(functions.durable.statuses(), key=lambda s: s.created_time):
        if not isinstance(status.output, dict) or status.name not in (names.VERIFY_CLUSTER, names.RECONCILE_CLUSTER):
            continue
        cluster = status.input["cluster"]
        ref = ClusterRef(cluster["subscription"], cluster["resourceGroup"], cluster["name"])
        if status.name == names.RECONCILE_CLUSTER:
            for outcome in status.output.get("outcomes", []):
                key = f"{ref.id}/agentPools/{outcome['pool']}".lower()
                if key in history and outcome.get("outcome") == Outcome.SUCCEEDED and outcome.get("followUp"):
                    history[key].append(REIMAGED)
            continue
        if error := status.output.get("error"):
            result.errors.append(error_entry(ref.id, error.get("code", ""), error.get("message", "")))
        for pool in status.output.get("pools", []):
            pool_id = f"{ref.id}/agentPools/{pool['pool']}"
            history.setdefault(pool_id.lower(), []).append(pool["verdict"])
            pools[pool_id.lower()] = {
                "clusterId": ref.id,
                "poolId": pool_id,
                "subscription": ref.subscription,
                "resourceGroup": ref.resource_group,
                "cluster": ref.name,
                **pool,
                "history": history[pool_id.lower()],
            }
    result.rows = [pools[key] for key in sorted(pools)]
    summary = dict(sorted(Counter(r["verdict"] for r in result.rows).items()))
    cells = [
        (
            f"{r['resourceGroup']}/{r['cluster']}",
            r["pool"],
            r.get("os", ""),
            r.get("mode", ""),
            " → ".join(r["history"]),
            r["reason"],
        )
        for r in result.rows
    ]
    show_run(args, "pools", result, COLUMNS, cells, summary=summary)
    unproven = bool(summary.get(Verdict.DRIFT) or summary.get(Verdict.UNKNOWN))
    if not args.json:
        if result.rows:
            print(f"\n{len(result.rows)} pools: " + ", ".join(f"{n} {v}" for v, n in summary.items()))
        elif not result.errors:
            say("nothing verified: no cluster in scope has a pool to check")
    return result.exit_code(unproven)
