"""Least privilege in the Bicep: no broad role anywhere, every data role on its one resource,
the warden's custom role in every subscription in scope, assignment names guid(scope,
principal, role), and the resources locked down (no keys, no local auth, RBAC vault)."""

from __future__ import annotations

import json

import pytest

from tests.infra.bicep_model import (
    INFRA,
    ROLE_ASSIGNMENT,
    ROLE_DEFINITION,
    bicep_files,
    broad_role_problems,
    custom_role_actions,
    load,
    role_ids,
)

MODULES = INFRA / "modules"
CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"


def test_no_broad_role_anywhere():
    assert broad_role_problems() == []


def role_assignments():
    for path in bicep_files():
        template = load(path)
        for name, body in template.resources_of_type(ROLE_ASSIGNMENT):
            yield pytest.param(template, body, id=f"{path.stem}.{name}")


def guid_arguments(expr: dict) -> list:
    function = expr["function"]
    assert function["type"] == "guid", f"named {function['type']}(...), not guid(...)"
    return list(function["parameters"].values())


def role_of(body: dict):
    """The role an assignment grants, as written: the GUID argument of subscriptionResourceId(...),
    or the custom role's id."""
    role = body["properties"]["roleDefinitionId"]
    if isinstance(role, dict) and role.get("function", {}).get("type") == "subscription_resource_id":
        return role["function"]["parameters"]["resource_name_1"]
    return role


def scope_id(body: dict):
    """`<scope>.id` of the assignment's scope; `subscription().id` at a subscription-scoped file."""
    if "scope" not in body:
        return {"function": {"type": "subscription", "parameters": {"subscription_id": None}, "property_name": "id"}}
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": body["scope"], "operand_2": "id"}}}


@pytest.mark.parametrize(("template", "body"), role_assignments())
def test_every_role_assignment_is_named_guid_of_scope_principal_role(template, body):
    assert guid_arguments(body["name"]) == [scope_id(body), body["properties"]["principalId"], role_of(body)]
    assert body["properties"]["principalType"] == "ServicePrincipal"


@pytest.mark.parametrize(("template", "body"), role_assignments())
def test_data_roles_are_scoped_to_their_one_resource(template, body):
    if template.scope == "subscription":
        assert template.path.name == "warden-role.bicep", "only the warden role is assigned at a subscription"
        return
    scope = body.get("scope")
    target = scope if isinstance(scope, str) else None
    assert target in template.resources, f"scope {scope!r} is not a resource of {template.path.name}"


def test_each_identity_holds_exactly_its_roles():
    roles = role_ids()
    granted = {}
    for path in sorted(MODULES.glob("*.bicep")):
        text = path.read_text(encoding="utf-8")
        granted[path.stem] = sorted(name for name in roles if f"roles.{name}" in text)
    assert granted == {
        "arm-event-subscription": [],
        "arm-system-topic": [],
        "durable-task-scheduler": ["durableTaskDataContributor"],
        "function-app": [],
        "identities": [],
        "keyvault": ["keyVaultSecretsOfficer"],
        "monitoring": ["monitoringMetricsPublisher"],
        "outcomes-topic": ["eventGridDataSender"],
        "storage": [
            "storageBlobDataContributor",  # Event Grid's identity, on the dead-letter container only
            "storageBlobDataOwner",
            "storageQueueDataContributor",
            "storageTableDataContributor",
        ],
        "warden-role": [],
    }
    storage = load(MODULES / "storage.bicep")
    writer = storage.resource("deadLetterWriter")
    assert (writer["scope"], writer["properties"]["principalId"]) == ("deadLetterContainer", "eventsPrincipalId")


def test_the_durable_task_role_is_the_one_the_design_names():
    assert role_ids()["durableTaskDataContributor"] == "0ad04412-c4d5-4796-b79c-f76d14c8d402"


def test_the_warden_role_is_defined_and_assigned_in_every_subscription_in_scope():
    main = load(INFRA / "main.bicep")
    loop = main.modules["wardenRoles"]["config"]["loop_type"]["detail"]
    body, _ = main.module("wardenRoles")
    assert loop["array_name"] == "scopeSubscriptions"
    assert body["scope"] == {"function": {"type": "subscription", "parameters": {"subscription_id": loop["item_name"]}}}
    assert main.module_path("wardenRoles") == MODULES / "warden-role.bicep"
    assert main.variable("scopeSubscriptions", {"wardenSubscriptions": "AAA, bbb"}) == ["aaa", "bbb"]
    assert str(main.variable("scopeSubscriptions")[0]) == "subscription().subscriptionId", "empty: this subscription"
    role = load(MODULES / "warden-role.bicep")
    [(_, definition)] = role.resources_of_type(ROLE_DEFINITION)
    assert definition["properties"]["assignableScopes"] == [scope_id({})]
    assert definition["properties"]["permissions"][0]["notActions"] == []


def test_only_key_rotation_adds_the_cluster_write():
    role = load(MODULES / "warden-role.bicep")
    without = custom_role_actions(role, "wardenRole", {"keyRotationEnabled": False})
    with_rotation = custom_role_actions(role, "wardenRole", {"keyRotationEnabled": True})
    assert with_rotation - without == {CLUSTER_WRITE} and CLUSTER_WRITE not in without
    assert load(INFRA / "main.bicep").params["keyRotationEnabled"]["default"] is False


def test_storage_takes_no_keys_and_no_anonymous_reads():
    storage = load(MODULES / "storage.bicep")
    properties = storage.resource("account")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    for name in ("deploymentContainer", "deadLetterContainer"):
        assert storage.resource(name)["properties"]["publicAccess"] == "None"


def test_telemetry_takes_no_keys():
    monitoring = load(MODULES / "monitoring.bicep")
    properties = monitoring.resource("appInsights")["properties"]
    assert properties["DisableLocalAuth"] is True
    assert properties["WorkspaceResourceId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "workspace", "operand_2": "id"}}
    }


def test_the_key_vault_uses_rbac_and_purge_protection():
    vault = load(MODULES / "keyvault.bicep").resource("vault")["properties"]
    assert vault["enableRbacAuthorization"] is True and vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault


def test_the_outcomes_topic_takes_no_keys():
    topic = load(MODULES / "outcomes-topic.bicep").resource("topic")["properties"]
    assert topic["disableLocalAuth"] is True


def test_the_app_runs_on_flex_consumption_python_311_as_its_identity():
    module = load(MODULES / "function-app.bicep")
    plan = module.resource("plan")
    assert (plan["sku"]["name"], plan["sku"]["tier"], plan["properties"]["reserved"]) == (
        "FC1",
        "FlexConsumption",
        True,
    )
    app = module.resource("app")
    assert "linux" in app["kind"] and app["properties"]["httpsOnly"] is True
    assert app["identity"]["type"] == "UserAssigned"
    config = app["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    auth = config["deployment"]["storage"]["authentication"]
    assert auth == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    for name in ("ftpCredentials", "scmCredentials"):
        assert module.resource(name)["properties"]["allow"] is False, "no publishing passwords"


def test_roles_json_holds_only_role_ids():
    roles = json.loads((INFRA / "roles.json").read_text(encoding="utf-8"))
    assert all(len(v) == 36 and v.count("-") == 4 for v in roles.values())
