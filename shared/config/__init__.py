"""Settings: read once from the environment into a frozen object, validated as a whole.

The names are the Function App setting names (see README). An invalid value raises
`ConfigError` naming the variable, the value and what would be valid; nothing is
read lazily later, so a bad deployment fails at start, not half-way through a run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from shared.config.durations import DURATION_FORMS, describe_duration, parse_duration
from shared.config.endpoints import is_loopback_url, parse_endpoint
from shared.config.ncrontab import CRON_FIELDS
from shared.core.errors import ConfigError, OutOfScopeError, PolicyError, shown
from shared.policy import DEFAULT_POLICY_JSON, Policy, load_policy

MODES = ("audit", "enforce")
PLATFORM_SITE_NAME = "WEBSITE_SITE_NAME"  # set by App Service on every app, not by the deployment
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_VERIFY_SCHEDULE = "0 0 */6 * * *"
DEFAULT_ROTATE_SCHEDULE = "0 0 3 1 * *"
DEFAULT_RESYNC_SCHEDULE = "0 0 * * * *"
# Run-commands in flight per subscription: each is an ARM write (a budget of 200, 10/s) and
# takes ~20 s or more, so 10 at a time stays far inside the budget and leaves room for enforcement.
DEFAULT_VERIFY_CONCURRENCY = 10
MAX_POLL_SECONDS = 600
# Reimages in flight at once, fleet-wide and per subscription: a failed rollout reaches few pools.
DEFAULT_MAX_REIMAGES, DEFAULT_MAX_REIMAGES_PER_SUBSCRIPTION, MAX_REIMAGES_CAP = 2, 1, 50
# A break-glass exemption is for an incident: a day by default, a week at the very most.
DEFAULT_MAX_EXEMPTION = timedelta(hours=24)
MAX_EXEMPTION_CAP = timedelta(days=7)
MIN_EXEMPTION = timedelta(minutes=1)
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
    resync_schedule: str = DEFAULT_RESYNC_SCHEDULE
    verify_concurrency: int = DEFAULT_VERIFY_CONCURRENCY  # run-commands in flight per subscription
    keyvault_url: str | None = None
    events_endpoint: str | None = None
    # The warden's own identity (client id of its user-assigned managed identity): events
    # caused by its own writes start no new work.
    own_identities: frozenset[str] = frozenset()
    environment_name: str = ""  # the azd environment (AZURE_ENV_NAME): names the warden's role
    site_name: str = ""  # the Function App's name, set by App Service (WEBSITE_SITE_NAME)
    max_exemption: timedelta = DEFAULT_MAX_EXEMPTION  # how far ahead an exemption may end
    max_reimages: int = DEFAULT_MAX_REIMAGES  # reimages in flight across the fleet
    max_reimages_per_subscription: int = DEFAULT_MAX_REIMAGES_PER_SUBSCRIPTION

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
        arm_endpoint = _endpoint_setting(
            "AZURE_RESOURCE_MANAGER_ENDPOINT",
            _get(env, "AZURE_RESOURCE_MANAGER_ENDPOINT") or DEFAULT_ARM_ENDPOINT,
            f"{DEFAULT_ARM_ENDPOINT} (or http://127.0.0.1:<port> for the local emulator)",
        ).rstrip("/")
        return cls(
            subscriptions=_subscriptions(_get(env, "WARDEN_SUBSCRIPTIONS")),
            policy=_policy(_get(env, "WARDEN_POLICY")),
            mode=_choice(env, "WARDEN_MODE", MODES, "audit"),
            arm_endpoint=arm_endpoint,
            tables=_get(env, "WARDEN_TABLES") or _get(env, "AzureWebJobsStorage") or None,
            poll_seconds=_bounded_int(env, "WARDEN_POLL_SECONDS", 30, 1, MAX_POLL_SECONDS),
            verify_schedule=_ncrontab(env, "WARDEN_VERIFY_SCHEDULE", DEFAULT_VERIFY_SCHEDULE),
            rotate_schedule=_ncrontab(env, "WARDEN_ROTATE_SCHEDULE", DEFAULT_ROTATE_SCHEDULE),
            resync_schedule=_ncrontab(env, "WARDEN_RESYNC_SCHEDULE", DEFAULT_RESYNC_SCHEDULE),
            verify_concurrency=_bounded_int(
                env, "WARDEN_VERIFY_CONCURRENCY", DEFAULT_VERIFY_CONCURRENCY, 1, 100, "run-commands"
            ),
            keyvault_url=_optional_endpoint(env, "WARDEN_KEYVAULT_URL", "https://<vault>.vault.azure.net"),
            events_endpoint=_optional_endpoint(
                env,
                "WARDEN_EVENTS_ENDPOINT",
                "https://<topic>.<region>-1.eventgrid.azure.net/api/events",
                http_on_loopback=is_loopback_url(arm_endpoint),
            ),
            own_identities=frozenset(i.lower() for i in [_get(env, "AZURE_CLIENT_ID")] if i),
            environment_name=_get(env, "AZURE_ENV_NAME"),
            site_name=_get(env, PLATFORM_SITE_NAME),
            max_exemption=_duration_setting(
                env, "WARDEN_MAX_EXEMPTION", DEFAULT_MAX_EXEMPTION, MIN_EXEMPTION, MAX_EXEMPTION_CAP
            ),
            max_reimages=_bounded_int(
                env, "WARDEN_MAX_REIMAGES", DEFAULT_MAX_REIMAGES, 1, MAX_REIMAGES_CAP, "reimages"
            ),
            max_reimages_per_subscription=_bounded_int(
                env,
                "WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION",
                DEFAULT_MAX_REIMAGES_PER_SUBSCRIPTION,
                1,
                MAX_REIMAGES_CAP,
                "reimages",
            ),
        )


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _subscriptions(value: str) -> frozenset[str]:
    ids = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not ids:
        raise ConfigError("WARDEN_SUBSCRIPTIONS is required: a comma-separated list of subscription ids (GUIDs)")
    bad = [i for i in ids if not _GUID.match(i)]
    if bad:
        raise ConfigError(
            f"WARDEN_SUBSCRIPTIONS has {shown(bad[0])}, which is not a subscription id; expected GUIDs like 00000000-0000-0000-0000-000000000000"
        )
    return frozenset(ids)


def _policy(value: str) -> Policy:
    if not value:
        return load_policy(DEFAULT_POLICY_JSON)
    if value.lstrip().startswith("{"):
        text, source = value, "WARDEN_POLICY"
    else:
        path = Path(value)
        if not path.is_file():
            raise ConfigError(
                f"WARDEN_POLICY is {shown(value)}: neither JSON text (starting with '{{') nor a readable file"
            )
        text, source = path.read_text(encoding="utf-8"), f"the WARDEN_POLICY file {shown(value)}"
    try:
        return load_policy(text)
    except PolicyError as e:
        raise PolicyError(e.path, f"{e.detail} (from {source})") from e


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = _get(env, name).lower() or default
    if value not in choices:
        raise ConfigError(f"{name} is {shown(env.get(name))}; expected one of {', '.join(choices)}")
    return value


def _bounded_int(env: Mapping[str, str], name: str, default: int, low: int, high: int, unit: str = "seconds") -> int:
    value = _get(env, name)
    if not value:
        return default
    # ASCII digits only: str.isdigit() also accepts '²' (which int() then refuses) and '٣'.
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ConfigError(f"{name} is {shown(value)}; expected a whole number of {unit} from {low} to {high}")
    return int(value)


def _ncrontab(env: Mapping[str, str], name: str, default: str) -> str:
    value = _get(env, name) or default
    fields = value.split()
    if len(fields) != len(CRON_FIELDS):
        raise ConfigError(
            f"{name} is {shown(value)}; expected an NCRONTAB expression of 6 fields "
            f"({' '.join(f.name.replace(' ', '-') for f in CRON_FIELDS)}), e.g. {default!r}"
        )
    for text, field in zip(fields, CRON_FIELDS, strict=True):
        try:
            field.check(text)
        except ValueError as e:
            raise ConfigError(f"{name}: {e} (in {shown(value)})") from e
    return value


def _endpoint_setting(name: str, value: str, expected: str, http_on_loopback: bool = True) -> str:
    try:
        parse_endpoint(value, http_on_loopback=http_on_loopback)
    except ValueError as e:
        raise ConfigError(f"{name} is {shown(value)}: {e}; expected {expected}") from e
    return value


def _optional_endpoint(env: Mapping[str, str], name: str, expected: str, http_on_loopback: bool = False) -> str | None:
    value = _get(env, name)
    return _endpoint_setting(name, value, expected, http_on_loopback) if value else None


def _duration_setting(
    env: Mapping[str, str], name: str, default: timedelta, low: timedelta, high: timedelta
) -> timedelta:
    value = _get(env, name)
    if not value:
        return default
    try:
        duration = parse_duration(value)
    except ValueError:
        duration = None
    if duration is None or not low <= duration <= high:
        raise ConfigError(
            f"{name} is {shown(value)}; expected {DURATION_FORMS}, "
            f"from {describe_duration(low)} to {describe_duration(high)}"
        )
    return duration


# Read by `requests` itself, not by the warden: with its default settings it scans the whole
# environment for proxy variables twice per request it sends (a measurable share of a Table or
# ARM request). Without a proxy setting there is nothing to find: the SDK clients are told not to
# look, and a CA bundle named by the environment is handed to them once, as `requests` would use it.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # in `requests`' order of precedence


def http_client_options(env: Mapping[str, str] | None = None) -> dict[str, bool | str]:
    """SDK client keyword arguments: the environment is left to `requests` only when it sets a
    proxy (HTTPS_PROXY, NO_PROXY, ... in any case)."""
    env = os.environ if env is None else env
    if any(name.lower().endswith("_proxy") and value for name, value in env.items()):
        return {}
    bundle = next((env[name] for name in CA_BUNDLE_VARIABLES if env.get(name)), None)
    return {"use_env_settings": False, **({"connection_verify": bundle} if bundle else {})}
