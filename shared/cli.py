"""`python -m shared <command>`: the warden from a terminal.

Human tables on stdout by default, `--json` for machines; progress and errors go to
stderr so stdout stays clean. Exit codes: 0 ok, 1 a pool or cluster failed, 2 bad
input or configuration (nothing was written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from shared.config import Settings
from shared.errors import ConfigError, OutOfScopeError, WardenError
from shared.fleet import scan_fleet
from shared.report import plan_row, plan_table, summary

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, OutOfScopeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WardenError as e:
        print(f"failed: {e}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="AKS SSH Warden")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _command(commands, "plan", run_plan, "read-only fleet report: per pool current, desired mode and status")
    _command(commands, "demo", run_demo, "start Azurite and the local ARM emulator with a sample fleet and run the warden")
    return parser


def _command(commands, name: str, run: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--json", action="store_true", help="print JSON instead of a table")
    command.set_defaults(run=run)
    return command


def progress(message: str) -> None:
    print(f"[warden] {message}", file=sys.stderr, flush=True)


def run_plan(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    from shared.adapters.arm import Arm

    with Arm(settings.arm_endpoint, local=settings.arm_is_local) as arm:
        report = scan_fleet(
            arm, settings.subscriptions, settings.policy, pending_reimage=_pending_reimage(settings), progress=progress
        )
    if args.json:
        document = {"pools": [plan_row(p) for p in report.plans], "summary": summary(report.plans), "errors": report.errors}
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


def run_demo(args: argparse.Namespace) -> int:
    """The warden against a local Azure: the sample fleet, the sample policy, `enforce` mode."""
    from shared.local.demo import local_stack, say

    with local_stack() as arm:
        say("1. plan: the read-only fleet report (only GET requests)")
        code = run_plan(args)
        writes = sum(1 for r in arm.requests if r.method != "GET")
        say(f"   ARM requests: {len(arm.requests)}, of which writes: {writes}")
    return code
