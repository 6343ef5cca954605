"""Long-running ARM operations read one answer at a time, as azure-mgmt-core's `ARMPolling` reads them.

An orchestration cannot block in `LROPoller.result()`: it waits between polls with durable
timers, and each poll is an activity of its own, maybe in another process. So the poller's
state is plain data (`Operation`, carried in the orchestration's history) and each step is a
function of that state and one HTTP answer:

- `begun`: the first answer picks the algorithm in `ARMPolling`'s order: `Azure-AsyncOperation`
  (a status body: 200 with `status` for as long as it runs), `Location` (202 until done, maybe
  with a new `Location` to follow; its last answer is the result), the resource's own
  `provisioningState` (PUT or PATCH), else done at once.
- `polled`: one answer of the URL the operation says; the next state. When a status body says
  `Succeeded` and the result lies elsewhere (`Location` for a POST, the resource for a PUT or
  PATCH, a `resourceLocation`), the operation becomes `final`: its outcome is known and its
  result is one GET of `url` away. Writes whose result nobody reads stop there; run-command
  reads it.

`tests/integration/test_lro_conformance.py` judges this module against `LROPoller(...,
ARMPolling())` on every PUT and POST route of the autorest LRO test server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from shared.adapters.arm_parse import error_from_response, retry_after_seconds
from shared.core.errors import OperationFailedError, PermanentError
from shared.core.models import Operation, OperationState

ACCEPTED = frozenset({200, 201, 202, 204})  # what an LRO answer may be (azure-core's BadStatus otherwise)
FINISHED = frozenset({"succeeded", "failed", "canceled"})
BODY_POLLED = frozenset({"PUT", "PATCH"})


class Answer(Protocol):
    """An HTTP answer as azure-core's `HttpResponse` gives it."""

    status_code: int
    headers: Any  # case-insensitive

    def text(self) -> str: ...


@dataclass(frozen=True)
class Polled:
    """Where an operation stands after one answer: `operation` is what to poll next (a `Location`
    followed, a final GET due), `result` the operation's result once it is done and read."""

    operation: Operation
    state: OperationState
    result: Any = None


def begun(method: str, url: str, answer: Answer, final_via: str = "") -> Polled:
    """The first answer of an operation started by `method url`. An answer that says it failed
    at once raises `OperationFailedError`; any other error status raises its `ArmError`."""
    _check_status(answer)
    method = method.upper()
    status_url, location = _url(answer, "Azure-AsyncOperation", url), _header(answer, "Location")
    if status_url:  # its Location is only a POST's result: judged if it is ever used
        operation = Operation(status_url, "async", method, url, location, final_via)
        body = _json_or_none(answer)
        status = body.get("status") if isinstance(body, dict) else None
        return _status_read(operation, answer, str(status or "InProgress"), body)
    if location:
        return Polled(Operation(_url(answer, "Location", url), "location", method, url), _state("InProgress", answer))
    operation = Operation(url, "resource", method, url)
    if method in BODY_POLLED:
        return _resource_read(operation, answer, initial=True)
    return Polled(replace(operation, kind="done"), _state("Succeeded", answer), _json(answer))


def polled(operation: Operation, answer: Answer) -> Polled:
    """The next state after one answer of `operation.url`."""
    _check_status(answer)
    if operation.kind == "async":
        body = _json_or_none(answer)
        status = body.get("status") if isinstance(body, dict) else None
        if not status:
            what = "no JSON body" if body is None else "no status"
            return Polled(operation, _failed("InvalidOperationStatus", f"the operation's status answer has {what}"))
        return _status_read(operation, answer, str(status), body)
    if operation.kind == "location":
        if answer.status_code == 202:
            followed = _url(answer, "Location", operation.resource or operation.url) or operation.url
            return Polled(replace(operation, url=followed), _state("InProgress", answer))
        return Polled(replace(operation, kind="done"), _state("Succeeded", answer), _json(answer))
    if operation.kind == "resource":
        return _resource_read(operation, answer, initial=False)
    if operation.kind == "final":
        return Polled(replace(operation, kind="done"), _state("Succeeded", answer), _json(answer))
    raise ValueError(f"an operation of kind {operation.kind!r} has nothing to poll")


