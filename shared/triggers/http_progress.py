"""What an orchestration is doing now, for `GET /api/status/{instanceId}`.

Each level of cluster work names the child it is waiting on in its custom status
(`instanceId`): the cluster's worker -> the work item (reconcile, verify, rotate-keys) -> the
pool being reconciled, which says its step. The status follows that chain while it runs, so
one call shows which pool and which step, however deep.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp

# The Durable client's transport errors: the task hub is out of reach.
UNREACHABLE = (OSError, asyncio.TimeoutError, aiohttp.ClientError)
ACTIVE = ("Pending", "Running", "ContinuedAsNew")
MAX_LEVELS = 3  # worker -> work item -> pool


async def instance_status(client, instance_id: str) -> dict[str, Any] | None:
    """The instance's status, output and progress; None when the task hub knows no such instance.
    Raises one of `UNREACHABLE` when the task hub cannot be asked."""
    status = await _status(client, instance_id)
    if status is None:
        return None
    levels = [_level(status)]
    child = _running_child(status)
    while child and len(levels) < MAX_LEVELS:
        try:
            status = await _status(client, child)
        except UNREACHABLE:  # the first answer stands; the rest of the chain is missing
            break
        if status is None:
            break
        levels.append(_level(status))
        child = _running_child(status)
    top = levels[0]
    return {
        **top,
        "createdTime": _time(levels[0]["createdTime"]),
        "lastUpdatedTime": _time(levels[0]["lastUpdatedTime"]),
        "progress": _progress(levels),
    }


async def _status(client, instance_id: str) -> Any | None:
    status = await client.get_status(instance_id)
    return None if status is None or status.runtime_status is None else status


def _level(status: Any) -> dict[str, Any]:
    return {
        "instanceId": status.instance_id,
        "name": status.name,
        "runtimeStatus": _runtime_status(status),
        "createdTime": status.created_time,
        "lastUpdatedTime": status.last_updated_time,
        "customStatus": status.custom_status,
        "output": status.output,
    }


def _runtime_status(status: Any) -> str:
    return str(getattr(status.runtime_status, "value", status.runtime_status))


def _running_child(status: Any) -> str | None:
    """The child a running orchestration waits on, if its custom status names one."""
    custom = status.custom_status
    child = custom.get("instanceId") if isinstance(custom, dict) else None
    if _runtime_status(status) not in ACTIVE or not isinstance(child, str) or child == status.instance_id:
        return None
    return child


def _progress(levels: list[dict[str, Any]]) -> dict[str, Any]:
    """The work, pool and step from the deepest level that says them, and the chain itself."""
    said: dict[str, Any] = {}
    for level in levels:
        custom = level["customStatus"] if isinstance(level["customStatus"], dict) else {}
        said.update({key: custom[key] for key in ("work", "pool", "step") if custom.get(key)})
    return {
        "work": said.get("work"),
        "pool": said.get("pool"),
        "step": said.get("step"),
        "instances": [
            {key: level[key] for key in ("instanceId", "name", "runtimeStatus", "customStatus")} for level in levels
        ],
    }


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
