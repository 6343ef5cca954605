"""`reconcile`, `handle-event` and `demo` from the command line, on the local Azure with a real clock."""

import io
import json
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared.adapters.store import WardenStore
from shared.cli import demo, main
from shared.local.demo import DEMO_EVENT
from tests.emulator_fixtures import SUB_A
from tests.warden_fixtures import DEV, FIXTURES, is_run_command, set_cli_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(monkeypatch, arm_emulator, azurite):
    set_cli_env(monkeypatch, arm_emulator, azurite)
    yield arm_emulator
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


def writes(emulator):
    """ARM writes to AKS (run-commands only read a node's state)."""
    return [
        (r.method, r.path.rsplit("/", 1)[-1])
        for r in emulator.requests
        if r.method != "GET" and not is_run_command(r.path)
    ]


def test_reconcile_one_pool_to_completion(cli_env, capsys):
    assert main(["reconcile", "--cluster", DEV.id, "--pool", "nodepool1", "--json"]) == 0
    captured = capsys.readouterr()
    [outcome] = json.loads(captured.out)["outcomes"]
    assert (outcome["pool"], outcome["outcome"], outcome["status"]) == ("nodepool1", "succeeded", "compliant")
    assert writes(cli_env) == [("PUT", "nodepool1"), ("POST", "upgradeNodeImageVersion")]
    assert "aks-dev-weu/nodepool1: setting sshAccess LocalUser -> Disabled" in captured.err  # stdout stays JSON


def test_a_failed_pool_exits_1(cli_env, capsys):
    cli_env.faults.fail_operation(r"nodepool1", code="ReimageFailed", message="node 0 did not come back")
    assert main(["reconcile", "--cluster", DEV.id, "--pool", "nodepool1"]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "node 0 did not come back" in out


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["--cluster", DEV.id.replace(SUB_A, "99999999-9999-9999-9999-999999999999")], "not in WARDEN_SUBSCRIPTIONS"),
        (
            ["--cluster", f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"],
            "not an AKS",
        ),
        (["--cluster", DEV.id, "--pool", "no/such"], "InvalidPool"),
    ],
    ids=["out-of-scope", "not-aks", "bad-pool"],
)
def test_reconcile_refuses_bad_targets_with_exit_2_and_no_request(cli_env, capsys, arguments, needle):
    assert main(["reconcile", *arguments]) == 2
    assert needle in capsys.readouterr().err
    assert cli_env.requests == []


def test_handle_event_from_a_file_and_from_stdin(cli_env, capsys, monkeypatch):
    assert main(["handle-event", str(DEMO_EVENT)]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert writes(cli_env) == [("PUT", "nodepool1"), ("POST", "upgradeNodeImageVersion")]
    [event] = json.loads(DEMO_EVENT.read_text())
    event["id"] = "another-write-of-the-pool"  # the same id would be a copy of the handled event: nothing to do
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps([event])))
    assert main(["handle-event", "-", "--json"]) == 0
    [again] = json.loads(capsys.readouterr().out)["outcomes"]
    assert (again["outcome"], again["status"]) == ("skipped", "compliant")
    assert len(writes(cli_env)) == 2  # the second delivery found nothing to do


def test_handle_event_drops_irrelevant_events_without_arm_requests(cli_env, capsys):
    assert main(["handle-event", str(FIXTURES / "eventgrid_egschema_resource_delete_success.json")]) == 0
    assert "dropped event" in capsys.readouterr().err
    assert cli_env.requests == []


@pytest.mark.parametrize(
    ("content", "needle"), [("{not json", "is not JSON"), ("[]", "empty array")], ids=["garbage", "empty"]
)
def test_handle_event_refuses_unreadable_input_with_exit_2(cli_env, tmp_path, capsys, content, needle):
    path = tmp_path / "delivery.json"
    path.write_text(content)
    assert main(["handle-event", str(path)]) == 2
    assert needle in capsys.readouterr().err
    assert main(["handle-event", str(tmp_path / "missing.json")]) == 2
    assert cli_env.requests == []


def test_demo_runs_end_to_end_as_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-m", "shared", "demo"], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # nodepool1's PUT and upgrade, and the reimage of the pool whose node ran sshd again
    assert "ARM writes in all: 3" in done.stderr
    assert "ENFORCE mode" in done.stderr and "az aks nodepool upgrade --node-image-only" in done.stderr
    assert "3 compliant, 3 drifted, 1 ignored, 2 unsupported" in done.stdout
    assert "Next: against your own subscriptions" in done.stderr


def test_the_demos_sshd_before_and_after_are_the_warden_s_checks_and_match_the_nodes(monkeypatch, capsys):
    """The lines come from WardenNodeChecks; the emulator's nodes must say the same."""
    seen = {}
    real_stack = demo.local_stack

    @contextmanager
    def watched_stack():
        with real_stack() as arm:
            pool_id = f"{_event_cluster(arm)}/agentPools/nodepool1"
            seen["before"], seen["arm"], seen["pool"] = arm.sshd_states(pool_id), arm, pool_id
            yield arm
            seen["after"] = arm.sshd_states(pool_id)

    monkeypatch.setattr(demo, "local_stack", watched_stack)
    assert main(["demo"]) == 0
    err = capsys.readouterr().err
    before = re.search(r"before: (\d) nodes sshd (\w+)/(\w+) \(expected LocalUser", err)
    after = re.search(r"after : (\d) nodes sshd (\w+)/(\w+) \(expected Disabled", err)
    assert before and after, err
    nodes = len(seen["arm"].nodes(seen["pool"]))
    assert (int(before[1]), {(before[2], before[3])}) == (nodes, seen["before"]) == (3, {("active", "enabled")})
    assert (int(after[1]), {(after[2], after[3])}) == (nodes, seen["after"]) == (3, {("inactive", "disabled")})


def _event_cluster(arm) -> str:
    return next(p for p in arm.pool_ids() if "/aks-dev-weu/" in p).split("/agentPools/")[0]


def test_plan_shows_pending_reimage_after_a_failed_upgrade(cli_env, capsys):
    cli_env.faults.fail_operation(
        r"nodepool1/upgradeNodeImageVersion", code="ReimageFailed", message="node 0 did not come back"
    )
    assert main(["reconcile", "--cluster", DEV.id, "--pool", "nodepool1"]) == 1
    capsys.readouterr()
    assert main(["plan", "--json"]) == 0
    rows = {r["pool"]: r for r in json.loads(capsys.readouterr().out)["pools"] if r["cluster"] == "aks-dev-weu"}
    assert (rows["nodepool1"]["current"], rows["nodepool1"]["status"]) == ("Disabled", "pending-reimage")
    assert rows["nodepool1"]["steps"] == ["upgrade-node-image"]


def test_handle_event_skips_items_the_worker_cannot_decode_and_runs_the_rest(cli_env, tmp_path, capsys):
    good = json.loads(DEMO_EVENT.read_text())[0]
    path = tmp_path / "delivery.json"
    path.write_text(json.dumps([5, "text", good]))
    assert main(["handle-event", str(path)]) == 0
    captured = capsys.readouterr()
    assert "event [0] is a JSON number" in captured.err and "succeeded" in captured.out
    assert writes(cli_env) == [("PUT", "nodepool1"), ("POST", "upgradeNodeImageVersion")]
