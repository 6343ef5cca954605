"""`python -m bench [--json]`: run every scenario on a fresh local Azure and print the figures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from bench import report
from bench.scenarios import READ_FLOOR, SCENARIOS, STORM_COPIES, measure, storm, warm_up
from bench.stack import local_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the app's info logs would drown the tables
    began = time.perf_counter()
    with local_tables() as tables:
        warm_up(tables)
        results = [_progress(s.key, measure, tables, s) for s in SCENARIOS]
        storms = [_progress(f"storm x{n}", storm, tables, n) for n in STORM_COPIES]
    if not options.json:
        for section in (report.arm_section(results), report.history_section(results), report.storm_section(storms)):
            print(section, end="\n\n")
    total = time.perf_counter() - began
    figures = {"scenarios": results, "storm": storms, "read_floor": READ_FLOOR, "total_seconds": total}
    print(json.dumps(_rounded(figures), sort_keys=True))
    return 0


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
