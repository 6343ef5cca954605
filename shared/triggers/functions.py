"""Registers the triggers (Event Grid, HTTP, timers, the exemption's activity) with Functions.

Each registered function imports its trigger module on the first call, not when the worker
indexes the app (start-up cost: those modules load the warden's whole core), and hands the call
to the function of the same name there. The bindings and their parameters are declared here.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from shared.orchestration import names
from shared.triggers import http_routes as routes

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)

EVENT_FUNCTION = "on_arm_event"
RESYNC_FUNCTION = "resync_timer"
VERIFY_FUNCTION = "verify_timer"
ROTATE_FUNCTION = "rotate_keys_timer"


def _route(name: str):
    """Every route is registered for every method: the function answers a wrong one 405."""
    return bp.route(route=routes.ENDPOINTS[name].route, methods=routes.ROUTED_METHODS)


# --- Event Grid --------------------------------------------------------------------------------


@bp.function_name(EVENT_FUNCTION)
@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_arm_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    from shared.triggers import event_grid  # imported by the first call (start-up cost)

    await event_grid.on_arm_event(event, client)


# --- HTTP ----------------------------------------------------------------------------------------


@bp.function_name(routes.RECONCILE_FUNCTION)
@_route(routes.RECONCILE_FUNCTION)
@bp.durable_client_input(client_name="client")
async def http_reconcile(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_reconcile(req, client=client)


@bp.function_name(routes.ROTATE_FUNCTION)
@_route(routes.ROTATE_FUNCTION)
@bp.durable_client_input(client_name="client")
async def http_rotate_keys(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_rotate_keys(req, client=client)


@bp.function_name(routes.VERIFY_FUNCTION)
@_route(routes.VERIFY_FUNCTION)
@bp.durable_client_input(client_name="client")
async def http_verify(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_verify(req, client=client)


@bp.function_name(routes.STATUS_FUNCTION)
@_route(routes.STATUS_FUNCTION)
@bp.durable_client_input(client_name="client")
async def http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_status(req, client=client)


@bp.function_name(routes.COMPLIANCE_FUNCTION)
@_route(routes.COMPLIANCE_FUNCTION)
async def http_compliance(req: func.HttpRequest) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_compliance(req)


@bp.function_name(routes.DOCTOR_FUNCTION)
@_route(routes.DOCTOR_FUNCTION)
async def http_doctor(req: func.HttpRequest) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_doctor(req)


@bp.function_name(routes.OPENAPI_FUNCTION)
@_route(routes.OPENAPI_FUNCTION)
async def http_openapi(req: func.HttpRequest) -> func.HttpResponse:
    from shared.triggers import http_api  # imported by the first call (start-up cost)

    return await http_api.http_openapi(req)


@bp.function_name(routes.EXEMPTIONS_FUNCTION)
@_route(routes.EXEMPTIONS_FUNCTION)
@bp.durable_client_input(client_name="client")
async def http_exemptions(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.triggers import exemptions  # imported by the first call (start-up cost)

    return await exemptions.http_exemptions(req, client=client)


# --- timers and the exemption's activity ---------------------------------------------------------


@bp.function_name(RESYNC_FUNCTION)
@bp.timer_trigger(schedule="%WARDEN_RESYNC_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def resync_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    from shared.triggers import resync  # imported by the first call (start-up cost)

    await resync.resync_timer(timer, client)


@bp.function_name(VERIFY_FUNCTION)
@bp.timer_trigger(schedule="%WARDEN_VERIFY_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def verify_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    from shared.triggers import verify  # imported by the first call (start-up cost)

    await verify.verify_timer(timer, client)


@bp.function_name(ROTATE_FUNCTION)
@bp.timer_trigger(schedule="%WARDEN_ROTATE_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def rotate_keys_timer(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    from shared.triggers import rotate  # imported by the first call (start-up cost)

    await rotate.rotate_keys_timer(timer, client)


@bp.function_name(names.EXPIRE_EXEMPTION)
@bp.activity_trigger(input_name="payload")
@bp.durable_client_input(client_name="client")
async def expire_exemption_activity(payload: dict, client: df.DurableOrchestrationClient) -> dict:
    from shared.triggers import exemptions  # imported by the first call (start-up cost)

    return await exemptions.expire_exemption_activity(payload, client)
