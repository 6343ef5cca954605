"""`demo`: the warden end to end on a local Azure (Azurite + the ARM emulator, sample fleet).

1. `plan`, the read-only report (what ARM says); 2. `verify`, what the nodes say: a pool whose
config is right but one of whose nodes runs sshd again is caught, reimaged and verified ok;
3. `handle-event` with a pool write on a LocalUser pool, enforced end to end and verified;
4. the audit trail; 5. the node evidence the warden keeps; 6. a key rotation (private key to a
local file store that says it is one); 7. `plan` again. With `--json` each
step prints its JSON document on stdout; the narration stays on stderr.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from shared.cli import EXIT_OK, plan, rotate, run, verify
from shared.config import Settings
from shared.local.demo import DEMO_EVENT, local_stack, say
from shared.local.keystore import LocalFileKeyStore
from shared.models import Target, to_json
from shared.orchestration import runtime
from shared.records import clip
from shared.report import table

MANUAL_STEPS = (
    "az aks nodepool update --ssh-access disabled, then az aks nodepool upgrade --node-image-only, "
    "then az vmss run-command invoke ... 'systemctl status ssh' on each node"
)


def run_demo(args: argparse.Namespace) -> int:
    with local_stack() as arm:
        say(
            "the warden runs in enforce mode here (a deployment starts in audit mode: it only reports). "
            f"It does, for every pool, what the AKS guide asks by hand: {MANUAL_STEPS}"
        )
        say("1. plan: the read-only fleet report (what ARM says each pool is configured with)")
        codes = [plan.run_plan(args)]
        say(f"   ARM requests so far: {len(arm.requests)}, of which writes: {_writes(arm)}")

        say(
            "2. verify: what the nodes say. The warden asks sshd on every node (policy verify.sample: all) by run-command;"
        )
        say("   aks-prod-weu/system is configured Disabled, but one node runs sshd again: drift, reimage, verified")
        codes.append(verify.run_verify(argparse.Namespace(cluster=None, json=args.json)))

        target = _event_target()
        say(f"3. handle-event {DEMO_EVENT.name}: someone wrote pool {target.cluster}/{target.pool}")
        codes.append(run.run_handle_event(argparse.Namespace(file=str(DEMO_EVENT), json=args.json)))

        say(f"4. the audit trail of {target.cluster}")
        print(_audit_json(target) if args.json else _audit_table(target))

        say("5. the evidence: every node check the warden made, from the WardenNodeChecks table")
        print(_checks_json() if args.json else _checks_table())
        say(f"   ARM writes in all: {_writes(arm)} (run-commands only read the nodes: {_run_commands(arm)})")

        say("6. rotate-keys: a new node SSH key for aks-prod-weu (RSA 3072; only its LocalUser pools are reimaged)")
        with tempfile.TemporaryDirectory(prefix="warden-demo-keys-") as keys:
            store = LocalFileKeyStore(keys)
            say(f"   private keys go to a {store.describe()} (on Azure: Key Vault, WARDEN_KEYVAULT_URL)")
            codes.append(
                rotate.run_rotate(argparse.Namespace(cluster=_prod_id(), public_key=None, json=args.json), store)
            )

        say("7. plan again")
        codes.append(plan.run_plan(args))
    return max(codes) if any(codes) else EXIT_OK


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


def _store():
    return runtime.build(Settings.from_env()).store


def _audit_rows(target: Target) -> list:
    store = _store()
    try:
        return store.list_audit(target.cluster.key)
    finally:
        store.close()


def _audit_json(target: Target) -> str:
    return json.dumps([to_json(r) for r in _audit_rows(target)], indent=2, default=str)


def _audit_table(target: Target) -> str:
    rows = _audit_rows(target)
    return table(
        ("TIME", "POOL", "STEP", "OUTCOME", "BEFORE", "AFTER", "BY", "DETAIL"),
        [
            (
                r.time.strftime("%H:%M:%S.%f")[:-3],
                r.pool,
                r.step,
                r.outcome.value,
                r.mode_before,
                r.mode_after,
                r.actor or "warden",
                clip((r.code + " " if r.code else "") + r.message, 90),
            )
            for r in rows
        ],
    )


def _checks() -> list:
    store = _store()
    try:
        return store.list_node_checks()
    finally:
        store.close()


def _checks_json() -> str:
    return json.dumps([to_json(c) for c in _checks()], indent=2, default=str)


def _checks_table() -> str:
    return table(
        ("TIME", "CLUSTER", "POOL", "NODE", "EXPECTED", "VERDICT", "WHAT THE NODE SAID"),
        [
            (
                c.time.strftime("%H:%M:%S"),
                Target.from_id(c.cluster_id).cluster.name,
                c.pool,
                c.instance_id,
                c.expected_mode,
                c.verdict,
                clip(c.units, 70),
            )
            for c in _checks()
        ],
    )
