"""`doctor`: check a real deployment before trusting it (read-only: ARM GETs, one read of each
data service). A table of checks, each `ok`, `warn` or `fail`, and under it the command that fixes
each one that is not ok; `--json` for the whole report. Exit 1 when a check failed."""

from __future__ import annotations

import argparse

from shared.cli import EXIT_FAILED, EXIT_OK
from shared.cli.output import Column, print_json, say, table, terminal_width
from shared.config import Settings
from shared.orchestration import runtime
from shared.preflight.doctor import DoctorReport, Level

HELP = (
    "check a deployment before trusting it (read-only): the identity's permissions at every scope the warden "
    "acts on, the linked permissions of a key rotation, preview features, providers, Event Grid delivery, "
    "locked node resource groups, and the data services"
)
JSON_SHAPE = (
    '{"checks": [{"subscription", "check", "target", "status": "ok|warn|fail", "detail", "fix"}], '
    '"summary": {"ok", "warn", "fail"}}'
)
COLUMNS = (
    Column("SUBSCRIPTION", drop=1),
    Column("CHECK"),
    Column("STATUS"),
    Column("TARGET", drop=2, flex=True),
    Column("DETAIL", flex=True),
)


def run_doctor_command(args: argparse.Namespace) -> int:
    from shared.triggers.doctor import run_doctor

    rt = runtime.build(Settings.from_env(), read_only=True)  # the doctor writes nothing, tables included
    try:
        report = run_doctor(rt)
    finally:
        runtime.close(rt)
    if args.json:
        print_json(report.to_json())
    else:
        _print(report, None if args.wide else terminal_width())
    return EXIT_FAILED if report.failed else EXIT_OK


def _print(report: DoctorReport, width: int | None) -> None:
    rows = [(c.subscription[:8] or "-", c.check, c.level.value, c.target, c.detail) for c in report.checks]
    print(table(COLUMNS, rows, width=width))
    fixes = [c for c in report.checks if c.level is not Level.OK and c.fix]
    if fixes:
        print("\nto fix:")
        for check in fixes:
            print(f"  {check.check} {check.target}:\n    {check.fix}")
    counts = report.summary
    say(f"{len(report.checks)} checks: {counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
