"""Settings: parsed once, every problem named with the variable and the value."""

import pytest

from shared.config import Settings
from shared.errors import ConfigError, OutOfScopeError, PolicyError
from shared.models import SshAccess

SUB = "11111111-1111-1111-1111-111111111111"


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


def test_scope_check_is_case_insensitive():
    s = Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB})
    s.require_in_scope(SUB.upper())
    with pytest.raises(OutOfScopeError, match="22222222"):
        s.require_in_scope("22222222-2222-2222-2222-222222222222")
