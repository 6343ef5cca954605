"""The infrastructure checks fail when they should: each runs on a copy of infra/ with one
mistake put in, and names it. checkov runs over the real infra/ (no failed check, every file
parsed, every suppression in use) and over a copy with an insecure change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.bicep_model import INFRA, bicep_files, broad_role_problems, missing_settings

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CHECKOV = Path(sys.executable).with_name("checkov")


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path.name} any more: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_an_owner_assignment_is_caught(infra_copy):
    edit(
        infra_copy / "modules" / "storage.bicep",
        "output id string",
        f"""resource tooMuch 'Microsoft.Authorization/roleAssignments@2022-04-01' = {{
  name: guid(account.id, appPrincipalId, '{OWNER}')
  scope: account
  properties: {{
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{OWNER}')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }}
}}

output id string""",
    )
    assert broad_role_problems(infra_copy) == [f"storage.bicep names the Owner role ({OWNER})"]


def test_a_broad_role_added_to_roles_json_is_caught(infra_copy):
    edit(
        infra_copy / "roles.json",
        '"storageBlobDataOwner"',
        '"contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",\n  "storageBlobDataOwner"',
    )
    assert broad_role_problems(infra_copy) == ["roles.json lists the Contributor role"]


@pytest.mark.parametrize(
    ("action", "variable"),
    [
        ("Microsoft.ContainerService/managedClusters/*", "keyRotationActions"),
        ("Microsoft.Authorization/roleAssignments/write", "enforcementActions"),
    ],
    ids=["wildcard-when-rotating", "authorization-write"],
)
def test_a_custom_role_with_a_wildcard_or_authorization_action_is_caught(infra_copy, action, variable):
    edit(infra_copy / "modules" / "warden-role.bicep", f"var {variable} = [\n", f"var {variable} = [\n  '{action}'\n")
    assert broad_role_problems(infra_copy) == [f"warden-role.bicep: custom role wardenRole allows {action!r}"]


def test_a_setting_the_app_reads_but_the_deployment_drops_is_caught(infra_copy):
    edit(infra_copy / "main.bicep", "    name: 'WARDEN_MODE'\n", "    name: 'WARDEN_MODE_TYPO'\n")
    assert missing_settings({"WARDEN_MODE", "WARDEN_SUBSCRIPTIONS", "AzureWebJobsStorage"}, infra_copy) == [
        "WARDEN_MODE"
    ]


def run_checkov(directory: Path) -> tuple[int, dict]:
    # --skip-download and no update check: checkov stays off the network.
    environment = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    command = [
        str(CHECKOV),
        "--directory",
        str(directory),
        "--framework",
        "bicep",
        "--skip-download",
        "--output",
        "json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    return done.returncode, json.loads(done.stdout)


def suppressions(infra: Path) -> set[tuple[str, str]]:
    return {
        (path.name, check)
        for path in bicep_files(infra)
        for check in re.findall(r"//\s*checkov:skip=(CKV2?_AZURE_\d+):\s*\S", path.read_text(encoding="utf-8"))
    }


def test_checkov_passes_infra_with_every_file_parsed_and_every_suppression_used():
    code, report = run_checkov(INFRA)
    failed = [(r["check_id"], r["file_path"]) for r in report["results"]["failed_checks"]]
    assert (code, failed) == (0, [])
    assert report["summary"]["parsing_errors"] == 0
    used = {(Path(r["file_path"]).name, r["check_id"]) for r in report["results"]["skipped_checks"]}
    assert used == suppressions(INFRA), "a suppression without a reason, or one that no longer applies"


def test_checkov_fails_an_insecure_copy(infra_copy):
    edit(infra_copy / "modules" / "function-app.bicep", "httpsOnly: true", "httpsOnly: false")
    code, report = run_checkov(infra_copy)
    failed = {(r["check_id"], Path(r["file_path"]).name) for r in report["results"]["failed_checks"]}
    assert code == 1 and ("CKV_AZURE_70", "function-app.bicep") in failed, "Function app reachable over plain http"
