"""`reconcile` and `handle-event`: the app's own trigger functions, run in-process to completion.

The same code as on Azure: the HTTP or Event Grid trigger gets a real `azure.functions`
object and a real Durable client; the orchestrations run on the in-process Durable host
with the real replay engine and a real clock, against the configured ARM and tables.
A run ends when the work is done, at `--timeout`, or at Ctrl-C; what was not done stays in
the requests table, and the next run (or the resync timer) takes it up.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput, progress, unreachable_arm
from shared.cli.narrate import Narrator
from shared.cli.output import Column, print_json, say, table, terminal_width
from shared.config import Settings
from shared.core.errors import CredentialError, TransientError, shown
from shared.core.events import Drop, EventError, Hint, RawEvent, classify, decode_delivery, parse_delivery
from shared.core.models import ClusterRef
from shared.core.protocol import FailureKind
from shared.local.durable_host import RealClock
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.triggers.http_api import RECONCILE_FUNCTION
from shared.triggers.resync import resync

OUTCOMES_SHAPE = (
    '{"outcomes": [{"clusterId", "poolId", "cluster", "pool", "outcome", "status", "reason", "error"}], '
    '"errors": [{"target", "code", "message"}], "left": [{"clusterId", "pool", "kind"}], "stopped": null | why}'
)
FAILED = ("failed", "gone")
UNREACHABLE_CODES = {"ConnectionError": TransientError, "CredentialUnavailable": CredentialError}

OUTCOME_COLUMNS = (
    Column("CLUSTER"),
    Column("POOL"),
    Column("OUTCOME"),
    Column("STATUS", drop=1),
    Column("REASON", flex=True),
)


@dataclass
class RunResult:
    """What a run did: rows for the table, errors with ARM's code, what is left, why it stopped."""

    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    left: list[dict] = field(default_factory=list)
    stopped: str | None = None
    interrupted: bool = False

    def exit_code(self, failed: bool) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if failed or self.errors or self.stopped else EXIT_OK


def error_entry(target: str, code: str, message: str) -> dict:
    return {"target": target, "code": code, "message": " ".join(str(message).split())}


