"""Table Storage keys and the values every row shares: legal, reversible PartitionKey/RowKey
text, keys that sort by time, and UTC times as the warden writes them. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# --- values -----------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """A plain timezone-aware UTC datetime; naive values are refused (their zone is a guess)."""
    if not isinstance(moment, datetime):
        raise ValueError(f"expected a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no timezone; pass a timezone-aware (UTC) value")
    converted = moment.astimezone(UTC)
    return datetime.combine(converted.date(), converted.time(), UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, to the millisecond: every time the warden writes as text."""
    return utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, keeping the start; idempotent."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- keys -------------------------------------------------------------------------------

_ESCAPE = re.compile(r"%(?:u([0-9A-F]{4})|([0-9A-F]{2}))")
KEY_SEPARATOR = "|"
LATEST_CHECK_PREFIX = "latest-"
CHECK_PREFIX = "check-"
ONCE_PREFIX = "~once-"


# Table Storage forbids / \ # ? and control characters (C0, C1) in PartitionKey/RowKey; `%` is
# the escape character itself, `|` separates the parts of composite keys, and lone surrogates
# cannot go into UTF-8.
_NEEDS_ESCAPE = re.compile(r"[/\\#?%|\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def table_key(text: str) -> str:
    """`text` as a legal, reversible PartitionKey/RowKey: forbidden characters become `%XX`
    (or `%uXXXX` above U+00FF); every other character is kept, so keys stay readable."""
    return _NEEDS_ESCAPE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"%{code:02X}" if code <= 0xFF else f"%u{code:04X}"


def from_table_key(key: str) -> str:
    """Inverse of `table_key`."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), key)


def cluster_partition(cluster_key: str) -> str:
    """PartitionKey of a cluster: its `ClusterRef.key` (the lower-cased ARM id), escaped."""
    return table_key(cluster_key.lower())


def pool_row_key(pool: str) -> str:
    return table_key(pool.lower())


def time_key(moment: datetime) -> str:
    """Fixed-width UTC timestamp that sorts chronologically as text."""
    moment = utc(moment)
    # Explicit widths: strftime does not zero-pad years before 1000 everywhere.
    return f"{moment.year:04d}{moment:%m%d}T{moment:%H%M%S}.{moment.microsecond:06d}Z"


def chronological_row_key(moment: datetime, sequence: int, nonce: str, prefix: str = "") -> str:
    """`<prefix><time>-<sequence>-<nonce>`: sorts by time, then by the writer's sequence (so rows
    written in the same microsecond keep their order); `nonce` keeps concurrent writers apart."""
    return f"{prefix}{time_key(moment)}-{sequence:012d}-{table_key(nonce)}"


def once_row_key(key: str) -> str:
    """The marker that a step's rows are written (see `WardenStore.append_audit`); sorts after
    every time key, so queries of the timeline stop before the markers."""
    return ONCE_PREFIX + table_key(key)


def node_key(pool: str, vmss: str, instance_id: str) -> str:
    return KEY_SEPARATOR.join(table_key(part.lower()) for part in (pool, vmss, instance_id))


def prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) bounds that select exactly the keys starting with `prefix` (non-empty)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
