"""`reconcile` and `handle-event`: the app's own trigger functions, run in-process to completion.

The same code as on Azure: the HTTP or Event Grid trigger gets a real `azure.functions`
object and a real Durable client; the orchestrations run on the in-process Durable host
with the real replay engine and a real clock, against the configured ARM and tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.cli import EXIT_FAILED, EXIT_OK, BadInput, progress
from shared.config import Settings
from shared.errors import shown
from shared.events import Drop, EventError, Hint, RawEvent, classify, decode_delivery, parse_delivery
from shared.local.durable_host import HostEvent, RealClock
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.report import table
from shared.triggers.http_api import RECONCILE_FUNCTION
from shared.triggers.resync import resync

FAILED_OUTCOMES = ("failed",)


def run_reconcile(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.all:
        if args.pool:
            raise BadInput("--pool goes with --cluster, not with --all")
        return run_resync(settings, args.json)
    body = {"cluster": args.cluster, **({"pool": args.pool} if args.pool else {})}
    with local_functions(settings) as functions:
        response = functions.http(RECONCILE_FUNCTION, "POST", "http://localhost/api/reconcile", body)
        if response.status_code >= 400:
            error = json.loads(response.get_body())["error"]
            raise BadInput(f"{error['code']}: {error['message']}")
        functions.run()
        return report_outcomes(functions, args.json)


def run_resync(settings: Settings, as_json: bool) -> int:
    """`reconcile --all`: the resync timer's sweep, once, then every worker it started."""
    with local_functions(settings) as functions:
        report = functions.with_client(lambda client: resync(client, runtime.runtime()))
        progress(
            f"resync: {report.clusters} clusters read; reconcile requested for {len(report.requested)}, "
            f"{len(report.resumed)} with requests left behind resumed"
        )
        functions.run()
        return report_outcomes(functions, as_json, report.errors)


def run_handle_event(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    delivery = read_delivery(args.file)
    for verdict in _verdicts(delivery, settings):
        if isinstance(verdict, Drop):
            progress(f"dropped event {shown(verdict.event_id) if verdict.event_id else '?'}: {verdict.reason}")
    with local_functions(settings) as functions:
        functions.deliver_events(delivery)
        functions.run()
        return report_outcomes(functions, args.json)


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
    try:
        return classify(event, settings.subscriptions, settings.own_identities)
    except EventError as e:  # its `data` is not an object: the trigger drops it the same way
        return Drop(event.id, str(e), event.type)


@contextmanager
def local_functions(settings: Settings, keystore=None) -> Iterator[LocalFunctions]:
    """The app's functions on this machine; `keystore`: another key store than WARDEN_KEYVAULT_URL's."""
    runtime.install(runtime.build(settings, keystore=keystore))
    started = time.monotonic()

    def show(event: HostEvent) -> None:
        if event.kind == "activity" and isinstance(event.payload, dict) and event.activity != names.RECORD:
            where = f"{event.payload.get('cluster', {}).get('name', '?')}/{event.payload.get('pool') or '*'}"
            progress(f"+{time.monotonic() - started:6.1f}s {where} {event.activity.removesuffix('_activity')}")

    try:
        with LocalFunctions(clock=RealClock(), on_progress=show) as functions:
            yield functions
    finally:
        runtime.reset()


def report_outcomes(functions: LocalFunctions, as_json: bool, errors: list[str] | None = None) -> int:
    """Per pool: the outcome of every pool reconcile that ran; exit 1 if any failed, or if a
    cluster could not be reconciled at all (e.g. its pools could not be listed)."""
    rows, crashed = [], list(errors or [])
    for status in functions.durable.statuses():
        cluster = status.input.get("cluster", {}) if isinstance(status.input, dict) else {}
        where = f"{cluster.get('resourceGroup')}/{cluster.get('name')}"
        if status.name == names.RECONCILE_POOL and isinstance(status.output, dict):
            rows.append({"cluster": where, **status.output})
        elif status.name == names.RECONCILE_CLUSTER and isinstance(status.output, dict) and status.output.get("error"):
            error = status.output["error"]
            crashed.append(f"cluster {where}: {error['code']}: {error['message']}")
        elif getattr(status.runtime_status, "value", status.runtime_status) == "Failed":
            crashed.append(f"{status.instance_id}: {status.output}")
    if as_json:
        print(json.dumps({"outcomes": rows, "errors": crashed}, indent=2))
    else:
        print(
            table(
                ("CLUSTER", "POOL", "OUTCOME", "STATUS", "REASON"),
                [(r["cluster"], r["pool"], r["outcome"], r.get("status") or "", r["reason"]) for r in rows],
            )
        )
    for error in crashed:
        print(f"failed: {error}", file=sys.stderr)
    failed = crashed or any(r["outcome"] in FAILED_OUTCOMES for r in rows)
    return EXIT_FAILED if failed else EXIT_OK
