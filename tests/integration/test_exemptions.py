"""Break-glass exemptions end to end: the HTTP routes with real `azure.functions` requests through the
app's functions, the exemption's durable timer on the in-process host's virtual clock, Azurite and the
ARM emulator. An exemption keeps its pool untouched through events and resyncs, ends at its timer
(the pool back to policy within one poll, and verified), is never honoured once expired (even when its
timer was lost), and every grant, change, removal and expiry is recorded and published exactly once.

The HTTP trigger judges `until` by the wall clock; the orchestrations run on the virtual clock, which
starts days before it (T0) and jumps to each durable timer: an exemption ending two hours from now is
in force for everything the test runs before its timer fires.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from jsonschema import Draft202012Validator

from shared.adapters.store import WardenStore
from shared.cli import main
from shared.core.records import PoolExemption, PoolStatus
from shared.core.table_keys import iso
from shared.orchestration import names
from shared.orchestration.names import worker_instance_id
from shared.triggers.http_routes import ENDPOINTS, EXEMPTIONS_FUNCTION
from shared.triggers.http_validation import MAX_BODY_BYTES
from shared.triggers.openapi import document
from shared.triggers.resync import resync
from tests.emulator_fixtures import SUB_B
from tests.table_faults import FlakyTransport
from tests.warden_fixtures import DEV, PROD, T0, arm_event, set_cli_env

NODEPOOL1 = DEV.id + "/agentPools/nodepool1"
SYSTEM = PROD.id + "/agentPools/system"
# Two pools the policy cares about; every other is left alone, so each write seen is one of these.
POLICY = {
    "default": "ignore",
    "rules": [
        {
            "name": "dev nodepool1 off",
            "match": {"cluster": "aks-dev-weu", "pool": "nodepool1"},
            "sshAccess": "Disabled",
        },
        {"name": "prod system off", "match": {"cluster": "aks-prod-weu", "pool": "system"}, "sshAccess": "Disabled"},
    ],
}
ALICE = {"X-MS-CLIENT-PRINCIPAL-NAME": "alice@contoso.com", "X-MS-CLIENT-PRINCIPAL-ID": "5f0c6e1d-alice"}
ALICE_CALLER = "alice@contoso.com (5f0c6e1d-alice)"
REASON = "incident 4711: kubelet debugging on the nodes"
DOCUMENT = document()
GRANTED, REMOVED, EXPIRED = (f"Warden.SshAccess.Exemption{kind}" for kind in ("Granted", "Removed", "Expired"))


def in_two_hours() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)


def call(w, method: str, body: Any = None, params: dict | None = None, content_type: str = "application/json"):
    """One request to the exemptions function, as the host would pass it; (status, JSON body)
    after checking the body against the document's schema for that method and status."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    headers = {**ALICE, **({"content-type": content_type} if data else {})}
    req = func.HttpRequest(method, "http://localhost/api/exemptions", body=data, headers=headers, params=params or {})
    response = w.functions.call(EXEMPTIONS_FUNCTION, req=req)
    payload = json.loads(response.get_body())
    operation = DOCUMENT["paths"][ENDPOINTS[EXEMPTIONS_FUNCTION].path][method.lower()]
    documented = operation["responses"][str(response.status_code)]
    if "$ref" in documented:
        documented = DOCUMENT["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
    schema = documented["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": DOCUMENT["components"]}).validate(payload)
    return response.status_code, payload


def grant(w, pool: str, until: datetime, **extra: Any) -> tuple[int, dict]:
    return call(w, "POST", {"pool": pool, "until": iso(until), "reason": REASON, **extra})


def exemption_rows(w, cluster=DEV) -> list[tuple[str, str, str]]:
    """(code, actor, pool) of the cluster's `exemption` audit rows, in order."""
    return [(r.code, r.actor, r.pool) for r in w.audit(cluster) if r.step == "exemption"]


def writes_to(w, pool: str) -> list[tuple[str, str]]:
    return [write for write in w.writes() if pool in write[1]]


def activity_times(w, activity: str, pool: str) -> list[datetime]:
    return [
        e.at
        for e in w.progress
        if e.kind == "activity" and e.activity == activity and (e.payload or {}).get("pool") == pool
    ]


def finish_worker(w, cluster=DEV) -> None:
    """Run until the cluster's worker is done, and no further: the exemption's timer stays unfired."""
    w.functions.durable.wait_for_completion(worker_instance_id(cluster.key))


def test_an_exemption_keeps_its_pool_through_events_and_resyncs_then_its_timer_brings_it_back(
    warden, arm_emulator, receiver
):
    w = warden(POLICY, WARDEN_EVENTS_ENDPOINT=receiver.url)
    until = in_two_hours()
    status, body = grant(w, NODEPOOL1, until)
    assert (status, body["change"], body["reconcileInstanceId"]) == (201, "granted", None)
    shown = body["exemption"]
    assert (shown["poolId"], shown["mode"], shown["until"], shown["actor"]) == (
        NODEPOOL1,
        None,
        iso(until),
        ALICE_CALLER,
    )
    assert w.functions.durable.get_status(body["expiryInstanceId"]).name == names.EXEMPTION_EXPIRY

    w.functions.deliver_events([arm_event(NODEPOOL1)])  # someone touched the pool: the warden looks
    finish_worker(w)
    report = w.functions.with_client(lambda client: resync(client, w.runtime))
    assert report.requested == [] and report.errors == [] and report.expired == []
    assert w.writes() == [], "an exempt pool is not written, whatever asks"
    [plan] = [r for r in w.audit() if r.step == "plan"]
    assert plan.outcome.value == "skipped"
    assert (
        plan.message
        == f"exempted: exempted by {ALICE_CALLER} until {until:%Y-%m-%dT%H:%M:%SZ} ({REASON}): keeps LocalUser"
    )
    assert w.pool_state(DEV, "nodepool1").status is PoolStatus.EXEMPTED

    w.functions.run()  # the virtual clock reaches the exemption's end
    assert writes_to(w, "nodepool1") == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]
    [put] = activity_times(w, names.START_SSH_UPDATE, "nodepool1")
    assert until <= put <= until + timedelta(seconds=w.settings.poll_seconds), "reverted within one poll of the end"
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    steps = [(r.step, r.outcome.value) for r in w.audit() if r.pool == "nodepool1"]
    assert steps[steps.index(("outcome", "succeeded")) + 1 :] == [("verify", "succeeded")], (
        "then the nodes are verified"
    )
    assert exemption_rows(w) == [
        ("ExemptionGranted", ALICE_CALLER, "nodepool1"),
        ("ExemptionExpired", "warden", "nodepool1"),
    ]
    assert w.runtime.store.get_exemption(DEV.key, "nodepool1") is None
    assert w.pool_state(DEV, "nodepool1").status is PoolStatus.COMPLIANT
    published = [(e["type"], e["subject"]) for e in receiver.events if "Exemption" in e["type"]]
    assert published == [(GRANTED, NODEPOOL1), (EXPIRED, NODEPOOL1)]
    expired = next(e for e in receiver.events if e["type"] == EXPIRED)["data"]
    assert (expired["grantedBy"], expired["reason"], expired["until"]) == (ALICE_CALLER, REASON, iso(until))


