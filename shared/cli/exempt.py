"""`exempt`: break-glass exemptions from the command line, in the warden's tables.

    exempt --pool ID --until TIME --reason TEXT [--mode MODE]   grant (or change) one
    exempt --remove --pool ID --reason TEXT                     end one now
    exempt --list [--cluster ID]                                the exemptions in force

The same checks as `POST /api/exemptions` (exit 2, nothing written). A pool given a mode, or
whose exemption is removed, is reconciled now, to completion, as `reconcile --pool` does. The
command line keeps no timer: after the end the exemption is never honoured, and the pool goes
back to its policy at its next event or at the resync (hourly); the HTTP API's own timer
reverts it at the end itself.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

from shared.cli import EXIT_OK, BadInput
from shared.cli.output import Column, print_json, say, table, terminal_width
from shared.cli.run import (
    OUTCOME_COLUMNS,
    RunResult,
    error_entry,
    local_functions,
    outcome_row,
    run_to_end,
    show_run,
)
from shared.config import Settings
from shared.config.durations import parse_duration
from shared.core.errors import ConfigError, StoreNotFoundError
from shared.core.records import PoolExemption
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.triggers.exemptions import (
    EXPIRED,
    exemption_json,
    exemption_request,
    iso,
    listed,
    listing_scope,
    removal_request,
    request_reconcile,
)
from shared.triggers.http_validation import BadRequest
from shared.triggers.start import StartError

HELP = (
    "break-glass exemptions: let a pool keep (or be given, --mode) another SSH mode until a deadline at most "
    "WARDEN_MAX_EXEMPTION away; --remove ends one now, --list shows those in force"
)
JSON_SHAPE = (
    '{"exemption": {"clusterId", "poolId", "cluster", "pool", "mode", "until", "reason", "actor", "grantedAt"}, '
    '"change", "outcomes": [...], "errors": [...], "left": [...], "stopped"}; with --list {"exemptions": [...]}'
)
SETTING = "  WARDEN_MAX_EXEMPTION   how far ahead an exemption may end (default 24h, at most 7 days)"
COLUMNS = (
    Column("CLUSTER", flex=True),
    Column("POOL"),
    Column("MODE"),
    Column("UNTIL"),
    Column("BY", drop=1),
    Column("REASON", flex=True),
)


def add_arguments(command: argparse.ArgumentParser) -> None:
    action = command.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="show the exemptions in force")
    action.add_argument("--remove", action="store_true", help="end the pool's exemption now (its policy applies)")
    command.add_argument("--pool", help="the AKS agent-pool resource id")
    command.add_argument(
        "--until",
        help="when the exemption ends: an ISO-8601 time with its offset (2026-12-01T18:00:00Z) or a duration "
        "from now (4h, 90m, PT4H)",
    )
    command.add_argument("--reason", help="why, for the audit trail (required to grant or remove)")
    command.add_argument(
        "--mode",
        help="give the pool this SSH mode while exempt: Disabled, EntraId or LocalUser (default: keep its own)",
    )
    command.add_argument("--cluster", help="with --list: only this AKS managed-cluster resource id")
    command.epilog = (command.epilog or "").replace(
        "settings (environment):\n", f"settings (environment):\n{SETTING}\n"
    )


def run_exempt(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.tables:
        raise ConfigError("WARDEN_TABLES (or AzureWebJobsStorage) is not set: exemptions live in the warden's tables")
    now = datetime.now(UTC)
    if args.list:
        _only(args, "--list", ("cluster",))
        return _list(args, settings, now)
    if args.remove:
        _only(args, "--remove", ("pool", "reason"))
        query = _given(pool=args.pool, reason=args.reason)
        target, reason = _checked(lambda: removal_request(query, settings))
        return _remove(args, settings, target, reason, now)
    _only(args, "an exemption", ("pool", "until", "reason", "mode"))
    body = _given(pool=args.pool, until=_until(args.until, now), reason=args.reason, mode=args.mode)
    asked = _checked(lambda: exemption_request(body, settings, now))
    return _grant(args, settings, asked.row(actor(), now), now)


def actor() -> str:
    """`cli`, with the account that ran it when the system says (not proof: an environment can claim any)."""
    try:
        return f"cli ({getpass.getuser()})"
    except (OSError, KeyError):  # no user name in the environment nor the password database
        return "cli"


def _only(args: argparse.Namespace, what: str, allowed: tuple[str, ...]) -> None:
    for name in ("pool", "until", "reason", "mode", "cluster"):
        if getattr(args, name) is not None and name not in allowed:
            raise BadInput(f"--{name} does not go with {what}; it takes {', '.join('--' + a for a in allowed)}")


def _given(**options: str | None) -> dict[str, str]:
    return {name: value for name, value in options.items() if value is not None}


def _until(text: str | None, now: datetime) -> str | None:
    """A duration from now becomes the time it ends at; a time is passed on to be checked."""
    if text is None:
        return None
    try:
        return (now + parse_duration(text)).isoformat()
    except ValueError:
        return text


def _checked(check):
    """The API's checks, their messages naming the options instead of the fields."""
    try:
        return check()
    except BadRequest as e:
        message = e.message
        for name in ("pool", "until", "reason", "mode", "cluster"):
            message = message.replace(f"'{name}'", f"--{name}")
        raise BadInput(f"{e.code}: {message}") from None


