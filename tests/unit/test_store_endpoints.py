"""WARDEN_TABLES: the endpoint the Table Storage client will really call, judged before any request.

Constructing the SDK client does no I/O; every case here is parsing only.
"""

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from shared.adapters.store import WardenStore
from shared.core.errors import ConfigError

KEY = "c2VjcmV0a2V5"  # must never appear in a message
SAS = "sv=2024&sig=c2lnbmF0dXJl"
REFUSED = {
    "account-url-smuggled": ("http://evil.example\\@127.0.0.1:10002/devstoreaccount1", "backslash"),
    "account-url-userinfo": (f"http://user:{KEY}@127.0.0.1:10002/devstoreaccount1", "before '@'"),
    "account-url-http-remote": (f"http://acct.table.core.windows.net/?{SAS}", "plain http"),
    "account-url-tab": ("https://acct.table.core.windows.net\t/", "whitespace"),
    "connection-string-http-remote-endpoint": (
        f"AccountName=acct;AccountKey={KEY};TableEndpoint=http://tables.example.com/acct",
        "plain http",
    ),
    "connection-string-smuggled-endpoint": (
        f"AccountName=acct;AccountKey={KEY};TableEndpoint=http://evil.example\\@127.0.0.1:1/acct",
        "backslash",
    ),
    "connection-string-userinfo-endpoint": (
        f"SharedAccessSignature={SAS};TableEndpoint=http://evil.example@127.0.0.1:1/acct",
        "before '@'",
    ),
    "connection-string-http-protocol": (
        f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net",
        "plain http",
    ),
}


@pytest.mark.parametrize(("setting", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_tables_setting_refuses_an_unsafe_or_ambiguous_endpoint_without_showing_secrets(setting, reason):
    with pytest.raises(ConfigError) as raised:
        WardenStore(setting, credential=AzureNamedKeyCredential("acct", KEY))
    message = str(raised.value)
    assert message.startswith("WARDEN_TABLES") and reason in message
    assert KEY not in message and "c2lnbmF0dXJl" not in message
    if "://" not in setting.split(";")[0]:
        assert "value not shown" in message


@pytest.mark.parametrize(
    "setting",
    [
        "UseDevelopmentStorage=true",
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
        f"AccountName=acct;AccountKey={KEY};TableEndpoint=http://[::1]:10002/acct",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net",
        "https://acct.table.core.windows.net",
        "http://localhost:10002/devstoreaccount1",
    ],
    ids=["development-storage", "azurite", "azurite-ipv6", "https-account", "account-url", "account-url-loopback"],
)
def test_tables_setting_accepts_https_and_loopback_http(setting):
    WardenStore(setting, credential=AzureNamedKeyCredential("acct", KEY)).close()
