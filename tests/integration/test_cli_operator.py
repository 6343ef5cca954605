"""The CLI as an operator meets it: fresh processes against the ARM emulator and Azurite.

Exit codes, one-line errors with their fix, waits that say why and how long, a time limit and
Ctrl-C that leave the unfinished work recorded, tables that fit 100 columns, JSON that parses.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.adapters.store import WardenStore
from tests.emulator_fixtures import SUB_A
from tests.warden_fixtures import DEV

REPO = Path(__file__).resolve().parents[2]
WIDTH = 100


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(emulator=None, tables: str | None = None, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "COLUMNS": str(WIDTH),
        "WARDEN_SUBSCRIPTIONS": SUB_A,
        "WARDEN_POLICY": '{"default": "Disabled"}',
        "WARDEN_MODE": "enforce",
        "WARDEN_POLL_SECONDS": "1",
        "AZURE_RESOURCE_MANAGER_ENDPOINT": emulator.base_url if emulator else f"http://127.0.0.1:{closed_port()}",
        # Any HTTP(S) request that escaped the loopback rule would go to a closed loopback proxy.
        "HTTPS_PROXY": f"http://127.0.0.1:{closed_port()}",
        "HTTP_PROXY": f"http://127.0.0.1:{closed_port()}",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if tables:
        env["WARDEN_TABLES"] = tables
    return {**env, **overrides}


def warden(*arguments: str, env: dict, timeout: float = 120, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "shared", *arguments],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def tables(azurite):
    yield azurite
    with WardenStore(azurite) as store:  # the CLI uses the default table names: leave none behind
        store.delete_tables()


def requests_left(tables: str) -> list:
    with WardenStore(tables) as store:
        return [r for key in store.clusters_with_requests() for r in store.list_requests(key)]


def test_a_cluster_that_does_not_exist_is_a_row_an_error_with_arms_code_and_exit_1(arm_emulator, tables):
    missing = DEV.id.replace("aks-dev-weu", "aks-nope")
    done = warden("reconcile", "--cluster", missing, "--json", env=cli_env(arm_emulator, tables))
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    [row] = document["outcomes"]
    assert (row["clusterId"], row["pool"], row["outcome"]) == (missing, "*", "gone")
    assert row["error"]["code"] == "ResourceNotFound"
    assert [(e["target"], e["code"]) for e in document["errors"]] == [(missing, "ResourceNotFound")]

    table = warden("reconcile", "--cluster", missing, env=cli_env(arm_emulator, tables))
    assert table.returncode == 1
    assert re.search(r"rg-dev-weu/aks-nope\s+\*\s+gone\s+ResourceNotFound", table.stdout), table.stdout


def test_waits_say_what_failed_the_attempt_and_the_next_try_and_a_timeout_leaves_the_request(tables):
    env = cli_env(None, tables)  # ARM at a closed loopback port
    started = time.monotonic()
    done = warden("reconcile", "--cluster", DEV.id, "--timeout", "6", env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    retries = re.findall(r"list pools failed: ConnectionError: .+; attempt (\d)/8, next try in ([\d.]+)s", done.stderr)
    assert retries and retries[0][0] == "1", done.stderr
    assert float(retries[0][1]) <= 2, "WARDEN_POLL_SECONDS=1 governs the very first retry"
    assert "stopped (timed out after 6s): 1 request left recorded (aks-dev-weu/* reconcile)" in done.stderr
    assert "Traceback" not in done.stderr
    assert [(r.cluster_id, r.kind.value) for r in requests_left(tables)] == [(DEV.id, "reconcile")]
    assert elapsed < 60  # bounded by --timeout, not by eight backoffs


def test_plan_without_a_login_is_one_line_with_the_fix():
    # The real ARM endpoint, but a credential chain of only the Azure CLI, which is not on PATH:
    # the token fails before any request is sent (and a stray one would meet the loopback proxy).
    env = cli_env(None, AZURE_TOKEN_CREDENTIALS="AzureCliCredential", PATH="/nonexistent")
    del env["AZURE_RESOURCE_MANAGER_ENDPOINT"]
    done = warden("plan", env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: not signed in to Azure — run `az login` (on Azure: give the app a managed identity); "
        "--verbose for details"
    ]
    verbose = warden("plan", "--verbose", env=env)
    assert "AzureCliCredential" in verbose.stderr or "Azure CLI" in verbose.stderr


def test_plan_with_arm_out_of_reach_is_one_line_with_the_fix():
    env = cli_env(None)
    done = warden("plan", env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: cannot reach Azure Resource Manager at {env['AZURE_RESOURCE_MANAGER_ENDPOINT']} — "
        "check AZURE_RESOURCE_MANAGER_ENDPOINT and the network; --verbose for details"
    ]


def test_ctrl_c_stops_cleanly_with_130_and_leaves_the_rest_recorded(start_arm_emulator, tables):
    emulator = start_arm_emulator(latency_seconds=0.2)  # slow enough to be caught mid-way
    process = subprocess.Popen(
        [sys.executable, "-m", "shared", "reconcile", "--cluster", DEV.id],
        cwd=REPO,
        env=cli_env(emulator, tables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "setting sshAccess" in line:
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=60)
    err = "".join(seen) + err
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert re.search(r"stopped \(interrupted\): \d+ requests? left recorded", err), err
    assert [r.kind.value for r in requests_left(tables)] == ["reconcile"]


def test_an_unreadable_event_is_one_line_and_exit_2_and_each_dropped_event_is_told_once(arm_emulator, tables):
    env = cli_env(arm_emulator, tables)
    done = warden("handle-event", "-", env=env, stdin='{"foo": 1}')
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: no event could be read: event [0] is neither Event Grid schema (no 'eventType') "
        "nor CloudEvents 1.0 (no 'specversion'); keys: 'foo'"
    ]
    delete = json.loads((REPO / "tests/fixtures/eventgrid_egschema_resource_delete_success.json").read_text())
    delete = delete if isinstance(delete, list) else [delete]
    mixed = warden("handle-event", "-", env=env, stdin=json.dumps([{"foo": 1}, *delete]))
    assert mixed.returncode == 0, mixed.stderr
    assert mixed.stderr.count("dropped event") == 2, mixed.stderr
    assert "nothing to do: none of the 2 events names an AKS cluster or pool in scope" in mixed.stderr
    assert arm_emulator.requests == []


def test_tables_fit_100_columns_with_an_ellipsis_and_wide_shows_everything(arm_emulator):
    env = cli_env(arm_emulator, WARDEN_POLICY=str(REPO / "shared/local/demo_policy.json"))
    fitted = warden("plan", env=env)
    assert fitted.returncode == 0, fitted.stderr
    assert max(map(len, fitted.stdout.splitlines())) <= WIDTH
    assert "…" in fitted.stdout
    wide = warden("plan", "--wide", env=env)
    assert max(map(len, wide.stdout.splitlines())) > WIDTH
    assert "…" not in wide.stdout and "SUBSCRIPTION" in wide.stdout


def test_plan_json_rows_carry_ids_that_reconcile_takes(arm_emulator, tables):
    env = cli_env(arm_emulator, tables)
    plan = json.loads(warden("plan", "--json", env=env).stdout)
    row = next(r for r in plan["pools"] if r["status"] == "drifted")
    assert row["poolId"] == f"{row['clusterId']}/agentPools/{row['pool']}"
    done = warden("reconcile", "--cluster", row["clusterId"], "--pool", row["pool"], "--json", env=env)
    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(done.stdout)["outcomes"]
    assert (outcome["poolId"], outcome["outcome"]) == (row["poolId"], "succeeded")


def test_help_names_the_settings_and_the_exit_codes():
    for command in ("plan", "reconcile", "verify", "rotate-keys", "handle-event"):
        done = warden(command, "--help", env=cli_env(None))
        assert done.returncode == 0
        assert "WARDEN_SUBSCRIPTIONS" in done.stdout and "130" in done.stdout, command
        assert "--json" in done.stdout and '"errors"' in done.stdout, command
    assert "WARDEN_KEYVAULT_URL" in warden("rotate-keys", "--help", env=cli_env(None)).stdout


def test_the_demo_prints_json_lines_in_one_style():
    done = subprocess.run(
        [sys.executable, "-m", "shared", "demo", "--json"],
        cwd=REPO,
        env={**os.environ, "COLUMNS": str(WIDTH)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["command"] for line in lines] == ["plan", "verify", "handle-event", "audit", "rotate-keys", "plan"]
    audit = lines[3]["result"]
    assert audit and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["time"]) for row in audit)
    assert {"clusterId", "poolId", "modeBefore", "modeAfter", "instanceId"} <= set(audit[0])
    assert not any("_" in key for line in lines for key in _keys(line["result"]))


def _keys(value) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []
