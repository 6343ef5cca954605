"""Settings: read once from the environment into a frozen object, validated as a whole.

The names are the Function App setting names (see README). An invalid value raises
`ConfigError` naming the variable, the value and what would be valid; nothing is
read lazily later, so a bad deployment fails at start, not half-way through a run.
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from shared.errors import ConfigError, OutOfScopeError, PolicyError, shown
from shared.policy import DEFAULT_POLICY_JSON, Policy, load_policy

MODES = ("audit", "enforce")
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
LOOPBACK_HOSTS = "127.0.0.0/8, localhost or ::1"
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


@dataclass(frozen=True)
class Endpoint:
    """An http(s) URL as the HTTP client reads it: `host` lowercased, IPv6 without brackets."""

    scheme: str
    host: str
    port: int | None

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_endpoint(url: str, *, http_on_loopback: bool = True) -> Endpoint:
    """`url` read the way azure-core's transport (requests, then urllib3) will connect to it.

    Raises `ValueError` saying what is wrong (without repeating the URL) for anything two URL
    parsers could read differently: `urllib.parse` and urllib3 disagree on backslashes and on
    userinfo (`http://evil.example\\@127.0.0.1/` is 127.0.0.1 to one, evil.example to the
    other), so those are refused, and both must then name the same host and port. Plain
    http is refused unless `http_on_loopback` and the host is loopback.
    """
    from urllib3.util import parse_url  # read only when a setting is, not at start-up

    _refuse_odd_characters(url)
    try:
        ours, theirs = urlsplit(url), parse_url(url)
        ours_port = ours.port  # raises ValueError for a port that is not a number in range
    except ValueError as e:  # urllib3's LocationParseError too; its text repeats the URL, never shown
        raise ValueError("it is not a URL the HTTP client can read (look at the host and port)") from e
    if ours.scheme.lower() not in ("http", "https"):
        raise ValueError("it is not a URL starting with http:// or https://")
    if "@" in ours.netloc or theirs.auth is not None:
        raise ValueError("it has a user name or password before '@' (not shown); credentials never go in the URL")
    host = (theirs.host or "").strip("[]").lower()
    if not ours.hostname or not host:
        raise ValueError("it names no host")
    if (ours.hostname.lower(), ours_port) != (host, theirs.port):
        raise ValueError(
            f"it is ambiguous: the HTTP client would connect to {shown(theirs.host)}, not {shown(ours.hostname)}"
        )
    endpoint = Endpoint(ours.scheme.lower(), host, ours_port)
    if endpoint.scheme == "http" and not (http_on_loopback and endpoint.is_loopback):
        only = f", which only a loopback host ({LOOPBACK_HOSTS}) may" if http_on_loopback else ""
        raise ValueError(f"it uses plain http{only}; use https")
    return endpoint


def is_loopback_url(url: str) -> bool:
    """True only for an unambiguous http(s) URL whose host is loopback."""
    try:
        return parse_endpoint(url).is_loopback
    except ValueError:
        return False


def _refuse_odd_characters(url: str) -> None:
    # Backslashes split the parsers (see parse_endpoint); whitespace and control or format
    # characters (tabs, newlines, zero-width and bidi marks) are stripped or refused by some.
    if "\\" in url:
        raise ValueError("it contains a backslash")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        raise ValueError("it contains whitespace or a control character")


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


@dataclass(frozen=True)
class CronField:
    """One NCRONTAB field as the Functions timer (NCrontab) reads it: `*`, `*/n`, `a`, `a/n`,
    `a-b`, `a-b/n` and comma lists of these. Stricter than NCrontab where it guesses: it swaps a
    backwards range and reads step 0 as 1; both are refused here."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # value names from `low` up; at least 3 letters of one are accepted

    def check(self, text: str) -> None:
        """Raises `ValueError` naming this field and the part of `text` that is wrong."""
        for part in text.split(","):
            self._check_part(part)

    def _check_part(self, part: str) -> None:
        base, slash, step = part.partition("/")
        if slash and not (_ascii_digits(step) and len(step) <= 9 and 1 <= int(step) <= self.high):
            # A step past the field's range would fire once; NCrontab fails on one past 2**31.
            raise ValueError(f"{self.name} step {shown(step)} is not a whole number from 1 to {self.high}")
        if base == "*":
            return
        first, dash, last = base.partition("-")
        if not first:
            raise ValueError(f"{self.name} {shown(part)} is not a value; expected *, */n, a, a-b, a-b/n or a list a,b")
        start = self._value(first)
        if dash and self._value(last) < start:
            raise ValueError(f"{self.name} range {base} runs backwards; put the lower bound first")

    def _value(self, text: str) -> int:
        if _ascii_digits(text):
            # Length first: int() of thousands of digits is slow, and refused past 4300.
            if len(text) > 9 or not self.low <= int(text) <= self.high:
                number = text if len(text) <= 9 else f"{text[:9]}… ({len(text)} digits)"
                raise ValueError(f"{self.name} {number} is outside {self.low}-{self.high}")
            return int(text)
        for offset, full_name in enumerate(self.names):
            if len(text) >= 3 and full_name.startswith(text.lower()):
                return self.low + offset
        names = f" or a name {self.names[0][:3].title()}-{self.names[-1][:3].title()}" if self.names else ""
        raise ValueError(f"{self.name} {shown(text)} is not a number from {self.low} to {self.high}{names}")


MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
CRON_FIELDS = (
    CronField("second", 0, 59),
    CronField("minute", 0, 59),
    CronField("hour", 0, 23),
    CronField("day of month", 1, 31),
    CronField("month", 1, 12, MONTH_NAMES),
    CronField("day of week", 0, 6, DAY_NAMES),
)


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


_SHORT_DURATION = re.compile(r"(?:([0-9]{1,9})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9})s)?", re.I)
_ISO_DURATION = re.compile(
    r"P(?:([0-9]{1,9})D)?(?:T(?=[0-9])(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?", re.I
)
DURATION_FORMS = "a duration such as 90m, 24h, 1d12h or ISO-8601 PT24H"


def parse_duration(text: str) -> timedelta:
    """`90m`, `24h`, `1d12h`, `3600s` or ISO-8601 `PT24H` / `P1DT12H` as a timedelta; raises
    `ValueError` naming the accepted forms for anything else (a bare number has no unit)."""
    value = text.strip()
    match = _SHORT_DURATION.fullmatch(value) or _ISO_DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        raise ValueError(f"{shown(text)} is not {DURATION_FORMS}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def describe_duration(duration: timedelta) -> str:
    """`timedelta(hours=24)` -> `24h`, `timedelta(minutes=90)` -> `1h30m`: the short form back."""
    seconds = int(duration.total_seconds())
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


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


def _ascii_digits(text: str) -> bool:
    # str.isdigit() alone also accepts '²' and '٣', which int() refuses or reads differently.
    return text.isascii() and text.isdigit()


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