def _status_read(operation: Operation, answer: Answer, status: str, body: Any) -> Polled:
    """A status body's `status`: still running, failed, or succeeded with the result where
    `ARMPolling` finds it (`AzureAsyncOperationPolling.get_final_get_url`)."""
    if status.lower() not in FINISHED:
        return Polled(operation, _state(status, answer))
    if status.lower() != "succeeded":
        error = (body.get("error") if isinstance(body, dict) else None) or {}
        code, message = str(error.get("code") or status), str(error.get("message") or f"the operation ended {status}")
        return Polled(operation, OperationState(status, code, message))
    final = _final_url(operation, body)
    if final:
        checked = _checked("the result's URL", final, operation.resource or operation.url)
        return Polled(replace(operation, url=checked, kind="final"), _state(status, answer))
    return Polled(replace(operation, kind="done"), _state(status, answer), body)


def _final_url(operation: Operation, body: Any) -> str:
    via, post = operation.final_via.lower(), operation.method == "POST"
    if via == "location" and operation.location:
        return operation.location
    if via in ("azure-async-operation", "operation-location") and post:
        return ""
    if isinstance(body, dict) and body.get("resourceLocation"):
        return str(body["resourceLocation"])
    if operation.method in BODY_POLLED:
        return operation.resource
    return operation.location if post else ""


def _resource_read(operation: Operation, answer: Answer, *, initial: bool) -> Polled:
    """`BodyContentPolling`: the resource's `properties.provisioningState`, by its status code at
    first (202 runs, 201 runs unless it says otherwise, 200 and 204 are done unless it says
    otherwise), then by the body of each GET of the resource."""
    body = _json(answer)
    if not initial and body is None:
        return Polled(operation, _failed("InvalidResponse", "the resource's answer has no body"))
    code = answer.status_code
    default = "InProgress" if code in (201, 202) else "Succeeded"
    properties = body.get("properties") if isinstance(body, dict) else None
    state = (properties or {}).get("provisioningState") if isinstance(properties, dict) else None
    status = "InProgress" if initial and code == 202 else str(state or default)
    if status.lower() not in FINISHED:
        return Polled(operation, _state(status, answer))
    if status.lower() != "succeeded":
        if initial:
            raise OperationFailedError(status, f"the write was answered with provisioningState {status}")
        return Polled(operation, _failed(status, f"the resource's provisioningState is {status}"))
    return Polled(replace(operation, kind="done"), _state(status, answer), body)


def _check_status(answer: Answer) -> None:
    if answer.status_code not in ACCEPTED:
        raise error_from_response(answer)


def _header(answer: Answer, name: str) -> str:
    return str(answer.headers.get(name) or "")


def _url(answer: Answer, name: str, request_url: str) -> str:
    """A URL header to poll ("" when absent), judged by `_checked`."""
    url = _header(answer, name)
    return _checked(name, url, request_url) if url else ""


def _checked(name: str, url: str, request_url: str) -> str:
    """A URL to GET must be absolute and on the origin the request went to (ARM's own), since
    every poll carries the identity's token. Anything else is refused, not followed."""
    parts, origin = urlsplit(url), urlsplit(request_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PermanentError("InvalidOperationUrl", f"{name} is not an absolute URL: {url[:200]!r}")
    if (parts.scheme, parts.netloc.lower()) != (origin.scheme, origin.netloc.lower()):
        raise PermanentError(
            "InvalidOperationUrl", f"{name} points away from {origin.scheme}://{origin.netloc}: {url[:200]!r}"
        )
    return url


def _state(status: str, answer: Answer) -> OperationState:
    return OperationState(status, retry_after=retry_after_seconds(answer.headers.get("Retry-After")))


def _failed(code: str, message: str) -> OperationState:
    return OperationState("Failed", code, message)


def _json_or_none(answer: Answer) -> Any:
    """The body as JSON; None when empty or not JSON (a status body must be JSON: the caller says so)."""
    try:
        return _json(answer)
    except PermanentError:
        return None


def _json(answer: Answer) -> Any:
    """The body as JSON, None when empty."""
    text = answer.text()
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise PermanentError("InvalidResponse", f"the answer ({answer.status_code}) is not JSON") from e
