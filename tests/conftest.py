"""Fixtures shared by every test tier.

`azurite`: one Azurite Table service for the whole session, on a free loopback port in a
temporary directory; yields its connection string and always stops it.
`store`: a `WardenStore` on tables of its own (a unique table prefix), dropped afterwards.
The ARM emulator fixtures (`arm_emulator`, `start_arm_emulator`) come from tests/emulator_fixtures.py;
the loopback Key Vault (`keyvault`, `keyvault_store`) from tests/keyvault_fake.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.adapters.store import WardenStore
from shared.local.azurite import start_azurite

pytest_plugins = ["tests.emulator_fixtures", "tests.warden_fixtures", "tests.topic_receiver", "tests.keyvault_fake"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need Azurite or the ARM emulator carry the `azurite`/`emulator` marker
    (`-m "not azurite"` skips them)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "azurite" in fixtures:
            item.add_marker(pytest.mark.azurite)
        if {"arm_emulator", "start_arm_emulator"} & fixtures:
            item.add_marker(pytest.mark.emulator)


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    with start_azurite() as process:
        yield process.connection_string


@pytest.fixture
def store(azurite: str) -> Iterator[WardenStore]:
    # retry_total=0: a broken request fails the test at once instead of after the SDK's retries.
    with WardenStore(azurite, table_prefix=f"t{uuid.uuid4().hex[:12]}", retry_total=0) as warden_store:
        warden_store.ensure_tables()
        try:
            yield warden_store
        finally:
            warden_store.delete_tables()
