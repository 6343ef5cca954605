"""`python -m shared demo`: the warden end to end against a local Azure.

Starts Azurite (Table Storage) and the ARM emulator with the embedded sample fleet on free
loopback ports, points the settings at them, and runs the same commands a platform
engineer would run against real subscriptions. Everything stops when the demo ends.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from shared.local.arm_emulator import ArmEmulator
from shared.local.azurite import start_azurite

HERE = Path(__file__).resolve().parent
DEMO_FLEET = HERE / "demo_fleet.json"
DEMO_POLICY = HERE / "demo_policy.json"


def demo_settings(arm_url: str, tables: str, fleet: dict) -> dict[str, str]:
    subscriptions = sorted({c["managedCluster"]["id"].split("/")[2] for c in fleet["clusters"]})
    return {
        "WARDEN_SUBSCRIPTIONS": ",".join(subscriptions),
        "WARDEN_POLICY": str(DEMO_POLICY),
        "WARDEN_MODE": "enforce",
        "AZURE_RESOURCE_MANAGER_ENDPOINT": arm_url,
        "WARDEN_TABLES": tables,
        "WARDEN_POLL_SECONDS": "1",
    }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Settings are read from the environment: set the demo's, restore the caller's after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(json_output: bool = False) -> int:
    from shared.cli import main as cli

    fleet = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    with ExitStack() as stack:
        azurite = stack.enter_context(start_azurite())
        arm = stack.enter_context(ArmEmulator(fleet))
        env = demo_settings(arm.base_url, azurite.connection_string, fleet)
        stack.enter_context(environment(env))
        _say(f"Azurite on port {azurite.port}, ARM emulator at {arm.base_url}, policy {DEMO_POLICY.name}")
        _say("1. plan: the read-only fleet report (only GET requests)")
        code = cli(["plan"] + (["--json"] if json_output else []))
        writes = [r for r in arm.requests if r.method != "GET"]
        _say(f"   ARM requests: {len(arm.requests)}, of which writes: {len(writes)}")
        return code


def _say(message: str) -> None:
    print(f"\n[demo] {message}", file=sys.stderr, flush=True)
