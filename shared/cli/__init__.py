"""`python -m shared <command>`: the warden from a terminal.

Human tables on stdout by default, `--json` for machines; progress and errors go to
stderr so stdout stays clean. Exit codes: 0 ok, 1 a pool or cluster failed, 2 bad
input or configuration (nothing was written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from shared.errors import ConfigError, OutOfScopeError, WardenError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(WardenError):
    """A command-line argument or input file that cannot be used (exit 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, OutOfScopeError, BadInput) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WardenError as e:
        print(f"failed: {e}", file=sys.stderr)
        return EXIT_FAILED


def progress(message: str) -> None:
    print(f"[warden] {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    from shared.cli import demo, plan, rotate, run, verify

    parser = argparse.ArgumentParser(prog="python -m shared", description="AKS SSH Warden")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _command(commands, "plan", plan.run_plan, "read-only fleet report: per pool current, desired mode and status")
    reconcile = _command(
        commands,
        "reconcile",
        run.run_reconcile,
        "reconcile one cluster (or one pool), or with --all every cluster in scope, now, to completion",
    )
    which = reconcile.add_mutually_exclusive_group(required=True)
    which.add_argument("--cluster", help="the AKS managed-cluster resource id")
    which.add_argument(
        "--all", action="store_true", help="resync: plan the fleet, reconcile every cluster with a drifted pool"
    )
    reconcile.add_argument("--pool", help="only this pool (with --cluster)")
    check = _command(
        commands,
        "verify",
        verify.run_verify,
        "check sshd on sampled nodes now (one cluster, or every cluster in scope)",
    )
    check.add_argument("--cluster", help="the AKS managed-cluster resource id (default: every cluster in scope)")
    keys = _command(commands, "rotate-keys", rotate.run_rotate, "give one cluster a new node SSH key now")
    keys.add_argument("--cluster", required=True, help="the AKS managed-cluster resource id")
    keys.add_argument(
        "--public-key",
        help="an ssh-rsa public key file to use (default: generate one; its private half goes to Key Vault)",
    )
    handle = _command(
        commands, "handle-event", run.run_handle_event, "run an Event Grid delivery (a file, or - for stdin)"
    )
    handle.add_argument("file", help="one event or a JSON array, Event Grid schema or CloudEvents 1.0; - reads stdin")
    _command(
        commands,
        "demo",
        demo.run_demo,
        "start Azurite and the local ARM emulator with a sample fleet and run the warden",
    )
    return parser


def _command(commands, name: str, run: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--json", action="store_true", help="print JSON instead of a table")
    command.set_defaults(run=run)
    return command
