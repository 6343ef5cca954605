"""Errors the in-process Durable host raises to its caller (never to orchestrators)."""

from __future__ import annotations


class DurableHostError(Exception):
    """Base class of the host's errors."""


class UnknownFunctionError(DurableHostError):
    def __init__(self, name: str, kind: str, known: list[str]):
        super().__init__(f"no {kind} function named {name!r}; the app registers: {', '.join(known) or 'none'}")
        self.name = name


class InstanceNotFoundError(DurableHostError):
    def __init__(self, instance_id: str):
        super().__init__(f"no orchestration instance with id {instance_id!r}")
        self.instance_id = instance_id


class InstanceAlreadyRunningError(DurableHostError):
    """A start of an instance id that is Pending/Running/ContinuedAsNew (host.json
    `overridableExistingInstanceStates: NonRunningStates`)."""

    def __init__(self, instance_id: str, status: str):
        super().__init__(
            f"An Orchestration instance with the status {status} already exists (instance id {instance_id!r}); "
            "only a Completed, Failed or Terminated instance may be started again"
        )
        self.instance_id = instance_id
        self.status = status


class InstanceGoneError(DurableHostError):
    """An event or termination for an instance that already finished."""

    def __init__(self, instance_id: str, status: str):
        super().__init__(f"instance {instance_id!r} is {status}: it takes no more events")
        self.instance_id = instance_id
        self.status = status


class RunawayOrchestrationError(DurableHostError):
    def __init__(self, limit: int, busiest: str):
        super().__init__(
            f"still not idle after {limit} orchestrator episodes (busiest instance: {busiest}); "
            "an orchestration is looping, or pass a larger max_episodes"
        )


class OrchestrationStuckError(DurableHostError):
    """Nothing can progress but the awaited instance has not finished."""

    def __init__(self, instance_id: str, status: str, waiting_for: list[str]):
        waits = ", ".join(repr(name) for name in waiting_for) or "nothing the host can deliver"
        super().__init__(f"instance {instance_id!r} is {status} and waits for external event(s) {waits}")
        self.instance_id = instance_id
        self.waiting_for = waiting_for
