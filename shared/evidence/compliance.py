"""The compliance report: where every pool stands, with its evidence, for operators and auditors.

Pure: the rows the warden keeps (pool states, the latest check of each node, the audit trail)
in, one report out — no ARM call, so it says only what the warden has recorded. Per pool: its
modes and plan status, its last verification with the node evidence, the last remediation and
its outcome, and its standing against the two DISA Kubernetes STIG rules on sshd (`stig`). The report is
filtered by subscription, cluster and status, and paged by an opaque continuation token.
docs/compliance.md explains the fields and the STIG mapping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from shared.core.models import SshAccess, Target
from shared.core.records import AuditRecord, NodeCheck, PoolState
from shared.core.table_keys import iso

# The query and its paging live apart; callers import them from here, with the report.
from shared.evidence.compliance_query import DEFAULT_PAGE_SIZE as DEFAULT_PAGE_SIZE
from shared.evidence.compliance_query import QUERY_PARAMETERS as QUERY_PARAMETERS
from shared.evidence.compliance_query import ReportQuery, next_page
from shared.evidence.compliance_query import ReportQueryError as ReportQueryError
from shared.evidence.sshd import Verdict
from shared.evidence.stig import STIG_RULES, Standing, StigRule, StigStanding, stig_standing
from shared.policy.plan import Status

NEVER_VERIFIED = "never-verified"
VERDICTS = (*(v.value for v in Verdict), NEVER_VERIFIED)
REMEDIATION_STEP = "outcome"  # every remediation the warden runs ends in exactly one such audit row


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeEvidence:
    """What one node said when the pool was last verified (a `WardenNodeChecks` row)."""

    vmss: str
    instance: str
    time: datetime
    verdict: str
    reason: str
    units: str
    sshd_active: bool | None
    sshd_enabled: bool | None
    pubkey_authentication: str
    run_command: str

    @classmethod
    def of(cls, check: NodeCheck) -> NodeEvidence:
        return cls(
            check.vmss,
            check.instance_id,
            check.time,
            check.verdict,
            check.reason,
            check.units,
            check.sshd_active,
            check.sshd_enabled,
            check.pubkey_authentication,
            check.run_command,
        )


@dataclass(frozen=True)
class Verification:
    time: datetime
    verdict: str  # ok | drift | unknown
    summary: str
    nodes_checked: int
    nodes_drifted: int
    nodes: tuple[NodeEvidence, ...]


@dataclass(frozen=True)
class Remediation:
    """The pool's last remediation: its `outcome` audit row."""

    time: datetime
    outcome: str
    reason: str
    mode_before: str
    mode_after: str
    code: str
    instance_id: str
    actor: str


@dataclass(frozen=True)
class PoolCompliance:
    cluster_id: str
    pool_id: str
    subscription: str
    resource_group: str
    cluster: str
    pool: str
    os: str
    os_sku: str
    configured_mode: str
    desired_mode: str
    status: str
    reason: str
    pending_reimage: bool
    last_upgrade_time: datetime | None
    verdict: str  # the last verification's, or never-verified
    last_verification: Verification | None
    last_remediation: Remediation | None
    stig: dict[str, StigStanding]
    exemption: None = None  # no exemptions yet: the field is kept so readers need not change
    updated_time: datetime | None = None

    @property
    def key(self) -> str:
        return self.pool_id.lower()


@dataclass(frozen=True)
class FleetSummary:
    pools: int
    by_status: dict[str, int]
    by_mode: dict[str, int]  # configured mode
    by_desired_mode: dict[str, int]
    by_verdict: dict[str, int]
    stig: dict[str, dict[str, int]]  # rule -> standing -> pools
    accepted_deviations: dict[str, int]  # rule -> open pools whose policy allows SSH


@dataclass(frozen=True)
class ComplianceReport:
    generated_at: datetime
    query: ReportQuery
    summary: FleetSummary  # of every pool the filters select, not only this page
    pools: tuple[PoolCompliance, ...]
    continuation_token: str | None = None  # None: this is the last page
    stig_rules: tuple[StigRule, ...] = field(default=STIG_RULES)

    def to_json(self) -> dict[str, Any]:
        """camelCase keys, ISO-8601 UTC times, full resource ids for every cluster and pool."""
        return {
            "generatedAt": _json(self.generated_at),
            "filters": self.query.filters,
            "summary": _json(self.summary),
            "stigRules": _json(self.stig_rules),
            "pools": _json(self.pools),
            "continuationToken": self.continuation_token,
        }


# --- building it ------------------------------------------------------------------------------


