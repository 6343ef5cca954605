"""Fixtures shared by every test tier.

`azurite`: one Azurite Table service for the whole session, on a free loopback port in a
temporary directory; yields its connection string and always stops it.
`store`: a `WardenStore` on tables of its own (a unique table prefix), dropped afterwards.
Tests using either carry the `azurite` marker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.adapters.store import WardenStore
from shared.local.azurite import start_azurite


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs Azurite carries the `azurite` marker (`-m "not azurite"` skips them)."""
    for item in items:
        if "azurite" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)


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
