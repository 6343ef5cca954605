"""Settings: parsed once, every problem named with the variable and the value."""

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from shared.config import Settings, http_client_options
from shared.config.endpoints import is_loopback_url, parse_endpoint
from shared.core.errors import ConfigError, OutOfScopeError, PolicyError
from shared.core.models import SshAccess

SUB = "11111111-1111-1111-1111-111111111111"
EXAMPLE_SETTINGS = Path(__file__).resolve().parents[2] / "local.settings.json.example"


def test_defaults():
    s = Settings.from_env({"WARDEN_SUBSCRIPTIONS": f" {SUB.upper()} ,"})
    assert s.subscriptions == {SUB}
    assert (s.mode, s.arm_endpoint, s.poll_seconds, s.arm_is_local) == (
        "audit",
        "https://management.azure.com",
        30,
        False,
    )
    assert s.policy.default is SshAccess.DISABLED and s.policy.rules == ()
    assert s.tables is None and not s.enforcing


def test_tables_fall_back_to_webjobs_storage_and_loopback_is_local():
    s = Settings.from_env(
        {
            "WARDEN_SUBSCRIPTIONS": SUB,
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "AZURE_RESOURCE_MANAGER_ENDPOINT": "http://127.0.0.1:8123/",
            "WARDEN_MODE": "Enforce",
        }
    )
    assert (s.tables, s.arm_endpoint, s.arm_is_local, s.enforcing) == (
        "UseDevelopmentStorage=true",
        "http://127.0.0.1:8123",
        True,
        True,
    )


def test_policy_from_file(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text('{"default": "EntraId"}')
    assert (
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, "WARDEN_POLICY": str(path)}).policy.default
        is SshAccess.ENTRA_ID
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"WARDEN_SUBSCRIPTIONS": " , "}, ["WARDEN_SUBSCRIPTIONS", "required"]),
        ({"WARDEN_SUBSCRIPTIONS": "prod"}, ["WARDEN_SUBSCRIPTIONS", "'prod'"]),
        ({"WARDEN_MODE": "fix"}, ["WARDEN_MODE", "'fix'", "audit, enforce"]),
        ({"WARDEN_POLL_SECONDS": "0"}, ["WARDEN_POLL_SECONDS", "'0'"]),
        ({"WARDEN_POLL_SECONDS": "ten"}, ["WARDEN_POLL_SECONDS", "'ten'"]),
        ({"AZURE_RESOURCE_MANAGER_ENDPOINT": "http://arm.example.com"}, ["AZURE_RESOURCE_MANAGER_ENDPOINT", "https"]),
        ({"AZURE_RESOURCE_MANAGER_ENDPOINT": "management"}, ["AZURE_RESOURCE_MANAGER_ENDPOINT", "'management'"]),
        ({"WARDEN_VERIFY_SCHEDULE": "0 */6 * * *"}, ["WARDEN_VERIFY_SCHEDULE", "6 fields"]),
        ({"WARDEN_KEYVAULT_URL": "http://kv.vault.azure.net"}, ["WARDEN_KEYVAULT_URL", "https"]),
        ({"WARDEN_POLICY": "/no/such/policy.json"}, ["WARDEN_POLICY", "/no/such/policy.json"]),
        ({"WARDEN_POLICY": '{"default": "Open"}'}, ["$.default", "'Open'", "WARDEN_POLICY"]),
    ],
    ids=[
        "missing-subs",
        "bad-sub",
        "bad-mode",
        "zero-poll",
        "text-poll",
        "http-remote",
        "no-scheme",
        "cron-5",
        "kv-http",
        "policy-file-missing",
        "policy-bad-mode",
    ],
)
def test_bad_settings_name_the_variable_and_value(env, names):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB} | env)
    for name in names:
        assert name in str(raised.value)


def test_bad_policy_is_a_policy_error_with_its_path():
    with pytest.raises(PolicyError) as raised:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, "WARDEN_POLICY": '{"rules": [{"name": 1}]}'})
    assert raised.value.path == "$.rules[0].name"


def test_a_bad_policy_names_its_json_path_once_and_the_setting():
    with pytest.raises(PolicyError) as raised:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, "WARDEN_POLICY": '{"default": "Off"}'})
    message = str(raised.value)
    assert message.startswith("policy $.default: is 'Off'; expected one of Disabled, ")
    assert message.endswith(", ignore (from WARDEN_POLICY)") and message.count("$.default") == 1


def test_a_bad_policy_file_is_named_with_the_path_in_it(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text('{"verify": {"sample": 0}}')
    with pytest.raises(PolicyError) as raised:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, "WARDEN_POLICY": str(path)})
    message = str(raised.value)
    assert message.startswith("policy $.verify.sample: is 0; expected a number of nodes per pool")
    assert message.endswith(f"(from the WARDEN_POLICY file {str(path)!r})") and message.count("policy ") == 1


