"""`GET /api/compliance`: the compliance report (`shared.evidence.compliance`) read from the tables, paged.

The query is checked first, from the request and the settings alone (400 for a bad filter or
token, 403 for a subscription or cluster outside `WARDEN_SUBSCRIPTIONS`); only then are the
tables read (`read_compliance`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.config import Settings
from shared.core.models import Target
from shared.evidence.compliance_query import DEFAULT_PAGE_SIZE
from shared.triggers.http_validation import BadRequest, require_in_scope

if TYPE_CHECKING:  # the report's module is imported by the first request, not at start-up
    from shared.evidence.compliance import ReportQuery

# The host passes the whole query string: `code` is the function key when given that way.
PLATFORM_PARAMETERS = ("code",)
PAGE_SIZE = DEFAULT_PAGE_SIZE


def report_query(req: func.HttpRequest, settings: Settings) -> ReportQuery:
    from shared.evidence.compliance import ReportQuery, ReportQueryError, build_report

    params = {name: value for name, value in req.params.items() if name not in PLATFORM_PARAMETERS}
    try:
        query = ReportQuery.from_params(params, page_size=PAGE_SIZE)
        # The token is read while the report is built: building it over no rows checks the
        # token before any table is read.
        build_report((), (), (), datetime.now(UTC), query)
    except ReportQueryError as e:
        code = "InvalidContinuationToken" if e.parameter == "continuationToken" else "InvalidQuery"
        raise BadRequest(400, code, str(e)) from None
    if query.subscription:
        require_in_scope(settings, query.subscription)
    if query.cluster:
        require_in_scope(settings, Target.from_id(query.cluster).cluster.subscription)
    return query


def read_report(store, query: ReportQuery, settings: Settings) -> dict[str, Any]:
    """One page of the report; raises `StoreError` when the tables cannot be read."""
    from shared.adapters.compliance_reader import read_compliance  # the Tables SDK: not at start-up

    return read_compliance(store, query, datetime.now(UTC), scope=settings.subscriptions).to_json()
