"""The OpenAPI document against the app as the Python worker indexes it: every registered HTTP function
has its route and methods documented (its `operationId` is the function's name), nothing else is
documented, and openapi-spec-validator accepts the document as OpenAPI 3.1."""

from __future__ import annotations

import asyncio
import importlib
import json

import azure.durable_functions as df
import azure.functions as func
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from shared.triggers import BLUEPRINTS
from shared.triggers.http_routes import ENDPOINTS, OPENAPI_FUNCTION, ROUTED_METHODS
from shared.triggers.openapi import document, operation_id

OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def http_triggers(app) -> dict[str, dict]:
    """Each HTTP function's trigger binding (route, methods, authLevel), by function name."""
    app.functions_bindings = None  # get_functions() may run once per app; tests index again
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = None
    triggers = {}
    for function in functions:
        for binding in json.loads(str(function))["bindings"]:
            if binding["type"] == "httpTrigger":
                triggers[function.get_function_name()] = binding
    return triggers


def mismatches(app, spec: dict) -> list[str]:
    """Where the document and the app's HTTP functions disagree; empty when they agree."""
    problems, documented = [], {}
    for path, item in spec["paths"].items():
        for method in (m for m in item if m in OPERATIONS):
            documented.setdefault(path, {})[method.upper()] = item[method].get("operationId")
    triggers = http_triggers(app)
    for name, trigger in sorted(triggers.items()):
        path = f"/{trigger['route']}"
        if path not in documented:
            problems.append(f"{name}: route {trigger['route']!r} is not in the document")
            continue
        served = ENDPOINTS[name].methods if name in ENDPOINTS else ()
        if sorted(documented[path]) != sorted(served):
            problems.append(f"{name}: serves {served} but the document has {sorted(documented[path])}")
        if not set(documented[path]) <= set(trigger.get("methods") or ROUTED_METHODS):
            problems.append(f"{name}: the document has methods its binding does not route")
        if documented[path] != {method: operation_id(name, method) for method in documented[path]}:
            problems.append(f"{name}: operationId {sorted(set(documented[path].values()))} is not the function's")
    routed = {f"/{t['route']}" for t in triggers.values()}
    problems += [f"{path}: documented, but no function serves it" for path in sorted(set(documented) - routed)]
    return problems


def production_app():
    return importlib.import_module("function_app").app


def test_the_document_is_valid_openapi_3_1():
    spec = document()
    assert spec["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(spec).validate()


def test_the_document_matches_every_registered_http_function():
    assert mismatches(production_app(), document()) == []


def test_a_route_added_without_its_document_is_caught():
    extra = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)

    @extra.function_name("http_extra")
    @extra.route(route="extra", methods=["POST"])
    def http_extra(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in (*BLUEPRINTS, extra):
        app.register_functions(blueprint)
    assert mismatches(app, document()) == ["http_extra: route 'extra' is not in the document"]


def test_a_documented_operation_without_its_function_or_with_other_methods_is_caught():
    spec = document()
    spec["paths"]["/gone"] = {"get": {"operationId": "http_gone", "responses": {}}}
    spec["paths"]["/reconcile"]["put"] = {**spec["paths"]["/reconcile"]["post"]}
    assert mismatches(production_app(), spec) == [
        "http_reconcile: serves ('POST',) but the document has ['POST', 'PUT']",
        "/gone: documented, but no function serves it",
    ]


def test_every_route_needs_a_function_key_and_routes_every_method_to_the_function():
    """So a wrong method gets the function's 405 with `Allow`, not the host's own answer."""
    triggers = http_triggers(production_app())
    assert set(triggers) == set(ENDPOINTS)
    for name, trigger in triggers.items():
        assert trigger["authLevel"] == "FUNCTION", name
        assert sorted(trigger["methods"]) == sorted(ROUTED_METHODS), name


@pytest.mark.parametrize(("method", "status"), [("GET", 200), ("POST", 405), ("DELETE", 405)])
def test_the_document_is_served_at_openapi_json(method, status):
    app = production_app()
    app.functions_bindings = None
    try:
        [function] = [f for f in app.get_functions() if f.get_function_name() == OPENAPI_FUNCTION]
    finally:
        app.functions_bindings = None
    req = func.HttpRequest(method, "http://localhost/api/openapi.json", body=b"")
    response = asyncio.run(function.get_user_function()(req=req))
    assert response.status_code == status
    if status == 200:
        assert json.loads(response.get_body()) == document()
    else:
        assert response.headers["Allow"] == "GET"
        assert json.loads(response.get_body())["error"]["code"] == "MethodNotAllowed"
