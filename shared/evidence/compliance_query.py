"""Which pools a compliance report covers, and which page of them: filters and continuation tokens. Pure.

`GET /api/compliance?subscription=&cluster=&status=&continuationToken=` and the CLI's options
build a `ReportQuery`; a value that cannot be used raises `ReportQueryError` naming the
parameter (HTTP 400, CLI exit 2). Tokens are opaque: where the next page starts (the last pool's
key, so pages stay right while rows are added) and the filters they belong to.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shared.core.errors import OutOfScopeError, WardenError, shown
from shared.core.models import Target
from shared.policy.plan import Status

DEFAULT_PAGE_SIZE = 100
QUERY_PARAMETERS = ("subscription", "cluster", "status", "continuationToken")
_GUID = re.compile(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}")


class _Row(Protocol):
    subscription: str
    cluster_id: str
    status: str

    @property
    def key(self) -> str: ...


_Keyed = TypeVar("_Keyed", bound=_Row)


class ReportQueryError(WardenError):
    """A filter or continuation token that cannot be used (HTTP 400, CLI exit 2); `parameter` names it."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class ReportQuery:
    """Filters (each optional, combined with AND) and the page. Values are checked on construction."""

    subscription: str | None = None
    cluster: str | None = None  # a managed-cluster resource id
    status: str | None = None  # a plan status
    continuation_token: str | None = None
    page_size: int | None = None  # None: every pool in one page

    def __post_init__(self) -> None:
        object.__setattr__(self, "subscription", _subscription(self.subscription))
        object.__setattr__(self, "cluster", _cluster(self.cluster))
        object.__setattr__(self, "status", _status(self.status))
        if self.page_size is not None and self.page_size < 1:
            raise ReportQueryError("pageSize", f"is {self.page_size}; expected a whole number above 0")

    @classmethod
    def from_params(cls, params: Mapping[str, str], page_size: int = DEFAULT_PAGE_SIZE) -> ReportQuery:
        """The query of `GET /api/compliance?subscription=&cluster=&status=&continuationToken=`."""
        unknown = sorted(set(params) - set(QUERY_PARAMETERS))
        if unknown:
            raise ReportQueryError(unknown[0], f"unknown parameter; expected {', '.join(QUERY_PARAMETERS)}")
        values = {name: params.get(name) or None for name in QUERY_PARAMETERS}
        return cls(values["subscription"], values["cluster"], values["status"], values["continuationToken"], page_size)

    @property
    def filters(self) -> dict[str, str | None]:
        return {"subscription": self.subscription, "cluster": self.cluster, "status": self.status}

    def matches(self, pool: _Row) -> bool:
        return (
            (self.subscription is None or pool.subscription.lower() == self.subscription)
            and (self.cluster is None or pool.cluster_id.lower() == self.cluster.lower())
            and (self.status is None or pool.status == self.status)
        )


# --- paging -----------------------------------------------------------------------------------


def next_page(items: list[_Keyed], query: ReportQuery) -> tuple[list[_Keyed], str | None]:
    """The page the query asks for (items in key order) and the token of the next, if any."""
    after = _token_position(query) if query.continuation_token else None
    rest = [item for item in items if after is None or item.key > after]
    if query.page_size is None or len(rest) <= query.page_size:
        return rest, None
    page = rest[: query.page_size]
    return page, _token(page[-1].key, query)


def _token(after: str, query: ReportQuery) -> str:
    """Opaque to callers: where the next page starts and the filters it belongs to."""
    document = json.dumps({"after": after, "filters": query.filters}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def _token_position(query: ReportQuery) -> str:
    token = query.continuation_token or ""
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, filters = document["after"], document["filters"]
    except (binascii.Error, ValueError, TypeError, KeyError) as e:
        raise ReportQueryError("continuationToken", f"{shown(token)} is not a token this report gave out") from e
    if not isinstance(after, str) or filters != query.filters:
        raise ReportQueryError(
            "continuationToken", "belongs to a query with other filters: repeat the query that gave it"
        )
    return after


# --- values -----------------------------------------------------------------------------------


def _subscription(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _GUID.fullmatch(value.strip().lower()):
        raise ReportQueryError("subscription", f"is {shown(value)}; expected a subscription id (a GUID)")
    return value.strip().lower()


def _cluster(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        target = Target.from_id(value)
    except OutOfScopeError as e:
        raise ReportQueryError("cluster", str(e)) from e
    if target.pool is not None:
        raise ReportQueryError("cluster", f"{shown(value, 300)} names a pool; expected a managed-cluster resource id")
    return target.cluster.id


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    allowed = [s.value for s in Status]
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ReportQueryError("status", f"is {shown(value)}; expected one of {', '.join(allowed)}")
    return value.strip().lower()
