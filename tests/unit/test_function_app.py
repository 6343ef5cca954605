"""Index `function_app.py` the way the Python worker does: one app object, get_functions()."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import azure.functions as func

ROOT = Path(__file__).resolve().parents[2]


def index_app():
    module = importlib.import_module("function_app")
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    assert len(apps) == 1, f"the worker needs exactly one FunctionApp/DFApp, found {len(apps)}"
    app = apps[0]
    app.functions_bindings = None  # get_functions() may run once per app; tests index again
    return app.get_functions()


def test_function_app_indexes_with_unique_names_and_valid_bindings():
    functions = index_app()
    names = [f.get_function_name() for f in functions]
    assert names and len(names) == len(set(names))
    for function in functions:
        metadata = json.loads(str(function))
        assert metadata["scriptFile"] == "function_app.py"
        assert any(b["direction"] == "IN" and b["type"].endswith("Trigger") for b in metadata["bindings"])


def test_http_endpoints_require_a_function_key():
    for function in index_app():
        for binding in json.loads(str(function))["bindings"]:
            if binding["type"] == "httpTrigger":
                assert binding["authLevel"] == "FUNCTION", function.get_function_name()


def test_every_trigger_and_durable_function_is_registered():
    from shared.orchestration import names
    from shared.orchestration.functions import ACTIVITIES

    registered = {f.get_function_name(): json.loads(str(f))["bindings"] for f in index_app()}
    expected_triggers = {
        "on_arm_event": "eventGridTrigger",
        "http_reconcile": "httpTrigger",
        "http_status": "httpTrigger",
        names.RECONCILE_CLUSTER: "orchestrationTrigger",
        names.RECONCILE_POOL: "orchestrationTrigger",
        **{name: "activityTrigger" for name in ACTIVITIES},
    }
    for name, trigger in expected_triggers.items():
        assert trigger in {b["type"] for b in registered[name]}, name
    for name in ("on_arm_event", "http_reconcile", "http_status"):
        assert "durableClient" in {b["type"] for b in registered[name]}, name


def test_every_lazily_registered_function_is_found_where_its_registration_says():
    from shared.orchestration.functions import ACTIVITIES, ORCHESTRATORS, implementation_of

    paths = [*ORCHESTRATORS.values(), *ACTIVITIES.values()]
    missing = [path for path in paths if not callable(implementation_of(path))]
    assert paths and not missing


def modules_loaded_by_indexing() -> set[str]:
    """What a fresh interpreter has imported once it has indexed the app, as the worker does."""
    probe = "import json, sys, function_app; function_app.app.get_functions(); print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_indexing_the_app_loads_no_azure_sdk_but_functions_and_durable():
    """The Python worker indexes the app at every cold start: the SDK clients, event parsing and
    key handling are imported by the functions that use them, not by the index."""
    loaded = {
        ".".join(m.split(".")[:2]) for m in modules_loaded_by_indexing() if m.startswith(("azure.", "cryptography"))
    }
    assert sorted(loaded) == ["azure.durable_functions", "azure.functions"]


# Imported by a trigger's first call (shared/triggers/functions.py), never by the index.
NOT_AT_START_UP = (
    "shared.core.records",
    "shared.config",
    "shared.policy",
    "shared.core.models",
    "shared.policy.plan",
    "shared.core.protocol",
    "shared.core.errors",
    "shared.evidence.compliance",
    "shared.evidence.compliance_query",
    "shared.core.events",
    "shared.orchestration.runtime",
    "shared.orchestration.envelope",
    "shared.triggers.event_grid",
    "shared.triggers.node_events",
    "shared.triggers.http_api",
    "shared.triggers.http_validation",
    "shared.triggers.http_compliance",
    "shared.triggers.http_progress",
    "shared.triggers.openapi",
    "shared.triggers.exemptions",
    "shared.triggers.start",
    "shared.triggers.resync",
    "shared.triggers.verify",
    "shared.triggers.rotate",
)


def test_indexing_the_app_loads_none_of_the_warden_core():
    """Registration needs only the names, routes and bindings: the trigger modules and the core
    they load (records, settings, policy, validation...) wait for the first call."""
    assert sorted(set(NOT_AT_START_UP) & modules_loaded_by_indexing()) == []
