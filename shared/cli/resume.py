"""`resume --cluster ID [--reason TEXT]`: let a cluster's reimages go on after one failed.

A reimage that ends failed pauses every later reimage of its cluster: those pools end `waiting`
(pending-reimage) with the reason, so a failed rollout does not roll on. `resume` clears the
pause, records who resumed it and why, then reconciles the cluster now, to completion, through
the normal request path: its pools still owed a reimage get it, within the reimage budgets.
"""

from __future__ import annotations

import argparse

from shared.cli import BadInput
from shared.cli.output import say
from shared.cli.run import error_entry, local_functions, report_outcomes, run_to_end
from shared.config import Settings
from shared.core.errors import ConfigError
from shared.core.models import Target
from shared.orchestration import reimage_budget, runtime
from shared.policy.blast_radius import Pause, stamp
from shared.triggers.http_validation import BadRequest, reason_of, require_in_scope, target_of
from shared.triggers.start import StartError, request_work

ACTOR = "cli"
HELP = "let a cluster's reimages go on after one failed (they stay paused until then), and reconcile it now"
JSON_SHAPE = (
    '{"outcomes": [{"clusterId", "poolId", "cluster", "pool", "outcome", "status", "reason", "error"}], '
    '"resumed": {"clusterId", "pool", "failedAt", "code", "message", "operation", "reason"}, '
    '"errors": [...], "left": [...], "stopped": null | why}'
)


def add_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--cluster", required=True, help="the AKS managed-cluster resource id")
    command.add_argument("--reason", help="why the reimages may go on, for the audit trail (one line)")


def run_resume(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    target, reason = _checked(settings, args.cluster, args.reason)
    if not settings.tables:
        raise ConfigError("WARDEN_TABLES (or AzureWebJobsStorage) is not set: the pause is in the warden's tables")
    with local_functions(settings, args) as functions:
        pause, errors = functions.with_client(lambda client: resume_cluster(client, runtime.runtime(), target, reason))
        if pause is None:
            raise BadInput(f"the reimages of {target.cluster.id} are not paused: nothing to resume")
        say(
            f"reimages of {target.cluster} resumed (paused after {pause.pool}'s reimage failed at "
            f"{stamp(pause.failed_at)}); reconciling the cluster"
        )
        result = run_to_end(functions, args.timeout)
        result.errors += errors
        return report_outcomes(functions, args, result, resumed=_resumed_json(pause, reason))


async def resume_cluster(client, rt, target: Target, reason: str) -> tuple[Pause | None, list[dict]]:
    """Clear the cluster's pause (recorded, actor `cli`), then request its reconcile as any
    trigger does. (None, []) when it was not paused: nothing is written nor requested."""
    pause = reimage_budget.resume(rt, target.cluster, ACTOR, reason)
    if pause is None:
        return None, []
    try:
        await request_work(client, rt.store, target, f"reimages resumed: {reason or 'no reason given'}", ACTOR)
    except StartError as e:  # the request waits in the table: the resync starts its worker
        return pause, [error_entry(target.cluster.id, "ReconcileNotStarted", str(e))]
    return pause, []


def _checked(settings: Settings, cluster: str, reason: str | None) -> tuple[Target, str]:
    """The HTTP API's checks of a cluster id and a reason, their messages naming the options."""
    try:
        target = target_of({"cluster": cluster}, pools=False)
        require_in_scope(settings, target.cluster.subscription)
        return target, reason_of({"reason": reason})
    except BadRequest as e:
        message = e.message.replace("'cluster'", "--cluster").replace("'reason'", "--reason")
        raise BadInput(f"{e.code}: {message}") from None


def _resumed_json(pause: Pause, reason: str) -> dict:
    return {
        "clusterId": pause.cluster_id,
        "pool": pause.pool,
        "failedAt": pause.failed_at,
        "code": pause.code,
        "message": pause.message,
        "operation": pause.operation,
        "reason": reason,
    }
