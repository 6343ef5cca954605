"""The rows the warden keeps in Table Storage: plain data, no I/O (their keys: `table_keys`).

Each record is a frozen dataclass whose fields map one-to-one onto entity properties
(`cluster_id` -> `ClusterId`). `to_entity`/`from_entity` convert with plain Python values;
the store adapter adds the SDK's typing (Int64) and does the I/O. docs/tables.md is the
schema these functions implement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, TypeVar

from shared.core.models import SshAccess
from shared.core.protocol import Outcome, WorkKind
from shared.core.table_keys import (
    KEY_SEPARATOR,
    clip,
    cluster_partition,
    node_key,
    pool_row_key,
    utc,
)
from shared.policy.plan import Exemption, Status

_SECRET_PATTERNS = [
    # A private key block, whole or cut off at either end (run-command keeps only the tail).
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S),
        "[redacted private key]",
    ),
    (re.compile(r"\A.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S), "[redacted private key]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted token]"),
    (
        re.compile(
            r"(?i)\b(account_?key|shared_?access_?key|password|passwd|pwd|secret|client_secret|token|sig)"
            r"(\s*[=:]\s*)(?!\[redacted\])[^\s;&,]+"
        ),
        r"\1\2[redacted]",
    ),
    # Long base64 runs are key material or tokens, never sshd status text.
    (re.compile(r"[A-Za-z0-9+/]{64,}={0,2}"), "[redacted]"),
]
EXCERPT_LIMIT = 1024


def safe_excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """Command output fit to store: secrets masked first, then the last `limit` characters
    (the status lines are at the end); idempotent."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    if len(text) <= limit:
        return text
    # Start after a whitespace: a word cut in half could read as a new, unmasked match.
    tail = text[-(limit - 1) :]
    start = next((index + 1 for index, char in enumerate(tail) if char.isspace()), 0)
    return "…" + tail[start:]


_E = TypeVar("_E", bound=Enum)


def _parse_enum(kind: type[_E], value: Any, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"{name} {value!r} is not one of: {allowed}") from None


def _optional_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def _normalise(record: Any, **values: Any) -> None:
    """Assign normalised field values on a frozen dataclass from `__post_init__`."""
    for name, value in values.items():
        object.__setattr__(record, name, value)


# --- records ----------------------------------------------------------------------------

MESSAGE_LIMIT = 8000  # characters: keeps a 100-row transaction far below its 4 MiB cap
TEXT_LIMIT = 1024


# The planner owns the statuses; the pool-state row stores the same values.
PoolStatus = Status


# Fields with this metadata are kept on the record but are not entity properties.
_NOT_STORED = {"stored": False}


class ClusterRow:
    """Every table's PartitionKey is the row's cluster (see docs/tables.md)."""

    cluster_id: str

    @property
    def partition_key(self) -> str:
        return cluster_partition(self.cluster_id)


@dataclass(frozen=True)
class PoolState(ClusterRow):
    """The warden's view of one pool. `etag` is the row's version when read from the store."""

    cluster_id: str
    pool: str
    desired_mode: str
    configured_mode: str
    status: PoolStatus
    reason: str = ""
    pending_reimage: bool = False
    last_upgrade_time: datetime | None = None
    last_upgrade_operation_id: str = ""
    last_verified_time: datetime | None = None
    nodes_checked: int = 0
    nodes_drifted: int = 0
    verification_summary: str = ""
    verdict: str = ""  # the last verification's: ok | drift | unknown
    updated_time: datetime | None = None
    os: str = ""  # osType: Linux | Windows
    os_sku: str = ""  # osSKU as ARM reports it; "" when ARM does not say
    upgrade_instance_id: str = ""  # the orchestration polling the pool's node-image upgrade now
    upgrade_started_time: datetime | None = None  # when the warden's latest upgrade of the pool went out
    etag: str | None = field(default=None, compare=False, metadata=_NOT_STORED)

    def __post_init__(self) -> None:
        _normalise(
            self,
            status=_parse_enum(PoolStatus, self.status, "status"),
            reason=clip(self.reason, TEXT_LIMIT),
            verification_summary=clip(self.verification_summary, TEXT_LIMIT),
            last_upgrade_time=_optional_utc(self.last_upgrade_time),
            last_verified_time=_optional_utc(self.last_verified_time),
            updated_time=_optional_utc(self.updated_time),
            upgrade_started_time=_optional_utc(self.upgrade_started_time),
        )

    @property
    def row_key(self) -> str:
        return pool_row_key(self.pool)

    @property
    def pool_key(self) -> str:
        """The pool's normalised id, equal to `shared.core.models.Pool.key`."""
        return f"{self.cluster_id}/agentPools/{self.pool}".lower()


