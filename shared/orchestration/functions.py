"""Registers the orchestrators and activities with Durable Functions (names from `names`).

Their modules are imported on the first call, not when the worker indexes the app: activities load
the Azure SDKs, and the orchestrations the warden's whole core; a process that only answers HTTP
or events never needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator
from typing import Any

import azure.durable_functions as df

from shared.orchestration import names

bp = df.Blueprint()


# Orchestrators are deterministic generators of `context`, named by "<module>.<function>".
ORCHESTRATORS = {
    names.CLUSTER_WORKER: "worker.cluster_worker",
    names.RECONCILE_CLUSTER: "reconcile.reconcile_cluster",
    names.RECONCILE_POOL: "reconcile.reconcile_pool",
    names.VERIFY_CLUSTER: "verification.verify_cluster",
    names.VERIFY_NODE: "verification.verify_node",
    names.ROTATE_KEYS: "rotation.rotate_keys",
    names.EXEMPTION_EXPIRY: "exemption_expiry.exemption_expiry",  # its activity: shared/triggers/exemptions.py
}


def implementation_of(path: str) -> Callable[..., Any]:
    """The function `path` ("<module>.<function>") of `shared.orchestration`, imported now."""
    module, function = path.rsplit(".", 1)
    return getattr(importlib.import_module(f"shared.orchestration.{module}"), function)


def lazy_orchestrator(path: str) -> Callable[[Any], Generator]:
    """The orchestrator `path`, imported when first replayed. It returns the orchestrator's
    generator, which Durable drives as it drives a generator function's."""

    def orchestrate(context) -> Generator:
        return implementation_of(path)(context)

    orchestrate.__name__ = orchestrate.__qualname__ = path.rsplit(".", 1)[1]
    return orchestrate


for _name, _path in ORCHESTRATORS.items():
    bp.function_name(_name)(bp.orchestration_trigger(context_name="context")(lazy_orchestrator(_path)))


# Activities take and return JSON (a `shared.protocol.Result`); the implementations live in `activities`.
ACTIVITIES = {
    names.LEASE_REQUESTS: "lease_requests",
    names.FINISH_REQUESTS: "finish_requests",
    names.CLOSE_WORKER: "close_worker",
    names.LIST_POOLS: "list_pools",
    names.PLAN_POOL: "plan_pool_activity",
    names.START_SSH_UPDATE: "start_ssh_update",
    names.START_NODE_IMAGE_UPGRADE: "start_node_image_upgrade",
    names.POLL_OPERATION: "poll_operation",
    names.RECORD: "record",
    names.REQUEST_FOLLOW_UP: "request_follow_up",
    names.PLAN_VERIFICATION: "plan_verification",
    names.START_NODE_CHECK: "start_node_check",
    names.POLL_NODE_CHECK: "poll_node_check",
    names.RELEASE_SLOT: "release_slot",
    names.RECORD_VERIFICATION: "record_verification",
    names.PREPARE_ROTATION: "prepare_rotation",
    names.START_KEY_UPDATE: "start_key_update",
    names.PLAN_KEY_REIMAGES: "plan_key_reimages",
    names.RECORD_ROTATION: "record_rotation",
}


def lazy_activity(implementation: str) -> Callable[[dict], dict]:
    """The activity `activities.<implementation>`, imported when first called. Durable binds the
    input by the parameter's name, `payload`."""

    def run(payload: dict) -> dict:
        return implementation_of(f"activities.{implementation}")(payload)

    run.__name__ = run.__qualname__ = implementation
    return run


for _name, _function in ACTIVITIES.items():
    bp.function_name(_name)(bp.activity_trigger(input_name="payload")(lazy_activity(_function)))
