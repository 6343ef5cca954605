"""The Function App's settings in infra/main.bicep against what the code reads.

The names the app reads are taken from the code itself, not from a list kept here: every name
`Settings.from_env` looks up (recorded while it runs), every `%NAME%` binding expression the
Functions host resolves for the triggers, and no environment read anywhere else in the deployed
code. A new setting without its Bicep fails the first test.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path

import pytest

from shared import config
from shared.config import Settings
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.infra.bicep_model import INFRA, Unknown, app_settings, load, missing_settings

ROOT = INFRA.parent
SCHEDULER = {"durableBackend": "DurableTaskScheduler"}
BINDING_EXPRESSION = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")  # a whole binding value, e.g. schedule=


class RecordingEnvironment(dict):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]):
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, name, default=None):
        self.read.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self.read.add(name)
        return super().__contains__(name)


def deployed_sources() -> list[Path]:
    """The Python the Function App runs (shared/local is never deployed: see .funcignore)."""
    return [ROOT / "function_app.py"] + [p for p in (ROOT / "shared").rglob("*.py") if "local" not in p.parts]


def binding_expressions() -> set[str]:
    names = set()
    for path in deployed_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= set(
                    BINDING_EXPRESSION.fullmatch(node.value).groups()
                    if BINDING_EXPRESSION.fullmatch(node.value)
                    else ()
                )
    return names


def settings_the_app_reads() -> set[str]:
    environment = RecordingEnvironment({"WARDEN_SUBSCRIPTIONS": SUB_A})
    Settings.from_env(environment)
    return environment.read | binding_expressions()


def test_the_app_reads_settings_only_through_shared_config():
    readers = []
    for path in deployed_sources():
        if path == ROOT / "shared" / "config" / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == [], "settings read outside shared/config/ escape the deployment check: " + ", ".join(readers)


def test_every_setting_the_app_reads_is_set_by_the_deployment():
    read = settings_the_app_reads() - {config.PLATFORM_SITE_NAME}  # App Service sets it on every app
    assert {"WARDEN_SUBSCRIPTIONS", "WARDEN_MODE", "WARDEN_VERIFY_SCHEDULE"} <= read, "the recording missed names"
    assert missing_settings(read) == []


def test_the_deployment_defaults_are_settings_the_app_accepts():
    values = app_settings({"wardenSubscriptions": f"{SUB_A.upper()}, {SUB_B}"})
    settings = Settings.from_env({k: v for k, v in values.items() if isinstance(v, str)})
    assert settings.mode == "audit", "a first deployment only reports"
    assert settings.subscriptions == {SUB_A, SUB_B}
    assert settings.policy.default.value == "Disabled"
    assert (settings.verify_schedule, settings.rotate_schedule, settings.resync_schedule) == (
        config.DEFAULT_VERIFY_SCHEDULE,
        config.DEFAULT_ROTATE_SCHEDULE,
        config.DEFAULT_RESYNC_SCHEDULE,
    )
    assert (settings.poll_seconds, settings.verify_concurrency) == (30, config.DEFAULT_VERIFY_CONCURRENCY)
    assert (settings.keyvault_url, settings.events_endpoint) == (None, None), "off unless asked for"


def test_the_policy_travels_base64_encoded_and_arrives_as_json_text():
    policy = {"default": "EntraId", "rules": [{"name": "dev", "match": {"cluster": "dev-*"}, "sshAccess": "LocalUser"}]}
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    values = app_settings({"wardenPolicyBase64": encoded, "wardenMode": "enforce"})
    settings = Settings.from_env(
        {"WARDEN_SUBSCRIPTIONS": SUB_A, **{k: v for k, v in values.items() if isinstance(v, str)}}
    )
    assert (settings.mode, settings.policy.default.value) == ("enforce", "EntraId")


def test_no_setting_is_set_twice():
    for values in ({}, SCHEDULER):
        main = load(INFRA / "main.bicep")
        body, _ = main.module("functionApp")
        names = [s["name"] for s in main.evaluate(body["params"]["appSettings"], values)]
        assert len(names) == len(set(names)), names


def test_the_host_and_the_warden_sign_in_to_storage_and_telemetry_with_the_app_identity():
    values = app_settings()
    client_id = "identities.outputs.appClientId"
    assert values["AzureWebJobsStorage__credential"] == "managedidentity"
    assert str(values["AzureWebJobsStorage__clientId"]) == str(values["AZURE_CLIENT_ID"]) == client_id
    for service in ("blob", "queue", "table"):
        assert str(values[f"AzureWebJobsStorage__{service}ServiceUri"]) == f"storage.outputs.{service}Endpoint"
    assert "AzureWebJobsStorage" not in values, "a connection string would carry the account key"
    assert str(values["WARDEN_TABLES"]) == "storage.outputs.tableEndpoint", "an account URL: managed identity"
    assert values["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${clientId};Authorization=AAD"
    assert str(load(INFRA / "main.bicep").variable("clientId")) == client_id


def test_optional_features_are_set_only_with_their_resource():
    main = load(INFRA / "main.bicep")
    on = app_settings({"keyRotationEnabled": True, "publishOutcomes": True})
    assert str(on["WARDEN_KEYVAULT_URL"]) == "keyVault.outputs.uri"
    assert str(on["WARDEN_EVENTS_ENDPOINT"]) == "outcomes.outputs.endpoint"
    assert main.module("keyVault")[1] == "keyRotationEnabled"
    assert main.module("outcomes")[1] == "publishOutcomes"


def test_azure_storage_is_the_default_durable_backend():
    default = app_settings()
    assert not [name for name in default if "durableTask" in name or name.startswith("DURABLE_TASK")]
    assert load(INFRA / "main.bicep").params["durableBackend"]["default"] == "AzureStorage"


def test_the_durable_task_scheduler_switch_overrides_host_json_by_app_settings():
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert "storageProvider" not in host["extensions"]["durableTask"], "host.json must keep the default backend"
    values = app_settings(SCHEDULER)
    prefix = "AzureFunctionsJobHost__extensions__durableTask__"
    assert values[prefix + "storageProvider__type"] == "azureManaged"
    assert values[prefix + "storageProvider__connectionStringName"] == "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    assert values[prefix + "hubName"] == values["TASKHUB_NAME"]
    assert re.fullmatch(
        r"Endpoint=\$\{scheduler\.outputs\.endpoint\};Authentication=ManagedIdentity;ClientID=\$\{clientId\}",
        values["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"],
    )
    main = load(INFRA / "main.bicep")
    body, condition = main.module("scheduler")
    assert condition == "useScheduler" and main.variable("useScheduler", SCHEDULER) is True
    assert main.evaluate(body["params"]["taskHubName"]) == values["TASKHUB_NAME"]


@pytest.mark.parametrize(("values", "queues"), [({}, True), (SCHEDULER, False)], ids=["azure-storage", "scheduler"])
def test_queue_rights_only_where_the_task_hub_lives_in_storage(values, queues):
    main = load(INFRA / "main.bicep")
    body, _ = main.module("storage")
    in_storage = main.evaluate(body["params"]["durableTaskHubInStorage"], values)
    storage = load(INFRA / "modules" / "storage.bicep")
    roles = storage.variable("appRoles", {"durableTaskHubInStorage": in_storage})
    assert (storage.variable("roles")["storageQueueDataContributor"] in roles) is queues


def test_unknown_values_are_only_what_azure_knows():
    for name, value in app_settings({**SCHEDULER, "wardenSubscriptions": SUB_A}).items():
        if isinstance(value, Unknown):
            assert re.match(
                r"(identities|storage|monitoring|keyVault|outcomes)\.outputs\.|environment\(\)", str(value)
            ), (
                name,
                str(value),
            )
