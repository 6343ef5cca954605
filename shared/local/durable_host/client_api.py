"""The Durable extension's HTTP API, served by the in-process host on a loopback port.

Durable-client functions build `df.DurableOrchestrationClient(binding_json)`, which talks HTTP
(aiohttp) to `rpcBaseUrl`; the status links it hands out point at the webhook base. Both are
served here with the status codes and JSON the SDK expects: 202 + management links on start,
409 when the instance id is still running, 200/202/404 on status, 202/404/410 on raise-event
and terminate.

The SDK caches one aiohttp session in a module global: `run_client_function` closes it before
its event loop ends, so no session outlives its loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.durable_functions.models.utils import http_utils

from shared.local.durable_host.errors import (
    InstanceAlreadyRunningError,
    InstanceGoneError,
    InstanceNotFoundError,
    UnknownFunctionError,
)

if TYPE_CHECKING:
    from shared.local.durable_host.host import DurableHost

TASK_HUB = "WardenLocalHub"
RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
INSTANCE_PLACEHOLDER = "INSTANCEID"


def run_client_function(function: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Await `function(**kwargs)` in a fresh event loop, e.g. a durable-client function's
    `get_user_function()` with `client=<binding JSON>`; closes the SDK's HTTP session after."""

    async def call() -> Any:
        try:
            return await function(**kwargs)
        finally:
            await http_utils._close_session()

    return asyncio.run(call())


class ClientApiServer:
    """A `ThreadingHTTPServer` in a background thread; use as a context manager."""

    def __init__(self, host: DurableHost, address: str = "127.0.0.1", port: int = 0):
        self._server = ThreadingHTTPServer((address, port), _Handler)
        self._server.durable_host = host  # type: ignore[attr-defined]
        bound_address, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{bound_address}:{bound_port}"
        self._server.base_url = self.base_url  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="durable-client-api", daemon=True
        )

    @property
    def binding_json(self) -> str:
        return json.dumps(binding(self.base_url))

    def __enter__(self) -> ClientApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def binding(base_url: str) -> dict[str, Any]:
    """The `durableClient` binding data the Functions host passes to a client function."""
    webhook = base_url + WEBHOOK_PREFIX.rstrip("/")
    query = f"taskHub={TASK_HUB}&connection=Storage"
    start = f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return {
        "taskHubName": TASK_HUB,
        "creationUrls": {
            "createNewInstancePostUri": f"{start}?{query}",
            "createAndWaitOnNewInstancePostUri": f"{start}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{query}",
        },
        "managementUrls": management_urls(webhook, INSTANCE_PLACEHOLDER, query),
        "baseUrl": webhook,
        "requiredQueryStringParameters": query,
        "rpcBaseUrl": base_url + RPC_PREFIX,
    }


def management_urls(webhook: str, instance_id: str, query: str) -> dict[str, str]:
    instance = f"{webhook}/instances/{instance_id}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{query}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "restartPostUri": f"{instance}/restart?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }


def decode_body(body: bytes) -> Any:
    """A request body as a value. The SDK posts its JSON text as a JSON *string* (it encodes
    twice); a plain JSON body (curl) is taken as it is."""
    if not body.strip():
        return None
    value = json.loads(body)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _Handler(BaseHTTPRequestHandler):
    server_version = "DurableLocalHost"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Requests are not logged: stdout/stderr belong to the CLI."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        route = _route(unquote(url.path))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload = self._handle(method, route, query, body)
        except json.JSONDecodeError as error:
            status, payload = HTTPStatus.BAD_REQUEST, {"Message": f"Invalid JSON content: {error}"}
        self._reply(status, payload)

    def _handle(self, method: str, route: list[str], query: dict[str, str], body: bytes) -> tuple[int, Any]:
        host: DurableHost = self.server.durable_host  # type: ignore[attr-defined]
        match method, route:
            case "POST", ["orchestrators", name, *rest] if len(rest) <= 1:
                return self._start(host, name, rest[0] if rest else None, decode_body(body))
            case "GET", ["instances"]:
                return HTTPStatus.OK, [status.to_json() for status in host.statuses()]
            case "GET", ["instances", instance_id]:
                return _status(host, instance_id, query.get("showHistory", "").lower() == "true")
            case "POST", ["instances", instance_id, "raiseEvent", event_name]:
                return _accepted(lambda: host.raise_event(instance_id, event_name, decode_body(body)))
            case "POST", ["instances", instance_id, "terminate"]:
                return _accepted(lambda: host.terminate(instance_id, query.get("reason", "")))
            case _, ["instances", *_]:
                return HTTPStatus.NOT_IMPLEMENTED, {
                    "Message": f"{method} {'/'.join(route)} is not served by the local host"
                }
        return HTTPStatus.NOT_FOUND, None

    def _start(self, host: DurableHost, name: str, instance_id: str | None, value: Any) -> tuple[int, Any]:
        try:
            started = host.start_new(name, instance_id, value)
        except UnknownFunctionError as error:
            message = "One or more of the arguments submitted is incorrect"
            return HTTPStatus.BAD_REQUEST, {"Message": message, "ExceptionMessage": str(error)}
        except InstanceAlreadyRunningError as error:
            return HTTPStatus.CONFLICT, {"Message": str(error)}
        webhook = self.server.base_url + WEBHOOK_PREFIX.rstrip("/")  # type: ignore[attr-defined]
        links = management_urls(webhook, started, f"taskHub={TASK_HUB}&connection=Storage")
        return HTTPStatus.ACCEPTED, links

    def _reply(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if status == HTTPStatus.ACCEPTED and isinstance(payload, dict) and "statusQueryGetUri" in payload:
            self.send_header("Location", payload["statusQueryGetUri"])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _route(path: str) -> list[str]:
    for prefix in (RPC_PREFIX, WEBHOOK_PREFIX):
        if path.startswith(prefix):
            return [part for part in path[len(prefix) :].split("/") if part]
    return ["not-found"]


def _status(host: DurableHost, instance_id: str, show_history: bool) -> tuple[int, Any]:
    try:
        status = host.get_status(instance_id, show_history)
    except InstanceNotFoundError:
        return HTTPStatus.NOT_FOUND, None
    code = HTTPStatus.ACCEPTED if status.runtime_status.is_active else HTTPStatus.OK
    return code, status.to_json()


def _accepted(operation: Callable[[], None]) -> tuple[int, Any]:
    try:
        operation()
    except InstanceNotFoundError:
        return HTTPStatus.NOT_FOUND, None
    except InstanceGoneError:
        return HTTPStatus.GONE, None
    return HTTPStatus.ACCEPTED, None