@dataclass(frozen=True)
class AuditRecord(ClusterRow):
    """One decision or step. `pool` is empty for cluster-level steps; `code` is a reason code
    or ARM's error code, `message` the text that goes with it."""

    time: datetime
    cluster_id: str
    step: str
    outcome: Outcome
    pool: str = ""
    mode_before: str = ""
    mode_after: str = ""
    operation_id: str = ""
    correlation_id: str = ""
    code: str = ""
    message: str = ""
    instance_id: str = ""
    actor: str = ""
    attempt: int = 0

    def __post_init__(self) -> None:
        _normalise(
            self,
            time=utc(self.time),
            outcome=_parse_enum(Outcome, self.outcome, "outcome"),
            message=clip(self.message, MESSAGE_LIMIT),
        )


@dataclass(frozen=True)
class NodeCheck(ClusterRow):
    """sshd state seen on one node. `None` means the output did not say. The excerpt is
    masked and cut by `safe_excerpt` on construction, so no record can carry a secret."""

    cluster_id: str
    pool: str
    vmss: str
    instance_id: str
    time: datetime
    expected_mode: str
    sshd_active: bool | None = None
    sshd_enabled: bool | None = None
    drift: bool = False
    output_excerpt: str = ""
    verdict: str = ""  # ok | drift | unknown (shared.evidence.sshd.Verdict)
    reason: str = ""
    units: str = ""  # what each unit said, e.g. "ssh inactive/disabled, sshd inactive/alias"
    pubkey_authentication: str = ""  # effective setting from `sshd -T`: yes | no | "" (not said)
    run_command: str = ""  # how the run-command ended: succeeded, or the error code
    os: str = ""

    def __post_init__(self) -> None:
        _normalise(
            self,
            time=utc(self.time),
            output_excerpt=safe_excerpt(self.output_excerpt),
            reason=clip(self.reason, TEXT_LIMIT),
        )

    @property
    def node_key(self) -> str:
        return node_key(self.pool, self.vmss, self.instance_id)


_FINGERPRINT = re.compile(r"^(SHA256:[A-Za-z0-9+/]{43}=?|MD5:([0-9a-f]{2}:){15}[0-9a-f]{2})$")


@dataclass(frozen=True)
class KeyRotation(ClusterRow):
    """One node SSH key rotation. Holds the public key's fingerprint, never a key."""

    cluster_id: str
    time: datetime
    fingerprint: str
    outcome: Outcome
    secret_id: str = ""
    secret_version: str = ""
    key_bits: int = 0
    message: str = ""
    instance_id: str = ""
    old_fingerprint: str = ""  # the key the cluster had before
    public_key: str = ""  # the new public key (`ssh-rsa ...`): public, kept so a re-run applies the same one
    pools_reimaged: str = ""  # comma-separated
    source: str = ""  # generated | supplied

    def __post_init__(self) -> None:
        if "PRIVATE KEY" in self.public_key:
            raise ValueError("a key rotation row holds public keys only (a private key was given; value not shown)")
        if self.old_fingerprint and not _FINGERPRINT.match(self.old_fingerprint):
            raise ValueError("old_fingerprint must be 'SHA256:<43 base64 chars>' or 'MD5:<16 hex pairs>'")
        if self.fingerprint and not _FINGERPRINT.match(self.fingerprint):
            # The value is not echoed: a caller passing the wrong thing may be passing a key.
            raise ValueError(
                "fingerprint must be 'SHA256:<43 base64 chars>' or 'MD5:<16 hex pairs>' "
                f"({len(self.fingerprint)} characters given, value not shown)"
            )
        _normalise(
            self,
            time=utc(self.time),
            outcome=_parse_enum(Outcome, self.outcome, "outcome"),
            message=clip(self.message, MESSAGE_LIMIT),
        )


WHOLE_CLUSTER = "*"  # pool part of the RowKey of a request for every pool (pool names never hold "*")
WORKER_ROW = "~worker"  # RowKey of the cluster's worker marker in the requests table


class Admission(StrEnum):
    """What `WardenStore.add_request` found: who will take the request."""

    PENDING = "pending"  # the same request already waits, and a worker is committed to it
    JOINED = "joined"  # a worker is committed: it takes the new request before it ends
    START = "start"  # no worker is committed: the caller must start one


