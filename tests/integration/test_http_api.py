"""The HTTP API end to end: real `azure.functions.HttpRequest` objects, the functions found through
the app's `get_functions()`, the Durable client bound to the in-process host, Azurite and the ARM
emulator. Every answer is checked against the OpenAPI document's schema for its status.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import socket
from typing import Any

import azure.functions as func
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jsonschema import Draft202012Validator

from shared.local.azurite import connection_string, free_port
from shared.local.durable_host.client_api import binding, run_client_function
from shared.local.functions_host import LocalFunctions
from shared.orchestration import names, runtime
from shared.orchestration.names import worker_instance_id
from shared.triggers import http_compliance
from shared.triggers.http_routes import (
    COMPLIANCE_FUNCTION,
    DOCTOR_FUNCTION,
    ENDPOINTS,
    OPENAPI_FUNCTION,
    RECONCILE_FUNCTION,
    ROTATE_FUNCTION,
    ROUTED_METHODS,
    STATUS_FUNCTION,
    VERIFY_FUNCTION,
)
from shared.triggers.http_validation import MAX_BODY_BYTES, MAX_REASON_CHARS
from shared.triggers.openapi import document
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.table_faults import FlakyTransport
from tests.warden_fixtures import DEV, PROD

APP = importlib.import_module("function_app").app
DOCUMENT = document()
NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
OTHER_SUBSCRIPTION = DEV.id.replace(SUB_A, SUB_B)
ALICE = {"X-MS-CLIENT-PRINCIPAL-NAME": "alice@contoso.com", "X-MS-CLIENT-PRINCIPAL-ID": "5f0c6e1d-alice"}
ALICE_CALLER = "alice@contoso.com (5f0c6e1d-alice)"
POST_ROUTES = (RECONCILE_FUNCTION, VERIFY_FUNCTION, ROTATE_FUNCTION)


def http_functions() -> dict[str, Any]:
    """The app's HTTP functions by name, indexed the way the Python worker does."""
    APP.functions_bindings = None
    try:
        functions = APP.get_functions()
    finally:
        APP.functions_bindings = None
    return {f.get_function_name(): f for f in functions if f.get_trigger().type == "httpTrigger"}


HTTP_FUNCTIONS = http_functions()


