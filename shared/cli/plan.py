"""`plan`: the read-only fleet report (ARM GETs only; the tables for pending reimages and exemptions)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from shared.cli import EXIT_FAILED, EXIT_OK, progress, unreachable_arm
from shared.cli.output import Column, print_json, say, table, terminal_width
from shared.config import Settings
from shared.core.errors import CredentialError
from shared.policy.fleet import FleetReport, scan_fleet
from shared.policy.plan import Exemption
from shared.policy.report import plan_row, summary

COLUMNS = (
    Column("SUBSCRIPTION", drop=1),
    Column("RESOURCE GROUP", drop=2),
    Column("CLUSTER"),
    Column("POOL"),
    Column("OS", drop=3),
    Column("CURRENT"),
    Column("DESIRED"),
    Column("STATUS"),
    Column("REASON", flex=True),
)


def run_plan(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from shared.adapters.arm import Arm

    pending, exemptions = _recorded(settings)
    with Arm(settings.arm_endpoint, local=settings.arm_is_local) as arm:
        report = scan_fleet(
            arm,
            settings.subscriptions,
            settings.policy,
            pending_reimage=pending,
            exemptions=exemptions,
            progress=progress,
        )
    _raise_if_unreachable(report, settings.arm_endpoint)
    rows = [plan_row(p) for p in report.plans]
    errors = [
        {"target": f.target, "code": f.error.code, "message": f"{f.what}: {f.error.message}"} for f in report.failures
    ]
    if args.json:
        print_json({"pools": rows, "summary": summary(report.plans), "errors": errors})
    elif rows:
        cells = [
            (
                r["subscription"][:8],
                r["resourceGroup"],
                r["cluster"],
                r["pool"],
                r["os"],
                r["current"],
                r["desired"],
                r["status"],
                r["reason"],
            )
            for r in rows
        ]
        print(table(COLUMNS, cells, width=None if args.wide else terminal_width()))
        print(f"\n{len(rows)} pools: " + ", ".join(f"{n} {s}" for s, n in summary(report.plans).items()))
    elif not errors:
        say(f"no AKS cluster in the {len(settings.subscriptions)} subscriptions in scope")
    for error in report.errors:
        say(f"failed: {error}")
    return EXIT_FAILED if report.failures else EXIT_OK


def _raise_if_unreachable(report: FleetReport, endpoint: str) -> None:
    """When no read reached ARM, every error is the same one: say it once, with its fix."""
    if report.plans or not report.failures:
        return
    error = report.failures[0].error
    if isinstance(error, CredentialError) or error.code == "ConnectionError":
        raise unreachable_arm(error, endpoint)


def _recorded(settings: Settings) -> tuple[frozenset[str], dict[str, Exemption]]:
    """From the tables (if configured): the pools whose node-image upgrade is still owed, and
    the exemptions in force now (an expired one is never honoured, even while still stored)."""
    if not settings.tables:
        return frozenset(), {}
    from shared.adapters.store import StoreNotFoundError, WardenStore
    from shared.core.records import exemptions_in_force

    with WardenStore(settings.tables) as store:
        try:
            pending = frozenset(s.pool_key for s in store.list_pool_states() if s.pending_reimage)
        except StoreNotFoundError:  # nothing recorded yet: plan creates no tables
            pending = frozenset()
        try:
            return pending, exemptions_in_force(store.list_exemptions(), datetime.now(UTC))
        except StoreNotFoundError:
            return pending, {}
