"""`OutcomePublisher` with the real EventGridPublisherClient, against a loopback receiver over HTTP."""

from __future__ import annotations

import logging
import socket

import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential

from shared.adapters.publisher import OutcomeKind, OutcomePublisher

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER_ID = f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1"
POOL_ID = f"{CLUSTER_ID}/agentPools/np1"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json; charset=utf-8"


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/events"


def test_outcome_is_posted_as_a_cloudevent_batch(receiver):
    with OutcomePublisher(receiver.url) as publisher:
        sent = publisher.publish(OutcomeKind.REMEDIATED, POOL_ID, {"from": "LocalUser", "to": "Disabled"})
    assert sent is True
    (request,) = receiver.requests
    assert request["path"] == "/api/events?api-version=2018-01-01"
    assert request["headers"]["Content-Type"] == CLOUDEVENTS_BATCH
    assert request["headers"]["aeg-sas-key"] == "local"  # the fixed key of a loopback receiver
    (event,) = request["body"]
    assert event["specversion"] == "1.0"
    assert event["type"] == "Warden.SshAccess.Remediated"
    assert event["source"] == POOL_ID
    assert event["subject"] == POOL_ID
    assert event["data"] == {"from": "LocalUser", "to": "Disabled"}
    assert event["id"] and event["time"]


@pytest.mark.parametrize("kind", list(OutcomeKind), ids=[k.name.lower() for k in OutcomeKind])
def test_every_kind_is_published_with_its_type(receiver, kind):
    with OutcomePublisher(receiver.url) as publisher:
        assert publisher.publish(kind.value, CLUSTER_ID, {"cluster": "aks1"}) is True
    assert [e["type"] for e in receiver.events] == [kind.value]


def test_a_given_key_credential_is_sent_as_aeg_sas_key(receiver):
    with OutcomePublisher(receiver.url, AzureKeyCredential("topic-key")) as publisher:
        assert publisher.publish(OutcomeKind.DRIFT, POOL_ID, {}) is True
    assert receiver.requests[0]["headers"]["aeg-sas-key"] == "topic-key"
    assert "Authorization" not in receiver.requests[0]["headers"]


class _FixedToken:
    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return AccessToken("token", 4_102_444_800)


def test_bearer_token_over_plain_http_is_refused_by_the_sdk_and_reported(receiver, caplog):
    # The SDK sends `Authorization: Bearer` over https only; the publisher reports instead of raising.
    with OutcomePublisher(receiver.url, _FixedToken(), retries=0) as publisher:
        assert publisher.publish(OutcomeKind.DRIFT, POOL_ID, {}) is False
    assert receiver.requests == []
    assert "not published" in caplog.text


def test_server_error_returns_false_and_logs(receiver, caplog):
    receiver.status = 500
    with caplog.at_level(logging.WARNING), OutcomePublisher(receiver.url, retries=1) as publisher:
        sent = publisher.publish(OutcomeKind.REMEDIATION_FAILED, POOL_ID, {"code": "OperationNotAllowed"})
    assert sent is False
    assert len(receiver.requests) == 2  # the first try and the one retry asked for
    assert f"outcome Warden.SshAccess.RemediationFailed for {POOL_ID} not published" in caplog.text
    assert "is not a known attribute" not in caplog.text  # the SDK's noise about per-call options


def test_unreachable_endpoint_returns_false(closed_port_url, caplog):
    with OutcomePublisher(closed_port_url, retries=0) as publisher:
        assert publisher.publish(OutcomeKind.KEY_ROTATED, CLUSTER_ID, {"fingerprint": "SHA256:abc"}) is False
    assert "not published" in caplog.text


@pytest.mark.parametrize(
    ("kind", "subject", "data", "message"),
    [
        ("Warden.SshAccess.Fixed", POOL_ID, {}, r"outcome kind 'Warden.SshAccess.Fixed' is unknown; expected one of"),
        (OutcomeKind.DRIFT, "/subscriptions/x", {}, r"outcome subject: '/subscriptions/x' is not an AKS"),
        (OutcomeKind.DRIFT, POOL_ID, {"at": object()}, r"outcome data is not JSON-serialisable"),
        (OutcomeKind.DRIFT, POOL_ID, ["a"], r"outcome data is a list; expected a JSON object"),
        (OutcomeKind.KEY_ROTATED, CLUSTER_ID, {"k": "-----BEGIN RSA PRIVATE KEY-----"}, r"private key material"),
    ],
    ids=["kind", "subject", "not-json", "not-object", "private-key"],
)
def test_invalid_outcomes_raise_before_sending(receiver, kind, subject, data, message):
    with OutcomePublisher(receiver.url) as publisher, pytest.raises(ValueError, match=message):
        publisher.publish(kind, subject, data)
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://topic.westeurope-1.eventgrid.azure.net/api/events", "uses plain http"),
        ("topic.westeurope-1.eventgrid.azure.net", "is not a URL"),
        ("http://topic.example\\@127.0.0.1:1/api/events", "backslash"),
        ("http://topic.example@127.0.0.1:1/api/events", "before '@'"),
    ],
    ids=["remote-http", "no-scheme", "backslash-userinfo", "userinfo"],
)
def test_endpoint_must_be_https_unless_loopback(endpoint, message):
    with pytest.raises(ValueError, match=message):
        OutcomePublisher(endpoint)


def test_https_endpoint_gets_the_default_azure_credential():
    with OutcomePublisher("https://topic.westeurope-1.eventgrid.azure.net/api/events") as publisher:
        assert type(publisher.credential).__name__ == "DefaultAzureCredential"