def run_reconcile(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.all:
        if args.pool:
            raise BadInput("--pool goes with --cluster, not with --all")
        return run_resync(settings, args)
    body = {"cluster": args.cluster, **({"pool": args.pool} if args.pool else {})}
    with local_functions(settings, args) as functions:
        response = functions.http(RECONCILE_FUNCTION, "POST", "http://localhost/api/reconcile", body)
        if response.status_code >= 400:
            error = json.loads(response.get_body())["error"]
            raise BadInput(f"{error['code']}: {error['message']}")
        result = run_to_end(functions, args.timeout)
        return report_outcomes(functions, args, result)


def run_resync(settings: Settings, args: argparse.Namespace) -> int:
    """`reconcile --all`: the resync timer's sweep, once, then every worker it started."""
    with local_functions(settings, args) as functions:
        report = functions.with_client(lambda client: resync(client, runtime.runtime()))
        progress(
            f"resync: {report.clusters} clusters read; reconcile requested for {len(report.requested)}, "
            f"{len(report.resumed)} with requests left behind resumed"
        )
        result = run_to_end(functions, args.timeout)
        result.errors += [error_entry("", "ResyncError", e) for e in report.errors]
        if not report.requested and not report.resumed and not result.errors:
            say(f"nothing to do: all {report.clusters} clusters in scope comply (or wait for nothing)")
        return report_outcomes(functions, args, result)


def run_handle_event(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    delivery = read_delivery(args.file)
    verdicts = _verdicts(delivery, settings)
    for verdict in verdicts:
        if isinstance(verdict, Drop):
            progress(f"dropped event {shown(verdict.event_id) if verdict.event_id else '?'}: {verdict.reason}")
    with local_functions(settings, args) as functions:
        functions.deliver_events(delivery)
        result = run_to_end(functions, args.timeout)
        if not any(isinstance(v, Hint) for v in verdicts):
            say(f"nothing to do: none of the {len(verdicts)} events names an AKS cluster or pool in scope")
        return report_outcomes(functions, args, result)


def read_delivery(source: str) -> list:
    """The delivery's event documents; `BadInput` (exit 2, one line) for anything unreadable."""
    try:
        # Bytes, not text: invalid UTF-8 is then the delivery's problem, reported as such.
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        body = stdin.read() if source == "-" else Path(source).read_bytes()
        delivery = decode_delivery(body)
    except OSError as e:
        raise BadInput(f"cannot read {source!r}: {e.strerror}") from e
    except EventError as e:
        raise BadInput(f"{source!r}: {e}") from e
    if not delivery:
        raise BadInput(f"{source!r} holds an empty array: no event to handle")
    return delivery


def _verdicts(delivery: list, settings: Settings) -> list:
    events = parse_delivery(delivery)
    if all(event.problem for event in events):
        # Not one event could be read: bad input, not a delivery of irrelevant events.
        raise BadInput(f"no event could be read: {events[0].problem}")
    return [_verdict(event, settings) for event in events]


def _verdict(event: RawEvent, settings: Settings) -> Hint | Drop:
    if event.problem:
        return Drop(event.id, event.problem, event.type)
    try:
        return classify(event, settings.subscriptions, settings.own_identities)
    except EventError as e:  # its `data` is not an object: the trigger drops it the same way
        return Drop(event.id, str(e), event.type)


@contextmanager
def local_functions(settings: Settings, args: argparse.Namespace, keystore=None) -> Iterator[LocalFunctions]:
    """The app's functions on this machine; `keystore`: another key store than WARDEN_KEYVAULT_URL's."""
    runtime.install(runtime.build(settings, keystore=keystore))
    narrator = Narrator(lambda line: print(line, file=sys.stderr, flush=True), verbose=args.verbose)
    try:
        with LocalFunctions(clock=RealClock(), on_progress=narrator) as functions:
            yield functions
    finally:
        runtime.reset()


def run_to_end(functions: LocalFunctions, timeout: float | None) -> RunResult:
    """Run every orchestration to its end, or until the time limit or a Ctrl-C: then the work
    in hand stops between two steps (every step done is recorded) and the rest is listed."""
    result = RunResult()
    host = functions.durable

    def interrupt(signum, frame) -> None:
        # Nothing printed here: the signal may land while the main thread writes to stderr.
        if result.interrupted:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        result.stopped, result.interrupted = result.stopped or "interrupted", True
        host.stop()

    def time_up() -> None:
        result.stopped = f"timed out after {timeout:g}s"
        host.stop()

    timer = threading.Timer(timeout, time_up) if timeout else None
    previous = _on_sigint(interrupt)
    try:
        if timer:
            timer.daemon = True
            timer.start()
        functions.run()
    except KeyboardInterrupt:
        result.stopped, result.interrupted = "interrupted", True
    finally:
        if timer:
            timer.cancel()
        _on_sigint(previous)
    if result.stopped:
        result.left = left_behind()
    return result


def _on_sigint(handler):
    """Install `handler` for Ctrl-C (only the main thread may); returns the one it replaced."""
    if threading.current_thread() is not threading.main_thread() or handler is None:
        return None
    return signal.signal(signal.SIGINT, handler)


def left_behind() -> list[dict]:
    """The requests still in the table: the work a stopped run did not finish."""
    store = runtime.runtime().store
    left = []
    try:
        for key in store.clusters_with_requests():
            left += [
                {"clusterId": r.cluster_id, "pool": r.pool or None, "kind": r.kind.value}
                for r in store.list_requests(key)
            ]
    except Exception as e:  # noqa: BLE001 - stopping anyway: say what could not be listed
        say(f"cannot list the requests left: {e}")
    return left


def report_outcomes(functions: LocalFunctions, args: argparse.Namespace, result: RunResult, **extra: object) -> int:
    """Per pool: the outcome of every pool reconcile that ran, and a row for every cluster that
    could not be reconciled at all (not found, its pools unreadable); exit 1 if any failed.
    `extra`: more keys of the JSON document."""
    for status in functions.durable.statuses():
        cluster = status.input.get("cluster", {}) if isinstance(status.input, dict) else {}
        if status.name == names.RECONCILE_POOL and isinstance(status.output, dict):
            result.rows.append(outcome_row(cluster, status.output))
        elif status.name == names.RECONCILE_CLUSTER and isinstance(status.output, dict) and status.output.get("error"):
            error = status.output["error"]
            outcome = "gone" if error.get("kind") == FailureKind.NOT_FOUND else "failed"
            row = outcome_row(cluster, {"pool": None, "outcome": outcome, "reason": error["message"], "error": error})
            result.rows.append(row)
            result.errors.append(error_entry(row["clusterId"], error.get("code", ""), error.get("message", "")))
        elif getattr(status.runtime_status, "value", status.runtime_status) == "Failed":
            result.errors.append(error_entry(status.instance_id, "OrchestrationFailed", str(status.output)))
    failed = any(r["outcome"] in FAILED for r in result.rows)
    show_run(args, "outcomes", result, OUTCOME_COLUMNS, [_outcome_cells(r) for r in result.rows], **extra)
    if result.rows and not args.json:
        counts = Counter(r["outcome"] for r in result.rows)
        rows = f"{len(result.rows)} row{'s' * (len(result.rows) != 1)}"
        print(f"\n{rows}: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())))
    return result.exit_code(failed)


def outcome_row(cluster: dict, output: dict) -> dict:
    ref = ClusterRef(cluster.get("subscription", ""), cluster.get("resourceGroup", ""), cluster.get("name", ""))
    pool = output.get("pool")
    error = output.get("error")
    return {
        "clusterId": ref.id,
        "poolId": f"{ref.id}/agentPools/{pool}" if pool else None,
        "cluster": f"{ref.resource_group}/{ref.name}",
        "pool": pool or "*",
        "outcome": output["outcome"],
        "status": output.get("status") or "",
        "reason": output.get("reason", ""),
        "error": {"code": error.get("code", ""), "message": error.get("message", "")} if error else None,
    }


def _outcome_cells(row: dict) -> tuple:
    error = row["error"]
    reason = (
        f"{error['code']}: {row['reason']}"
        if error and error["code"] and not row["reason"].startswith(error["code"])
        else row["reason"]
    )
    return row["cluster"], row["pool"], row["outcome"], row["status"], reason


def show_run(
    args: argparse.Namespace,
    rows_name: str,
    result: RunResult,
    columns: tuple[Column, ...],
    cells: list,
    **extra: object,
) -> None:
    """The run's document (--json; `extra` keys after the rows) or table, then on stderr its
    errors, the fix when Azure was out of reach, and what a stopped run left."""
    if args.json:
        document = {rows_name: result.rows, **extra, "errors": result.errors, "left": result.left}
        print_json({**document, "stopped": result.stopped})
    elif cells:
        print(table(columns, cells, width=None if args.wide else terminal_width()))
    for error in result.errors:
        target = f"{error['target']}: " if error["target"] else ""
        say(f"failed: {target}{error['code']}: {error['message']}")
    _explain_unreachable(result)
    if result.stopped:
        what = sorted(f"{r['clusterId'].rsplit('/', 1)[-1]}/{r['pool'] or '*'} {r['kind']}" for r in result.left)
        say(
            f"stopped ({result.stopped}): {len(what)} request{'s' * (len(what) != 1)} left recorded"
            + (
                f" ({', '.join(what)}); the next run, `reconcile --all` or the resync timer takes them up"
                if what
                else ""
            )
        )


def _explain_unreachable(result: RunResult) -> None:
    codes = {e["code"] for e in result.errors} | {(r.get("error") or {}).get("code") for r in result.rows}
    for code, kind in UNREACHABLE_CODES.items():
        if code in codes:
            problem = unreachable_arm(kind(code, ""), runtime_endpoint())
            say(f"{problem}: {problem.fix}")


def runtime_endpoint() -> str:
    try:
        return Settings.from_env().arm_endpoint
    except Exception:  # noqa: BLE001 - only for the hint
        return ""
