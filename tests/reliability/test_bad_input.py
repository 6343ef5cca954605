"""Bad input at the front doors: the Event Grid trigger and the HTTP reconcile endpoint.

Events go through the real worker decoding into the real trigger (`w.functions`); nothing may
escape the trigger (Event Grid would redeliver for 24 hours), and nothing may reach ARM: not one
request, no orchestration, no pending request. HTTP errors are `{"error": {"code", "message"}}`
with the right status, again with no ARM request and no audit row.
"""

from __future__ import annotations

import copy
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.local.durable_host import RuntimeStatus
from shared.triggers.http_api import RECONCILE_FUNCTION, STATUS_FUNCTION
from tests.emulator_fixtures import SUB_A, SUB_B
from tests.warden_fixtures import DEV, FIXTURES, arm_event, set_cli_env

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
POOL_WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"
OUT_OF_SCOPE_CLUSTER = f"/subscriptions/{SUB_B}/resourceGroups/rg-prod-neu/providers/Microsoft.ContainerService/managedClusters/aks-auto-neu"
STORAGE_ID = f"/subscriptions/{SUB_A}/resourceGroups/rg-dev-weu/providers/Microsoft.Storage/storageAccounts/stdevweu"
RECONCILE_URL = "http://localhost/api/reconcile"


