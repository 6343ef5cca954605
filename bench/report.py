"""Plain aligned tables of the measurements, one per section."""

from __future__ import annotations

from collections.abc import Sequence


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """`title`, then columns left-aligned for the first, right-aligned for the others."""
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(cells[0]), rule, *(line(r) for r in cells[1:])])


def ratio(value: float, baseline: float) -> str:
    """`value / baseline` as 'x1.50', or '-' when there is no baseline to divide by."""
    return f"x{value / baseline:.2f}" if baseline else "-"


def arm_section(results: list[dict]) -> str:
    rows = [
        [
            r["scenario"],
            r["pools"],
            r["lro_polls"],
            _outcomes(r["outcomes"]),
            r["writes_per_pool"],
            r["write_floor"],
            ratio(r["writes_per_pool"], r["write_floor"]),
            r["reads_per_pool"],
            r["read_floor"],
            ratio(r["reads_per_pool"], r["read_floor"]),
            _kinds(r["reads_by_kind_per_pool"]),
        ]
        for r in results
    ]
    header = [
        "scenario",
        "pools",
        "lro_polls",
        "outcomes",
        "writes/pool",
        "write floor",
        "vs floor",
        "reads/pool",
        "read floor",
        "vs floor",
        "reads/pool by kind",
    ]
    title = (
        "1. ARM requests per pool (write floor: PUT + node-image upgrade, PUT alone on 1.37+;\n"
        "   read floor: 1 GET pool + write floor * (lro_polls + 1) polls, i.e. 3 when operations end at the first poll)"
    )
    return table(title, header, rows)


def history_section(results: list[dict]) -> str:
    baseline = results[0]["history_per_pool"]
    rows = [
        [
            r["scenario"],
            r["pools"],
            r["history"]["cluster"],
            r["history"]["pools"],
            r["history_per_pool"],
            ratio(r["history_per_pool"], baseline),
        ]
        for r in results
    ]
    header = ["scenario", "pools", "cluster events", "pool events (sum)", "events/pool", f"vs {results[0]['scenario']}"]
    return table(
        "2. Orchestration history events per pool (reconcile_cluster + its reconcile_pool sub-orchestrations)",
        header,
        rows,
    )


def storm_section(results: list[dict]) -> str:
    base = results[0]
    rows = []
    for r in results:
        extra = r["copies"] - base["copies"]
        per_copy = f"{1000 * (r['seconds'] - base['seconds']) / extra:.1f}" if extra else "-"
        rows.append(
            [
                r["copies"],
                _outcomes(r["outcomes"]),
                r["writes"],
                r["reads"],
                r["history"],
                r["runs"],
                f"{r['seconds']:.3f}",
                ratio(r["seconds"], base["seconds"]),
                per_copy,
            ]
        )
    header = [
        "copies",
        "outcomes",
        "ARM writes",
        "ARM reads",
        "history events",
        "runs",
        "seconds (median)",
        "vs 1 copy",
        "ms/extra copy",
    ]
    return table("3. Event storm: copies of one event delivered together, then run to idle (wall clock)", header, rows)


def plan_section(results: list[dict]) -> str:
    rows = [
        [
            r["clusters"],
            r["pools"],
            _requests(r["requests"]),
            r["errors"],
            f"{r['budget_wait_seconds']:.2f}",
            f"{r['seconds']:.3f}",
            f"{r['floor_seconds']:.3f}",
            ratio(r["seconds"], r["floor_seconds"]),
            f"{r['theory_seconds']:.3f}",
            ratio(r["seconds"], r["theory_seconds"]),
            f"{r['sequential_seconds']:.3f}",
            ratio(r["sequential_seconds"], r["seconds"]),
        ]
        for r in results
    ]
    header = [
        "clusters",
        "pools",
        "ARM requests",
        "errors",
        "budget wait s",
        "plan s (median)",
        "floor s",
        "vs floor",
        "theory s",
        "vs theory",
        "workers=1 s",
        "speed-up",
    ]
    first = results[0]
    title = (
        f"4. plan (scan_fleet) over N clusters, {first['workers']} workers, ARM latency "
        f"{1000 * first['latency_seconds']:g} ms per request (wall clock);\n"
        "   floor: plain http.client, the same GETs on as many threads; "
        "theory: ceil(clusters / workers) x latency (the cluster list adds one latency more)"
    )
    return table(title, header, rows)


