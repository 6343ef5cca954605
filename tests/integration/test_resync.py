"""Resync (`reconcile --all` and the resync timer): the whole fleet in scope, planned concurrently;
a reconcile for each cluster with a drifted pool, a worker for each cluster with requests left."""

import json
from datetime import UTC, datetime

import pytest

from shared.adapters.store import Admission, WardenStore
from shared.cli import main
from shared.config import Settings
from shared.core.records import WorkRequest
from shared.local.functions_host import LocalFunctions
from shared.orchestration import runtime
from shared.triggers.resync import RESYNC_FUNCTION
from tests.emulator_fixtures import SUB_B
from tests.warden_fixtures import DEV, PROD, is_run_command, set_cli_env

ONE_DRIFTED_POOL = {
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


@pytest.fixture
def env(monkeypatch, arm_emulator, azurite):
    # SUB_B holds clusters too: out of scope
    set_cli_env(monkeypatch, arm_emulator, azurite, WARDEN_POLICY=json.dumps(ONE_DRIFTED_POOL))
    yield arm_emulator
    with WardenStore(azurite) as store:
        store.delete_tables()


def test_reconcile_all_writes_only_the_drifted_pool_and_never_reads_another_subscription(env, azurite, capsys):
    assert main(["reconcile", "--all", "--json"]) == 0
    captured = capsys.readouterr()
    writes = [
        (r.method, r.path.rsplit("/", 1)[-1]) for r in env.requests if r.method != "GET" and not is_run_command(r.path)
    ]
    assert writes == [("PUT", "nodepool1"), ("POST", "upgradeNodeImageVersion")]
    assert not [r.path for r in env.requests if SUB_B in r.path], "a request went to a subscription out of scope"
    outcomes = json.loads(captured.out)["outcomes"]
    assert {o["cluster"] for o in outcomes} == {"rg-dev-weu/aks-dev-weu"}, "only the drifted cluster was reconciled"
    acted = [(o["pool"], o["outcome"]) for o in outcomes if o["outcome"] != "skipped"]
    assert acted == [("nodepool1", "succeeded")]
    assert "reconcile requested for 1" in captured.err
    with WardenStore(azurite) as store:
        [resync] = [r for r in store.list_audit(DEV.key) if r.step == "resync"]
        assert (resync.actor, resync.outcome.value) == ("resync", "planned") and "nodepool1" in resync.message
        assert not [r for r in store.list_audit(PROD.key) if r.step == "resync"], "a compliant cluster was requested"
        assert store.clusters_with_requests() == []


def test_resync_timer_starts_a_worker_for_requests_left_behind(env, azurite):
    """A request whose worker never started (its start failed, the caller gave up) is taken by
    the next resync, though the cluster has nothing drifted."""
    settings = Settings.from_env()
    runtime.install(runtime.build(settings))
    try:
        store = runtime.runtime().store
        left = WorkRequest(PROD.id, "system", datetime.now(UTC), reason="a request whose worker never started")
        assert store.add_request(left) is Admission.START
        with LocalFunctions() as functions:
            from azure.functions.timer import TimerRequest

            functions.call(RESYNC_FUNCTION, timer=TimerRequest(past_due=False))
            functions.run()
            names = {s.name for s in functions.durable.statuses()}
        assert store.list_requests(PROD.key) == []
        plans = [r for r in store.list_audit(PROD.key) if r.step == "plan" and r.pool == "system"]
        assert [p.outcome.value for p in plans] == ["skipped"] and "compliant" in plans[0].message
        assert "cluster_worker" in names
        prod = [r for r in env.requests if r.method != "GET" and "aks-prod-weu" in r.path]
        assert [r.path for r in prod if not is_run_command(r.path)] == []
    finally:
        runtime.reset()


def test_reconcile_all_with_pool_is_bad_input(env, capsys):
    assert main(["reconcile", "--all", "--pool", "nodepool1"]) == 2
    assert "--pool goes with --cluster" in capsys.readouterr().err
    assert env.requests == []