def test_scope_check_is_case_insensitive():
    s = Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB})
    s.require_in_scope(SUB.upper())
    with pytest.raises(OutOfScopeError, match="22222222"):
        s.require_in_scope("22222222-2222-2222-2222-222222222222")


# --- endpoints: judged as the HTTP client will connect, by parsing only ----------------------

SMUGGLED = "http://evil.example\\@127.0.0.1:1/"


def test_the_two_parsers_really_disagree_on_the_smuggled_url():
    """Why one parser is not enough: urllib.parse sees 127.0.0.1, urllib3 (requests, azure-core)
    would connect to evil.example."""
    from urllib.parse import urlsplit

    from urllib3.util import parse_url

    assert (urlsplit(SMUGGLED).hostname, parse_url(SMUGGLED).host) == ("127.0.0.1", "evil.example")


AMBIGUOUS = {
    "backslash-userinfo": (SMUGGLED, "backslash"),
    "backslash-in-path": ("http://127.0.0.1:1\\evil.example/", "backslash"),
    "userinfo": ("http://evil.example@127.0.0.1:1/", "before '@'"),
    "user-and-password": ("http://user:secret@127.0.0.1:1/", "before '@'"),
    "tab": ("http://127.0.0.1\t:1/", "whitespace or a control character"),
    "newline": ("http://127.0.0.1:1/\nHost: evil", "whitespace or a control character"),
    "space": ("http://127.0.0.1 :1/", "whitespace or a control character"),
    "zero-width-space": ("http://127.0.0.1\u200b:1/", "whitespace or a control character"),
    "nul": ("http://127.0.0.1\x00.evil.example/", "whitespace or a control character"),
    "empty-host": ("http:///path", "names no host"),
    "port-only": ("http://:1/", "names no host"),
    "two-ports": ("http://127.0.0.1:1:2/", "not a URL the HTTP client can read"),
    "port-out-of-range": ("http://127.0.0.1:99999/", "not a URL the HTTP client can read"),
    "unclosed-ipv6": ("http://[::1/", "not a URL the HTTP client can read"),
    "idn-host": ("https://bücher.example/", "ambiguous"),
    "no-scheme": ("127.0.0.1:1", "not a URL starting with http:// or https://"),
    "ftp": ("ftp://127.0.0.1/", "not a URL starting with http:// or https://"),
    "http-remote": ("http://management.example.com/", "plain http"),
    "http-decimal-loopback": ("http://2130706433:1/", "plain http"),  # connects to 127.0.0.1: refused anyway
}


@pytest.mark.parametrize(("url", "reason"), AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_ambiguous_or_unsafe_endpoints_are_refused_with_the_reason(url, reason):
    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        parse_endpoint(url)
    assert "secret" not in str(raised.value)
    assert not is_loopback_url(url)


@pytest.mark.parametrize(
    ("url", "host", "loopback"),
    [
        ("http://127.0.0.1:10002/devstoreaccount1", "127.0.0.1", True),
        ("http://127.8.9.10:1", "127.8.9.10", True),
        ("http://LOCALHOST:8080/", "localhost", True),
        ("http://[::1]:10002/", "::1", True),
        ("https://management.azure.com", "management.azure.com", False),
        ("https://Acct.table.core.windows.net/?sv=1&sig=x@y", "acct.table.core.windows.net", False),
        ("https://127.0.0.1:1/#@evil.example", "127.0.0.1", True),
    ],
    ids=["azurite", "loopback-range", "localhost-upper", "ipv6", "arm", "at-in-query", "at-in-fragment"],
)
def test_unambiguous_endpoints_are_read_like_the_http_client(url, host, loopback):
    endpoint = parse_endpoint(url)
    assert (endpoint.host, endpoint.is_loopback, is_loopback_url(url)) == (host, loopback, loopback)


def test_plain_http_can_be_refused_even_on_loopback():
    with pytest.raises(ValueError, match="plain http; use https"):
        parse_endpoint("http://127.0.0.1:1/", http_on_loopback=False)


ENDPOINT_SETTINGS = {
    "arm-smuggled": ({"AZURE_RESOURCE_MANAGER_ENDPOINT": SMUGGLED}, "AZURE_RESOURCE_MANAGER_ENDPOINT", "backslash"),
    "arm-userinfo": (
        {"AZURE_RESOURCE_MANAGER_ENDPOINT": "http://evil.example@127.0.0.1:1"},
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "'@'",
    ),
    "events-smuggled": (
        {"AZURE_RESOURCE_MANAGER_ENDPOINT": "http://127.0.0.1:1", "WARDEN_EVENTS_ENDPOINT": SMUGGLED},
        "WARDEN_EVENTS_ENDPOINT",
        "backslash",
    ),
    "events-http-with-remote-arm": (
        {"WARDEN_EVENTS_ENDPOINT": "http://127.0.0.1:1/api/events"},
        "WARDEN_EVENTS_ENDPOINT",
        "plain http",
    ),
    "keyvault-smuggled": (
        {"WARDEN_KEYVAULT_URL": "https://kv.vault.azure.net\\@x"},
        "WARDEN_KEYVAULT_URL",
        "backslash",
    ),
    "keyvault-http-loopback": ({"WARDEN_KEYVAULT_URL": "http://127.0.0.1:1"}, "WARDEN_KEYVAULT_URL", "plain http"),
}


@pytest.mark.parametrize(("env", "name", "reason"), ENDPOINT_SETTINGS.values(), ids=ENDPOINT_SETTINGS.keys())
def test_endpoint_settings_refuse_what_the_http_client_would_read_differently(env, name, reason):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB} | env)
    message = str(raised.value)
    assert message.startswith(f"{name} is ") and reason in message and "expected" in message
    assert repr(env[name]) in message