def test_an_exemption_with_a_mode_gives_it_now_and_the_timer_takes_it_back(warden, arm_emulator):
    w = warden(POLICY)
    until = in_two_hours()
    status, body = grant(w, SYSTEM, until, mode="localuser")
    assert (status, body["exemption"]["mode"], body["reconcileInstanceId"]) == (
        201,
        "LocalUser",
        worker_instance_id(PROD.key),
    )
    finish_worker(w, PROD)
    assert writes_to(w, "system") == [("PUT", "agentPools/system")]  # Kubernetes 1.37: the update reimages
    assert arm_emulator.pool_body(SYSTEM)["properties"]["securityProfile"]["sshAccess"] == "LocalUser"
    assert {active for active, _ in arm_emulator.sshd_states(SYSTEM)} == {"active"}
    verified = [r for r in w.audit(PROD) if r.step == "verify" and r.pool == "system"]
    assert [r.outcome.value for r in verified] == ["succeeded"], "the nodes are judged by the exemption's mode"
    assert w.pool_state(PROD, "system").status is PoolStatus.EXEMPTED

    w.functions.run()
    assert arm_emulator.pool_body(SYSTEM)["properties"]["securityProfile"]["sshAccess"] == "Disabled"
    assert arm_emulator.sshd_states(SYSTEM) == {("inactive", "disabled")}
    puts = activity_times(w, names.START_SSH_UPDATE, "system")
    assert len(puts) == 2 and until <= puts[1] <= until + timedelta(seconds=w.settings.poll_seconds)
    verified = [r for r in w.audit(PROD) if r.step == "verify" and r.pool == "system"]
    assert [r.outcome.value for r in verified] == ["succeeded", "succeeded"]
    assert [code for code, _, _ in exemption_rows(w, PROD)] == ["ExemptionGranted", "ExemptionExpired"]


def test_an_expired_exemption_is_never_honoured_even_when_its_timer_was_lost(warden, arm_emulator, receiver):
    w = warden(POLICY, WARDEN_EVENTS_ENDPOINT=receiver.url)
    ended = T0 - timedelta(hours=1)  # before both clocks: no timer will ever fire for it
    lost = PoolExemption(DEV.id, "nodepool1", ended, "incident 4710", "bob", ended - timedelta(hours=3))
    w.runtime.store.put_exemption(lost)
    w.deliver(arm_event(NODEPOOL1))
    assert writes_to(w, "nodepool1") == [("PUT", "agentPools/nodepool1"), ("POST", "nodepool1/upgradeNodeImageVersion")]

    for _ in range(2):  # the resync records the expiry and removes it; once
        report = w.functions.with_client(lambda client: resync(client, w.runtime))
    assert exemption_rows(w) == [("ExemptionExpired", "warden", "nodepool1")]
    assert w.runtime.store.list_exemptions() == []
    assert [e["type"] for e in receiver.events if "Exemption" in e["type"]] == [EXPIRED]
    assert report.expired == []  # the second found nothing left


def test_a_resync_reverts_a_pool_whose_exemption_ended_without_its_timer(warden, arm_emulator):
    w = warden(POLICY)
    ended = datetime.now(UTC) - timedelta(minutes=1)
    w.runtime.store.put_exemption(PoolExemption(DEV.id, "nodepool1", ended, "x", "bob", ended - timedelta(hours=1)))
    report = w.functions.with_client(lambda client: resync(client, w.runtime))
    assert report.expired == [NODEPOOL1.lower()] and report.requested == [DEV.id]
    w.functions.run()
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}


def test_a_renewal_gets_its_own_timer_and_the_old_one_does_nothing(warden, arm_emulator):
    w = warden(POLICY)
    first, later = in_two_hours(), in_two_hours() + timedelta(hours=3)
    _, granted = grant(w, NODEPOOL1, first)
    status, renewed = call(w, "POST", {"pool": NODEPOOL1, "until": iso(later), "reason": "still debugging"})
    assert (status, renewed["change"]) == (200, "changed")
    assert renewed["expiryInstanceId"] != granted["expiryInstanceId"]
    assert call(w, "POST", {"pool": NODEPOOL1, "until": iso(later), "reason": "still debugging"})[1]["change"] == (
        "unchanged"
    )
    w.functions.run()
    old = w.functions.durable.get_status(granted["expiryInstanceId"])
    assert old.output["expired"] is False and "renewed" in old.output["reason"]
    [put] = activity_times(w, names.START_SSH_UPDATE, "nodepool1")
    assert later <= put <= later + timedelta(seconds=w.settings.poll_seconds)
    codes = [code for code, _, _ in exemption_rows(w)]
    assert codes == ["ExemptionGranted", "ExemptionChanged", "ExemptionExpired"], "each change recorded once"
    [changed] = [r for r in w.audit() if r.code == "ExemptionChanged"]
    assert f"was until {iso(first)}" in changed.message and "still debugging" in changed.message


