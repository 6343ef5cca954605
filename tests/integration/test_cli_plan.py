"""`python -m shared plan` against the emulator: classification, GET-only, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from shared.local.demo import DEMO_POLICY
from tests.emulator_fixtures import SUB_A, SUB_B

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def warden_env(monkeypatch, arm_emulator):
    monkeypatch.setenv("WARDEN_SUBSCRIPTIONS", f"{SUB_A},{SUB_B}")
    monkeypatch.setenv("WARDEN_POLICY", str(DEMO_POLICY))
    monkeypatch.setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", arm_emulator.base_url)
    monkeypatch.delenv("WARDEN_TABLES", raising=False)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    return arm_emulator


EXPECTED = {
    ("aks-dev-weu", "nodepool1"): ("LocalUser", "Disabled", "drifted"),
    ("aks-dev-weu", "spot"): ("EntraId", "Disabled", "drifted"),
    ("aks-dev-weu", "batch"): ("Disabled", "ignore", "ignored"),
    ("aks-dev-weu", "vmpool"): ("LocalUser", "Disabled", "unsupported"),
    ("aks-prod-weu", "system"): ("Disabled", "Disabled", "compliant"),
    ("aks-prod-weu", "apps"): ("LocalUser", "Disabled", "drifted"),
    ("aks-prod-weu", "npwin"): ("Disabled", "Disabled", "compliant"),
    ("aks-auto-neu", "systempool"): ("LocalUser", "EntraId", "unsupported"),
    ("aks-sandbox-neu", "nodepool1"): ("LocalUser", "EntraId", "drifted"),
}


def test_plan_json_classifies_every_pool_with_only_get_requests(warden_env, capsys):
    assert main(["plan", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    got = {(r["cluster"], r["pool"]): (r["current"], r["desired"], r["status"]) for r in report["pools"]}
    assert got == EXPECTED
    reasons = {(r["cluster"], r["pool"]): r for r in report["pools"]}
    assert reasons[("aks-prod-weu", "npwin")]["reason"] == "rule 'Windows pools keep SSH off': Disabled"
    assert "AKS Automatic" in reasons[("aks-auto-neu", "systempool")]["reason"]
    assert "VirtualMachines" in reasons[("aks-dev-weu", "vmpool")]["reason"]
    assert "stopped" in reasons[("aks-sandbox-neu", "nodepool1")]["reason"]
    assert reasons[("aks-prod-weu", "apps")]["steps"] == ["update-ssh-access"]  # 1.37 reimages by itself
    assert reasons[("aks-dev-weu", "spot")]["steps"] == ["update-ssh-access", "upgrade-node-image"]
    assert report["summary"] == {"compliant": 2, "drifted": 4, "ignored": 1, "unsupported": 2}
    assert warden_env.requests and {r.method for r in warden_env.requests} == {"GET"}


def test_plan_table_is_human_readable(warden_env, capsys):
    assert main(["plan", "--wide"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "SUBSCRIPTION",
        "RESOURCE",
        "GROUP",
        "CLUSTER",
        "POOL",
        "OS",
        "CURRENT",
        "DESIRED",
        "STATUS",
        "REASON",
    ]
    assert "9 pools: 2 compliant, 4 drifted, 1 ignored, 2 unsupported" in out


def test_plan_reports_an_unreadable_cluster_and_exits_1(warden_env, capsys):
    warden_env.faults.arm("GET", r"aks-prod-weu/agentPools$", 403, code="AuthorizationFailed", message="no access")
    assert main(["plan", "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert {r["cluster"] for r in report["pools"]} == {"aks-dev-weu", "aks-auto-neu", "aks-sandbox-neu"}
    assert report["errors"][0]["code"] == "AuthorizationFailed" and "AuthorizationFailed" in captured.err


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WARDEN_POLICY": '{"default": "Open"}'}, "$.default"),
        (
            {"WARDEN_POLICY": '{"rules": [{"name": "x", "match": {"os": "BeOS"}, "sshAccess": "Disabled"}]}'},
            "$.rules[0].match.os",
        ),
        ({"WARDEN_SUBSCRIPTIONS": "not-a-guid"}, "WARDEN_SUBSCRIPTIONS"),
        ({"WARDEN_MODE": "yolo"}, "WARDEN_MODE"),
    ],
    ids=["bad-default", "bad-os", "bad-subscription", "bad-mode"],
)
def test_invalid_configuration_exits_2_naming_the_field_and_sends_nothing(warden_env, monkeypatch, capsys, env, needle):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["plan"]) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and captured.out == ""
    assert warden_env.requests == []


def test_module_entry_point_exits_2_on_a_bad_policy():
    env = {"WARDEN_SUBSCRIPTIONS": SUB_A, "WARDEN_POLICY": '{"default": 1}', "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "shared", "plan"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "policy $.default" in done.stderr and "Traceback" not in done.stderr
