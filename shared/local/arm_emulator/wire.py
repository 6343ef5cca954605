"""Requests, responses and path routing, independent of the HTTP server.

Route patterns are ARM paths with `{name}` placeholders; literal segments match case-insensitively
(ARM paths do: `resourceGroups` arrives as `resourcegroups` too), placeholders keep the caller's casing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shared.local.arm_emulator import errors


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive (an email.message.Message from http.server)
    body: bytes
    base_url: str

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    def json(self) -> dict:
        """The body as a JSON object, or ARM's 400 for anything else."""
        try:
            value = json.loads(self.body or b"null")
        except ValueError as error:
            raise errors.ArmHttpError(
                400, "InvalidRequestContent", f"The request content is not valid JSON: {error}"
            ) from None
        if not isinstance(value, dict):
            raise errors.ArmHttpError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return value


@dataclass
class Response:
    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


Handler = Callable[..., Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[list[str], dict[str, Handler]]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        segments = _segments(pattern)
        for known, handlers in self._routes:
            if known == segments:
                handlers[method] = handler
                return
        self._routes.append((segments, {method: handler}))

    def dispatch(self, request: Request) -> Response:
        segments = _segments(request.path)
        for pattern, handlers in self._routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            handler = handlers.get(request.method)
            if handler is None:
                raise errors.method_not_allowed(request.method)
            return handler(request, **params)
        raise errors.unknown_route(request.path)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _match(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if expected.startswith("{"):
            params[expected.strip("{}")] = actual
        elif expected.lower() != actual.lower():
            return None
    return params
