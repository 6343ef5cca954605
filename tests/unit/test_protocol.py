"""The orchestrator<->activity protocol, work items from leased requests, and instance ids. Pure."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.protocol import Failure, FailureKind, Outcome, Result, WorkKind, exhausted, failed, succeeded
from shared.core.records import WorkRequest
from shared.core.work import work_items
from shared.orchestration.names import child_instance_id, worker_instance_id

CLUSTER = "/subscriptions/3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-a"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SAFE_ID = re.compile(r"^[a-z0-9-]+$")


@pytest.mark.parametrize(
    "result",
    [
        succeeded(pools=["a", "b"], idle=True),
        failed(FailureKind.THROTTLED, "Throttled", "slow down", retryable=True, retry_after=7.0, status=429),
        Result(False, {"nodeImageVersion": "v2"}, Failure(FailureKind.CONFLICT, "OperationNotAllowed", "busy", True)),
        exhausted("plan_pool_activity", Failure(FailureKind.TRANSIENT, "InternalServerError", "boom", True)),
    ],
    ids=["ok", "throttled", "failure-with-value", "exhausted"],
)
def test_results_survive_the_json_of_the_orchestration_history(result):
    assert Result.from_json(result.to_json()) == result


def test_a_value_that_is_no_result_becomes_an_internal_failure():
    result = Result.from_json(["not", "a", "result"])
    assert (
        not result.ok and result.error.kind is FailureKind.INTERNAL and "not an activity result" in result.error.message
    )


def test_exhausted_keeps_the_last_error_and_is_terminal():
    result = exhausted("poll", Failure(FailureKind.TRANSIENT, "ServiceUnavailable", "try later", True))
    assert (result.error.code, result.error.retryable) == ("RetriesExhausted", False)
    assert "last error ServiceUnavailable: try later" in result.error.message


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [(FailureKind.NOT_FOUND, Outcome.GONE), (FailureKind.PERMANENT, Outcome.FAILED)],
    ids=["404", "4xx"],
)
def test_a_terminal_failure_says_what_it_means_for_the_pool(kind, outcome):
    assert Failure(kind, "Code", "message").outcome is outcome


def request(
    pool: str, minutes: int, kind: WorkKind = WorkKind.RECONCILE, reason: str = "", actor: str = ""
) -> WorkRequest:
    return WorkRequest(CLUSTER, pool, T0 + timedelta(minutes=minutes), kind, reason, actor, etag=f"e{minutes}")


def test_requests_of_one_kind_merge_and_kinds_keep_their_order_of_arrival():
    items = work_items(
        [
            request("spot", 2, reason="event"),
            request("", 3, WorkKind.VERIFY, reason="timer", actor="timer"),
            request("nodepool1", 1, reason="event"),
            request("NodePool1", 4, reason="HTTP", actor="alice"),
        ]
    )
    assert [i["kind"] for i in items] == ["reconcile", "verify"]
    reconcile, verify = items
    assert reconcile["pools"] == ["nodepool1", "spot"]
    assert reconcile["reason"] == "event; HTTP" and reconcile["actor"] == "alice"
    assert sorted(e for _, e in reconcile["rows"]) == ["e1", "e2", "e4"]
    assert verify["pools"] is None and verify["rows"] == [["verify|*", "e3"]]


def test_a_request_for_the_whole_cluster_covers_every_pool_request():
    [item] = work_items([request("spot", 1), request("", 2)])
    assert item["pools"] is None and len(item["rows"]) == 2


@given(st.text(max_size=300))
def test_instance_ids_hold_only_safe_characters_whatever_the_name(name):
    worker = worker_instance_id(f"{CLUSTER}/{name}".lower())
    child = child_instance_id(worker, name, "0f1e2d3c-aaaa")
    for instance_id in (worker, child):
        assert SAFE_ID.match(instance_id), instance_id
        assert len(instance_id) <= 160


@pytest.mark.parametrize(
    "name", ["aks?x", "aks#x", "a%2Fb", "x" * 1000, "A/B"], ids=["query", "fragment", "escaped-slash", "long", "slash"]
)
def test_names_that_would_break_a_status_url_give_distinct_safe_ids(name):
    ids = {worker_instance_id(f"{CLUSTER}{suffix}".lower()) for suffix in ("", name)}
    assert len(ids) == 2 and all(SAFE_ID.match(i) for i in ids)