def _grant(args: argparse.Namespace, settings: Settings, row: PoolExemption, now: datetime) -> int:
    from shared.orchestration import exemptions

    with local_functions(settings, args) as functions:
        granted = exemptions.grant(runtime.runtime(), row, now)
        say(
            f"exemption {granted.change.value}: {exemption_json(granted.exemption)['poolId']} until "
            f"{iso(granted.exemption.until)}; afterwards the pool goes back to its policy at its next event or the resync"
        )
        result = RunResult()
        if granted.exemption.mode:
            why = f"exemption gives {granted.exemption.mode}: {granted.exemption.reason}"
            result = _reconcile(functions, args, granted.exemption, why)
        return _report(functions, args, result, granted.exemption, granted.change.value)


def _remove(args: argparse.Namespace, settings: Settings, target, reason: str, now: datetime) -> int:
    from shared.orchestration import exemptions

    with local_functions(settings, args) as functions:
        ended = exemptions.remove(runtime.runtime(), target.cluster, target.pool, actor(), reason, now)
        if ended is None:
            raise BadInput(f"pool {target.id} has no exemption: nothing to remove")
        pool_id = exemption_json(ended.exemption)["poolId"]
        if ended.change == EXPIRED:
            say(f"the exemption of {pool_id} had already ended at {iso(ended.exemption.until)}: recorded as expired")
        else:
            say(f"exemption removed: {pool_id} (it was to end at {iso(ended.exemption.until)}); reconciling the pool")
        result = _reconcile(functions, args, ended.exemption, f"exemption {ended.change.value}: {reason}")
        return _report(functions, args, result, ended.exemption, ended.change.value)


def _reconcile(functions: LocalFunctions, args: argparse.Namespace, row: PoolExemption, why: str) -> RunResult:
    """The pool's reconcile, through the normal request path, run here to its end."""

    async def request(client) -> list[dict]:
        try:
            await request_reconcile(client, runtime.runtime(), row, why, actor())
        except StartError as e:
            return [error_entry(row.pool_key, "ReconcileNotStarted", str(e))]
        return []

    errors = functions.with_client(request)
    result = run_to_end(functions, args.timeout)
    result.errors += errors
    return result


def _report(
    functions: LocalFunctions, args: argparse.Namespace, result: RunResult, row: PoolExemption, change: str
) -> int:
    for status in functions.durable.statuses():
        if status.name == names.RECONCILE_POOL and isinstance(status.output, dict):
            result.rows.append(outcome_row(status.input.get("cluster", {}), status.output))
        elif getattr(status.runtime_status, "value", status.runtime_status) == "Failed":
            result.errors.append(error_entry(status.instance_id, "OrchestrationFailed", str(status.output)))
    if not args.json:
        print(_table([row], args.wide))
        if result.rows:
            print()
    cells = [(r["cluster"], r["pool"], r["outcome"], r["status"], r["reason"]) for r in result.rows]
    show_run(args, "outcomes", result, OUTCOME_COLUMNS, cells, exemption=exemption_json(row), change=change)
    return result.exit_code(any(r["outcome"] in ("failed", "gone") for r in result.rows))


def _list(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    from shared.adapters.store import WardenStore

    cluster = _checked(lambda: listing_scope({"cluster": args.cluster} if args.cluster else {}, settings))
    with WardenStore(settings.tables) as store:
        try:
            rows = listed(store.list_exemptions(cluster.key if cluster else None), settings, now)
        except StoreNotFoundError:  # nothing recorded yet: listing creates no tables
            rows = []
    if args.json:
        print_json({"exemptions": [exemption_json(r) for r in rows]})
    elif rows:
        print(_table(rows, args.wide))
    else:
        say("no exemption in force")
    return EXIT_OK


def _table(rows: list[PoolExemption], wide: bool) -> str:
    cells = []
    for row in rows:
        shown = exemption_json(row)
        where = f"{shown['resourceGroup']}/{shown['cluster']}"
        cells.append((where, row.pool, row.mode or "(keeps its own)", shown["until"], row.actor, row.reason))
    return table(COLUMNS, cells, width=None if wide else terminal_width())
