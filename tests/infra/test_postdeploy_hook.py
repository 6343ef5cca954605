"""infra/hooks/postdeploy.sh, run as azd runs it, with a stand-in for the Azure CLI (no Azure here)
that answers the system-topic lookup and records every call: one Event Grid deployment per
subscription in scope, into the subscription's existing ARM system topic when it has one.

The stand-in's subscriptions: s1 has no ARM system topic, s2 has one made by someone else, s3 the
one an earlier run of the hook made (ARM may answer its group name in capitals)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep_model import INFRA, load

HOOK = INFRA / "hooks" / "postdeploy.sh"
FUNCTION_ID = "/subscriptions/s0/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-x/functions/on_arm_event"
AZ = """#!/bin/sh
# Stand-in for the Azure CLI: records its arguments (one a line, then a blank line), answers the
# system-topic lookup.
printf '%s\\n' "$@" "" >> "$AZ_LOG"
case "$*" in
  "eventgrid system-topic list --subscription s2 "*) printf 'rg-theirs\\tevgst-theirs\\n' ;;
  "eventgrid system-topic list --subscription s3 "*) printf 'RG-DEV-ARM-EVENTS\\tevgst-dev-arm\\n' ;;
esac
"""


@pytest.fixture
def azd_environment(tmp_path: Path) -> dict[str, str]:
    """What azd hands a hook: the environment's values, the deployment outputs among them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(AZ, encoding="utf-8")
    (bin_dir / "az").chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AZ_LOG": str(tmp_path / "az.log"),
        "AZURE_ENV_NAME": "dev",
        "AZURE_LOCATION": "westeurope",
        "EVENTGRID_SUBSCRIPTIONS": "s1,s2,s3",
        "EVENTGRID_FUNCTION_ID": FUNCTION_ID,
        "EVENTGRID_IDENTITY_ID": "/subscriptions/s0/resourceGroups/rg-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-events",
        "EVENTGRID_DEADLETTER_STORAGE_ID": "/subscriptions/s0/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stx",
        "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
        "EVENTGRID_RESOURCE_GROUP": "rg-dev-arm-events",
        "EVENTGRID_TOPIC_NAME": "evgst-dev-arm",
    }


def run_hook(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(HOOK)], env=environment, capture_output=True, text=True, timeout=60, check=False)


def deployments(log: Path) -> dict[str, dict[str, str]]:
    """Each `az deployment sub create`: subscription -> its --parameters name=value pairs."""
    found = {}
    for call in log.read_text(encoding="utf-8").split("\n\n"):
        words = call.splitlines()
        if words[:3] == ["deployment", "sub", "create"]:
            parameters = words[words.index("--parameters") + 1 :]
            found[words[words.index("--subscription") + 1]] = dict(p.split("=", 1) for p in parameters)
    return found


def test_each_subscription_in_scope_gets_its_event_subscription(azd_environment):
    done = run_hook(azd_environment)
    assert done.returncode == 0, done.stderr
    made = deployments(Path(azd_environment["AZ_LOG"]))
    topics = {s: (p["resourceGroupName"], p["topicName"], p["createTopic"]) for s, p in made.items()}
    assert topics == {
        "s1": ("rg-dev-arm-events", "evgst-dev-arm", "true"),
        "s2": ("rg-theirs", "evgst-theirs", "false"),  # one system topic per subscription: theirs, as it is
        "s3": ("rg-dev-arm-events", "evgst-dev-arm", "true"),  # ours again: it keeps its dead-lettering
    }
    assert {p["functionResourceId"] for p in made.values()} == {FUNCTION_ID}


def test_the_hook_passes_exactly_the_parameters_the_template_declares(azd_environment):
    assert run_hook(azd_environment).returncode == 0
    declared = set(load(INFRA / "eventgrid.bicep").params)
    for parameters in deployments(Path(azd_environment["AZ_LOG"])).values():
        assert set(parameters) == declared


def test_without_the_deployment_outputs_the_hook_stops_with_one_clear_line(azd_environment):
    del azd_environment["EVENTGRID_FUNCTION_ID"]
    done = run_hook(azd_environment)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "postdeploy: EVENTGRID_FUNCTION_ID is not set; run this hook through azd (azd up, or azd provision then azd deploy)"
    ]
    assert not Path(azd_environment["AZ_LOG"]).exists(), "nothing was deployed"