def request(
    name: str,
    body: Any = None,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> func.HttpRequest:
    """A request to function `name`'s route; a body that is not bytes goes as JSON."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    route = ENDPOINTS[name].route.format(**(route_params or {}))
    all_headers = {"content-type": content_type} if content_type and data else {}
    all_headers.update(headers or {})
    return func.HttpRequest(
        method or ENDPOINTS[name].methods[0],
        f"http://localhost/api/{route}",
        body=data,
        headers=all_headers,
        params=params or {},
        route_params=route_params or {},
    )


def call(functions: LocalFunctions, name: str, req: func.HttpRequest) -> func.HttpResponse:
    """Invoke HTTP function `name` as the host would: a durable client bound to the local host
    when the function has one."""
    if name in functions.durable.functions.clients:
        return functions.call(name, req=req)
    return asyncio.run(HTTP_FUNCTIONS[name].get_user_function()(req=req))


def answer(response: func.HttpResponse, name: str) -> Any:
    """The JSON body, after checking it against the document's schema for this status."""
    body = json.loads(response.get_body())
    operation = DOCUMENT["paths"][ENDPOINTS[name].path][ENDPOINTS[name].methods[0].lower()]
    documented = operation["responses"].get(str(response.status_code))
    if response.status_code == 405:  # any method a route does not serve: not an operation of its own
        schema = {"$ref": "#/components/schemas/Error"}
    else:
        assert documented is not None, f"{name} answered {response.status_code}, which its document does not list"
        if "$ref" in documented:
            documented = DOCUMENT["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
        schema = documented["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": DOCUMENT["components"]}).validate(body)
    return body


def error_of(response: func.HttpResponse, name: str, status: int) -> dict[str, str]:
    assert response.status_code == status, response.get_body()
    assert response.mimetype == "application/json"
    return answer(response, name)["error"]


def public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


# --- accepted work: 202, the worker's links, the caller and reason in the audit trail -------------


def test_reconcile_answers_202_with_the_workers_links_and_audits_caller_and_reason(warden, arm_emulator):
    w = warden()
    reason = "incident 4711: nodes answered on port 22"
    response = call(
        w.functions,
        RECONCILE_FUNCTION,
        request(RECONCILE_FUNCTION, {"cluster": DEV.id, "reason": reason}, headers=ALICE),
    )
    assert response.status_code == 202
    links = answer(response, RECONCILE_FUNCTION)
    assert links["id"] == worker_instance_id(DEV.key)
    assert response.headers["Location"] == links["statusQueryGetUri"]
    [waiting] = w.runtime.store.list_requests(DEV.key)
    assert (waiting.actor, waiting.reason) == (ALICE_CALLER, f"HTTP request: {reason}")
    w.functions.run()
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    [accepted] = [r for r in w.audit() if r.step == "http-request"]
    assert (accepted.actor, accepted.instance_id, accepted.pool) == (ALICE_CALLER, links["id"], "")
    assert accepted.message == f"reconcile requested: {links['id']}; reason: {reason}"
    work = [r for r in w.audit() if "-reconcile-" in r.instance_id]
    assert {r.step for r in work} >= {"plan", "outcome"}
    assert {r.actor for r in work} == {ALICE_CALLER}, "every row of the work names who asked for it"


def test_a_request_without_an_app_service_principal_is_the_function_keys(warden, arm_emulator):
    w = warden()
    response = call(w.functions, RECONCILE_FUNCTION, request(RECONCILE_FUNCTION, {"cluster": NODEPOOL1}))
    assert response.status_code == 202
    w.functions.run()
    assert {r.actor for r in w.audit() if r.step in ("http-request", "plan")} == {"function key"}


def test_a_request_for_a_cluster_whose_worker_runs_joins_it(warden, arm_emulator):
    w = warden()
    first = call(w.functions, RECONCILE_FUNCTION, request(RECONCILE_FUNCTION, {"cluster": DEV.id, "pool": "nodepool1"}))
    second = call(w.functions, RECONCILE_FUNCTION, request(RECONCILE_FUNCTION, {"cluster": DEV.id, "pool": "spot"}))
    assert (first.status_code, second.status_code) == (202, 202)
    first_id, second_id = answer(first, RECONCILE_FUNCTION)["id"], answer(second, RECONCILE_FUNCTION)["id"]
    assert first_id == second_id == worker_instance_id(DEV.key)
    assert second.headers["Location"] == first.headers["Location"]
    w.functions.run()
    assert [(r.pool, r.instance_id) for r in w.audit() if r.step == "http-request"] == [
        ("nodepool1", first_id),
        ("spot", first_id),
    ]
    assert ("outcome", "succeeded") in w.steps(pool="nodepool1") and ("outcome", "succeeded") in w.steps(pool="spot")
    assert len([s for s in w.functions.durable.statuses() if s.name == names.CLUSTER_WORKER]) == 1


def test_verify_of_one_cluster_and_of_the_whole_fleet(warden, arm_emulator):
    w = warden()
    one = call(
        w.functions, VERIFY_FUNCTION, request(VERIFY_FUNCTION, {"cluster": DEV.id, "pool": "nodepool1"}, headers=ALICE)
    )
    assert one.status_code == 202 and answer(one, VERIFY_FUNCTION)["id"] == worker_instance_id(DEV.key)
    fleet = call(w.functions, VERIFY_FUNCTION, request(VERIFY_FUNCTION, {"reason": "quarterly audit"}, headers=ALICE))
    assert fleet.status_code == 202 and "Location" not in fleet.headers
    asked = answer(fleet, VERIFY_FUNCTION)
    assert sorted(r["cluster"].lower() for r in asked["requested"]) == sorted([DEV.key, PROD.key])
    assert {r["id"] for r in asked["requested"]} == {worker_instance_id(DEV.key), worker_instance_id(PROD.key)}
    w.functions.run()
    for cluster in (DEV, PROD):
        rows = w.audit(cluster)
        assert any(
            r.step == "http-request" and r.actor == ALICE_CALLER and "quarterly audit" in r.message for r in rows
        )
        assert any(r.step == "verify" and r.actor == ALICE_CALLER for r in rows), cluster


def test_rotate_keys_with_a_supplied_key_answers_202_and_puts_the_key(warden, arm_emulator):
    w = warden()
    key = public_key()
    response = call(w.functions, ROTATE_FUNCTION, request(ROTATE_FUNCTION, {"cluster": DEV.id, "publicKey": key}))
    assert response.status_code == 202 and answer(response, ROTATE_FUNCTION)["id"] == worker_instance_id(DEV.key)
    w.functions.run()
    assert [r.outcome.value for r in w.audit() if r.step == "rotate-keys"] == ["succeeded"]


# --- status: the pool and the step while the work runs; 404 and 400 ---------------------------------


def status_of(functions: LocalFunctions, instance_id: str) -> func.HttpResponse:
    return call(functions, STATUS_FUNCTION, request(STATUS_FUNCTION, route_params={"instanceId": instance_id}))


def test_status_shows_the_pool_and_step_while_the_work_runs_and_the_output_after(warden, arm_emulator):
    w = warden()
    worker = worker_instance_id(DEV.key)
    seen: list[dict] = []
    sent = []  # the update's last poll, which started the upgrade

    def during_the_upgrade(event) -> None:
        if event.kind != "activity-completed" or seen:
            return
        if "next" in event.payload.get("value", {}):  # the update's last poll started the upgrade
            sent.append(event)
        elif sent and event.activity == names.POLL_OPERATION:  # the upgrade's first poll
            response = status_of(w.functions, worker)
            assert response.status_code == 200
            seen.append(answer(response, STATUS_FUNCTION))

    w.on_progress = during_the_upgrade
    call(w.functions, RECONCILE_FUNCTION, request(RECONCILE_FUNCTION, {"cluster": DEV.id, "pool": "nodepool1"}))
    w.functions.run()
    [running] = seen
    assert (running["instanceId"], running["runtimeStatus"]) == (worker, "Running")
    progress = running["progress"]
    assert (progress["work"], progress["pool"], progress["step"]) == ("reconcile", "nodepool1", "upgrade-node-image")
    assert [level["name"] for level in progress["instances"]] == [
        names.CLUSTER_WORKER,
        names.RECONCILE_CLUSTER,
        names.RECONCILE_POOL,
    ]
    pool_run = progress["instances"][-1]["instanceId"]
    finished = answer(status_of(w.functions, pool_run), STATUS_FUNCTION)
    assert finished["runtimeStatus"] == "Completed"
    assert (finished["output"]["pool"], finished["output"]["outcome"]) == ("nodepool1", "succeeded")
    assert finished["progress"]["instances"] == [
        {k: finished[k] for k in ("instanceId", "name", "runtimeStatus", "customStatus")}
    ], "a finished instance is followed no further"


def test_status_of_an_unknown_instance_is_404_and_of_a_path_trick_400(warden):
    w = warden()
    error = error_of(status_of(w.functions, "worker-nothing-0000000000000000"), STATUS_FUNCTION, 404)
    assert error["code"] == "InstanceNotFound" and "worker-nothing-0000000000000000" in error["message"]
    for bad in ("../instances", "a/b", "x?showHistory=true", "a%2Fb", ".."):
        assert error_of(status_of(w.functions, bad), STATUS_FUNCTION, 400)["code"] == "InvalidInstanceId"


def test_status_with_the_task_hub_unreachable_is_503_with_retry_after(warden):
    w = warden()
    client = w.functions.durable.functions.require_client(STATUS_FUNCTION)
    req = request(STATUS_FUNCTION, route_params={"instanceId": worker_instance_id(DEV.key)})
    response = run_client_function(client.function, **{client.parameter: json.dumps(binding(dead_url()))}, req=req)
    assert error_of(response, STATUS_FUNCTION, 503)["code"] == "TaskHubUnavailable"
    assert response.headers["Retry-After"].isdigit()


def dead_url() -> str:
    """A loopback URL on which nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# --- compliance and the document --------------------------------------------------------------------


def test_doctor_answers_every_check_in_the_documented_shape(warden, arm_emulator):
    w = warden()
    arm_emulator.governance.remove_event_subscriptions(SUB_A)
    report = answer(call(w.functions, DOCTOR_FUNCTION, request(DOCTOR_FUNCTION)), DOCTOR_FUNCTION)
    [events] = [c for c in report["checks"] if c["check"] == "events"]
    assert events["status"] == "fail" and "azd deploy" in events["fix"]
    assert report["summary"]["fail"] >= 1 and report["summary"]["ok"] > 0


def test_compliance_pages_the_report_filters_it_and_refuses_bad_queries(warden, arm_emulator, monkeypatch):
    w = warden()
    call(w.functions, RECONCILE_FUNCTION, request(RECONCILE_FUNCTION, {"cluster": DEV.id}))
    w.functions.run()
    whole = answer(
        call(w.functions, COMPLIANCE_FUNCTION, request(COMPLIANCE_FUNCTION, params={"code": "k"})), COMPLIANCE_FUNCTION
    )
    dev_pools = sorted(p["pool"] for p in whole["pools"] if p["clusterId"].lower() == DEV.key)
    assert len(dev_pools) >= 2 and whole["continuationToken"] is None
    monkeypatch.setattr(http_compliance, "PAGE_SIZE", 1)
    pages, params = [], {"cluster": DEV.id, "status": "compliant"}
    while True:
        page = answer(
            call(w.functions, COMPLIANCE_FUNCTION, request(COMPLIANCE_FUNCTION, params=params)), COMPLIANCE_FUNCTION
        )
        pages += [p["pool"] for p in page["pools"]]
        if page["continuationToken"] is None:
            break
        params = {**params, "continuationToken": page["continuationToken"]}
    compliant = sorted(
        p["pool"] for p in whole["pools"] if p["clusterId"].lower() == DEV.key and p["status"] == "compliant"
    )
    assert sorted(pages) == compliant and len(pages) == len(set(pages)) >= 1
    for params, status, code in [
        ({"status": "bogus"}, 400, "InvalidQuery"),
        ({"colour": "red"}, 400, "InvalidQuery"),
        ({"continuationToken": "not-a-token"}, 400, "InvalidContinuationToken"),
        ({"subscription": SUB_B}, 403, "OutOfScope"),
        ({"cluster": OTHER_SUBSCRIPTION}, 403, "OutOfScope"),
    ]:
        response = call(w.functions, COMPLIANCE_FUNCTION, request(COMPLIANCE_FUNCTION, params=params))
        assert error_of(response, COMPLIANCE_FUNCTION, status)["code"] == code, params


def test_openapi_json_is_the_document():
    with LocalFunctions(APP) as functions:
        response = call(functions, OPENAPI_FUNCTION, request(OPENAPI_FUNCTION))
    assert response.status_code == 200 and json.loads(response.get_body()) == DOCUMENT


# --- refusals: each status, with nothing touched ------------------------------------------------------


@pytest.fixture
def counted(warden):
    """A warden whose Table Storage requests are counted: a refused request must send none."""
    transport = FlakyTransport()
    w = warden(store_options={"transport": transport})
    w.transport = transport
    return w


def assert_untouched(w, arm_emulator, tables_before: int) -> None:
    w.functions.run()
    assert w.transport.sent == tables_before, "a refused request sent a Table Storage request"
    assert w.functions.durable.statuses() == [] and arm_emulator.requests == []


REFUSED = {
    "reconcile-array": (RECONCILE_FUNCTION, [{"cluster": DEV.id}], 400, "InvalidBody"),
    "reconcile-unknown-field": (RECONCILE_FUNCTION, {"cluster": DEV.id, "force": True}, 400, "InvalidBody"),
    "reconcile-duplicate-field": (
        RECONCILE_FUNCTION,
        f'{{"cluster": "{DEV.id}", "cluster": "{PROD.id}"}}'.encode(),
        400,
        "DuplicateField",
    ),
    "reconcile-nan": (RECONCILE_FUNCTION, f'{{"cluster": "{DEV.id}", "reason": NaN}}'.encode(), 400, "InvalidJson"),
    "reconcile-reason-a-number": (RECONCILE_FUNCTION, {"cluster": DEV.id, "reason": 7}, 400, "InvalidReason"),
    "reconcile-reason-too-long": (
        RECONCILE_FUNCTION,
        {"cluster": DEV.id, "reason": "x" * (MAX_REASON_CHARS + 1)},
        400,
        "InvalidReason",
    ),
    "reconcile-reason-newline": (RECONCILE_FUNCTION, {"cluster": DEV.id, "reason": "a\nb"}, 400, "InvalidReason"),
    "reconcile-storage-id": (
        RECONCILE_FUNCTION,
        {"cluster": DEV.id.replace("Microsoft.ContainerService/managedClusters", "Microsoft.Storage/storageAccounts")},
        400,
        "InvalidCluster",
    ),
    "reconcile-other-subscription": (RECONCILE_FUNCTION, {"cluster": OTHER_SUBSCRIPTION}, 403, "OutOfScope"),
    "verify-pool-id-bad-name": (VERIFY_FUNCTION, {"cluster": DEV.id + "/agentPools/Node_1"}, 400, "InvalidCluster"),
    "verify-unknown-field": (VERIFY_FUNCTION, {"pool": "nodepool1"}, 400, "InvalidBody"),
    "verify-other-subscription": (VERIFY_FUNCTION, {"cluster": OTHER_SUBSCRIPTION}, 403, "OutOfScope"),
    "rotate-pool-id": (ROTATE_FUNCTION, {"cluster": NODEPOOL1, "publicKey": "ssh-rsa AAAA"}, 400, "InvalidCluster"),
    "rotate-no-key-store": (ROTATE_FUNCTION, {"cluster": DEV.id}, 400, "NoKeyStore"),
    "rotate-other-subscription": (ROTATE_FUNCTION, {"cluster": OTHER_SUBSCRIPTION}, 403, "OutOfScope"),
}


@pytest.mark.parametrize(("name", "body", "status", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_request_gets_its_status_and_touches_nothing(counted, arm_emulator, name, body, status, code):
    before = counted.transport.sent
    response = call(counted.functions, name, request(name, body, headers=ALICE))
    assert error_of(response, name, status)["code"] == code
    assert_untouched(counted, arm_emulator, before)


@pytest.mark.parametrize("name", POST_ROUTES)
def test_an_oversize_body_is_413_and_a_body_not_sent_as_json_is_415(counted, arm_emulator, name):
    before = counted.transport.sent
    huge = json.dumps({"cluster": DEV.id, "reason": "x" * MAX_BODY_BYTES}).encode()
    assert error_of(call(counted.functions, name, request(name, huge)), name, 413)["code"] == "BodyTooLarge"
    for content_type in ("text/plain", None, "application/x-www-form-urlencoded"):
        response = call(counted.functions, name, request(name, {"cluster": DEV.id}, content_type=content_type))
        assert error_of(response, name, 415)["code"] == "UnsupportedMediaType", content_type
    charset = request(name, {"cluster": DEV.id, "publicKey": 1}, content_type="application/json; charset=utf-8")
    assert call(counted.functions, name, charset).status_code == 400, "a charset parameter is fine"
    assert_untouched(counted, arm_emulator, before)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_method_a_route_does_not_serve_is_405_with_allow(counted, arm_emulator, name):
    before = counted.transport.sent
    served = ENDPOINTS[name].methods
    for method in (m for m in ROUTED_METHODS if m not in served):
        response = call(
            counted.functions, name, request(name, {"cluster": DEV.id}, method=method, route_params={"instanceId": "x"})
        )
        assert error_of(response, name, 405)["code"] == "MethodNotAllowed"
        assert response.headers["Allow"] == ", ".join(served)
    assert_untouched(counted, arm_emulator, before)


def test_an_unexpected_failure_is_a_500_without_internals_and_is_logged(counted, arm_emulator, monkeypatch, caplog):
    http_api = importlib.import_module("shared.triggers.http_api")  # the module the registered function calls

    async def broken(*args, **kwargs):
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(http_api, "request_work", broken)
    caplog.set_level(logging.ERROR, logger="shared.triggers.http_api")
    response = call(counted.functions, RECONCILE_FUNCTION, request(RECONCILE_FUNCTION, {"cluster": DEV.id}))
    error = error_of(response, RECONCILE_FUNCTION, 500)
    assert error["code"] == "InternalError" and "secret-internal-detail" not in response.get_body().decode()
    assert any("secret-internal-detail" in (r.exc_text or "") for r in caplog.records)


# --- Table Storage out of reach: 403 stays 403, an in-scope request is a 503 ------------------------------


@pytest.fixture
def tables_down(monkeypatch, arm_emulator):
    """The app with WARDEN_TABLES on a loopback port nothing listens on, built lazily from the
    environment as on Azure (nothing installed beforehand)."""
    values = {
        "WARDEN_SUBSCRIPTIONS": SUB_A,
        "WARDEN_TABLES": connection_string(free_port()),
        "AZURE_RESOURCE_MANAGER_ENDPOINT": arm_emulator.base_url,
        "WARDEN_KEYVAULT_URL": "",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    with LocalFunctions(APP) as functions:
        yield functions
    runtime.reset()


@pytest.mark.parametrize(
    ("name", "body", "params"),
    [
        (RECONCILE_FUNCTION, {"cluster": OTHER_SUBSCRIPTION}, None),
        (VERIFY_FUNCTION, {"cluster": OTHER_SUBSCRIPTION}, None),
        (ROTATE_FUNCTION, {"cluster": OTHER_SUBSCRIPTION, "publicKey": "ssh-rsa AAAA"}, None),
        (COMPLIANCE_FUNCTION, None, {"subscription": SUB_B}),
    ],
    ids=["reconcile", "verify", "rotate-keys", "compliance"],
)
def test_out_of_scope_is_403_with_table_storage_unreachable(tables_down, arm_emulator, name, body, params):
    response = call(tables_down, name, request(name, body, params=params))
    assert error_of(response, name, 403)["code"] == "OutOfScope"
    assert runtime.installed() is None, "deciding the scope built no store"
    assert tables_down.durable.statuses() == [] and arm_emulator.requests == []


def test_an_in_scope_request_with_table_storage_unreachable_is_503_with_retry_after(tables_down, arm_emulator):
    from shared.adapters.arm import Arm
    from shared.adapters.store import WardenStore
    from shared.config import Settings

    settings = Settings.from_env()
    # As the lazily built runtime would be, without the SDK's retries (they only make it slow).
    store = WardenStore(settings.tables, retry_total=0)
    runtime.install(runtime.Runtime(settings, Arm(settings.arm_endpoint, local=True, retries=0), store))
    for name, body in [(RECONCILE_FUNCTION, {"cluster": DEV.id}), (VERIFY_FUNCTION, {"cluster": DEV.id})]:
        response = call(tables_down, name, request(name, body))
        assert error_of(response, name, 503)["code"] == "StorageUnavailable"
        assert response.headers["Retry-After"].isdigit()
    compliance = call(tables_down, COMPLIANCE_FUNCTION, request(COMPLIANCE_FUNCTION))
    assert error_of(compliance, COMPLIANCE_FUNCTION, 503)["code"] == "StorageUnavailable"
    assert tables_down.durable.statuses() == [] and arm_emulator.requests == []


def test_a_request_whose_audit_row_cannot_be_written_is_503_and_queues_nothing(counted, arm_emulator):
    """The audit row goes first: a caller told to ask again never gets the work twice."""
    counted.transport.fail_when = lambda text: "WardenAudit" in text
    body = {"cluster": DEV.id, "publicKey": public_key()}
    response = call(counted.functions, ROTATE_FUNCTION, request(ROTATE_FUNCTION, body))
    assert error_of(response, ROTATE_FUNCTION, 503)["code"] == "StorageUnavailable"
    assert response.headers["Retry-After"].isdigit()
    assert [f.split()[0] for f in counted.transport.failed] == ["POST"], "only the audit write was tried"
    counted.transport.fail_when = lambda text: False
    assert counted.runtime.store.list_requests(DEV.key) == []
    assert counted.functions.durable.statuses() == [] and arm_emulator.requests == []
