"""The real `DurableOrchestrationClient` (aiohttp) against the host's client API on a loopback
port: start, status, events, termination, refusals and the check-status links."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from durable_samples import FAN_OUT, STARTER, STATUS_REPORTER, T0, WAITS_FOREVER

from shared.local.durable_host import DurableHost, RuntimeStatus, run_client_function


def start_request(name: str, instance_id: str, body: object) -> func.HttpRequest:
    return func.HttpRequest(
        "POST",
        f"https://warden.example.net/api/start/{name}/{instance_id}",
        body=json.dumps(body).encode(),
        route_params={"name": name, "instanceId": instance_id},
    )


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            status, data = error.code, error.read()
    return status, json.loads(data) if data else None


def test_a_durable_client_function_starts_an_instance_and_reads_its_status(host: DurableHost, client_binding: str):
    starter = host.functions.require_client(STARTER)
    response = run_client_function(starter.function, req=start_request(FAN_OUT, "fan-1", 3), client=client_binding)

    assert response.status_code == 202
    links = json.loads(response.get_body())
    assert links["id"] == "fan-1"
    assert response.headers["Location"] == links["statusQueryGetUri"]
    assert links["statusQueryGetUri"].startswith(
        "https://warden.example.net/runtime/webhooks/durabletask/instances/fan-1?"
    )
    assert host.get_status("fan-1").input == 3

    host.run_until_idle()
    client = df.DurableOrchestrationClient(client_binding)
    status = run_client_function(client.get_status, instance_id="fan-1", show_history=True)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed
    assert (status.name, status.input_, status.output) == (FAN_OUT, 3, [0, 2, 4])
    assert status.created_time == T0
    assert len(status.historyEvents) == host.history_length("fan-1")


def test_a_second_start_of_a_running_instance_is_refused_with_409(host: DurableHost, client_binding: str):
    client = df.DurableOrchestrationClient(client_binding)
    assert run_client_function(client.start_new, orchestration_function_name=WAITS_FOREVER, instance_id="one") == "one"

    with pytest.raises(Exception, match="status Pending already exists") as refused:
        run_client_function(client.start_new, orchestration_function_name=WAITS_FOREVER, instance_id="one")
    assert refused.value.args[0]["Message"].startswith(
        "An Orchestration instance with the status Pending already exists"
    )

    status_code, _ = http("POST", f"{json.loads(client_binding)['rpcBaseUrl']}orchestrators/{FAN_OUT}/one", b"2")
    assert status_code == 409


def test_the_status_links_answer_202_while_running_and_200_when_done(host: DurableHost, client_binding: str):
    client = df.DurableOrchestrationClient(client_binding)
    instance_id = run_client_function(
        client.start_new, orchestration_function_name=STATUS_REPORTER, instance_id="links"
    )
    links = client.create_http_management_payload(instance_id)
    host.run_until_idle()

    status_code, body = http("GET", links["statusQueryGetUri"])
    assert (status_code, body["runtimeStatus"], body["customStatus"]) == (202, "Running", {"step": "waiting for go"})

    event_url = links["sendEventPostUri"].replace("{eventName}", "go")
    assert http("POST", event_url, json.dumps({"approved": True}).encode()) == (202, None)
    host.run_until_idle()
    status_code, body = http("GET", links["statusQueryGetUri"])
    assert (status_code, body["runtimeStatus"], body["output"]) == (200, "Completed", {"approved": True})
    assert body["createdTime"] == "2026-03-01T08:00:00Z"


def test_events_and_termination_through_the_client(host: DurableHost, client_binding: str):
    client = df.DurableOrchestrationClient(client_binding)
    reporter = run_client_function(client.start_new, orchestration_function_name=STATUS_REPORTER, client_input=None)
    run_client_function(client.raise_event, instance_id=reporter, event_name="go", event_data={"pools": ["np1"]})
    assert host.wait_for_completion(reporter).output == {"pools": ["np1"]}
    with pytest.raises(Exception, match="is gone"):
        run_client_function(client.raise_event, instance_id=reporter, event_name="go", event_data=1)
    with pytest.raises(Exception, match="No instance with ID missing found"):
        run_client_function(client.raise_event, instance_id="missing", event_name="go", event_data=1)

    waiting = run_client_function(client.start_new, orchestration_function_name=WAITS_FOREVER)
    run_client_function(client.terminate, instance_id=waiting, reason="superseded by a newer request")
    status = host.get_status(waiting)
    assert (status.runtime_status, status.output) == (RuntimeStatus.TERMINATED, "superseded by a newer request")


def test_unknown_orchestrators_and_instances(client_binding: str):
    client = df.DurableOrchestrationClient(client_binding)
    with pytest.raises(Exception, match="no orchestrator function named 'nope'"):
        run_client_function(client.start_new, orchestration_function_name="nope")

    missing = run_client_function(client.get_status, instance_id="missing")
    assert not missing
    assert missing.runtime_status is None


def test_a_plain_json_body_starts_an_instance_like_curl_does(host: DurableHost, client_binding: str):
    create_url = json.loads(client_binding)["creationUrls"]["createNewInstancePostUri"]
    url = create_url.replace("{functionName}", FAN_OUT).replace("[/{instanceId}]", "/curl-started")

    status_code, links = http("POST", url, b"4")
    assert (status_code, links["id"]) == (202, "curl-started")
    assert host.wait_for_completion("curl-started").output == [0, 2, 4, 6]


def test_call_client_function_serves_the_api_for_the_call(host: DurableHost):
    response = host.call_client_function(STARTER, req=start_request(FAN_OUT, "served", 1))

    assert response.status_code == 202
    assert host.wait_for_completion("served").output == [0]
