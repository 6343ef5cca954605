"""HTTP requests read strictly, before any I/O: method, size, media type, JSON, fields, names, scope.

Everything here is decided from the request and the settings alone: a request refused here has
touched neither Table Storage nor the task hub. A refusal is a `BadRequest` carrying the status,
a stable code and a one-line message naming the offending value and what would be right; the
HTTP layer turns it into `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from shared.config import Settings
from shared.core.errors import OutOfScopeError, shown
from shared.core.models import Target, validate_pool_name

MAX_BODY_BYTES = 64 * 1024  # the largest valid body (a 16384-bit key and a reason) is far below
MAX_REASON_CHARS = 500
MAX_PRINCIPAL_CHARS = 256
MAX_INSTANCE_ID_CHARS = 256
RETRY_AFTER_SECONDS = 30  # told to callers when storage or the task hub is out of reach
JSON_MEDIA_TYPE = "application/json"
FUNCTION_KEY_CALLER = "function key"  # the caller when no App Service principal is passed
# Instance ids the warden makes are [a-z0-9-]; these also cover ids the Durable host makes
# (GUIDs) and never allow `/`, `?`, `#`, `%` or `..`, which would address something else.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_:-]|\.(?!\.))*")
_BREAKS_A_LINE = frozenset({"Cc", "Zl", "Zp"})  # control characters and line/paragraph separators


class BadRequest(Exception):
    """A request answered with an error: `status` (4xx; 500 or 503 when the app cannot serve
    it), a stable `code` and a one-line `message`; `headers` such as `Allow` or `Retry-After`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def response(self) -> func.HttpResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status, mimetype=JSON_MEDIA_TYPE, headers=headers)