def test_removing_an_exemption_early_brings_the_pool_back_now(warden, arm_emulator, receiver):
    w = warden(POLICY, WARDEN_EVENTS_ENDPOINT=receiver.url)
    until = in_two_hours()
    _, granted = grant(w, NODEPOOL1, until)
    status, body = call(w, "GET", params={"cluster": DEV.id, "code": "function-key"})
    assert status == 200 and [e["poolId"] for e in body["exemptions"]] == [NODEPOOL1]
    status, removed = call(w, "DELETE", params={"pool": NODEPOOL1, "reason": "kubelet fixed"})
    assert (status, removed["reconcileInstanceId"]) == (200, worker_instance_id(DEV.key))
    finish_worker(w)
    assert arm_emulator.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    [put] = activity_times(w, names.START_SSH_UPDATE, "nodepool1")
    assert put < until, "reverted at once, not at the end"
    assert call(w, "GET")[1] == {"exemptions": []}
    status, missing = call(w, "DELETE", params={"pool": NODEPOOL1, "reason": "again"})
    assert (status, missing["error"]["code"]) == (404, "ExemptionNotFound")
    w.functions.run()  # the old timer fires and finds nothing to end
    assert w.functions.durable.get_status(granted["expiryInstanceId"]).output["expired"] is False
    assert exemption_rows(w) == [
        ("ExemptionGranted", ALICE_CALLER, "nodepool1"),
        ("ExemptionRemoved", ALICE_CALLER, "nodepool1"),
    ]
    [row] = [r for r in w.audit() if r.code == "ExemptionRemoved"]
    assert "kubelet fixed" in row.message and REASON in row.message
    assert [e["type"] for e in receiver.events if "Exemption" in e["type"]] == [GRANTED, REMOVED]


def test_the_list_shows_only_exemptions_in_force_of_subscriptions_in_scope(warden):
    w = warden(POLICY)
    _, granted = grant(w, NODEPOOL1, in_two_hours())
    ended = datetime.now(UTC) - timedelta(seconds=1)
    w.runtime.store.put_exemption(PoolExemption(PROD.id, "system", ended, "old", "bob", ended - timedelta(hours=1)))
    elsewhere = DEV.id.replace(DEV.subscription, SUB_B)
    w.runtime.store.put_exemption(PoolExemption(elsewhere, "nodepool1", in_two_hours(), "x", "eve", datetime.now(UTC)))
    assert call(w, "GET")[1] == {"exemptions": [granted["exemption"]]}
    assert call(w, "GET", params={"cluster": PROD.id})[1] == {"exemptions": []}


def test_the_store_writes_an_exemption_only_over_the_row_it_read(store):
    from shared.core.errors import StoreConflictError

    now = datetime.now(UTC)
    first = PoolExemption(DEV.id, "nodepool1", now + timedelta(hours=1), "a", "alice", now)
    etag = store.put_exemption(first)
    with pytest.raises(StoreConflictError):
        store.put_exemption(first)  # a second grant that read no row
    read = store.get_exemption(DEV.key, "NodePool1")
    assert read == first and read.etag == etag
    store.put_exemption(replace(first, reason="b"), etag=etag)
    assert store.delete_exemption(read) is False, "a stale read deletes nothing"
    assert [r.reason for r in store.list_exemptions(DEV.key)] == ["b"] and store.list_exemptions(PROD.key) == []
    assert store.delete_exemption(store.get_exemption(DEV.key, "nodepool1")) is True
    assert store.get_exemption(DEV.key, "nodepool1") is None


# --- refused requests: nothing touched --------------------------------------------------------------


@pytest.fixture
def counted(warden):
    """A warden whose Table Storage requests are counted: a refused request must send none."""
    transport = FlakyTransport()
    w = warden(POLICY, store_options={"transport": transport})
    w.transport = transport
    return w


