"""`verify [--cluster ID]`: check sshd on sampled nodes now, through the app's own triggers and
orchestrations in-process, and print the verdict per pool (the last check of each pool, after
any re-enforcement the drift caused)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from shared.cli import EXIT_FAILED, EXIT_OK, BadInput, progress
from shared.cli.run import local_functions
from shared.config import Settings
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.protocol import WorkKind
from shared.report import table
from shared.triggers.http_api import BadRequest, reconcile_target
from shared.triggers.start import StartError, request_work
from shared.triggers.verify import verify_fleet

ACTOR = "cli"


def run_verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    target = _target(args.cluster) if args.cluster else None
    with local_functions(settings) as functions:
        errors = functions.with_client(lambda client: _request(client, target))
        functions.run()
        return report_verification(functions, args.json, errors)


def _target(cluster: str):
    try:
        return reconcile_target({"cluster": cluster})
    except BadRequest as e:
        raise BadInput(f"{e.code}: {e.message}") from e


async def _request(client, target) -> list[str]:
    rt = runtime.runtime()
    if target is None:
        report = await verify_fleet(client, rt, "verify from the command line", ACTOR)
        progress(f"verify: {len(report.requested)} clusters, {len(report.skipped)} stopped ones skipped")
        return report.errors
    try:
        await request_work(client, rt.store, target, "verify from the command line", ACTOR, WorkKind.VERIFY)
    except StartError as e:
        return [str(e)]
    return []


def report_verification(functions: LocalFunctions, as_json: bool, errors: list[str]) -> int:
    pools: dict[tuple, dict] = {}  # the last verification of each pool wins
    errors = list(errors)
    for status in functions.durable.statuses():
        if status.name != names.VERIFY_CLUSTER or not isinstance(status.output, dict):
            continue
        cluster = status.input["cluster"]
        if status.output.get("error"):
            errors.append(f"cluster {cluster['resourceGroup']}/{cluster['name']}: {status.output['error']['message']}")
        for pool in status.output.get("pools", []):
            row = {
                "subscription": cluster["subscription"],
                "resourceGroup": cluster["resourceGroup"],
                "cluster": cluster["name"],
                **pool,
            }
            pools[
                (
                    cluster["subscription"],
                    cluster["resourceGroup"].lower(),
                    cluster["name"].lower(),
                    pool["pool"].lower(),
                )
            ] = row
    rows = [pools[key] for key in sorted(pools)]
    summary = dict(Counter(r["verdict"] for r in rows))
    if as_json:
        print(json.dumps({"pools": rows, "summary": summary, "errors": errors}, indent=2))
    else:
        print(table(("CLUSTER", "POOL", "OS", "MODE", "VERDICT", "REASON"), [_row(r) for r in rows]))
        print(f"\n{len(rows)} pools: " + ", ".join(f"{n} {v}" for v, n in sorted(summary.items())))
    for error in errors:
        print(f"failed: {error}", file=sys.stderr)
    return EXIT_FAILED if errors or summary.get("drift") else EXIT_OK


def _row(pool: dict) -> tuple:
    return (
        f"{pool['resourceGroup']}/{pool['cluster']}",
        pool["pool"],
        pool.get("os", ""),
        pool.get("mode", ""),
        pool["verdict"],
        pool["reason"],
    )