def unavailable(code: str, message: str) -> BadRequest:
    """503: storage or the task hub is out of reach; the caller may simply try again later."""
    return BadRequest(503, code, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def path_of(req: func.HttpRequest) -> str:
    return urlsplit(req.url).path or "/"


def allow_only(req: func.HttpRequest, allowed: tuple[str, ...]) -> None:
    if req.method.upper() not in allowed:
        raise BadRequest(
            405,
            "MethodNotAllowed",
            f"{shown(req.method)} is not allowed on {path_of(req)}; use {' or '.join(allowed)}",
            {"Allow": ", ".join(allowed)},
        )


# --- bodies ---------------------------------------------------------------------------------------


def json_object(req: func.HttpRequest) -> dict[str, Any]:
    """The body as a JSON object: size first (before reading it as anything), then media type,
    then strict JSON (UTF-8, no duplicate fields, no NaN/Infinity)."""
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(
            413, "BodyTooLarge", f"the request body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted"
        )
    if not body.strip():
        raise BadRequest(400, "InvalidJson", "the request body is empty, which is not JSON: send a JSON object")
    media_type = (req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        said = f"is {shown(media_type)}" if media_type else "is missing"
        raise BadRequest(415, "UnsupportedMediaType", f"Content-Type {said}; send the body as {JSON_MEDIA_TYPE}")
    value = _parse_json(body)
    if not isinstance(value, dict):
        raise BadRequest(400, "InvalidBody", f"the request body must be a JSON object, not {type(value).__name__}")
    return value


def _parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(400, "InvalidJson", f"the request body is not JSON: not UTF-8 at byte {e.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_without_duplicates, parse_constant=_no_constant)
    except RecursionError:  # json gives up on deep nesting with a RecursionError, not a ValueError
        raise BadRequest(
            400, "InvalidJson", "the request body is not JSON this API accepts: it nests too deeply"
        ) from None
    except ValueError as e:
        raise BadRequest(400, "InvalidJson", f"the request body is not JSON: {e}") from None


def _without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys: two "cluster" fields would name two targets.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BadRequest(400, "DuplicateField", f"field {shown(key)} appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> None:
    raise BadRequest(400, "InvalidJson", f"the request body is not JSON: {name} is not a JSON value")


def only_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        expected = ", ".join(repr(name) for name in allowed)
        raise BadRequest(400, "InvalidBody", f"unknown field {shown(unknown[0])}; this request takes only {expected}")


def reason_of(body: dict[str, Any]) -> str:
    """The optional `reason`: one line of text, at most MAX_REASON_CHARS characters."""
    reason = body.get("reason")
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise BadRequest(400, "InvalidReason", f"'reason' must be a string, not {type(reason).__name__}")
    if len(reason) > MAX_REASON_CHARS:
        raise BadRequest(
            400, "InvalidReason", f"'reason' is {len(reason)} characters; at most {MAX_REASON_CHARS} are accepted"
        )
    if bad := next((c for c in reason if unicodedata.category(c) in _BREAKS_A_LINE), None):
        raise BadRequest(
            400, "InvalidReason", f"'reason' holds the control character {bad!r}: give one line of plain text"
        )
    return reason.strip()


def target_of(body: dict[str, Any], *, pools: bool) -> Target:
    """`cluster` (a managed-cluster id, or with `pools` an agent-pool id) and, with `pools`, the
    optional `pool` name; the names follow the AKS naming rules."""
    cluster = body.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        kind = f", not {type(cluster).__name__}" if "cluster" in body else ""
        raise BadRequest(
            400, "InvalidCluster", f"'cluster' is required: an AKS managed-cluster resource id as a string{kind}"
        )
    try:
        target = Target.from_id(cluster)
    except OutOfScopeError as e:
        raise BadRequest(400, "InvalidCluster", f"'cluster': {e}") from None
    if target.pool and not pools:
        raise BadRequest(
            400, "InvalidCluster", f"'cluster' names the pool {target.pool!r}: give the managed-cluster id"
        )
    pool = body.get("pool")
    if pool is None:
        return target
    try:
        validate_pool_name(pool)
    except OutOfScopeError as e:
        raise BadRequest(400, "InvalidPool", f"'pool': {e}") from None
    if target.pool and target.pool.lower() != pool.lower():
        raise BadRequest(400, "InvalidPool", f"'cluster' names pool {target.pool!r} but 'pool' says {pool!r}")
    return Target(target.cluster, pool)


def require_in_scope(settings: Settings, subscription: str) -> None:
    try:
        settings.require_in_scope(subscription)
    except OutOfScopeError as e:
        raise BadRequest(403, "OutOfScope", str(e)) from None


# --- the caller -----------------------------------------------------------------------------------


def caller_of(req: func.HttpRequest) -> str:
    """Who asked: the principal App Service authentication passes in, else the function key.
    App Service strips these headers from incoming requests and sets them itself, so they are
    only as trustworthy as the authentication in front of the app."""
    name = _header(req, "x-ms-client-principal-name")
    principal_id = _header(req, "x-ms-client-principal-id")
    if name and principal_id:
        return f"{name} ({principal_id})"
    return name or principal_id or FUNCTION_KEY_CALLER


def _header(req: func.HttpRequest, name: str) -> str:
    value = req.headers.get(name) or ""
    printable = "".join(c for c in value if unicodedata.category(c) not in _BREAKS_A_LINE).strip()
    return printable[:MAX_PRINCIPAL_CHARS]


# --- route and query parameters -------------------------------------------------------------------


def instance_id_of(req: func.HttpRequest) -> str:
    instance_id = req.route_params.get("instanceId") or ""
    if len(instance_id) > MAX_INSTANCE_ID_CHARS or not _INSTANCE_ID.fullmatch(instance_id):
        raise BadRequest(
            400,
            "InvalidInstanceId",
            f"instance id {shown(instance_id)} is not one the warden hands out: letters, digits, '-', '_', ':' "
            f"and single '.', at most {MAX_INSTANCE_ID_CHARS} characters",
        )
    return instance_id
