"""Fixtures for tests against the local ARM emulator over real HTTP (a plugin of tests/conftest.py).

`arm_emulator`: an `ArmEmulator` on a free loopback port serving the test fleet
(tests/fixtures/fleet_integration.json, two subscriptions `SUB_A`/`SUB_B`), always stopped after the test.
`start_arm_emulator(**options)`: the same with other options (`lro_polls`, `retry_after`, `clock`,
`latency_seconds`, `sleep`, `fleet`); every emulator it starts is stopped after the test.
`local_credential`: a credential with a fixed local token, what the warden uses for a loopback ARM.
Tests using these carry the `emulator` marker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

from shared.local.arm_emulator import ArmEmulator

TEST_FLEET = Path(__file__).resolve().parent / "fixtures" / "fleet_integration.json"
SUB_A = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"  # aks-dev-weu (rg-dev-weu), aks-prod-weu (rg-prod-weu)
SUB_B = "8d41e7b2-0c9f-4e35-a6d8-1b2c3d4e5f60"  # aks-auto-neu (Automatic), aks-sandbox-neu (stopped)


class LocalCredential:
    """Any non-empty bearer token satisfies the emulator."""

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return AccessToken("local", int(time.time()) + 24 * 3600)


@pytest.fixture
def test_fleet() -> dict:
    return json.loads(TEST_FLEET.read_text(encoding="utf-8"))


@pytest.fixture
def start_arm_emulator(test_fleet: dict) -> Iterator[Callable[..., ArmEmulator]]:
    started: list[ArmEmulator] = []

    def start(fleet: dict | None = None, **options) -> ArmEmulator:
        emulator = ArmEmulator(fleet if fleet is not None else test_fleet, **options)
        emulator.start()
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture
def arm_emulator(start_arm_emulator: Callable[..., ArmEmulator]) -> ArmEmulator:
    return start_arm_emulator()


@pytest.fixture
def local_credential() -> LocalCredential:
    return LocalCredential()
