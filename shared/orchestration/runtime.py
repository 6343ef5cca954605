"""The activities' shared resources: settings, the ARM adapter and the store, made once per process.

Not at import time (the worker indexes the app before settings may be complete) but on
first use; `reset()` drops them so tests and the CLI can change the environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.core.errors import ConfigError

if TYPE_CHECKING:  # the adapters load the Azure SDKs: imported by `build`, not when the app is indexed
    from shared.adapters.arm import Arm
    from shared.adapters.publisher import OutcomePublisher
    from shared.adapters.store import WardenStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    arm: Arm
    store: WardenStore  # None only in a read-only runtime without WARDEN_TABLES (`build(read_only=True)`)
    publisher: OutcomePublisher | None = None  # set when WARDEN_EVENTS_ENDPOINT is
    keystore: Any = None  # where generated private keys go (Key Vault when WARDEN_KEYVAULT_URL is set)


_lock = threading.Lock()
_runtime: Runtime | None = None
_settings: Settings | None = None  # read before any runtime was needed (see `settings`)


def runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build(_settings or Settings.from_env())
        return _runtime


def settings() -> Settings:
    """The settings alone, building nothing: the installed runtime's, else the environment's
    (read once). Requests are validated and scope-checked with these before any I/O, so a
    refused request never creates tables nor waits for an unreachable store."""
    global _settings
    with _lock:
        if _runtime is not None:
            return _runtime.settings
        if _settings is None:
            _settings = Settings.from_env()
        return _settings


def installed() -> Runtime | None:
    """The runtime if one is built or installed; never builds one."""
    with _lock:
        return _runtime


def install(rt: Runtime) -> None:
    """Use these resources instead of building them from the environment (tests, the CLI)."""
    global _runtime
    reset()
    with _lock:
        _runtime = rt


def update_settings(settings: Settings) -> Runtime:
    """Use `settings` with the installed resources (a Function App setting changed while work
    runs): the ARM client, the store and the publisher stay open and in use."""
    global _runtime
    with _lock:
        if _runtime is None:
            raise RuntimeError("no runtime is installed: build or install one before updating its settings")
        _runtime = replace(_runtime, settings=settings)
        return _runtime


def build(settings: Settings, keystore: Any = None, *, read_only: bool = False, **store_options) -> Runtime:
    """The resources for `settings`; `store_options` go to `WardenStore` (e.g. a table prefix).
    `keystore`: another key store than the Key Vault of WARDEN_KEYVAULT_URL (local runs).
    `read_only` (the doctor): no table is created, the store is None without WARDEN_TABLES, and
    ARM requests keep the SDK's own retries (no orchestration retries them)."""
    from shared.adapters.arm import Arm
    from shared.adapters.publisher import OutcomePublisher
    from shared.adapters.store import WardenStore

    if not settings.tables and not read_only:
        raise ConfigError("WARDEN_TABLES (or AzureWebJobsStorage) is required to record the audit trail")
    store = WardenStore(settings.tables, **store_options) if settings.tables else None
    if store is not None and not read_only:
        store.ensure_tables()
    publisher = OutcomePublisher(settings.events_endpoint) if settings.events_endpoint else None
    if keystore is None and settings.keyvault_url:
        from shared.adapters.keyvault import KeyVaultKeyStore  # only a rotation needs it

        keystore = KeyVaultKeyStore(settings.keyvault_url)
    # The orchestrations retry with durable timers: there, the SDK's own retries are off.
    arm = Arm(settings.arm_endpoint, local=settings.arm_is_local, retries=None if read_only else 0)
    return Runtime(settings, arm, store, publisher, keystore)


def close(rt: Runtime) -> None:
    """Close every client `rt` holds."""
    rt.arm.close()
    if rt.store is not None:
        rt.store.close()
    if rt.publisher is not None:
        rt.publisher.close()
    if hasattr(rt.keystore, "close"):
        rt.keystore.close()


def reset() -> None:
    global _runtime, _settings
    with _lock:
        _settings = None
        if _runtime is not None:
            close(_runtime)
        _runtime = None
