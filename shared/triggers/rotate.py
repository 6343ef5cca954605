"""The key-rotation timer: every `WARDEN_ROTATE_SCHEDULE`, rotate-keys work for every cluster in
scope that has a node SSH key (a `linuxProfile`) and can take a new one. Each cluster's worker
runs it, never during a reconcile or a verification of that cluster."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from shared.core.protocol import WorkKind
from shared.orchestration.runtime import Runtime, runtime
from shared.triggers.functions import ROTATE_FUNCTION as ROTATE_FUNCTION  # its name, for callers
from shared.triggers.start import FleetRequests, request_fleet

log = logging.getLogger(__name__)

ACTOR = "rotate-timer"


async def rotate_keys_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    (await rotate_fleet(client, runtime(), "scheduled key rotation")).log(log, "rotate-keys")


async def rotate_fleet(client, rt: Runtime, reason: str, actor: str = ACTOR) -> FleetRequests:
    from shared.orchestration.key_steps import NO_KEY_STORE, cannot_take_a_key  # cryptography: not at start-up

    if rt.keystore is None:
        return FleetRequests(errors=[NO_KEY_STORE])
    return await request_fleet(client, rt, WorkKind.ROTATE_KEYS, reason, actor, cannot_take_a_key)
