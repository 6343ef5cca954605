"""`python -m bench [--json] [--only SECTION ...]`: run the scenarios on a fresh local Azure and print the
figures, then the goals; exits 1 when a measured goal is missed."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from bench import admission, coldstart, goals, plan, report

# scenarios: sections 1 and 2; storm: 3; plan: 4; verify: 5; the figures of the goals only: reconcile
# (wall time per pool against the baseline commit), duplicate, admission, coldstart.
SECTIONS = ("scenarios", "storm", "plan", "verify", "reconcile", "duplicate", "admission", "coldstart")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "verify")  # verify takes minutes: only with --only verify
ON_TABLES = {"scenarios", "storm", "verify", "reconcile", "duplicate"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=DEFAULT_SECTIONS,
        help="run only these sections (default: all but verify, which takes minutes)",
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the app's info logs would drown the tables
    began = time.perf_counter()
    figures: dict = {}
    if ON_TABLES & set(options.only):
        figures.update(_on_tables(options.only))
    if "plan" in options.only:
        plan.warm_up()
        figures["plan"] = [_progress(f"plan x{n} clusters", plan.measure_plan, n) for n in plan.PLAN_SIZES]
    if "admission" in options.only:
        figures["admission"] = _progress("event admission", admission.measure)
    if "coldstart" in options.only:
        figures["cold_start"] = _progress("cold start", coldstart.measure)
    results = goals.rows(figures)
    figures["goals"] = [g.to_json() for g in results]
    if not options.json:
        for section in [*_sections(figures), *([report.goals_section(results)] if results else [])]:
            print(section, end="\n\n")
    figures["total_seconds"] = time.perf_counter() - began
    print(json.dumps(_rounded(figures), sort_keys=True))
    missed = [g for g in results if not g.met]
    for goal in missed:
        print(f"goal missed: {goal.figure}: x{goal.ratio:.2f}, goal {goal.goal}", file=sys.stderr)
    return 1 if missed else 0


def _on_tables(only: list[str]) -> dict:
    """The sections that run the whole warden on Azurite (started once for all). Imported
    here: `--only plan` needs neither the function app nor Azurite."""
    from bench import duplicates, reconcile_time, verify
    from bench.scenarios import READ_FLOOR, SCENARIOS, STORM_COPIES, measure, storm, warm_up
    from bench.stack import local_tables

    figures: dict = {}
    with local_tables() as tables:
        warm_up(tables)
        if "scenarios" in only:
            figures["scenarios"] = [_progress(s.key, measure, tables, s) for s in SCENARIOS]
            figures["read_floor"] = READ_FLOOR
        if "storm" in only:
            figures["storm"] = [_progress(f"storm x{n}", storm, tables, n) for n in STORM_COPIES]
        if "reconcile" in only:
            figures["reconcile_time"] = _progress(
                "reconcile time vs the baseline commit", reconcile_time.measure, tables
            )
        if "duplicate" in only:
            figures["duplicate"] = _progress("duplicate event", duplicates.measure, tables)
        if "verify" in only:
            figures["verify"] = [_progress(f"verify {c.key}", verify.measure, tables, c) for c in verify.CASES]
    return figures


def _sections(figures: dict) -> list[str]:
    sections = []
    if "scenarios" in figures:
        sections += [report.arm_section(figures["scenarios"]), report.history_section(figures["scenarios"])]
    if "storm" in figures:
        sections.append(report.storm_section(figures["storm"]))
    if "plan" in figures:
        sections.append(report.plan_section(figures["plan"]))
    if "reconcile_time" in figures:
        sections.append(report.reconcile_section(figures["reconcile_time"]))
    if "verify" in figures:
        sections.append(report.verify_section(figures["verify"]))
    return sections


def _rounded(value):
    """Floats (seconds, per-pool averages) to 4 places, for a readable JSON line."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _progress(what: str, function, *args):
    print(f"[bench] {what} ...", file=sys.stderr, flush=True)
    return function(*args)


if __name__ == "__main__":
    sys.exit(main())
