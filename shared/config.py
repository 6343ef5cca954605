"""Settings: read once from the environment into a frozen object, validated as a whole.

The names are the Function App setting names (see README). An invalid value raises
`ConfigError` naming the variable, the value and what would be valid; nothing is
read lazily later, so a bad deployment fails at start, not half-way through a run.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from shared.errors import ConfigError, OutOfScopeError, PolicyError
from shared.policy import DEFAULT_POLICY_JSON, Policy, load_policy

MODES = ("audit", "enforce")
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_VERIFY_SCHEDULE = "0 0 */6 * * *"
DEFAULT_ROTATE_SCHEDULE = "0 0 3 1 * *"
_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")


@dataclass(frozen=True)
class Settings:
    subscriptions: frozenset[str]
    policy: Policy
    mode: str = "audit"
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    tables: str | None = None
    poll_seconds: int = 30
    verify_schedule: str = DEFAULT_VERIFY_SCHEDULE
    rotate_schedule: str = DEFAULT_ROTATE_SCHEDULE
    keyvault_url: str | None = None
    events_endpoint: str | None = None
    # The warden's own identity (client id of its user-assigned managed identity): events
    # caused by its own writes start no new work.
    own_identities: frozenset[str] = frozenset()

    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    @property
    def arm_is_local(self) -> bool:
        return is_loopback_url(self.arm_endpoint)

    def require_in_scope(self, subscription: str) -> None:
        if subscription.lower() not in self.subscriptions:
            raise OutOfScopeError(
                f"subscription {subscription!r} is not in WARDEN_SUBSCRIPTIONS ({', '.join(sorted(self.subscriptions))})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        arm_endpoint = _arm_endpoint(_get(env, "AZURE_RESOURCE_MANAGER_ENDPOINT") or DEFAULT_ARM_ENDPOINT)
        return cls(
            subscriptions=_subscriptions(_get(env, "WARDEN_SUBSCRIPTIONS")),
            policy=_policy(_get(env, "WARDEN_POLICY")),
            mode=_choice(env, "WARDEN_MODE", MODES, "audit"),
            arm_endpoint=arm_endpoint,
            tables=_get(env, "WARDEN_TABLES") or _get(env, "AzureWebJobsStorage") or None,
            poll_seconds=_positive_int(env, "WARDEN_POLL_SECONDS", 30),
            verify_schedule=_ncrontab(env, "WARDEN_VERIFY_SCHEDULE", DEFAULT_VERIFY_SCHEDULE),
            rotate_schedule=_ncrontab(env, "WARDEN_ROTATE_SCHEDULE", DEFAULT_ROTATE_SCHEDULE),
            keyvault_url=_https_url(env, "WARDEN_KEYVAULT_URL"),
            events_endpoint=_https_url(env, "WARDEN_EVENTS_ENDPOINT", allow_loopback=is_loopback_url(arm_endpoint)),
            own_identities=frozenset(i.lower() for i in [_get(env, "AZURE_CLIENT_ID")] if i),
        )


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _subscriptions(value: str) -> frozenset[str]:
    ids = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not ids:
        raise ConfigError("WARDEN_SUBSCRIPTIONS is required: a comma-separated list of subscription ids (GUIDs)")
    bad = [i for i in ids if not _GUID.match(i)]
    if bad:
        raise ConfigError(
            f"WARDEN_SUBSCRIPTIONS has {bad[0]!r}, which is not a subscription id; expected GUIDs like 00000000-0000-0000-0000-000000000000"
        )
    return frozenset(ids)


def _policy(value: str) -> Policy:
    if not value:
        return load_policy(DEFAULT_POLICY_JSON)
    if value.lstrip().startswith("{"):
        text = value
    else:
        path = Path(value)
        if not path.is_file():
            raise ConfigError(f"WARDEN_POLICY is {value!r}: neither JSON text (starting with '{{') nor a readable file")
        text = path.read_text(encoding="utf-8")
    try:
        return load_policy(text)
    except PolicyError as e:
        raise PolicyError(e.path, f"{e} (from WARDEN_POLICY)") from e


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = _get(env, name).lower() or default
    if value not in choices:
        raise ConfigError(f"{name} is {env.get(name)!r}; expected one of {', '.join(choices)}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _get(env, name)
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{name} is {value!r}; expected a whole number of seconds >= 1")
    return int(value)


def _ncrontab(env: Mapping[str, str], name: str, default: str) -> str:
    value = _get(env, name) or default
    fields = value.split()
    if len(fields) != 6 or not all(re.fullmatch(r"[0-9A-Za-z*/,\-]+", f) for f in fields):
        raise ConfigError(f"{name} is {value!r}; expected an NCRONTAB expression of 6 fields, e.g. {default!r}")
    return value


def _arm_endpoint(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"AZURE_RESOURCE_MANAGER_ENDPOINT is {value!r}; expected a URL like {DEFAULT_ARM_ENDPOINT}")
    if parsed.scheme != "https" and not is_loopback_url(value):
        raise ConfigError(
            f"AZURE_RESOURCE_MANAGER_ENDPOINT is {value!r}: plain http is only allowed for a loopback emulator "
            "(127.0.0.1, localhost, ::1); use https"
        )
    return value.rstrip("/")


def _https_url(env: Mapping[str, str], name: str, allow_loopback: bool = False) -> str | None:
    value = _get(env, name)
    if not value:
        return None
    parsed = urlparse(value)
    local_ok = allow_loopback and parsed.scheme == "http" and is_loopback_url(value)
    if not parsed.hostname or (parsed.scheme != "https" and not local_ok):
        raise ConfigError(f"{name} is {value!r}; expected an https URL")
    return value
