"""In-process Durable Functions host (local only, never deployed).

Runs the app's real orchestrator and activity functions through the azure-functions-durable
replay engine, with durable timers on a virtual or real clock, and serves the Durable
extension's HTTP API so the real `DurableOrchestrationClient` works against it.

    host = DurableHost.from_app(app, clock=VirtualClock(start))
    instance_id = host.start_new("reconcile_cluster", input={...})
    status = host.wait_for_completion(instance_id)
"""

from shared.local.durable_host.client_api import run_client_function
from shared.local.durable_host.clock import RealClock, VirtualClock
from shared.local.durable_host.errors import (
    DurableHostError,
    InstanceAlreadyRunningError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestrationStuckError,
    RunawayOrchestrationError,
    UnknownFunctionError,
)
from shared.local.durable_host.host import DEFAULT_MAX_EPISODES, DurableHost, HostEvent
from shared.local.durable_host.instance import InstanceStatus, RuntimeStatus

__all__ = [
    "DEFAULT_MAX_EPISODES",
    "DurableHost",
    "DurableHostError",
    "HostEvent",
    "InstanceAlreadyRunningError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "InstanceStatus",
    "OrchestrationStuckError",
    "RealClock",
    "RunawayOrchestrationError",
    "RuntimeStatus",
    "UnknownFunctionError",
    "VirtualClock",
    "run_client_function",
]