def test_a_local_arm_allows_a_loopback_events_endpoint():
    s = Settings.from_env(
        {
            "WARDEN_SUBSCRIPTIONS": SUB,
            "AZURE_RESOURCE_MANAGER_ENDPOINT": "http://[::1]:8123/",
            "WARDEN_EVENTS_ENDPOINT": "http://localhost:9/api/events",
        }
    )
    assert (s.arm_endpoint, s.arm_is_local, s.events_endpoint) == (
        "http://[::1]:8123",
        True,
        "http://localhost:9/api/events",
    )


# --- numeric settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["²", "٣", "１０", "1²", "601", "0", "-1", "+5", "1.5", "1e3", "9" * 1000],
    ids=[
        "superscript-two",
        "arabic-indic-three",
        "fullwidth-ten",
        "digit-and-superscript",
        "above-600",
        "zero",
        "negative",
        "plus-sign",
        "fraction",
        "exponent",
        "1000-digits",
    ],
)
def test_poll_seconds_must_be_ascii_digits_from_1_to_600(value):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, "WARDEN_POLL_SECONDS": value})
    message = str(raised.value)
    assert message.startswith("WARDEN_POLL_SECONDS is ") and "from 1 to 600" in message
    assert len(message) < 200


@pytest.mark.parametrize(("value", "seconds"), [("1", 1), ("600", 600), (" 45 ", 45), ("007", 7)])
def test_poll_seconds_in_range_are_read(value, seconds):
    assert Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, "WARDEN_POLL_SECONDS": value}).poll_seconds == seconds


# --- local.settings.json.example: what `func start` reads -------------------------------------


class ReadRecorder(Mapping[str, str]):
    """An environment that notes every name looked up in it."""

    def __init__(self, values: dict[str, str]):
        self.values, self.read = values, set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def names_settings_read() -> set[str]:
    """Every setting `Settings.from_env` looks up, taken from the code itself: with only the required
    setting, each optional one is looked up to find its default."""
    env = ReadRecorder({"WARDEN_SUBSCRIPTIONS": SUB})
    Settings.from_env(env)
    return env.read


def test_settings_read_are_found_by_recording_the_lookups():
    assert {"WARDEN_SUBSCRIPTIONS", "WARDEN_POLICY", "WARDEN_TABLES", "AzureWebJobsStorage", "AZURE_CLIENT_ID"} <= (
        names_settings_read()
    )


def test_the_example_local_settings_name_every_setting_and_parse_in_audit_mode():
    document = json.loads(EXAMPLE_SETTINGS.read_text(encoding="utf-8"))
    values = document["Values"]
    assert document["IsEncrypted"] is False and all(isinstance(v, str) for v in values.values())
    assert sorted(names_settings_read() - set(values)) == []
    # Durable Functions on Azure Storage and the timers need blob, queue and table: Azurite's defaults.
    assert (values["FUNCTIONS_WORKER_RUNTIME"], values["AzureWebJobsStorage"]) == (
        "python",
        "UseDevelopmentStorage=true",
    )
    settings = Settings.from_env(values)
    assert (settings.mode, settings.enforcing, settings.tables) == ("audit", False, "UseDevelopmentStorage=true")


@pytest.mark.parametrize(
    ("env", "options"),
    [
        ({"PATH": "/usr/bin", "WARDEN_MODE": "enforce"}, {"use_env_settings": False}),
        ({"HTTPS_PROXY": "http://proxy.example:3128"}, {}),
        ({"no_proxy": "127.0.0.1", "REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem"}, {}),
        ({"HTTPS_PROXY": ""}, {"use_env_settings": False}),
        ({"CURL_CA_BUNDLE": "/b.pem"}, {"use_env_settings": False, "connection_verify": "/b.pem"}),
        (
            {"CURL_CA_BUNDLE": "/b.pem", "REQUESTS_CA_BUNDLE": "/a.pem"},
            {"use_env_settings": False, "connection_verify": "/a.pem"},
        ),
    ],
)
def test_the_sdk_clients_leave_the_environment_to_requests_only_when_it_sets_a_proxy(env, options):
    assert http_client_options(env) == options