@dataclass(frozen=True)
class WorkRequest(ClusterRow):
    """A pending request for cluster work of one kind, for the whole cluster (`pool` empty) or
    one pool. Triggers create rows; the cluster's worker leases them (`lease` names the lease)
    and deletes them only once their work is recorded, so nothing asked for is lost, and a
    storm of requests for one target is one row. `etag` is the row's version when read."""

    cluster_id: str
    pool: str
    time: datetime
    kind: WorkKind = WorkKind.RECONCILE
    reason: str = ""
    actor: str = ""
    lease: str = ""
    argument: str = ""  # what the kind needs besides the target, e.g. a supplied public key (never a secret)
    etag: str | None = field(default=None, compare=False, metadata=_NOT_STORED)
    stored_key: str = field(default="", compare=False, metadata=_NOT_STORED)  # RowKey as read

    def __post_init__(self) -> None:
        _normalise(
            self,
            time=utc(self.time),
            kind=_parse_enum(WorkKind, self.kind, "kind"),
            reason=clip(self.reason, TEXT_LIMIT),
        )

    @property
    def row_key(self) -> str:
        return request_row_key(self.kind, self.pool)


def request_row_key(kind: str, pool: str) -> str:
    return f"{kind}{KEY_SEPARATOR}{pool_row_key(pool) if pool else WHOLE_CLUSTER}"


# --- entities ---------------------------------------------------------------------------

_R = TypeVar("_R")


def column_name(field_name: str) -> str:
    """`last_upgrade_time` -> `LastUpgradeTime`."""
    return "".join(part.capitalize() for part in field_name.split("_"))


def to_entity(record: Any, partition_key: str, row_key: str) -> dict[str, Any]:
    """The record as an entity: one property per stored field; `None` is left out
    (Table Storage has no null)."""
    entity: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": row_key}
    for spec in fields(record):
        value = getattr(record, spec.name)
        if spec.metadata.get("stored", True) and value is not None:
            entity[column_name(spec.name)] = value.value if isinstance(value, Enum) else value
    return entity


def from_entity(kind: type[_R], entity: Mapping[str, Any], **extra: Any) -> _R:
    """Rebuild a record from an entity's properties (plain Python values); properties the
    record does not know are ignored, missing optional ones take their defaults."""
    values = {
        spec.name: entity[column_name(spec.name)]
        for spec in fields(kind)  # type: ignore[arg-type]
        if spec.metadata.get("stored", True) and column_name(spec.name) in entity
    }
    try:
        return kind(**values, **extra)
    except (TypeError, ValueError) as error:
        where = f"PartitionKey={entity.get('PartitionKey')!r} RowKey={entity.get('RowKey')!r}"
        raise ValueError(f"row {where} is not a valid {kind.__name__}: {error}") from error


# --- exemptions -------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolExemption(ClusterRow):
    """A break-glass exemption of one pool (WardenExemptions: one row per pool). `mode` empty:
    the pool keeps whatever mode it has; else the pool is given that mode. Honoured only while
    `until` is ahead (`in_force`): every reader compares it with its own now."""

    cluster_id: str
    pool: str
    until: datetime
    reason: str
    actor: str
    granted_time: datetime
    mode: str = ""
    etag: str | None = field(default=None, compare=False, metadata=_NOT_STORED)

    def __post_init__(self) -> None:
        mode = SshAccess.parse(self.mode).value if self.mode else ""
        _normalise(
            self,
            until=utc(self.until),
            granted_time=utc(self.granted_time),
            reason=clip(self.reason, TEXT_LIMIT),
            mode=mode,
        )

    @property
    def row_key(self) -> str:
        return pool_row_key(self.pool)

    @property
    def pool_key(self) -> str:
        """The pool's normalised id, equal to `shared.core.models.Pool.key`."""
        return f"{self.cluster_id}/agentPools/{self.pool}".lower()

    def in_force(self, now: datetime) -> bool:
        return self.until > utc(now)

    @property
    def terms(self) -> Exemption:
        """What the planner needs of it."""
        return Exemption(self.actor, self.reason, self.until, SshAccess.parse(self.mode) if self.mode else None)


def exemptions_in_force(rows: Iterable[PoolExemption], now: datetime) -> dict[str, Exemption]:
    """The exemptions still ahead of `now`, by pool key (`Pool.key`); expired rows are left out."""
    return {row.pool_key: row.terms for row in rows if row.in_force(now)}
