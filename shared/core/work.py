"""Leased requests -> the work items a cluster's worker runs, one at a time. Pure.

Requests of one kind merge into one item: every pool if any of them names the whole cluster,
else the union of the pools named. Items come in the order their first request arrived.
"""

from __future__ import annotations

from typing import Any

from shared.core.records import TEXT_LIMIT, WorkRequest
from shared.core.table_keys import clip


def work_items(requests: list[WorkRequest]) -> list[dict[str, Any]]:
    by_kind: dict[str, list[WorkRequest]] = {}
    for request in sorted(requests, key=lambda r: r.time):
        by_kind.setdefault(request.kind.value, []).append(request)
    return [_item(kind, group) for kind, group in by_kind.items()]


def _item(kind: str, group: list[WorkRequest]) -> dict[str, Any]:
    whole = any(not r.pool for r in group)
    return {
        "kind": kind,
        "pools": None if whole else _unique(r.pool for r in group),
        "reason": clip("; ".join(_unique(r.reason for r in group if r.reason)), TEXT_LIMIT),
        "actor": next((r.actor for r in group if r.actor), ""),
        "argument": next((r.argument for r in reversed(group) if r.argument), ""),  # the latest one asked
        "rows": [[r.stored_key or r.row_key, r.etag] for r in group],
    }


def _unique(values) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return list(seen.values())


UNREADABLE = "unreadable"  # a kind no worker does: the row is recorded as failed and removed


def unreadable_items(rows: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Rows that are no readable request (RowKey, ETag, why), as items the worker drops, recorded."""
    return [
        {
            "kind": UNREADABLE,
            "pools": None,
            "reason": clip(why, TEXT_LIMIT),
            "actor": "",
            "argument": "",
            "rows": [[key, etag]],
        }
        for key, etag, why in rows
    ]
