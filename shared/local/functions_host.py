"""Plays the Azure Functions host for `function_app.app` on this machine (CLI, demo, tests).

Triggers get the real `azure.functions` objects, decoded the way the Python worker decodes
them, and a real Durable client bound to the in-process Durable host, which runs the
orchestrations with the real replay engine. The Functions host itself cannot run here.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from shared.local.durable_host import DurableHost, HostEvent
from shared.local.durable_host.client_api import run_client_function
from shared.local.durable_host.clock import Clock
from shared.triggers.event_grid import EVENT_FUNCTION

log = logging.getLogger(__name__)


class LocalFunctions:
    """Use as a context manager: it serves the Durable client API while open."""

    def __init__(
        self, app: Any = None, clock: Clock | None = None, on_progress: Callable[[HostEvent], None] | None = None
    ):
        app = app if app is not None else importlib.import_module("function_app").app
        self.durable = DurableHost.from_app(app, clock=clock, on_progress=on_progress)
        self._stack = ExitStack()
        self._binding: str | None = None

    def __enter__(self) -> LocalFunctions:
        self._binding = self._stack.enter_context(self.durable.serve_client_api())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._binding = None

    def call(self, function_name: str, **arguments: Any) -> Any:
        """Invoke a durable-client function (HTTP, Event Grid, timer trigger) once."""
        if self._binding is None:
            raise RuntimeError("LocalFunctions must be entered (with ...) before functions are called")
        client = self.durable.functions.require_client(function_name)
        return run_client_function(client.function, **{client.parameter: self._binding}, **arguments)

    def with_client(self, work: Callable[[Any], Any]) -> Any:
        """Await `work(client)` with a real Durable client bound to this host, as a trigger would."""
        if self._binding is None:
            raise RuntimeError("LocalFunctions must be entered (with ...) before functions are called")

        async def run(client: str) -> Any:
            return await work(df.DurableOrchestrationClient(client))

        return run_client_function(run, client=self._binding)

    def deliver_events(self, delivery: list[Any]) -> int:
        """One Event Grid trigger invocation per event of a delivery, as the host does; returns
        how many ran. An event the Python worker cannot decode (not a JSON object, a bad time)
        fails before the trigger on Azure too: it is logged and skipped, the others still run."""
        invoked = 0
        for index, event in enumerate(delivery):
            try:
                decoded = decode_event(event)
            except (TypeError, ValueError, AttributeError, RecursionError) as e:  # too deep for json too
                log.warning("event [%d] not delivered: the worker cannot decode it (%s)", index, e)
                continue
            self.call(EVENT_FUNCTION, event=decoded)
            invoked += 1
        return invoked

    def http(
        self, function_name: str, method: str, url: str, body: Any = None, route_params: dict | None = None
    ) -> func.HttpResponse:
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
        request = func.HttpRequest(
            method, url, body=data, headers={"content-type": "application/json"}, route_params=route_params or {}
        )
        return self.call(function_name, req=request)

    def run(self) -> int:
        """Run every orchestration until nothing can progress; returns the episodes run."""
        return self.durable.run_until_idle()


def decode_event(event: Any) -> Any:
    """One event as the Python worker hands it to an Event Grid trigger."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata=None)