SOON = iso(in_two_hours())
REFUSED = {
    "until-past": ("POST", {"pool": NODEPOOL1, "until": "2020-01-01T00:00:00Z", "reason": REASON}, 400, "InvalidUntil"),
    "until-too-far": (
        "POST",
        {"pool": NODEPOOL1, "until": "2099-01-01T00:00:00Z", "reason": REASON},
        400,
        "InvalidUntil",
    ),
    "no-reason": ("POST", {"pool": NODEPOOL1, "until": SOON}, 400, "InvalidReason"),
    "bad-mode": (
        "POST",
        {"pool": NODEPOOL1, "until": SOON, "reason": "x", "mode": "on"},
        400,
        "InvalidMode",
    ),
    "a-cluster": ("POST", {"pool": DEV.id, "until": SOON, "reason": "x"}, 400, "InvalidPool"),
    "out-of-scope": (
        "POST",
        {"pool": NODEPOOL1.replace(DEV.subscription, SUB_B), "until": "x", "reason": "x"},
        403,
        "OutOfScope",
    ),
    "not-an-object": ("POST", [NODEPOOL1], 400, "InvalidBody"),
    "too-large": ("POST", json.dumps({"reason": "x" * MAX_BODY_BYTES}).encode(), 413, "BodyTooLarge"),
    "delete-without-reason": ("DELETE", {"pool": NODEPOOL1}, 400, "InvalidReason"),
    "delete-out-of-scope": (
        "DELETE",
        {"pool": NODEPOOL1.replace(DEV.subscription, SUB_B), "reason": "x"},
        403,
        "OutOfScope",
    ),
    "list-unknown-parameter": ("GET", {"pool": NODEPOOL1}, 400, "InvalidQuery"),
    "list-a-pool-as-cluster": ("GET", {"cluster": NODEPOOL1}, 400, "InvalidQuery"),
}


