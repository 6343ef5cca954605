"""`python -m shared <command>`: the warden from a terminal.

Human tables on stdout by default (fitted to the terminal; `--wide` for every column),
`--json` for machines; progress and errors go to stderr so stdout stays clean.
Exit codes: 0 ok, 1 a pool or cluster failed (or Azure could not be reached, or the time
limit ran out), 2 bad input or configuration (nothing was written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from shared.core.errors import ConfigError, CredentialError, OutOfScopeError, WardenError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES = """exit codes:
  0    done: every pool or cluster ended as it should
  1    something failed (a row says which, with ARM's code), Azure was out of reach, or --timeout ran out
  2    bad input or configuration: nothing was written
  130  interrupted (Ctrl-C): what was done is recorded, what was left is listed"""

SETTINGS = {
    "read": "  WARDEN_SUBSCRIPTIONS   subscription ids in scope (comma-separated)\n"
    "  WARDEN_POLICY          the policy: a JSON file path or inline JSON\n"
    "  AZURE_RESOURCE_MANAGER_ENDPOINT  default https://management.azure.com (az login there)",
    "tables": "  WARDEN_TABLES          Table Storage connection string (or AzureWebJobsStorage)",
    "write": "  WARDEN_MODE            audit (default: report only) or enforce\n"
    "  WARDEN_POLL_SECONDS    base of every wait and retry (default 30)",
    "events": "  WARDEN_EVENTS_ENDPOINT optional Event Grid topic for the warden's own events",
    "verify": "  WARDEN_VERIFY_CONCURRENCY  run-commands in flight per subscription (default 10)",
    "keys": "  WARDEN_KEYVAULT_URL    Key Vault for generated private keys (needed without --public-key)",
    "reimages": "  WARDEN_MAX_REIMAGES    reimages in flight across the fleet (default 2)\n"
    "  WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION  reimages in flight per subscription (default 1)",
}


class BadInput(WardenError):
    """A command-line argument or input file that cannot be used (exit 2)."""


class Unreachable(WardenError):
    """Azure Resource Manager could not be used at all: `fix` says what to do."""

    def __init__(self, message: str, fix: str, details: str = ""):
        super().__init__(message)
        self.fix, self.details = fix, details


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with _app_logging(args.verbose):
            return args.run(args)
    except (ConfigError, OutOfScopeError, BadInput) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Unreachable, CredentialError) as e:
        unreachable = e if isinstance(e, Unreachable) else unreachable_arm(e)
        print(f"error: {unreachable} — {unreachable.fix}", file=sys.stderr)
        if getattr(args, "verbose", False) and unreachable.details:
            print(unreachable.details, file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted before the work started: nothing was requested", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WardenError as e:
        print(f"failed: {e}", file=sys.stderr)
        return EXIT_FAILED


@contextmanager
def _app_logging(verbose: bool) -> Iterator[None]:
    """The app's log lines are for Application Insights; at a terminal the CLI says what matters,
    and shows them with --verbose. The root logger is as it was afterwards."""
    root, handler = logging.getLogger(), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[log] %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def unreachable_arm(error: Exception, endpoint: str = "") -> Unreachable:
    """A credential or connection failure as one line and its fix."""
    if isinstance(error, CredentialError):
        return Unreachable(
            "not signed in to Azure",
            "run `az login` (on Azure: give the app a managed identity); --verbose for details",
            error.message,
        )
    where = f" at {endpoint}" if endpoint else ""
    return Unreachable(
        f"cannot reach Azure Resource Manager{where}",
        "check AZURE_RESOURCE_MANAGER_ENDPOINT and the network; --verbose for details",
        str(error),
    )


def progress(message: str) -> None:
    print(f"[warden] {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    from shared.cli import compliance, demo, doctor, exempt, plan, resume, rotate, run, verify

    parser = argparse.ArgumentParser(
        prog="python -m shared",
        description="AKS SSH Warden: keeps SSH on AKS node pools as the policy says.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _command(
        commands,
        "plan",
        plan.run_plan,
        "read-only fleet report: per pool current, desired mode and status (ARM reads only)",
        ("read", "tables"),
        '{"pools": [{"clusterId", "poolId", "subscription", "resourceGroup", "cluster", "pool", "os", '
        '"current", "desired", "status", "reason", "steps"}], "summary": {status: count}, "errors": [...]}',
    )
    reconcile = _command(
        commands,
        "reconcile",
        run.run_reconcile,
        "reconcile one cluster (or one pool), or with --all every cluster in scope, now, to completion",
        ("read", "tables", "write", "events"),
        run.OUTCOMES_SHAPE,
        runs=True,
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
        ("read", "tables", "write", "verify", "events"),
        verify.VERIFY_SHAPE,
        runs=True,
    )
    check.add_argument("--cluster", help="the AKS managed-cluster resource id (default: every cluster in scope)")
    keys = _command(
        commands,
        "rotate-keys",
        rotate.run_rotate,
        "give one cluster a new node SSH key now",
        ("read", "tables", "write", "keys", "events"),
        rotate.ROTATIONS_SHAPE,
        runs=True,
    )
    keys.add_argument("--cluster", required=True, help="the AKS managed-cluster resource id")
    keys.add_argument(
        "--public-key",
        help="an ssh-rsa public key file to use (default: generate one; its private half goes to Key Vault)",
    )
    handle = _command(
        commands,
        "handle-event",
        run.run_handle_event,
        "run an Event Grid delivery (a file, or - for stdin)",
        ("read", "tables", "write", "events"),
        run.OUTCOMES_SHAPE,
        runs=True,
    )
    handle.add_argument("file", help="one event or a JSON array, Event Grid schema or CloudEvents 1.0; - reads stdin")
    compliance.add_arguments(
        _command(commands, "compliance", compliance.run_compliance, compliance.HELP, ("tables",), compliance.JSON_SHAPE)
    )
    exempt.add_arguments(
        _command(
            commands,
            "exempt",
            exempt.run_exempt,
            exempt.HELP,
            ("read", "tables", "write", "events"),
            exempt.JSON_SHAPE,
            runs=True,
        )
    )
    resume.add_arguments(
        _command(
            commands,
            "resume",
            resume.run_resume,
            resume.HELP,
            ("read", "tables", "write", "reimages", "events"),
            resume.JSON_SHAPE,
            runs=True,
        )
    )
    _command(
        commands,
        "doctor",
        doctor.run_doctor_command,
        doctor.HELP,
        ("read", "tables", "events", "keys"),
        doctor.JSON_SHAPE,
    )
    _command(
        commands,
        "demo",
        demo.run_demo,
        "start Azurite and the local ARM emulator with a sample fleet and run the warden on them (enforce mode)",
        (),
        'JSON Lines: one line per step, {"step", "command", "result"}',
    )
    return parser


def _command(
    commands,
    name: str,
    run: Callable[[argparse.Namespace], int],
    help_text: str,
    settings: tuple[str, ...],
    json_shape: str,
    *,
    runs: bool = False,
) -> argparse.ArgumentParser:
    needs = "\n".join(SETTINGS[s] for s in settings) or "  none: the demo sets up its own local Azure"
    command = commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"settings (environment):\n{needs}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--json", action="store_true", help=f"print JSON instead of a table: {json_shape}")
    command.add_argument("--wide", action="store_true", help="every column, uncut (default: fit the terminal)")
    command.add_argument("--verbose", action="store_true", help="every step and the full error details on stderr")
    if runs:
        command.add_argument(
            "--timeout",
            type=_seconds,
            metavar="SECONDS",
            help="stop after this long (exit 1); what is left stays recorded for the next run",
        )
    command.set_defaults(run=run, timeout=None)
    return command


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give between 1 second and 7 days")
    return value
