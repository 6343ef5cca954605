"""Fixtures for the orchestration tier: the in-process Durable host over the sample app.

`host`: a `DurableHost` on a `VirtualClock` at `T0` (timers never sleep).
`client_binding`: the host's client API served on a free loopback port; yields the
durable-client binding JSON and always stops the server.
Every test ends with the SDK's cached aiohttp session closed (no session outlives its loop).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.durable_functions.models.utils import http_utils
from durable_samples import CALLS, T0, app

from shared.local.durable_host import DurableHost, VirtualClock


@pytest.fixture(autouse=True)
def reset_calls() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()
    assert http_utils._client_session is None, "a test left the durable client's aiohttp session open"


@pytest.fixture
def host() -> DurableHost:
    return DurableHost.from_app(app, clock=VirtualClock(T0))


@pytest.fixture
def client_binding(host: DurableHost) -> Iterator[str]:
    with host.serve_client_api() as binding:
        yield binding
