"""The long-running-operation reader on real answers: a recorded run-command exchange with Compute,
step by step, and the shapes ARM answers in (tests/fixtures/SOURCES.md). The whole protocol is
judged against the SDK's own poller in tests/integration/test_lro_conformance.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from azure.core.utils import case_insensitive_dict

from shared.adapters import lro
from shared.adapters.arm_parse import run_command_output_from_arm
from shared.core.errors import PermanentError
from shared.core.models import Operation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARM = "https://management.azure.com"
OPERATION = f"{ARM}/subscriptions/s/providers/Microsoft.Compute/locations/westus/operations/1"
POOL = f"{ARM}/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/p"


class Answer:
    """An HTTP answer as azure-core gives it: a status, case-insensitive headers, a body."""

    def __init__(self, status: int, headers: dict | None = None, body: object = None):
        self.status_code = status
        self.headers = case_insensitive_dict(headers or {})
        self._text = body if isinstance(body, str) else ("" if body is None else json.dumps(body))
        self.request = None

    def text(self) -> str:
        return self._text


def recorded(name: str) -> list[tuple[str, str, Answer]]:
    exchanges = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    answers = []
    for exchange in exchanges:
        response = exchange["response"]
        headers = {k: v[0] for k, v in response["headers"].items()}
        answer = Answer(response["status"]["code"], headers, response["body"]["string"])
        answers.append((exchange["request"]["method"], exchange["request"]["uri"], answer))
    return answers


def test_a_recorded_run_command_is_read_as_the_sdk_read_it():
    """Compute's real answer (az CLI recording): 202 with a status URL and a Location; the status
    URL says InProgress (200), then Succeeded; the result is then read from the Location. The
    reader asks for exactly the URLs the SDK asked for, in order, and reads the same output."""
    (method, url, first), *polls = recorded("azcli_recording_vmss_run_command_e2e_excerpt.yaml")
    polled = lro.begun(method, url, first)
    assert (polled.operation.kind, polled.state.done) == ("async", False)
    for _, asked, answer in polls:
        assert polled.operation.url == asked, "the reader polls where the SDK polled"
        polled = lro.polled(polled.operation, answer)
    assert (polled.operation.kind, polled.state.status) == ("done", "Succeeded")
    output = run_command_output_from_arm(polled.result)
    assert output.stdout.startswith("4 (2.12.6-0ubuntu2) ...") and "debconf: unable to initialize" in output.stderr


def test_the_first_200_of_a_status_url_is_not_the_end():
    """The answer that made every node `unknown`: a 200 of the status URL while the script runs."""
    started = lro.begun("POST", OPERATION + "/run", Answer(202, {"Azure-AsyncOperation": OPERATION}))
    polled = lro.polled(started.operation, Answer(200, {}, {"status": "InProgress"}))
    assert (polled.state.done, polled.result) == (False, None)


@pytest.mark.parametrize(
    ("headers", "kind", "url"),
    [
        ({"Azure-AsyncOperation": OPERATION, "Location": OPERATION + "?monitor=true"}, "async", OPERATION),
        ({"Location": OPERATION + "?monitor=true"}, "location", OPERATION + "?monitor=true"),
        ({}, "done", POOL + "/upgradeNodeImageVersion"),
    ],
    ids=["both", "location", "none"],
)
def test_a_post_is_polled_where_arm_polling_polls_it(headers, kind, url):
    polled = lro.begun("POST", POOL + "/upgradeNodeImageVersion", Answer(202 if headers else 200, headers, {}))
    assert (polled.operation.kind, polled.operation.url) == (kind, url)


def test_a_location_that_moves_is_followed():
    started = lro.begun("POST", POOL + "/x", Answer(202, {"Location": OPERATION}))
    moved = lro.polled(started.operation, Answer(202, {"Location": OPERATION + "?page=2"}))
    assert (moved.operation.url, moved.state.done) == (OPERATION + "?page=2", False)
    done = lro.polled(moved.operation, Answer(200, {}, {"value": []}))
    assert (done.state.status, done.result) == ("Succeeded", {"value": []})


@pytest.mark.parametrize(
    ("status", "body", "state"),
    [
        (200, {"properties": {"provisioningState": "Updating"}}, "Updating"),
        (201, {}, "InProgress"),
        (202, {}, "InProgress"),
    ],
)
def test_a_put_without_headers_is_followed_by_its_resource(status, body, state):
    """A PUT answered with a provisioningState still running (and no header) is not done: ARM's
    clients read the resource until it is."""
    polled = lro.begun("PUT", POOL, Answer(status, {}, body))
    assert (polled.operation.kind, polled.operation.url, polled.state.status) == ("resource", POOL, state)
    done = lro.polled(polled.operation, Answer(200, {}, {"properties": {"provisioningState": "Succeeded"}}))
    assert (done.operation.kind, done.state.succeeded) == ("done", True)


@pytest.mark.parametrize(
    ("body", "reason"), [("", "no JSON body"), ("<html>", "no JSON body"), ({"id": 1}, "no status")]
)
def test_a_status_answer_without_a_status_fails_the_operation_with_the_reason(body, reason):
    polled = lro.polled(Operation(OPERATION, "async", "PUT", POOL), Answer(200, {}, body))
    assert (polled.state.status, polled.state.error_code) == ("Failed", "InvalidOperationStatus")
    assert reason in polled.state.error_message


@pytest.mark.parametrize(
    "location", ["/relative/operations/1", "https://elsewhere.example/operations/1", "http://management.azure.com/x"]
)
def test_a_url_away_from_arm_is_refused_not_followed(location):
    """Every poll carries the identity's token: only ARM's own origin is polled (checked by parsing)."""
    with pytest.raises(PermanentError, match="InvalidOperationUrl|not an absolute URL|points away"):
        lro.begun("POST", POOL + "/x", Answer(202, {"Location": location}))


def test_an_operation_from_an_older_history_reads_as_it_did():
    """Histories written before the reader kept its state carry `url` and `kind` only."""
    old = Operation(**{"url": OPERATION, "kind": "async"})
    polled = lro.polled(old, Answer(200, {}, {"status": "Succeeded"}))
    assert (polled.operation.kind, polled.state.succeeded) == ("done", True)
    assert Operation.from_url(POOL + "?api-version=1").kind == "resource"
    assert Operation.from_url(f"{ARM}/x/operationresults/1?api-version=1").kind == "location"
