"""The long-running-operation reader (`shared.adapters.lro`) judged by oracles it did not write.

The autorest test server (npm `@microsoft.azure/autorest.testserver`, the suite Azure's SDK
generators are tested with) serves every shape of ARM long-running answer in its
`swagger/lro.json`. For each PUT and POST route, the warden's start-and-poll (the reader's
steps, each retryable failure retried as the orchestrations retry it) must end where azure-core's
`LROPoller` with azure-mgmt-core's `ARMPolling` ends on the same route, run live beside it:
`Succeeded` with the same result, `Failed` (the operation says Failed or Canceled), or `Error`
(an answer no ARM client can use). The server runs on a loopback port (tests/loopback.cjs binds it
to 127.0.0.1); its routes keep their state in a cookie, so each run gets a client of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core import PipelineClient
from azure.core.configuration import Configuration
from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core.polling.arm_polling import ARMPolling

from shared.adapters import lro
from shared.adapters.arm import Arm, translated_errors
from shared.core.errors import ArmError, OperationFailedError
from shared.local.azurite import free_port
from shared.orchestration.operations import MAX_ATTEMPTS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules" / "@microsoft.azure" / "autorest.testserver"
CUSTOM_REQUEST_ID = "9C4D50EE-2D56-4CD3-8152-34347DC9F2B0"  # the /lro/customheader/* routes ask for it
MAX_REQUESTS = 50  # per run of a route: a reader that never ends fails the test, it does not hang
PRODUCT, SKU = {"location": "West US"}, {"name": "doesNotMatter"}  # as autorest's own tests send
PROTOCOL_ERRORS = frozenset({"InvalidOperationStatus", "InvalidResponse"})  # the answer, not the operation, failed

End = tuple[str, Any]  # ("Succeeded", result) | ("Failed", None) | ("Error", None)


def lro_routes() -> list[dict]:
    """Every PUT and POST of swagger/lro.json, with its final-state-via and the body it takes."""
    spec = json.loads((PACKAGE / "swagger" / "lro.json").read_text(encoding="utf-8-sig"))
    routes = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("put", "post"):
                continue
            schema = json.dumps([p.get("schema") for p in operation.get("parameters", []) if p.get("in") == "body"])
            routes.append(
                {
                    "id": operation["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "finalVia": (operation.get("x-ms-long-running-operation-options") or {}).get("final-state-via"),
                    "body": None if schema == "[]" else (SKU if "Sku" in schema else PRODUCT),
                }
            )
    return routes


ROUTES = lro_routes() if PACKAGE.exists() else []


@pytest.fixture(scope="module")
def lro_server() -> Iterator[str]:
    port, workdir = free_port(), tempfile.mkdtemp(prefix="lro-testserver-")
    command = [
        "node",
        "-r",
        str(ROOT / "tests" / "loopback.cjs"),
        str(PACKAGE / "dist" / "cli" / "cli.js"),
        "run",
        f"--port={port}",
        f"--coverageDirectory={workdir}",  # its coverage reports go there, not into the checkout
    ]
    with open(Path(workdir) / "server.log", "w") as log:
        process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_ready(process: subprocess.Popen, base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the autorest test server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/report/azure", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the autorest test server did not answer within {timeout:g}s")


class Loopback(SansIOHTTPPolicy):
    """Every request to 127.0.0.1 (a relative URL goes nowhere: the transport refuses it), and
    at most MAX_REQUESTS of them."""

    def __init__(self) -> None:
        self.count = 0

    def on_request(self, request) -> None:
        self.count += 1
        host = urlsplit(request.http_request.url).hostname
        assert host in (None, "127.0.0.1"), f"a request left loopback: {request.http_request.url}"
        assert self.count <= MAX_REQUESTS, f"more than {MAX_REQUESTS} requests: the reader does not end"


def client(base: str, route: dict, *, retry: bool) -> PipelineClient:
    """A client of the route's own (its cookie jar is the route's state); `retry`: the SDK's
    RetryPolicy, as every generated client has it, without its waits."""
    config = Configuration()
    if retry:
        config.retry_policy = RetryPolicy(retry_backoff_factor=0, retry_backoff_max=0)
    extra = {"request_id": CUSTOM_REQUEST_ID} if route["path"].startswith("/lro/customheader/") else {}
    return PipelineClient(base, config=config, per_retry_policies=[Loopback()], **extra)


def first_request(base: str, route: dict) -> HttpRequest:
    url = base + route["path"]
    return HttpRequest(route["method"], url, json=route["body"]) if route["body"] else HttpRequest(route["method"], url)


def sdk_end(base: str, route: dict) -> End:
    """Where `LROPoller(..., ARMPolling())` ends on the route."""
    options = {"final-state-via": route["finalVia"]} if route["finalVia"] else None
    with client(base, route, retry=True) as sdk:
        try:
            first = sdk.send_request(first_request(base, route), _return_pipeline_response=True)
            poller = LROPoller(
                sdk, first, lambda r: r.http_response.text() or None, ARMPolling(timeout=0, lro_options=options)
            )
            text = poller.result()
        except Exception as e:  # noqa: BLE001 - the oracle's end is whatever it raised
            inner = getattr(e, "inner_exception", None) or e.__cause__
            return ("Failed" if type(inner).__name__ == "OperationFailed" else "Error", None)
    return ("Succeeded", json.loads(text) if text else None)


def warden_end(base: str, route: dict) -> End:
    """Where the warden's reader ends: the start, then a poll after each answer until the
    operation is done and its result read (as run-command reads it); a retryable failure is
    retried as the orchestrations retry it (at most MAX_ATTEMPTS in a row)."""
    with client(base, route, retry=False) as arm:

        def start() -> lro.Polled:
            with translated_errors():
                answer = arm.send_request(first_request(base, route))
            return lro.begun(route["method"], base + route["path"], answer, route["finalVia"] or "")

        try:
            polled = retried(start)
            while polled.operation.kind != "done" and not polled.state.done or polled.operation.kind == "final":
                polled = retried(lambda: Arm._poll(arm, polled.operation))  # noqa: B023 - called at once
        except OperationFailedError:
            return ("Failed", None)
        except ArmError:
            return ("Error", None)
    if polled.state.succeeded:
        return ("Succeeded", polled.result)
    return ("Error" if polled.state.error_code in PROTOCOL_ERRORS else "Failed", None)


def retried(step: Callable[[], lro.Polled]) -> lro.Polled:
    for attempt in range(MAX_ATTEMPTS):
        try:
            return step()
        except ArmError as e:
            if not e.retryable or attempt + 1 == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@pytest.mark.skipif(not ROUTES, reason="the autorest test server is not installed (npm ci)")
@pytest.mark.parametrize("route", ROUTES, ids=[route["id"] for route in ROUTES])
def test_the_reader_ends_where_the_sdk_poller_ends(lro_server, route):
    assert warden_end(lro_server, route) == sdk_end(lro_server, route)


def test_every_put_and_post_route_is_judged():
    """The suite is the whole swagger: a package without it must not pass by judging nothing."""
    assert len(ROUTES) >= 55 and {r["method"] for r in ROUTES} == {"PUT", "POST"}
