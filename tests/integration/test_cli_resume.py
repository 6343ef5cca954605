"""`resume --cluster ID` from the command line, on the local Azure with a real clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.adapters.store import WardenStore
from shared.cli import main
from shared.policy.blast_radius import Pause
from tests.emulator_fixtures import SUB_B
from tests.warden_fixtures import DEV, set_cli_env

ONLY_NODEPOOL1 = json.dumps(
    {
        "default": "Disabled",
        "rules": [
            {"name": f"keep {pool}", "match": {"pool": pool}, "sshAccess": "ignore"} for pool in ("spot", "batch")
        ],
    }
)
FAILED_AT = datetime(2026, 11, 24, 12, 5, tzinfo=UTC)


@pytest.fixture
def cli_env(monkeypatch, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite, WARDEN_POLICY=ONLY_NODEPOOL1)
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.ensure_tables()
        yield store
        store.delete_tables()


def test_resume_clears_the_pause_records_it_and_reconciles_the_cluster(cli_env, arm_emulator, capsys):
    pause = Pause(DEV.id, "nodepool1", FAILED_AT, "NodeImageUpgradeFailed", "node 2 not ready", "https://op", "i-1")
    cli_env.pause_reimages(pause)

    assert main(["resume", "--cluster", DEV.id, "--reason", "node image fixed", "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["resumed"] == {
        "clusterId": DEV.id,
        "pool": "nodepool1",
        "failedAt": "2026-11-24T12:05:00.000Z",
        "code": "NodeImageUpgradeFailed",
        "message": "node 2 not ready",
        "operation": "https://op",
        "reason": "node image fixed",
    }
    assert {(o["pool"], o["outcome"]) for o in document["outcomes"]} >= {("nodepool1", "succeeded")}
    assert "resumed (paused after nodepool1's reimage failed at 2026-11-24T12:05:00Z)" in captured.err
    assert arm_emulator.sshd_states(DEV.id + "/agentPools/nodepool1") == {("inactive", "disabled")}
    assert cli_env.reimage_pause(DEV.key) is None
    [resumed] = [r for r in cli_env.list_audit(DEV.key) if r.step == "reimage-resume"]
    assert (resumed.actor, resumed.outcome.value) == ("cli", "succeeded")
    assert "node image fixed" in resumed.message and "NodeImageUpgradeFailed" in resumed.message
    plans = [r for r in cli_env.list_audit(DEV.key) if r.step == "plan" and r.pool == "nodepool1"]
    assert [r.actor for r in plans] == ["cli"], "the reconcile was not requested by the resume"

    assert main(["resume", "--cluster", DEV.id]) == 2, "resuming twice: nothing is paused"
    assert "are not paused: nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["--cluster", "not-an-id"], "--cluster"),
        (["--cluster", DEV.id + "/agentPools/nodepool1"], "give the managed-cluster id"),
        (["--cluster", DEV.id.replace(DEV.subscription, SUB_B)], "OutOfScope"),
        (["--cluster", DEV.id, "--reason", "two\nlines"], "--reason"),
    ],
    ids=["not-an-id", "a-pool-id", "out-of-scope", "multi-line-reason"],
)
def test_resume_refuses_bad_input_with_exit_2_and_writes_nothing(cli_env, capsys, arguments, needle):
    pause = Pause(DEV.id, "nodepool1", FAILED_AT)
    cli_env.pause_reimages(pause)
    assert main(["resume", *arguments]) == 2
    assert needle in capsys.readouterr().err
    assert cli_env.reimage_pause(DEV.key) == pause
    assert [r for r in cli_env.list_audit(DEV.key) if r.step == "reimage-resume"] == []