def _requests(counts: dict[str, int]) -> str:
    return " ".join(f"{method}={n}" for method, n in sorted(counts.items()))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) else f"{value:.2f}"
    return str(value)


def _outcomes(outcomes: dict[str, int]) -> str:
    return ",".join(f"{k}:{v}" for k, v in outcomes.items()) or "none"


def _kinds(kinds: dict[str, float]) -> str:
    return " ".join(f"{k}={_cell(v)}" for k, v in kinds.items())


def verify_section(results: list[dict]) -> str:
    timing = [
        [
            r["case"],
            r["clock"],
            f"{r['clusters']}x{r['pools'] // r['clusters']}x{r['nodes_per_pool']}",
            r["checks"],
            _outcomes(r["verdicts"]),
            f"{r['run_command_seconds']:g}",
            r["poll_seconds"],
            r["concurrency"],
            f"{r['makespan_seconds']:.1f}",
            f"{r['ideal_seconds']:.0f}",
            ratio(r["makespan_seconds"], r["ideal_seconds"]),
            f"{100 * r['slot_use']:.0f}%",
            r["peak_in_flight"],
            f"{r['peak_starts_1s']} / {r['peak_starts_10s']}",
            f"{r['busy_per_check']:.2f}",
            f"{r['wall_seconds']:.1f}",
        ]
        for r in results
    ]
    header = [
        "case",
        "clock",
        "clusters x pools x nodes",
        "checks",
        "verdicts",
        "run-command s",
        "poll s",
        "bound",
        "makespan s",
        "ideal s",
        "vs ideal",
        "slot use",
        "peak in flight",
        "peak starts 1 s / 10 s",
        "busy/check",
        "wall s",
    ]
    title = (
        "5. Fleet verification: verify every cluster, run to idle; ideal = ceil(checks / bound) x run-command s\n"
        "   (bound: WARDEN_VERIFY_CONCURRENCY, one subscription; makespan on the Durable host's clock, which the\n"
        "   emulator's run-commands follow; wall s: this machine's seconds for the whole local stack)"
    )
    requests = [
        [
            r["case"],
            f"{r['arm_per_check']:.2f}",
            _kinds({k: v / r["checks"] for k, v in r["arm"].items()}),
            f"{r['tables_per_100_rows']:.0f}",
            _kinds(r["tables_per_100_rows_by_table"]),
            f"{r['history_per_check']:.1f}",
        ]
        for r in results
    ]
    header2 = ["case", "ARM/check", "ARM/check by kind", "Table/100 rows", "Table/100 rows by table", "history/check"]
    return "\n\n".join(
        [
            table(title, header, timing),
            table("   requests: ARM per node check; Table Storage per 100 node rows", header2, requests),
        ]
    )


def reconcile_section(result: dict) -> str:
    """Section 6: the reconcile's wall time per pool, and with the verification it asks for."""
    rows = [
        [what, f"{result[key]:.3f}", f"{result['baseline_' + key]:.3f}", f"x{result[paired]:.2f}"]
        for what, key, paired in (
            ("until the reconcile ended", "seconds_per_pool", "ratio"),
            ("until idle (the follow-up verification included)", "seconds_per_pool_to_idle", "ratio_to_idle"),
        )
    ]
    title = f"6. Reconcile wall time per pool, {result['scenario']} (baseline: {result['baseline']})"
    header = ["measured", "s/pool (median)", "baseline s/pool (median)", "vs baseline (median of pairs)"]
    return table(title, header, rows)


def goals_section(goals: Sequence) -> str:
    """The goals table (`bench.goals`): figure, measured, floor or baseline, ratio, goal, met."""
    rows = [[g.figure, g.measured, g.floor, f"x{g.ratio:.2f}", g.goal, "yes" if g.met else "NO"] for g in goals]
    header = ["figure", "measured", "floor / baseline (same run)", "ratio", "goal", "met"]
    return table("Goals: each figure against its floor or baseline, measured in this run", header, rows)
