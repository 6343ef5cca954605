"""`python -m bench [--json] [--only SECTION ...]`: run the scenarios on a fresh local Azure and print the figures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from bench import plan, report

SECTIONS = ("scenarios", "storm", "plan", "verify")  # scenarios: sections 1 and 2; storm: 3; plan: 4; verify: 5
DEFAULT_SECTIONS = ("scenarios", "storm", "plan")  # verify takes about 6 minutes: only with --only verify


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
    if {"scenarios", "storm", "verify"} & set(options.only):
        figures.update(_on_tables(options.only))
    if "plan" in options.only:
        plan.warm_up()
        figures["plan"] = [_progress(f"plan x{n} clusters", plan.measure_plan, n) for n in plan.PLAN_SIZES]
    if not options.json:
        for section in _sections(figures):
            print(section, end="\n\n")
    figures["total_seconds"] = time.perf_counter() - began
    print(json.dumps(_rounded(figures), sort_keys=True))
    return 0


def _on_tables(only: list[str]) -> dict:
    """The sections that run the whole warden on Azurite (started once for all). Imported
    here: `--only plan` needs neither the function app nor Azurite."""
    from bench import verify
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
