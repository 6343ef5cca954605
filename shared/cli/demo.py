"""`demo`: the warden end to end on a local Azure (Azurite + the ARM emulator, sample fleet).

It runs in `enforce` mode (a deployment starts in `audit`) and says so; each step names the
manual `az` step it automates. sshd before and after is what the warden's own verification
recorded (WardenNodeChecks), not the emulator's state. With `--json` it prints JSON Lines:
one `{"step", "command", "result"}` document per line; the narration stays on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime

from shared.cli import EXIT_OK, plan, rotate, run, verify
from shared.cli.output import Column, print_json, table, terminal_width
from shared.config import Settings
from shared.core.models import Target
from shared.core.records import AuditRecord, NodeCheck
from shared.core.table_keys import iso
from shared.local.demo import DEMO_EVENT, local_stack, say
from shared.local.keystore import LocalFileKeyStore
from shared.orchestration import runtime

MANUAL_GUIDE = (
    "`az aks nodepool update --ssh-access disabled`, then `az aks nodepool upgrade --node-image-only`, "
    "then `az vmss run-command invoke ... 'systemctl status ssh'` on every node"
)
AUDIT_COLUMNS = (
    Column("TIME"),
    Column("POOL"),
    Column("STEP"),
    Column("OUTCOME"),
    Column("BEFORE", drop=2),
    Column("AFTER", drop=3),
    Column("BY", drop=1),
    Column("DETAIL", flex=True),
)


def run_demo(args: argparse.Namespace) -> int:
    steps = _Steps(args)
    with local_stack() as arm:
        target = _event_target()
        say(
            "This runs the warden in ENFORCE mode against a local Azure (Azurite and an ARM emulator with a "
            "sample fleet of 4 clusters). A real deployment starts in audit mode: it only reports. "
            f"For every pool it does what the AKS guide asks by hand: {MANUAL_GUIDE}."
        )
        steps.run(
            "plan", "1. plan: what ARM says each pool is configured with, and what the policy wants", plan.run_plan
        )
        say(f"   ARM requests so far: {len(arm.requests)}, of which writes: {_writes(arm)}")

        say(
            "2. verify: what the nodes say. For each node: `az vmss run-command invoke --command-id RunShellScript "
            "--scripts 'systemctl is-active ssh; systemctl is-enabled ssh'`, by the warden (policy verify.sample: all)"
        )
        say("   aks-prod-weu/system is configured Disabled, but one node runs sshd again: drift -> reimage -> verified")
        before = _now()
        steps.run("verify", "", verify.run_verify, cluster=None)

        say(
            f"3. handle-event {DEMO_EVENT.name}: someone wrote pool {target.cluster.name}/{target.pool}; the warden "
            "reads it, sets sshAccess (az aks nodepool update) and reimages (az aks nodepool upgrade --node-image-only),"
            " then verifies the nodes"
        )
        after = _now()
        steps.run("handle-event", "", run.run_handle_event, file=str(DEMO_EVENT))

        say(f"4. sshd on the nodes of {target.cluster.name}/{target.pool}, as the warden's verification recorded it:")
        for line in sshd_before_after(_checks(), target, before, after):
            say(f"   {line}")

        say(f"5. the audit trail of {target.cluster.name} (WardenAudit)")
        audit = _audit_rows(target)
        steps.show("audit", [_audit_json(r) for r in audit], _audit_table(audit, args.wide))
        say(f"   ARM writes in all: {_writes(arm)} (run-commands only read the nodes: {_run_commands(arm)})")

        say("6. rotate-keys: a new node SSH key for aks-prod-weu (RSA 3072; only its LocalUser pools are reimaged)")
        with tempfile.TemporaryDirectory(prefix="warden-demo-keys-") as keys:
            store = LocalFileKeyStore(keys)
            say(f"   private keys go to a {store.describe()} (on Azure: Key Vault, WARDEN_KEYVAULT_URL)")
            steps.run("rotate-keys", "", lambda a: rotate.run_rotate(a, store), cluster=_prod_id(), public_key=None)

        steps.run("plan", "7. plan again: what is left, and why", plan.run_plan)
        for line in what_is_left(steps.quietly(plan.run_plan)):
            say(f"   {line}")
    say(
        "Next: against your own subscriptions, in audit mode (nothing is written): `az login`, then\n"
        "   WARDEN_SUBSCRIPTIONS=<subscription id> WARDEN_POLICY=policy.json python -m shared plan\n"
        "   `python -m shared compliance --html report.html` shows where the fleet stands, with the evidence;\n"
        "   the README explains the policy, the modes, and deployment with `azd up`."
    )
    return max(steps.codes) if any(steps.codes) else EXIT_OK


class _Steps:
    """Runs the demo's commands; with --json each step's document becomes one JSON Lines line."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.codes, self.count = args, [], 0

    def run(self, command: str, intro: str, function, **extra) -> dict | None:
        if intro:
            say(intro)
        options = argparse.Namespace(
            json=self.args.json, wide=self.args.wide, verbose=self.args.verbose, timeout=None, **extra
        )
        if not self.args.json:
            self.codes.append(function(options))
            return None
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            self.codes.append(function(options))
        document = json.loads(buffer.getvalue())
        self._emit(command, document)
        return document

    def quietly(self, function, **extra) -> dict:
        """A command's JSON document, printing nothing (read-only commands only)."""
        options = argparse.Namespace(json=True, wide=False, verbose=False, timeout=None, **extra)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            function(options)
        return json.loads(out.getvalue())

    def show(self, command: str, document, text: str) -> None:
        if self.args.json:
            self._emit(command, document)
        else:
            print(text)

    def _emit(self, command: str, document) -> None:
        self.count += 1
        print_json({"step": self.count, "command": command, "result": document}, lines=True)


