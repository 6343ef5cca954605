"""The app's durable functions, found and called the way the Python worker does.

Indexing: `app.get_functions()` and each function's trigger binding (`orchestrationTrigger`,
`activityTrigger`); the name is the function name, as `call_activity` resolves it.
Orchestrators are called with a `func.OrchestrationContext` holding the host's JSON; activity
input and output go through the SDK's own `ActivityTriggerConverter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from azure.functions import meta
from azure.functions._durable_functions import OrchestrationContext
from azure.functions.durable_functions import ActivityTriggerConverter

from shared.local.durable_host.client_api import run_client_function
from shared.local.durable_host.errors import UnknownFunctionError
from shared.local.durable_host.history import engine_state_from_failure

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
DURABLE_CLIENT = "durableClient"

# Advisories the SDK prints from inside its replay engine and codec. The worker shows them as
# log lines; under `filterwarnings = error` they would fail the orchestration instead.
_SDK_ADVISORIES = (
    (DeprecationWarning, r"azure\.functions df_loads was called without expected_type"),
    (DeprecationWarning, r"azure\.functions Durable JSON codec reconstructed"),
    # An event that arrives before the orchestrator waits for it: the SDK buffers it and warns.
    (UserWarning, r"Potential duplicate Task completion"),
)


@contextlib.contextmanager
def quiet_sdk_advisories() -> Iterator[None]:
    with warnings.catch_warnings():
        for category, pattern in _SDK_ADVISORIES:
            warnings.filterwarnings("ignore", message=pattern, category=category)
        yield


@dataclass(frozen=True)
class ActivityOutcome:
    """An activity's result JSON, or the `(reason, details)` of its failure."""

    result_json: str | None = None
    failure: tuple[str, str] | None = None


@dataclass(frozen=True)
class BoundFunction:
    """A user function and the parameter its activity input or durable client binds to."""

    name: str
    function: Callable[..., Any]
    parameter: str


class FunctionRegistry:
    """Orchestrators (the SDK's `handle` wrappers), activities and durable-client functions of
    one app, by function name."""

    def __init__(
        self,
        orchestrators: dict[str, Callable[..., str]],
        activities: dict[str, BoundFunction],
        clients: dict[str, BoundFunction] | None = None,
    ):
        self.orchestrators = orchestrators
        self.activities = activities
        self.clients = clients or {}

    @classmethod
    def from_app(cls, app: Any) -> FunctionRegistry:
        orchestrators: dict[str, Callable[..., str]] = {}
        activities: dict[str, BoundFunction] = {}
        clients: dict[str, BoundFunction] = {}
        for function in _index(app):
            name, trigger = function.get_function_name(), function.get_trigger()
            if trigger is not None and trigger.type == ORCHESTRATION_TRIGGER:
                orchestrators[name] = function.get_user_function()
            elif trigger is not None and trigger.type == ACTIVITY_TRIGGER:
                activities[name] = BoundFunction(name, function.get_user_function(), trigger.name)
            client = next((b for b in function.get_bindings() if b.type == DURABLE_CLIENT), None)
            if client is not None:
                clients[name] = BoundFunction(name, function.get_user_function(), client.name)
        return cls(orchestrators, activities, clients)

    def require_orchestrator(self, name: str) -> Callable[..., str]:
        try:
            return self.orchestrators[name]
        except KeyError:
            raise UnknownFunctionError(name, "orchestrator", sorted(self.orchestrators)) from None

    def require_client(self, name: str) -> BoundFunction:
        try:
            return self.clients[name]
        except KeyError:
            raise UnknownFunctionError(name, "durable-client", sorted(self.clients)) from None

    def call_orchestrator(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        """One replay of orchestrator `name`; its state JSON, also when the orchestrator raised."""
        handle = self.require_orchestrator(name)
        with quiet_sdk_advisories():
            try:
                return json.loads(handle(OrchestrationContext(json.dumps(context))))
            except Exception as error:  # the orchestrator's own failure is data here
                return engine_state_from_failure(error)

    def call_activity(self, name: str, input_json: str | None, client_binding: str | None = None) -> ActivityOutcome:
        """Run activity `name`; `client_binding`: the durable-client binding JSON for an activity
        that also takes a durable client (as any function may), served for the call."""
        activity = self.activities.get(name)
        if activity is None:
            known = ", ".join(sorted(self.activities)) or "none"
            reason = (
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function (known: {known})."
            )
            return ActivityOutcome(failure=(reason, ""))
        try:
            with quiet_sdk_advisories():
                argument = ActivityTriggerConverter.decode(
                    meta.Datum(type="json", value=input_json or "null"), trigger_metadata=None
                )
            client = self.clients.get(name)
            if client is not None:
                result = run_client_function(
                    activity.function, **{activity.parameter: argument, client.parameter: client_binding}
                )
            else:
                result = activity.function(**{activity.parameter: argument})
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            return ActivityOutcome(result_json=ActivityTriggerConverter.encode(result, expected_type=None).value)
        except Exception as error:  # the activity's failure goes to the orchestrator, as on Azure
            reason = f"Activity function '{name}' failed: {type(error).__name__}: {error}"
            return ActivityOutcome(failure=(reason, traceback.format_exc()))


def _index(app: Any) -> list[Any]:
    """`app.get_functions()`, repeatable: a second call refuses the names the first one saw
    unless `functions_bindings` is reset, so reset it before and after."""
    app.functions_bindings = None
    try:
        return app.get_functions()
    finally:
        app.functions_bindings = None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
