"""The azd layout and what the Bicep compiler would refuse: every file parses, every module call
matches its module, the azd parameters file and azure.yaml match the templates they feed."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from tests.infra.bicep_model import INFRA, bicep_files, load

ROOT = INFRA.parent


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path):
    template = load(path)
    assert template.resources or template.modules, f"{path.name} declares nothing"


@pytest.mark.parametrize(
    "name", ["main.bicep", "eventgrid.bicep", "modules/warden-role.bicep"], ids=lambda n: n.split("/")[-1]
)
def test_templates_that_assign_at_subscriptions_are_subscription_scoped(name):
    assert load(INFRA / name).scope == "subscription"


def module_calls():
    for path in bicep_files():
        template = load(path)
        for name in template.modules:
            yield pytest.param(template, name, id=f"{path.stem}.{name}")


@pytest.mark.parametrize(("template", "name"), module_calls())
def test_every_module_call_passes_exactly_what_the_module_declares(template, name):
    module = load(template.module_path(name))
    body, _ = template.module(name)
    passed = set(body.get("params", {}))
    required = {p for p, spec in module.params.items() if spec.get("default") is None}
    assert passed <= set(module.params), f"unknown parameters {passed - set(module.params)}"
    assert required <= passed, f"required parameters not passed: {required - passed}"


def test_the_parameters_file_feeds_main_and_covers_its_required_parameters():
    main = load(INFRA / "main.bicep")
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    required = {p for p, spec in main.params.items() if spec.get("default") is None}
    assert set(parameters) <= set(main.params)
    assert required <= set(parameters)
    for name, entry in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z0-9_]+(=[^}]*)?\}", entry["value"]), (
            f"{name}: {entry['value']!r} is no azd variable"
        )


def test_every_abbreviation_and_role_used_is_defined():
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))
    roles = json.loads((INFRA / "roles.json").read_text(encoding="utf-8"))
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        assert set(re.findall(r"\babbrs\.(\w+)", text)) <= set(abbreviations), path.name
        assert set(re.findall(r"(?<![./])\broles\.(\w+)", text)) <= set(roles), path.name


def test_azure_yaml_deploys_this_python_function_app_and_wires_events_after_the_deploy():
    project = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    [(service_name, service)] = project["services"].items()
    assert (service["project"], service["language"], service["host"]) == (".", "python", "function")
    body, _ = load(INFRA / "main.bicep").module("functionApp")
    assert f"'azd-service-name': '{service_name}'" in (INFRA / "main.bicep").read_text(encoding="utf-8")
    assert "tags" in body["params"]
    hook = ROOT / project["hooks"]["postdeploy"]["posix"]["run"]
    assert hook.is_file() and os.access(hook, os.X_OK), f"{hook} is missing or not executable"


def test_the_hook_reads_only_outputs_that_main_bicep_writes():
    outputs = set(load(INFRA / "main.bicep").outputs)
    script = (INFRA / "hooks" / "postdeploy.sh").read_text(encoding="utf-8")
    read = set(re.findall(r"\bEVENTGRID_[A-Z_]+", script))
    assert read and read <= outputs, f"the hook reads {read - outputs}, which main.bicep does not output"
    assert {o for o in outputs if o.startswith("EVENTGRID_")} <= read, "an EVENTGRID_ output nobody reads"
