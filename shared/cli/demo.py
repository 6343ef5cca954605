"""`demo`: the warden end to end on a local Azure (Azurite + the ARM emulator, sample fleet).

1. `plan`, the read-only report; 2. `handle-event` with a pool write on a LocalUser pool,
enforced end to end; 3. its audit trail; 4. the nodes' sshd before and after; 5. `plan` again.
With `--json` each step prints its JSON document on stdout; the narration stays on stderr.
"""

from __future__ import annotations

import argparse
import json

from shared.cli import EXIT_OK, plan, run
from shared.config import Settings
from shared.local.demo import DEMO_EVENT, local_stack, say
from shared.models import Target, to_json
from shared.orchestration import runtime
from shared.report import table


def run_demo(args: argparse.Namespace) -> int:
    with local_stack() as arm:
        say("1. plan: the read-only fleet report")
        codes = [plan.run_plan(args)]
        say(f"   ARM requests so far: {len(arm.requests)}, of which writes: {_writes(arm)}")

        target = _event_target()
        pool_id = f"{target.cluster.id}/agentPools/{target.pool}"
        before = _sshd(arm, pool_id)
        say(
            f"2. handle-event {DEMO_EVENT.name}: someone wrote pool {target.cluster}/{target.pool} (sshd on its nodes: {before})"
        )
        codes.append(run.run_handle_event(argparse.Namespace(file=str(DEMO_EVENT), json=args.json)))

        say(f"3. the audit trail of {target.cluster}")
        print(_audit_json(target) if args.json else _audit_table(target))
        say(
            f"4. sshd on the nodes of {target.pool}: before {before}, after {_sshd(arm, pool_id)}; ARM writes in all: {_writes(arm)}"
        )

        say("5. plan again")
        codes.append(plan.run_plan(args))
    return max(codes) if any(codes) else EXIT_OK


def _event_target() -> Target:
    return Target.from_id(json.loads(DEMO_EVENT.read_text(encoding="utf-8"))[0]["subject"])


def _writes(arm) -> int:
    """ARM writes to AKS; run-commands (verification) only read the nodes."""
    return sum(1 for r in arm.requests if r.method != "GET" and not r.path.lower().endswith("/runcommand"))


def _sshd(arm, pool_id: str) -> str:
    return ", ".join(sorted({f"{active}/{enabled}" for active, enabled in arm.sshd_states(pool_id)}))


def _audit_rows(target: Target) -> list:
    store = runtime.build(Settings.from_env()).store
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
                (r.code + " " if r.code else "") + r.message[:80],
            )
            for r in rows
        ],
    )