def sshd_before_after(checks: list[NodeCheck], target: Target, before: datetime, after: datetime) -> list[str]:
    """What the warden's checks of the target pool said before the event and after it."""
    pool = [c for c in checks if c.cluster_id.lower() == target.cluster.key and c.pool.lower() == target.pool.lower()]
    lines = []
    for label, start, end in (("before", before, after), ("after ", after, None)):
        seen = [c for c in pool if c.time >= start and (end is None or c.time < end)]
        if not seen:
            lines.append(f"{label}: not checked")
            continue
        states = Counter(
            f"sshd {_state(c.sshd_active, 'active', 'inactive')}/{_state(c.sshd_enabled, 'enabled', 'disabled')}"
            for c in seen
        )
        verdicts = Counter(c.verdict for c in seen)
        lines.append(
            f"{label}: "
            + ", ".join(f"{n} node{'s' * (n > 1)} {s}" for s, n in sorted(states.items()))
            + f" (expected {seen[-1].expected_mode}; verdict "
            + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
            + f"; checked {seen[-1].time:%H:%M:%S})"
        )
    return lines


def _state(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no


WHY_LEFT = {
    "drifted": "no event or request named it in this demo; the hourly resync (`reconcile --all`) would take it",
    "ignored": "the policy leaves it alone, on purpose",
    "unsupported": "AKS cannot give it the mode the policy wants: reported, never written",
    "pending-reimage": "its sshAccess is set; the node-image upgrade waits (maintenance window or disruption policy)",
}


def what_is_left(document: dict) -> list[str]:
    """The pools the final plan does not call compliant, and why (from `plan --json`)."""
    left = [p for p in document["pools"] if p["status"] != "compliant"]
    return [
        f"{p['cluster']}/{p['pool']}: {p['status']} ({p['reason']}): {_why_left(p)}".rstrip(": ") for p in left
    ] or ["every pool complies"]


def _why_left(pool: dict) -> str:
    if "cluster is stopped" in pool["reason"]:
        return "its cluster is stopped: AKS accepts no write until it starts; the resync after that takes it"
    return WHY_LEFT.get(pool["status"], "")


def _now() -> datetime:
    return datetime.now().astimezone()


def _prod_id() -> str:
    """aks-prod-weu of the sample fleet: the cluster the event did not touch."""
    event = _event_target().cluster
    return event.id.replace(event.resource_group, "rg-prod-weu").replace(event.name, "aks-prod-weu")


def _event_target() -> Target:
    return Target.from_id(json.loads(DEMO_EVENT.read_text(encoding="utf-8"))[0]["subject"])


def _writes(arm) -> int:
    """ARM writes to AKS; run-commands (verification) only read the nodes."""
    return sum(1 for r in arm.requests if r.method != "GET" and not _is_run_command(r.path))


def _run_commands(arm) -> int:
    return sum(1 for r in arm.requests if r.method == "POST" and _is_run_command(r.path))


def _is_run_command(path: str) -> bool:
    return path.lower().endswith("/runcommand")


def _with_store(read):
    store = runtime.build(Settings.from_env()).store
    try:
        return read(store)
    finally:
        store.close()


def _audit_rows(target: Target) -> list[AuditRecord]:
    return _with_store(lambda store: store.list_audit(target.cluster.key))


def _checks() -> list[NodeCheck]:
    return _with_store(lambda store: store.list_node_checks())


def _audit_json(row: AuditRecord) -> dict:
    return {
        "time": iso(row.time),
        "clusterId": row.cluster_id,
        "poolId": f"{row.cluster_id}/agentPools/{row.pool}" if row.pool else None,
        "step": row.step,
        "outcome": row.outcome.value,
        "modeBefore": row.mode_before,
        "modeAfter": row.mode_after,
        "code": row.code,
        "message": row.message,
        "operationId": row.operation_id,
        "instanceId": row.instance_id,
        "actor": row.actor or "warden",
    }


def _audit_table(rows: list[AuditRecord], wide: bool) -> str:
    cells = [
        (
            r.time.strftime("%H:%M:%S.%f")[:-3],
            r.pool,
            r.step,
            r.outcome.value,
            r.mode_before,
            r.mode_after,
            r.actor or "warden",
            (r.code + " " if r.code else "") + r.message,
        )
        for r in rows
    ]
    return table(AUDIT_COLUMNS, cells, width=None if wide else terminal_width())