@pytest.mark.parametrize(("method", "payload", "status", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_request_gets_its_status_and_touches_nothing(counted, arm_emulator, method, payload, status, code):
    before = counted.transport.sent
    body, params = (payload, None) if method == "POST" else (None, payload)
    got, answer = call(counted, method, body, params)
    assert (got, answer["error"]["code"]) == (status, code)
    counted.functions.run()
    assert counted.transport.sent == before, "a refused request sent a Table Storage request"
    assert counted.functions.durable.statuses() == [] and arm_emulator.requests == []


def test_a_body_not_sent_as_json_is_415(counted):
    status, answer = call(counted, "POST", {"pool": NODEPOOL1}, content_type="text/plain")
    assert (status, answer["error"]["code"]) == (415, "UnsupportedMediaType")


# --- the command line -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite, WARDEN_POLICY=json.dumps(POLICY))
    yield arm_emulator
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


def test_the_cli_grants_lists_and_removes_and_plan_shows_who_why_and_until(cli_env, azurite, capsys):
    until = in_two_hours()
    assert main(["exempt", "--pool", NODEPOOL1, "--until", iso(until), "--reason", REASON, "--json"]) == 0
    granted = json.loads(capsys.readouterr().out)
    assert (granted["change"], granted["exemption"]["until"], granted["outcomes"]) == ("granted", iso(until), [])
    assert granted["exemption"]["actor"].startswith("cli")

    assert main(["plan", "--json"]) == 0
    [row] = [p for p in json.loads(capsys.readouterr().out)["pools"] if p["poolId"] == NODEPOOL1]
    assert (row["status"], row["steps"]) == ("exempted", [])
    assert row["exemption"] == {
        "actor": granted["exemption"]["actor"],
        "reason": REASON,
        "until": iso(until),
        "mode": None,
    }
    assert f"until {until:%Y-%m-%dT%H:%M:%SZ} ({REASON})" in row["reason"]

    assert main(["exempt", "--list", "--wide"]) == 0
    listed = capsys.readouterr().out
    assert "nodepool1" in listed and REASON in listed and iso(until) in listed

    assert main(["exempt", "--remove", "--pool", NODEPOOL1, "--reason", "fixed", "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    [outcome] = removed["outcomes"]
    assert (outcome["pool"], outcome["outcome"], outcome["status"]) == ("nodepool1", "succeeded", "compliant")
    assert cli_env.sshd_states(NODEPOOL1) == {("inactive", "disabled")}
    with WardenStore(azurite) as store:
        codes = [r.code for r in store.list_audit(DEV.key) if r.step == "exemption"]
        assert codes == ["ExemptionGranted", "ExemptionRemoved"] and store.list_exemptions() == []


def test_the_cli_accepts_a_duration_and_gives_a_mode_now(cli_env, capsys):
    assert (
        main(["exempt", "--pool", SYSTEM, "--until", "90m", "--reason", REASON, "--mode", "LocalUser", "--json"]) == 0
    )
    document = json.loads(capsys.readouterr().out)
    until = datetime.fromisoformat(document["exemption"]["until"])
    assert timedelta(minutes=89) < until - datetime.now(UTC) <= timedelta(minutes=90)
    [outcome] = document["outcomes"]
    assert (outcome["pool"], outcome["outcome"]) == ("system", "succeeded")
    assert cli_env.pool_body(SYSTEM)["properties"]["securityProfile"]["sshAccess"] == "LocalUser"


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["--pool", NODEPOOL1, "--until", "25h", "--reason", "x"], "--until"),
        (["--pool", NODEPOOL1, "--until", "2020-01-01T00:00:00Z", "--reason", "x"], "is not in the future"),
        (["--pool", NODEPOOL1, "--until", "1h"], "--reason is required"),
        (["--pool", NODEPOOL1, "--until", "1h", "--reason", "x", "--mode", "open"], "--mode is 'open'"),
        (["--pool", DEV.id, "--until", "1h", "--reason", "x"], "--pool names a cluster"),
        (["--until", "1h", "--reason", "x"], "--pool is required"),
        (["--remove", "--pool", NODEPOOL1], "--reason is required"),
        (["--remove", "--pool", NODEPOOL1, "--reason", "x", "--until", "1h"], "--until does not go with --remove"),
        (["--list", "--pool", NODEPOOL1], "--pool does not go with --list"),
        (
            ["--pool", NODEPOOL1.replace(DEV.subscription, SUB_B), "--until", "1h", "--reason", "x"],
            "not in WARDEN_SUBSCRIPTIONS",
        ),
    ],
)
def test_the_cli_refuses_bad_input_with_exit_2_and_writes_nothing(cli_env, azurite, capsys, arguments, needle):
    assert main(["exempt", *arguments]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert cli_env.requests == []
    with WardenStore(azurite) as store:
        store.ensure_tables()
        assert store.list_exemptions() == [] and store.list_audit() == []


def test_an_exemption_granted_after_a_cluster_write_listed_the_pools_stops_the_write(warden, arm_emulator):
    """The plans of a cluster write use the exemptions as its listing read them; one granted
    since is honoured by the write's own check of it."""
    w = warden(POLICY)
    listed = []
    w.on_progress = lambda e: (
        listed.append(e) if e.kind == "activity-completed" and e.activity == names.LIST_POOLS else None
    )
    w.functions.deliver_events([arm_event(DEV.id, "Microsoft.ContainerService/managedClusters/write")])
    assert w.functions.durable.run_until(lambda: bool(listed)), "the cluster's pools were never listed"
    assert grant(w, NODEPOOL1, in_two_hours())[0] == 201
    finish_worker(w)
    assert writes_to(w, "nodepool1") == [], "the pool was exempted before its write went out"
    steps = [(r.step, r.outcome.value) for r in w.audit() if r.pool == "nodepool1"]
    assert ("plan", "planned") in steps and ("update-ssh-access", "skipped") in steps, steps
    state = w.pool_state(DEV, "nodepool1")
    assert state.status.value == "exempted" and "until" in state.reason, "the row says so at once, not at the next plan"