def build_report(
    pool_states: Iterable[PoolState],
    node_checks: Iterable[NodeCheck],
    audit_rows: Iterable[AuditRecord],
    now: datetime,
    query: ReportQuery | None = None,
    scope: frozenset[str] | None = None,
) -> ComplianceReport:
    """The report from the tables' rows. `node_checks`: the latest check of each node (older
    ones are passed over); `audit_rows`: any rows, of which the pools' `outcome` rows count;
    `scope`: subscriptions to report on (None: all the rows hold)."""
    query = query or ReportQuery()
    evidence = _by_pool(node_checks)
    remediations = _last_remediations(audit_rows)
    pools = sorted(
        (
            _pool(state, evidence.get(state.pool_key, []), remediations.get(state.pool_key))
            for state in pool_states
            if scope is None or Target.from_id(state.cluster_id).cluster.subscription.lower() in scope
        ),
        key=lambda p: p.key,
    )
    selected = [p for p in pools if query.matches(p)]
    page, token = next_page(selected, query)
    return ComplianceReport(_utc(now), query, summarise(selected), tuple(page), token)


def _pool(state: PoolState, checks: list[NodeCheck], remediation: AuditRecord | None) -> PoolCompliance:
    ref = Target.from_id(state.cluster_id).cluster
    verification = _verification(state, checks)
    desired = state.desired_mode
    return PoolCompliance(
        cluster_id=ref.id,
        pool_id=f"{ref.id}/agentPools/{state.pool}",
        subscription=ref.subscription,
        resource_group=ref.resource_group,
        cluster=ref.name,
        pool=state.pool,
        os=state.os or next((c.os for c in checks if c.os), ""),
        os_sku=state.os_sku,
        configured_mode=state.configured_mode,
        desired_mode=desired,
        status=state.status.value,
        reason=state.reason,
        pending_reimage=state.pending_reimage,
        last_upgrade_time=state.last_upgrade_time,
        verdict=verification.verdict if verification else NEVER_VERIFIED,
        last_verification=verification,
        last_remediation=_remediation(remediation) if remediation else None,
        stig={
            rule.id: stig_standing(rule, verification, desired, state.configured_mode, state.status.value)
            for rule in STIG_RULES
        },
        updated_time=state.updated_time,
    )


def _verification(state: PoolState, checks: list[NodeCheck]) -> Verification | None:
    """The pool's last verification, with the nodes it checked: of each node's latest check,
    the newest `nodes_checked` made by then (a node sampled only earlier is not its evidence)."""
    if state.last_verified_time is None:
        return None
    made = [c for c in checks if c.time <= state.last_verified_time]
    latest = sorted(made, key=lambda c: c.time, reverse=True)[: state.nodes_checked]
    nodes = tuple(NodeEvidence.of(c) for c in sorted(latest, key=lambda c: (c.vmss, len(c.instance_id), c.instance_id)))
    return Verification(
        state.last_verified_time,
        state.verdict or Verdict.UNKNOWN.value,
        state.verification_summary,
        state.nodes_checked,
        state.nodes_drifted,
        nodes,
    )


def _remediation(row: AuditRecord) -> Remediation:
    return Remediation(
        row.time, row.outcome.value, row.message, row.mode_before, row.mode_after, row.code, row.instance_id, row.actor
    )


def summarise(pools: list[PoolCompliance]) -> FleetSummary:
    modes = [m.value for m in SshAccess]
    return FleetSummary(
        pools=len(pools),
        by_status=_counts((p.status for p in pools), [s.value for s in Status]),
        by_mode=_counts((p.configured_mode or "unknown" for p in pools), modes),
        by_desired_mode=_counts((p.desired_mode or "unknown" for p in pools), [*modes, "ignore"]),
        by_verdict=_counts((p.verdict for p in pools), VERDICTS),
        stig={
            rule.id: _counts((p.stig[rule.id].status.value for p in pools), [s.value for s in Standing])
            for rule in STIG_RULES
        },
        accepted_deviations={
            rule.id: sum(1 for p in pools if p.stig[rule.id].accepted_deviation) for rule in STIG_RULES
        },
    )


def _counts(values: Iterable[str], known: Iterable[str]) -> dict[str, int]:
    """Every known value (zero included, in its order), then any other value seen."""
    counted = Counter(values)
    return {**{k: counted.get(k, 0) for k in known}, **{k: n for k, n in sorted(counted.items()) if k not in known}}


def _by_pool(checks: Iterable[NodeCheck]) -> dict[str, list[NodeCheck]]:
    by_pool: dict[str, list[NodeCheck]] = {}
    for check in checks:
        by_pool.setdefault(f"{check.cluster_id}/agentPools/{check.pool}".lower(), []).append(check)
    return by_pool


def _last_remediations(rows: Iterable[AuditRecord]) -> dict[str, AuditRecord]:
    last: dict[str, AuditRecord] = {}
    for row in rows:
        if row.step != REMEDIATION_STEP or not row.pool:
            continue
        key = f"{row.cluster_id}/agentPools/{row.pool}".lower()
        if key not in last or row.time >= last[key].time:
            last[key] = row
    return last


# --- values -----------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"datetime {moment.isoformat()} has no timezone; pass a timezone-aware (UTC) value")
    return moment.astimezone(UTC)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {_camel(f.name): _json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    return value
