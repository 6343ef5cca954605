"""The admin API under /_emulator/: drive an emulator that runs in another process.

    GET    /_emulator/requests                 {"requests": [{"method", "path", "query"}]}
    DELETE /_emulator/requests                 forget them
    POST   /_emulator/faults                   {"method", "path", "status", "code"?, "message"?, "headers"?, "times"?}
    POST   /_emulator/operation-faults         {"path", "code", "message", "status"?: "Failed"|"Canceled"}
    DELETE /_emulator/faults                   disarm everything
    GET    /_emulator/nodes[?pool=POOL_ID]     {"pools": [{"id", "nodes": [{"instanceId", "name", "os", "active",
                                                "enabled", "mode", "pubkey", "powerState"}]}]}
    POST   /_emulator/node                     {"pool", "instanceId"?: one node (default all), "active"?, "enabled"?,
                                                "pubkey"?, "powerState"?, "stdout"?: text or null}
    POST   /_emulator/provisioning-state       {"id": cluster or pool id, "state": "Updating"}
    GET    /_emulator/latency                  {"seconds": every ARM request's wait before it is handled}
    PUT    /_emulator/latency                  {"seconds": 0.05}: set it (0 to 60)
    GET    /_emulator/run-command-seconds      {"seconds": how long a run-command stays InProgress at least}
    PUT    /_emulator/run-command-seconds      {"seconds": 20}: set it (0 to 5400)
    GET    /_emulator/run-commands             {"runCommands": [{"start", "end", "subscription", "vmss", "instance"}]}
    GET    /_emulator/lro-shapes               {"shapes": {operation: "async"|"location"|"both"|"body"}}
    PUT    /_emulator/lro-shapes               {"operation", "shape"}: how that operation's answers announce it
    DELETE /_emulator/lro-shapes               every operation back to what its service sends
    PUT    /_emulator/permissions              {"scope", "permissions": [{"actions", "notActions"}]}: what reaches the scope
    PUT    /_emulator/features                 {"subscription", "name", "state"}: a preview feature's state
    PUT    /_emulator/providers                {"subscription", "namespace", "state"}: a resource provider's state
    DELETE /_emulator/event-subscriptions      {"subscription"}: its ARM system topic delivers nothing

Admin requests need no token and are not recorded. Errors answer 400 with ARM's error shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.local.arm_emulator.errors import ArmHttpError
from shared.local.arm_emulator.state import POWER_STATES, check_choice
from shared.local.arm_emulator.wire import Request, Response, Router

if TYPE_CHECKING:
    from shared.local.arm_emulator.emulator import ArmEmulator

PREFIX = "/_emulator"


def admin_router(emulator: ArmEmulator) -> Router:
    router = Router()

    def requests_log(req: Request) -> Response:
        return Response(200, {"requests": [r._asdict() for r in emulator.requests]})

    def clear_requests(req: Request) -> Response:
        emulator.clear_requests()
        return Response(204)

    def arm_fault(req: Request) -> Response:
        spec = req.json()
        options = {k: spec[k] for k in ("code", "message", "headers", "times") if k in spec}
        _apply(
            emulator.faults.arm, spec.get("method", "*"), _required(spec, "path"), _required(spec, "status"), **options
        )
        return Response(204)

    def fail_operation(req: Request) -> Response:
        spec = req.json()
        args = (_required(spec, "path"), _required(spec, "code"), _required(spec, "message"))
        _apply(emulator.faults.fail_operation, *args, status=spec.get("status", "Failed"))
        return Response(204)

    def clear_faults(req: Request) -> Response:
        emulator.faults.clear()
        return Response(204)

    def nodes(req: Request) -> Response:
        pool_ids = [req.query["pool"]] if req.query.get("pool") else emulator.pool_ids()
        return Response(200, {"pools": [{"id": pid, "nodes": _apply(emulator.nodes, pid)} for pid in pool_ids]})

    def provisioning_state(req: Request) -> Response:
        spec = req.json()
        _apply(emulator.set_provisioning_state, _required(spec, "id"), _required(spec, "state"))
        return Response(204)

    def latency(req: Request) -> Response:
        return Response(200, {"seconds": emulator.latency_seconds})

    def set_latency(req: Request) -> Response:
        _apply(setattr, emulator, "latency_seconds", _required(req.json(), "seconds"))
        return Response(204)

    router.add("GET", f"{PREFIX}/requests", requests_log)
    router.add("DELETE", f"{PREFIX}/requests", clear_requests)
    router.add("POST", f"{PREFIX}/faults", arm_fault)
    router.add("DELETE", f"{PREFIX}/faults", clear_faults)
    router.add("POST", f"{PREFIX}/operation-faults", fail_operation)
    router.add("GET", f"{PREFIX}/nodes", nodes)
    router.add("POST", f"{PREFIX}/provisioning-state", provisioning_state)

    def node(req: Request) -> Response:
        spec = req.json()
        pool, instance = _required(spec, "pool"), spec.get("instanceId")
        _apply(emulator.nodes, pool)  # a bad pool id is refused before anything changes
        if "powerState" in spec:
            _apply(check_choice, "powerState", spec["powerState"], POWER_STATES)
        states = {k: spec[k] for k in ("active", "enabled", "pubkey") if k in spec}
        if states:
            _apply(emulator.set_node_sshd, pool, instance, **states)
        if "powerState" in spec:
            _apply(emulator.set_node_power_state, pool, instance, spec["powerState"])
        if "stdout" in spec:
            _apply(emulator.override_node_output, pool, instance, spec["stdout"])
        return Response(204)

    def run_command_seconds(req: Request) -> Response:
        return Response(200, {"seconds": emulator.run_command_seconds})

    def set_run_command_seconds(req: Request) -> Response:
        _apply(setattr, emulator, "run_command_seconds", _required(req.json(), "seconds"))
        return Response(204)

    def run_commands(req: Request) -> Response:
        return Response(200, {"runCommands": [r._asdict() for r in emulator.run_command_log]})

    def lro_shapes(req: Request) -> Response:
        return Response(200, {"shapes": emulator.lro_shapes.as_dict()})

    def set_lro_shape(req: Request) -> Response:
        spec = req.json()
        _apply(emulator.lro_shapes.set, _required(spec, "operation"), _required(spec, "shape"))
        return Response(204)

    def reset_lro_shapes(req: Request) -> Response:
        emulator.lro_shapes.reset()
        return Response(204)

    governance = emulator.governance

    def set_permissions(req: Request) -> Response:
        spec = req.json()
        _apply(governance.set_permissions, _required(spec, "scope"), _required(spec, "permissions"))
        return Response(204)

    def set_feature(req: Request) -> Response:
        spec = req.json()
        _apply(governance.set_feature, *(_required(spec, k) for k in ("subscription", "name", "state")))
        return Response(204)

    def set_provider(req: Request) -> Response:
        spec = req.json()
        _apply(governance.set_provider, *(_required(spec, k) for k in ("subscription", "namespace", "state")))
        return Response(204)

    def remove_event_subscriptions(req: Request) -> Response:
        _apply(governance.remove_event_subscriptions, _required(req.json(), "subscription"))
        return Response(204)

    router.add("PUT", f"{PREFIX}/permissions", set_permissions)
    router.add("PUT", f"{PREFIX}/features", set_feature)
    router.add("PUT", f"{PREFIX}/providers", set_provider)
    router.add("DELETE", f"{PREFIX}/event-subscriptions", remove_event_subscriptions)
    router.add("GET", f"{PREFIX}/lro-shapes", lro_shapes)
    router.add("PUT", f"{PREFIX}/lro-shapes", set_lro_shape)
    router.add("DELETE", f"{PREFIX}/lro-shapes", reset_lro_shapes)
    router.add("GET", f"{PREFIX}/latency", latency)
    router.add("PUT", f"{PREFIX}/latency", set_latency)
    router.add("POST", f"{PREFIX}/node", node)
    router.add("GET", f"{PREFIX}/run-command-seconds", run_command_seconds)
    router.add("PUT", f"{PREFIX}/run-command-seconds", set_run_command_seconds)
    router.add("GET", f"{PREFIX}/run-commands", run_commands)
    return router


def _required(spec: dict, key: str):
    if key not in spec:
        raise ArmHttpError(400, "InvalidRequestContent", f"missing required field {key!r}; got {sorted(spec)}")
    return spec[key]


def _apply(function, *args, **kwargs):
    """Call an emulator method; a bad argument becomes a 400 naming it."""
    try:
        return function(*args, **kwargs)
    except (ValueError, TypeError, KeyError) as error:
        raise ArmHttpError(400, "InvalidRequestContent", str(error)) from None
