"""`plan`: the read-only fleet report (ARM GETs only; the pool-state table for pending reimages)."""

from __future__ import annotations

import argparse
import json
import sys

from shared.cli import EXIT_FAILED, EXIT_OK, progress
from shared.config import Settings
from shared.fleet import scan_fleet
from shared.report import plan_row, plan_table, summary


def run_plan(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from shared.adapters.arm import Arm

    with Arm(settings.arm_endpoint, local=settings.arm_is_local) as arm:
        report = scan_fleet(
            arm, settings.subscriptions, settings.policy, pending_reimage=_pending_reimage(settings), progress=progress
        )
    if args.json:
        document = {
            "pools": [plan_row(p) for p in report.plans],
            "summary": summary(report.plans),
            "errors": report.errors,
        }
        print(json.dumps(document, indent=2))
    else:
        print(plan_table(report.plans))
        print(f"\n{len(report.plans)} pools: " + ", ".join(f"{n} {s}" for s, n in summary(report.plans).items()))
    for error in report.errors:
        print(f"failed: {error}", file=sys.stderr)
    return EXIT_FAILED if report.errors else EXIT_OK


def _pending_reimage(settings: Settings) -> frozenset[str]:
    """Pools whose node-image upgrade is still owed, from the pool-state table (if configured)."""
    if not settings.tables:
        return frozenset()
    from shared.adapters.store import StoreNotFoundError, WardenStore

    with WardenStore(settings.tables) as store:
        try:
            return frozenset(s.pool_key for s in store.list_pool_states() if s.pending_reimage)
        except StoreNotFoundError:  # nothing recorded yet: plan creates no tables
            return frozenset()
