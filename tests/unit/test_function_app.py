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

    paths = [*ORCHESTRATORS.values(), *(f"activities.{function}" for function in ACTIVITIES.values())]
    missing = [path for path in paths if not callable(implementation_of(path))]
    assert paths and not missing


def test_indexing_the_app_loads_no_azure_sdk_but_functions_and_durable():
    """The Python worker indexes the app at every cold start: the SDK clients, event parsing and
    key handling are imported by the functions that use them, not by the index."""
    probe = (
        "import json, sys, function_app; function_app.app.get_functions(); print(json.dumps(sorted("
        "{'.'.join(m.split('.')[:2]) for m in sys.modules if m.startswith(('azure.', 'cryptography'))})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["azure.durable_functions", "azure.functions"]