def fixture_event(name: str) -> dict:
    """A real sample with its placeholders filled in for the test subscription (SUB_A)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for placeholder, value in {
        "{subscription-id}": SUB_A,
        "{resource-group}": "rg-dev-weu",
        "{storage-name}": "stdevweu",
        "{namespace}": "ehdevweu",
    }.items():
        text = text.replace(placeholder, value)
    document = json.loads(text)
    return document[0] if isinstance(document, list) else document


def pointed_at(event: dict, resource_id: str, operation: str) -> dict:
    """The same event about an AKS resource: only its type or operation can make it irrelevant."""
    event = copy.deepcopy(event)
    if "specVersion" in event:  # the ResourceWriteFailure sample's spelling; CloudEvents 1.0 says specversion
        event["specversion"] = event.pop("specVersion")
    event["subject"] = resource_id
    event["data"].update(resourceUri=resource_id, operationName=operation)
    return event


def broken(**changes) -> dict:
    """A good pool-write event with fields changed; a value of `...` removes the field."""
    event = arm_event(NODEPOOL1)
    for name, value in changes.items():
        if value is ...:
            event.pop(name)
        else:
            event[name] = value
    return event


CLOUD_POOL_WRITE = pointed_at(fixture_event("eventgrid_cloudevents_resource_write_success.json"), NODEPOOL1, POOL_WRITE)
MALFORMED = {
    "missing-subject": broken(subject=...),
    "missing-id": broken(id=...),
    "missing-event-type": broken(eventType=...),
    "missing-event-time": broken(eventTime=...),
    "missing-data": broken(data=...),
    "data-null": broken(data=None),
    "data-a-string": broken(data="Microsoft.ContainerService/managedClusters/agentPools/write"),
    "data-an-array": broken(data=[NODEPOOL1]),
    "data-a-number": broken(data=42),
    "id-a-number": broken(id=12345),
    "subject-an-array": broken(subject=[NODEPOOL1]),
    "subject-an-object": broken(subject={"id": NODEPOOL1}),
    "event-type-a-number": broken(eventType=7),
    "event-type-empty": broken(eventType=""),
    "topic-a-number": broken(topic=1),
    "cloudevent-specversion-0.3": {**CLOUD_POOL_WRITE, "specversion": "0.3"},
    "cloudevent-missing-source": {k: v for k, v in CLOUD_POOL_WRITE.items() if k != "source"},
    "neither-schema": {"id": "x", "subject": NODEPOOL1, "data": {}},
}

IRRELEVANT = {
    "storage-account-write": fixture_event("eventgrid_egschema_resource_write_success.json"),
    "storage-account-write-cloudevent": fixture_event("eventgrid_cloudevents_resource_write_success.json"),
    "listkeys-action": fixture_event("eventgrid_cloudevents_resource_action_success.json"),
    "delete": fixture_event("eventgrid_egschema_resource_delete_success.json"),
    "write-failure-as-sampled": fixture_event("eventgrid_cloudevents_resource_write_failure.json"),
    "subscription-validation": fixture_event("eventgrid_subscription_validation_event.json"),
    # Real samples about an AKS pool in scope: dropped for their type or operation alone.
    "pool-delete": pointed_at(
        fixture_event("eventgrid_egschema_resource_delete_success.json"),
        NODEPOOL1,
        "Microsoft.ContainerService/managedClusters/agentPools/delete",
    ),
    "pool-write-failure": pointed_at(
        fixture_event("eventgrid_cloudevents_resource_write_failure.json"), NODEPOOL1, POOL_WRITE
    ),
    "cluster-listcredential-action": pointed_at(
        fixture_event("eventgrid_cloudevents_resource_action_success.json"),
        DEV.id,
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    ),
}

NOT_OURS = {
    "other-subscription-pool": arm_event(OUT_OF_SCOPE_CLUSTER + "/agentPools/systempool"),
    "other-subscription-cluster": arm_event(OUT_OF_SCOPE_CLUSTER, "Microsoft.ContainerService/managedClusters/write"),
    "storage-id-with-an-aks-operation": arm_event(STORAGE_ID),
    "maintenance-configuration-id": arm_event(DEV.id + "/maintenanceConfigurations/aksManagedNodeOSUpgradeSchedule"),
    "grandchild-of-a-pool": arm_event(NODEPOOL1 + "/machines/aks-nodepool1-0"),
    "not-a-resource-id": broken(subject="nodepool1", data={**arm_event(NODEPOOL1)["data"], "resourceUri": "nodepool1"}),
    "subscription-not-a-guid": arm_event(NODEPOOL1.replace(SUB_A, "my-subscription")),
}


def assert_nothing_happened(w, arm_emulator) -> None:
    assert arm_emulator.requests == []
    assert w.functions.durable.statuses() == []
    assert w.runtime.store.list_audit() == []
    assert w.runtime.store.list_requests(DEV.key) == []


def deliver_raw(w, *events: dict) -> None:
    """Raw dicts straight to the trigger, as Event Grid would post them (no copying, no fixing)."""
    w.functions.deliver_events(list(events))
    w.functions.run()


def drops_logged(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "shared.triggers.event_grid" and "dropped" in r.getMessage()
    ]


@pytest.mark.parametrize("event", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_event_is_dropped_without_touching_arm(warden, arm_emulator, caplog, event):
    w = warden({"default": "Disabled"})
    caplog.set_level(logging.INFO, logger="shared.triggers.event_grid")
    deliver_raw(w, event)
    [dropped] = drops_logged(caplog)
    assert dropped.startswith("dropped an unreadable event")
    assert_nothing_happened(w, arm_emulator)


@pytest.mark.parametrize("event", [*IRRELEVANT.values(), *NOT_OURS.values()], ids=[*IRRELEVANT, *NOT_OURS])
def test_an_irrelevant_or_out_of_scope_event_is_dropped_without_touching_arm(warden, arm_emulator, caplog, event):
    w = warden({"default": "Disabled"})
    caplog.set_level(logging.INFO, logger="shared.triggers.event_grid")
    deliver_raw(w, event)
    assert len(drops_logged(caplog)) == 1
    assert_nothing_happened(w, arm_emulator)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# eventTime stays readable: the worker parses it before the trigger runs.
FIELDS = st.sampled_from(
    ["id", "topic", "subject", "eventType", "data", "dataVersion", "specversion", "source", "type"]
)
DATA_FIELDS = st.sampled_from(["operationName", "resourceUri", "claims", "subscriptionId"])


def test_no_mangled_event_escapes_the_trigger_or_reaches_arm(warden, arm_emulator):
    """The real storage-account write sample with fields replaced by any JSON, or removed."""
    w = warden({"default": "Disabled"})

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        changes=st.dictionaries(FIELDS, JSON | st.just(...), min_size=1, max_size=4),
        data_changes=st.dictionaries(DATA_FIELDS, JSON, max_size=3),
    )
    def deliver_mangled(changes: dict, data_changes: dict) -> None:
        event = fixture_event("eventgrid_egschema_resource_write_success.json")
        event["data"].update(data_changes)
        for name, value in changes.items():
            if value is ...:
                event.pop(name, None)
            else:
                event[name] = value
        deliver_raw(w, event)  # raises if anything escapes the trigger

    deliver_mangled()
    assert_nothing_happened(w, arm_emulator)


# --- the HTTP endpoint ----------------------------------------------------------------------


def post(w, body):
    return w.functions.http(RECONCILE_FUNCTION, "POST", RECONCILE_URL, body)


BAD_REQUESTS = {
    "bad-json": (b'{"cluster": ', 400, "InvalidJson", "not JSON"),
    "not-utf8": (b"\xff\xfe\x00{", 400, "InvalidJson", "not JSON"),
    "empty-body": (b"", 400, "InvalidJson", "not JSON"),
    "json-array": ([{"cluster": DEV.id}], 400, "InvalidBody", "not list"),
    "json-string": (DEV.id, 400, "InvalidBody", "not str"),
    "missing-cluster": ({"pool": "nodepool1"}, 400, "InvalidCluster", "'cluster' is required"),
    "cluster-a-number": ({"cluster": 42}, 400, "InvalidCluster", "'cluster' is required"),
    "storage-id": ({"cluster": STORAGE_ID}, 400, "InvalidCluster", STORAGE_ID),
    "unknown-field": ({"cluster": DEV.id, "force": True}, 400, "InvalidBody", "'force'"),
    "invalid-pool-name": ({"cluster": DEV.id, "pool": "node_pool!"}, 400, "InvalidPool", "'node_pool!'"),
    "pool-name-too-long": ({"cluster": DEV.id, "pool": "nodepool12345"}, 400, "InvalidPool", "'nodepool12345'"),
    "pool-a-number": ({"cluster": DEV.id, "pool": 1}, 400, "InvalidPool", "is 1"),
    "pool-contradicts-id": ({"cluster": NODEPOOL1, "pool": "spot"}, 400, "InvalidPool", "'spot'"),
    "other-subscription": ({"cluster": OUT_OF_SCOPE_CLUSTER}, 403, "OutOfScope", SUB_B),
}


@pytest.mark.parametrize("body, status, code, says", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_reconcile_request_gets_a_clear_error_and_touches_nothing(warden, arm_emulator, body, status, code, says):
    w = warden({"default": "Disabled"})
    response = post(w, body)
    w.functions.run()
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = json.loads(response.get_body())
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message"}
    assert error["error"]["code"] == code
    assert says in error["error"]["message"]
    assert_nothing_happened(w, arm_emulator)


@pytest.mark.parametrize(
    "body",
    [{"cluster": DEV.id, "pool": "nodepool1"}, {"cluster": NODEPOOL1}, {"cluster": DEV.id}],
    ids=["cluster-and-pool", "pool-id", "whole-cluster"],
)
def test_a_good_reconcile_request_gets_202_with_status_links_and_converges(warden, arm_emulator, body):
    w = warden({"default": "Disabled"})
    response = post(w, body)
    assert response.status_code == 202
    links = json.loads(response.get_body())
    assert {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri"} <= set(links)
    assert links["id"] in links["statusQueryGetUri"]
    w.functions.run()
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    assert ("outcome", "succeeded") in w.steps(pool="nodepool1")
    status = w.functions.http(
        STATUS_FUNCTION, "GET", f"http://localhost/api/status/{links['id']}", route_params={"instanceId": links["id"]}
    )
    assert status.status_code == 200
    assert json.loads(status.get_body())["runtimeStatus"] == RuntimeStatus.COMPLETED.value


def test_a_worker_that_cannot_be_started_is_a_503_and_its_request_waits_for_the_next_start(warden, arm_emulator):
    """The Durable extension does not answer (its port is closed): the caller is told to retry,
    and the request stays in the table, so the next start of the worker does it."""
    import socket

    import azure.functions as func

    from shared.local.durable_host.client_api import binding, run_client_function

    w = warden({"default": "Disabled"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    http = w.functions.durable.functions.require_client(RECONCILE_FUNCTION)
    request = func.HttpRequest(
        "POST",
        RECONCILE_URL,
        body=json.dumps({"cluster": DEV.id}).encode(),
        headers={"content-type": "application/json"},
    )
    response = run_client_function(http.function, **{http.parameter: json.dumps(binding(dead))}, req=request)
    assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
    assert json.loads(response.get_body())["error"]["code"] == "ReconcileNotStarted"
    # The request waits in the table; the next start of the cluster's worker takes it.
    [waiting] = w.runtime.store.list_requests(DEV.key)
    assert (waiting.pool, waiting.kind.value, waiting.lease) == ("", "reconcile", "")
    w.deliver(arm_event(DEV.id + "/agentPools/nodepool1"))
    assert w.runtime.store.list_requests(DEV.key) == []
    assert ("outcome", "succeeded") in w.steps(pool="spot"), "the whole-cluster request that waited was done"


# --- input hygiene: names no AKS resource can have, deep JSON, bad encodings ---------------------

LONG_POOL = "p" * 1000


def renamed(resource_group: str = DEV.resource_group, cluster: str = DEV.name, pool: str | None = None) -> str:
    """An id in the test subscription with names that may break the AKS naming rules."""
    base = f"/subscriptions/{SUB_A}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService"
    return f"{base}/managedClusters/{cluster}" + (f"/agentPools/{pool}" if pool is not None else "")


BADLY_NAMED = {
    "pool-1000-chars": renamed(pool=LONG_POOL),
    "cluster-question-mark": renamed(cluster="aks?x"),
    "cluster-encoded-slash": renamed(cluster="aks-dev%2Fweu"),
    "pool-encoded-slash": renamed(pool="node%2Fpool1"),
    "cluster-hash": renamed(cluster="aks#dev"),
    "pool-space": renamed(pool="node pool1"),
    "rg-space": renamed(resource_group="rg dev weu"),
    "cluster-trailing-hyphen": renamed(cluster="aks-dev-weu-"),
}


def nested(depth: int) -> dict:
    """`{"a": {"a": ...}}`, `depth` levels, built without recursion."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def assert_short(message: str) -> None:
    """One line, and never a 1,000-character name echoed whole."""
    assert "\n" not in message.strip() and LONG_POOL[:100] not in message and len(message) < 500


