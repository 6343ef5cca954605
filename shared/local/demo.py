"""The local Azure behind `python -m shared demo`.

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
DEMO_EVENT = HERE / "demo_event.json"  # the real ResourceWriteSuccess sample, on an AKS pool


def demo_settings(arm_url: str, tables: str, fleet: dict) -> dict[str, str]:
    subscriptions = sorted({c["managedCluster"]["id"].split("/")[2] for c in fleet["clusters"]})
    return {
        "WARDEN_SUBSCRIPTIONS": ",".join(subscriptions),
        "WARDEN_POLICY": str(DEMO_POLICY),
        "WARDEN_MODE": "enforce",
        "AZURE_RESOURCE_MANAGER_ENDPOINT": arm_url,
        "WARDEN_TABLES": tables,
        "WARDEN_POLL_SECONDS": "1",
        # Blank the rest, so nothing from the caller's shell (a real topic, a real vault) is used.
        "WARDEN_EVENTS_ENDPOINT": "",
        "WARDEN_KEYVAULT_URL": "",
        "WARDEN_VERIFY_SCHEDULE": "",
        "WARDEN_ROTATE_SCHEDULE": "",
        "WARDEN_RESYNC_SCHEDULE": "",
        "WARDEN_VERIFY_CONCURRENCY": "",
        "AZURE_CLIENT_ID": "",
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


@contextmanager
def local_stack() -> Iterator[ArmEmulator]:
    """Azurite and the ARM emulator with the sample fleet, and the settings pointing at them."""
    fleet = json.loads(DEMO_FLEET.read_text(encoding="utf-8"))
    with ExitStack() as stack:
        azurite = stack.enter_context(start_azurite())
        arm = stack.enter_context(ArmEmulator(fleet))
        stack.enter_context(environment(demo_settings(arm.base_url, azurite.connection_string, fleet)))
        say(f"Azurite on port {azurite.port}, ARM emulator at {arm.base_url}, policy {DEMO_POLICY.name}")
        yield arm


def say(message: str) -> None:
    print(f"\n[demo] {message}", file=sys.stderr, flush=True)
