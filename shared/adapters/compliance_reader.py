"""The compliance report from the tables: the three reads `shared.evidence.compliance.build_report` needs.

Of one cluster when the query names one (single-partition queries), else of every cluster: the
pool states, the latest check of each node (not the history), and only the `outcome` rows of the
audit trail (filtered by the service). Tables that do not exist yet mean nothing is recorded.
"""

from __future__ import annotations

from datetime import datetime

from shared.adapters.store import StoreNotFoundError, WardenStore
from shared.evidence.compliance import REMEDIATION_STEP, ComplianceReport, ReportQuery, build_report


def read_compliance(
    store: WardenStore, query: ReportQuery, now: datetime, scope: frozenset[str] | None = None
) -> ComplianceReport:
    """One page of the report; `StoreError` when the tables cannot be read."""
    cluster_key = query.cluster.lower() if query.cluster else None
    try:
        states = store.list_pool_states(cluster_key)
        checks = store.latest_node_checks(cluster_key)
        outcomes = store.list_audit(cluster_key, step=REMEDIATION_STEP)
    except StoreNotFoundError:  # the warden has recorded nothing yet: the report creates no tables
        states, checks, outcomes = [], [], []
    return build_report(states, checks, outcomes, now, query, scope)