@pytest.mark.parametrize("resource_id", BADLY_NAMED.values(), ids=BADLY_NAMED.keys())
def test_an_event_naming_a_resource_no_aks_name_rule_allows_is_dropped_with_the_rule(
    warden, arm_emulator, caplog, resource_id
):
    w = warden({"default": "Disabled"})
    caplog.set_level(logging.INFO, logger="shared.triggers.event_grid")
    deliver_raw(w, arm_event(resource_id))
    [dropped] = drops_logged(caplog)
    assert "naming rule" in dropped
    assert_short(dropped)
    assert_nothing_happened(w, arm_emulator)


def test_an_event_whose_data_nests_deeper_than_any_arm_event_is_dropped_as_unreadable(warden, arm_emulator, caplog):
    w = warden({"default": "Disabled"})
    caplog.set_level(logging.INFO, logger="shared.triggers.event_grid")
    event = arm_event(NODEPOOL1)
    event["data"]["claims"] = nested(100)
    deliver_raw(w, event)
    [dropped] = drops_logged(caplog)
    assert dropped.startswith("dropped an unreadable event") and "nests deeper than 64 levels" in dropped
    assert_nothing_happened(w, arm_emulator)


def test_an_event_nested_10000_deep_never_reaches_the_trigger_nor_raises(warden, arm_emulator, caplog):
    """Too deep for any JSON encoder: the worker cannot decode it, as on Azure; the rest still runs."""
    w = warden({"default": "Disabled"})
    caplog.set_level(logging.INFO)
    event = arm_event(NODEPOOL1)
    event["data"] = nested(10_000)
    deliver_raw(w, event)
    assert any("not delivered" in r.getMessage() for r in caplog.records)
    assert_nothing_happened(w, arm_emulator)


def deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


BAD_NAME_REQUESTS = {
    **{f"cluster-{name}": ({"cluster": resource_id}, "InvalidCluster") for name, resource_id in BADLY_NAMED.items()},
    "pool-field-1000-chars": ({"cluster": DEV.id, "pool": LONG_POOL}, "InvalidPool"),
    "pool-field-question-mark": ({"cluster": DEV.id, "pool": "np?x"}, "InvalidPool"),
    "pool-field-encoded-slash": ({"cluster": DEV.id, "pool": "np%2F1"}, "InvalidPool"),
    "pool-field-hash": ({"cluster": DEV.id, "pool": "np#1"}, "InvalidPool"),
    "pool-field-space": ({"cluster": DEV.id, "pool": "np 1"}, "InvalidPool"),
    "pool-field-trailing-hyphen": ({"cluster": DEV.id, "pool": "np1-"}, "InvalidPool"),
    "pool-field-nested-900-deep": ({"cluster": DEV.id, "pool": deep_list(900)}, "InvalidPool"),
}


@pytest.mark.parametrize(("body", "code"), BAD_NAME_REQUESTS.values(), ids=BAD_NAME_REQUESTS.keys())
def test_a_reconcile_request_naming_what_aks_cannot_name_is_a_400_and_touches_nothing(warden, arm_emulator, body, code):
    w = warden({"default": "Disabled"})
    response = post(w, body)
    w.functions.run()
    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert error["code"] == code
    assert "naming rule" in error["message"]
    assert_short(error["message"])
    assert_nothing_happened(w, arm_emulator)


