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


# Activities take and return JSON (a `shared.core.protocol.Result`), named by "<module>.<function>":
# the worker's queue and reconcile in `activities`, verify and key rotation in their own modules.
ACTIVITIES = {
    names.LEASE_REQUESTS: "activities.lease_requests",
    names.FINISH_REQUESTS: "activities.finish_requests",
    names.CLOSE_WORKER: "activities.close_worker",
    names.LIST_POOLS: "activities.list_pools",
    names.PLAN_POOL: "activities.plan_pool_activity",
    names.START_SSH_UPDATE: "activities.start_ssh_update",
    names.START_NODE_IMAGE_UPGRADE: "activities.start_node_image_upgrade",
    names.POLL_OPERATION: "activities.poll_operation",
    names.RECORD: "activities.record",
    names.PLAN_VERIFICATION: "verify_activities.plan_verification",
    names.START_NODE_CHECK: "verify_activities.start_node_check",
    names.POLL_NODE_CHECK: "verify_activities.poll_node_check",
    names.RELEASE_SLOT: "verify_activities.release_slot",
    names.RECORD_VERIFICATION: "verify_activities.record_verification",
    names.PREPARE_ROTATION: "rotation_activities.prepare_rotation",
    names.START_KEY_UPDATE: "rotation_activities.start_key_update",
    names.PLAN_KEY_REIMAGES: "rotation_activities.plan_key_reimages",
    names.RECORD_ROTATION: "rotation_activities.record_rotation",
}


def lazy_activity(path: str) -> Callable[[dict], dict]:
    """The activity `path` ("<module>.<function>"), imported when first called, and given the
    composition root (`runtime.runtime()`: settings and clients, built once per process) with its
    input. Durable binds the input by the parameter's name, `payload`."""

    def run(payload: dict) -> dict:
        from shared.orchestration.runtime import runtime  # the adapters: not when the app is indexed

        return implementation_of(path)(runtime(), payload)

    run.__name__ = run.__qualname__ = path.rsplit(".", 1)[1]
    return run


for _name, _path in ACTIVITIES.items():
    bp.function_name(_name)(bp.activity_trigger(input_name="payload")(lazy_activity(_path)))
