"""`compliance [--json] [--html FILE]`: the compliance report from the warden's tables (no ARM call).

A table by default, the report's JSON with `--json`, or the self-contained page with `--html FILE`
(docs/compliance.md). Exit 0 when the report was produced — whatever it says — and 2 for a bad
filter, a subscription outside the scope, missing settings or a file that cannot be written.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from shared.cli import EXIT_OK, BadInput
from shared.cli.output import Column, print_json, say, table, terminal_width
from shared.config import Settings
from shared.core.errors import ConfigError
from shared.core.models import Target
from shared.evidence.compliance import ComplianceReport, PoolCompliance, ReportQuery, ReportQueryError
from shared.evidence.compliance_html import render_page
from shared.evidence.stig import STIG_RULES, Standing
from shared.policy.plan import Status

HELP = (
    "the compliance report from the warden's tables (no ARM call): per pool its modes, status, last "
    "verification with the node evidence, last remediation, and DISA STIG V-242393 / V-242394"
)
JSON_SHAPE = (
    '{"generatedAt", "filters", "summary": {"pools", "byStatus", "byMode", "byVerdict", "stig", ...}, '
    '"stigRules": [...], "pools": [{"clusterId", "poolId", "cluster", "pool", "os", "osSku", "configuredMode", '
    '"desiredMode", "status", "verdict", "lastVerification", "lastRemediation", "stig", "exemption"}], '
    '"continuationToken": null}'
)
SCOPE_SETTING = "  WARDEN_SUBSCRIPTIONS   subscription ids in scope (comma-separated): pools of others are left out\n"
# STIG checklist abbreviations; `*`: open because the policy allows SSH (an accepted deviation).
SHORT = {Standing.OPEN: "O", Standing.NOT_A_FINDING: "NF", Standing.NOT_REVIEWED: "NR"}
COLUMNS = (
    Column("CLUSTER", flex=True),
    Column("POOL"),
    Column("OS", drop=2),
    Column("CONFIGURED"),
    Column("DESIRED"),
    Column("STATUS"),
    Column("VERIFIED"),
    Column("VERIFIED AT", drop=1),
    Column("REMEDIATED", drop=3),
    *(Column(rule.id) for rule in STIG_RULES),
)


def add_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--html", metavar="FILE", help="write the report as one self-contained HTML page to FILE")
    command.add_argument("--subscription", help="only pools of this subscription id")
    command.add_argument("--cluster", help="only pools of this AKS managed-cluster resource id")
    command.add_argument("--status", help=f"only pools of this status: {', '.join(s.value for s in Status)}")
    command.epilog = (command.epilog or "").replace(
        "settings (environment):\n", "settings (environment):\n" + SCOPE_SETTING, 1
    )


def run_compliance(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.tables:
        raise ConfigError("WARDEN_TABLES (or AzureWebJobsStorage) is not set: the report reads the warden's tables")
    report = _read(settings, _query(args, settings))
    if args.html:
        _write_page(Path(args.html), report, quiet=args.json)
    if args.json:
        print_json(report.to_json())
    elif not args.html:
        _print_table(report, args.wide)
    return EXIT_OK


def _query(args: argparse.Namespace, settings: Settings) -> ReportQuery:
    try:
        query = ReportQuery(subscription=args.subscription, cluster=args.cluster, status=args.status)
    except ReportQueryError as e:
        raise BadInput(f"--{e}") from e
    if query.subscription:
        settings.require_in_scope(query.subscription)
    if query.cluster:
        settings.require_in_scope(Target.from_id(query.cluster).cluster.subscription)
    return query


def _read(settings: Settings, query: ReportQuery) -> ComplianceReport:
    from shared.adapters.compliance_reader import read_compliance
    from shared.adapters.store import WardenStore

    with WardenStore(settings.tables) as store:
        return read_compliance(store, query, datetime.now(UTC), settings.subscriptions)


def _write_page(path: Path, report: ComplianceReport, quiet: bool) -> None:
    """Write the page and say where (on stderr when stdout carries JSON)."""
    try:
        path.write_text(render_page(report), encoding="utf-8")
    except OSError as e:
        raise BadInput(f"--html {path}: cannot write it ({e.strerror or e})") from e
    where = f"wrote the compliance page ({report.summary.pools} pools) to {path}"
    if quiet:
        say(where)
    else:
        print(where)


def _print_table(report: ComplianceReport, wide: bool) -> None:
    if not report.pools:
        say("no pool recorded yet: the report reads what verify and reconcile have written to the tables")
        return
    print(render_table(report, None if wide else terminal_width()))


def render_table(report: ComplianceReport, width: int | None) -> str:
    """The pools as a table fitted to `width` (None: uncut), then the fleet in a few lines."""
    rows = table(COLUMNS, [_row(p) for p in report.pools], width=width)
    return "\n".join([rows, "", *summary_lines(report)])


def _row(pool: PoolCompliance) -> tuple:
    verification, remediation = pool.last_verification, pool.last_remediation
    return (
        pool.cluster,
        pool.pool,
        pool.os_sku or pool.os,
        pool.configured_mode or "unknown",
        pool.desired_mode or "unknown",
        pool.status,
        pool.verdict if verification else "never",
        f"{verification.time:%Y-%m-%d %H:%M}" if verification else "",
        remediation.outcome if remediation else "",
        *(SHORT[s.status] + ("*" if s.accepted_deviation else "") for s in pool.stig.values()),
    )


def summary_lines(report: ComplianceReport) -> list[str]:
    """The fleet in a few lines, each well under 100 characters."""
    s = report.summary
    lines = [
        f"{s.pools} pools: " + _counts(s.by_status),
        "configured mode: " + _counts(s.by_mode),
        "last verification: " + _counts(s.by_verdict),
    ]
    for rule in STIG_RULES:
        counts = s.stig[rule.id]
        lines.append(
            f"{rule.id} (sshd must not be {rule.state}): {counts['open']} open "
            f"({s.accepted_deviations[rule.id]} by policy), {counts['not-a-finding']} not a finding, "
            f"{counts['not-reviewed']} not reviewed"
        )
    lines.append("O open (O* the policy allows SSH: an accepted deviation), NF not a finding, NR not reviewed")
    return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {key}" for key, n in counts.items() if n) or "none"