@pytest.mark.parametrize(
    "body",
    # Deep, yet under the 64 KiB body limit (a larger body is a 413 before it is parsed).
    [b"[" * 60_000, ('{"cluster": ' * 5_000).encode()],
    ids=["60000-open-brackets", "object-5000-deep"],
)
def test_a_request_body_nested_too_deep_is_a_400_and_touches_nothing(warden, arm_emulator, body):
    w = warden({"default": "Disabled"})
    response = post(w, body)
    w.functions.run()
    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert (error["code"], "nests too deeply" in error["message"]) == ("InvalidJson", True)
    assert_nothing_happened(w, arm_emulator)


# --- the CLI ---------------------------------------------------------------------------------------


class Cli:
    """`python -m shared` in-process against the local Azure. It writes to the default table
    names: they start and end empty."""

    def __init__(self, capsys, tables: str):
        self.capsys, self.tables = capsys, tables

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        from shared.cli import main

        code = main(list(argv))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def rows(self) -> list:
        from shared.adapters.store import StoreError, WardenStore

        with WardenStore(self.tables) as store:
            try:
                return [*store.list_audit(), *store.list_pool_states()]
            except StoreError:  # no table: no row
                return []

    def drop_tables(self) -> None:
        from shared.adapters.store import WardenStore

        with WardenStore(self.tables) as store:
            store.delete_tables()


@pytest.fixture
def cli(monkeypatch, capsys, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite)
    runner = Cli(capsys, azurite)
    runner.drop_tables()
    yield runner
    runner.drop_tables()


def assert_cli_touched_nothing(cli: Cli, arm_emulator) -> None:
    assert arm_emulator.requests == []
    assert cli.rows() == []


@pytest.mark.parametrize(
    "arguments",
    [
        ["--cluster", renamed(cluster="aks?x")],
        ["--cluster", DEV.id, "--pool", LONG_POOL],
        ["--cluster", renamed(cluster="aks%2Fdev")],
        ["--cluster", renamed(cluster="aks#dev")],
        ["--cluster", renamed(pool="node pool1")],
        ["--cluster", renamed(cluster="aks-dev-weu-")],
    ],
    ids=["question-mark", "pool-1000-chars", "encoded-slash", "hash", "space", "trailing-hyphen"],
)
def test_cli_reconcile_of_a_bad_name_exits_2_with_the_rule_and_writes_nothing(cli, arm_emulator, arguments):
    code, out, err = cli("reconcile", *arguments)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "naming rule" in err and "Traceback" not in err
    assert_short(err)
    assert_cli_touched_nothing(cli, arm_emulator)


def deep_object_text(depth: int) -> str:
    """`{"a": {"a": ... {}}}` as JSON text, `depth` levels (too deep to build with json.dumps)."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


UNREADABLE_FILES = {
    "invalid-utf8": (b'[{"id": "\xff\xfe"}]', "'utf-8' codec can't decode"),
    "100000-open-brackets": (b"[" * 100_000, "nests far too deeply"),
    "no-event-at-all": (b'{"foo": 1}', "no event could be read"),
    "data-10000-deep": (
        json.dumps(arm_event(NODEPOOL1) | {"data": "DEEP"}).replace('"DEEP"', deep_object_text(10_000)).encode(),
        "nests far too deeply",
    ),
    "data-100-deep": (json.dumps(arm_event(NODEPOOL1) | {"data": nested(100)}).encode(), "nests deeper than 64"),
}


@pytest.mark.parametrize(("content", "says"), UNREADABLE_FILES.values(), ids=UNREADABLE_FILES.keys())
def test_cli_handle_event_of_unreadable_input_exits_2_with_one_line(cli, arm_emulator, tmp_path, content, says):
    path = tmp_path / "delivery.json"
    path.write_bytes(content)
    code, out, err = cli("handle-event", str(path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and says in err and err.count("\n") == 1
    assert_short(err)
    assert_cli_touched_nothing(cli, arm_emulator)


def test_cli_handle_event_of_a_badly_named_resource_drops_it_with_the_rule(cli, arm_emulator, tmp_path):
    """Readable but about nothing AKS can name: dropped with the reason, exit 0, as irrelevant events are."""
    path = tmp_path / "delivery.json"
    path.write_text(json.dumps([arm_event(renamed(cluster="aks?x")), arm_event(renamed(pool=LONG_POOL))]))
    code, _, err = cli("handle-event", str(path))
    assert code == 0
    drops = [line for line in err.splitlines() if "dropped event" in line]
    assert len(drops) == 2 and all("naming rule" in line for line in drops)
    assert LONG_POOL[:100] not in err
    assert_cli_touched_nothing(cli, arm_emulator)
