"""Event Grid deliveries of Azure Resource Manager events, turned into reconcile targets. No I/O.

A delivery is one event or a JSON array of events, in the Event Grid schema or CloudEvents 1.0.
`parse_delivery` reads it into `RawEvent`s (CloudEvents with the SDK's parser; an Event Grid event's
fields are checked here, its time read as RFC 3339); `classify` turns each into
a `Hint` (a cluster or pool worth reconciling) or a `Drop` (with the reason, for the audit trail);
duplicates collapse in the requests table, one row per target. Events are only hints: the reconcile re-reads
the state, so duplicate, late and self-caused events all end as no-ops.

The Functions Event Grid trigger hands over one `func.EventGridEvent` at a time; pass its fields as
an Event Grid schema dict (`id`, `subject`, `eventType`, `eventTime`, `data`, `dataVersion`, `topic`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.core.errors import OutOfScopeError, WardenError, shown
from shared.core.models import Target

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
ACTION_SUCCESS = "Microsoft.Resources.ResourceActionSuccess"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
EVENT_GRID_SCHEMA = "EventGridSchema"
CLOUD_EVENT_SCHEMA = "CloudEventSchema"

_AKS = "microsoft.containerservice/managedclusters"
_WRITES = frozenset({f"{_AKS}/write", f"{_AKS}/agentpools/write"})
# Actions after which the pool may need (another) look: a started cluster can now be written,
# an aborted operation may have stopped half-way, a node-image upgrade replaces the nodes.
_RECHECK_ACTIONS = frozenset(
    {
        f"{_AKS}/start/action",
        f"{_AKS}/abort/action",
        f"{_AKS}/agentpools/abort/action",
        f"{_AKS}/agentpools/upgradenodeimageversion/action",
    }
)

_OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_APP_ID_CLAIMS = ("appid", "azp")
# The first present one names the caller in the audit trail; the rest of the claims are never kept.
_CALLER_CLAIMS = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "name",
    *_APP_ID_CLAIMS,
    *_OBJECT_ID_CLAIMS,
)

# ARM events nest a few levels (data.authorization.evidence); 64 is also the default maximum
# depth of System.Text.Json. Deeper is not an ARM event, and it would only feed recursion.
MAX_DEPTH = 64

# RFC 3339 `date-time`, as Event Grid writes `eventTime` (2018-07-19T18:38:04.6117357Z). The offset
# may be missing, as the SDK's own reader allowed: the Functions worker hands such a time on naive.
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_CLOUD_EVENT_FIELDS = ("id", "source", "type", "specversion", "time", "subject", "datacontenttype", "dataschema")


class EventError(WardenError, ValueError):
    """A delivery or an event that cannot be read; the message names where and what is wrong."""


@dataclass(frozen=True)
class RawEvent:
    """One event of a delivery, read but not yet judged. `problem` is set when it could not be
    read (the other fields are then best effort); `classify` turns it into a `Drop`."""

    index: int
    schema: str
    id: str
    type: str
    subject: str = ""
    time: datetime | None = None
    data: Any = field(default=None, hash=False)
    problem: str = ""


@dataclass(frozen=True)
class Hint:
    """A target worth reconciling, and the event that named it. `own_write`: the event reports
    one of the warden's own writes, so the caller starts no new work for it."""

    target: Target
    event_id: str
    event_type: str
    operation: str
    correlation_id: str = ""
    caller: str = ""
    event_time: str = ""
    own_write: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": "hint",
            "cluster": self.target.cluster.id,
            "pool": self.target.pool,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "operation": self.operation,
            "correlation_id": self.correlation_id,
            "caller": self.caller,
            "event_time": self.event_time,
            "own_write": self.own_write,
        }


@dataclass(frozen=True)
class Drop:
    """An event the warden ignores, and why."""

    event_id: str
    reason: str
    event_type: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"outcome": "drop", "event_id": self.event_id, "event_type": self.event_type, "reason": self.reason}


# --- reading ------------------------------------------------------------------------------------


def parse_delivery(body: bytes | str | list | dict) -> list[RawEvent]:
    """The events of one delivery, in order. Raises `EventError` only when the delivery as a whole
    is unreadable; an unreadable event among others comes back with its `problem` set."""
    events = decode_delivery(body) if isinstance(body, (bytes, bytearray, str)) else _as_list(body)
    return [_read(item, index) for index, item in enumerate(events)]


def decode_delivery(body: bytes | bytearray | str) -> list[Any]:
    """A delivery's JSON text (UTF-8 bytes or text) as its list of event documents, not yet read;
    `EventError` saying why for text that is not UTF-8, not JSON, or nests too deeply."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        document = json.loads(text)
    except RecursionError as e:  # json's answer to deep nesting (e.g. "[" * 100000)
        raise EventError(
            "delivery is not JSON the warden reads: it nests far too deeply (an ARM event: a few levels)"
        ) from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EventError(f"delivery is not JSON ({e}); expected an event object or an array of events") from e
    return _as_list(document)


def _as_list(document: Any) -> list[Any]:
    if isinstance(document, Mapping):
        return [document]
    if isinstance(document, list):
        return document
    raise EventError(f"delivery is a JSON {_json_kind(document)}; expected an event object or an array of events")


def parse_event(item: Any, index: int = 0) -> RawEvent:
    """One event in either schema; raises `EventError` naming the index and the bad field."""
    where = f"event [{index}]"
    if not isinstance(item, Mapping):
        raise EventError(f"{where} is a JSON {_json_kind(item)}; expected an object")
    if _deeper_than(item, MAX_DEPTH):
        raise EventError(f"{where} nests deeper than {MAX_DEPTH} levels; an ARM event nests a few")
    if "specversion" in item or "specVersion" in item:
        return _cloud_event(item, where, index)
    if "eventType" in item:
        return _event_grid_event(item, where, index)
    keys = shown(", ".join(sorted(str(k) for k in item)[:8]) or "none")
    raise EventError(
        f"{where} is neither Event Grid schema (no 'eventType') nor CloudEvents 1.0 (no 'specversion'); keys: {keys}"
    )


def _read(item: Any, index: int) -> RawEvent:
    try:
        return parse_event(item, index)
    except EventError as e:
        found = item if isinstance(item, Mapping) else {}
        event_id = found.get("id") if isinstance(found.get("id"), str) else ""
        event_type = next((found[k] for k in ("eventType", "type") if isinstance(found.get(k), str)), "")
        return RawEvent(index, "", event_id, event_type, problem=str(e))


def _event_grid_event(item: Mapping[str, Any], where: str, index: int) -> RawEvent:
    _require_text(item, where, "id", "eventType", "eventTime")
    _require_string(item, where, "subject")
    _optional_string(item, where, "topic", "dataVersion")
    if "data" not in item:
        raise EventError(f"{where} ({shown(item['id'])}) has no 'data'; an Event Grid event always carries one")
    # The fields are checked above and the time here: the SDK's `EventGridEvent.from_dict` read no
    # more, at about ten times the cost of the event's JSON parse (1 us here). `data` is taken as it is.
    try:
        time = _rfc3339(item["eventTime"])
    except ValueError as e:
        raise EventError(_bad_time(where, item, "eventTime")) from e
    return RawEvent(index, EVENT_GRID_SCHEMA, item["id"], item["eventType"], item["subject"], time, item["data"])


def _rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (see `_RFC3339`); `ValueError` for anything else or a field out of range."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    day, clock, fraction, offset = match.groups()
    fraction = f".{fraction[:6].ljust(6, '0')}" if fraction else ""  # datetime keeps microseconds
    offset = "+00:00" if offset in ("Z", "z") else offset or ""
    return datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}")


def _cloud_event(item: Mapping[str, Any], where: str, index: int) -> RawEvent:
    # ResourceWriteFailure samples spell it `specVersion`; the SDK would take that for a
    # (badly named) extension attribute and refuse it.
    fields = {k: v for k, v in item.items() if k != "specVersion"}
    fields.setdefault("specversion", item.get("specVersion"))
    if fields["specversion"] != "1.0":
        raise EventError(f"{where} has specversion {shown(fields['specversion'])}; expected '1.0' (CloudEvents 1.0)")
    _require_text(fields, where, "id", "type", "source")
    _optional_string(fields, where, "subject", "time", "datacontenttype", "dataschema")
    from azure.core.messaging import CloudEvent  # only kept CloudEvents need it: not loaded at start-up

    try:
        event = CloudEvent.from_dict({k: fields[k] for k in _CLOUD_EVENT_FIELDS if k in fields})
    except (ValueError, TypeError, AttributeError, IndexError) as e:  # raised while reading `time`
        raise EventError(_bad_time(where, fields, "time")) from e
    return RawEvent(index, CLOUD_EVENT_SCHEMA, event.id, event.type, event.subject or "", event.time, item.get("data"))


def _require_text(item: Mapping[str, Any], where: str, *names: str) -> None:
    for name in names:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            got = "is missing" if name not in item else f"is {shown(value)}"
            raise EventError(f"{where}: '{name}' {got}; expected a non-empty string")


def _require_string(item: Mapping[str, Any], where: str, name: str) -> None:
    if not isinstance(item.get(name), str):
        got = "is missing" if name not in item else f"is {shown(item[name])}"
        raise EventError(f"{where}: '{name}' {got}; expected a string (the resource id)")


def _optional_string(item: Mapping[str, Any], where: str, *names: str) -> None:
    for name in names:
        if item.get(name) is not None and not isinstance(item[name], str):
            raise EventError(f"{where}: '{name}' is {shown(item[name])}; expected a string")


def _bad_time(where: str, item: Mapping[str, Any], name: str) -> str:
    return f"{where}: '{name}' is {shown(item.get(name))}; expected an RFC 3339 time like 2018-07-19T18:38:04.6117357Z"


_SCALARS = (str, int, float, type(None))  # bool is an int


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether JSON data nests deeper than `limit` levels; iterative, so depth cannot hurt."""
    if not isinstance(document, (Mapping, list)):
        return False
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        for child in value.values() if isinstance(value, Mapping) else value:
            if isinstance(child, _SCALARS):  # nearly every value: checked first, the Mapping check is slow
                continue
            if isinstance(child, (Mapping, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _json_kind(value: Any) -> str:
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null", list: "array"}
    return kinds.get(type(value), type(value).__name__)


# --- judging ------------------------------------------------------------------------------------


def classify(
    event: RawEvent | Mapping[str, Any], subscriptions: frozenset[str], own_principal_ids: frozenset[str]
) -> Hint | Drop:
    """A `Hint` for a successful write (or re-check-worthy action) on an AKS cluster or pool in one
    of `subscriptions`; a `Drop` with the reason for anything else. A mapping is parsed first;
    raises `EventError` only for an event that cannot be read or whose `data` is not an object."""
    if isinstance(event, Mapping) and (reason := screen(event)):
        return Drop(_text(event.get("id")), reason, _text(event.get("eventType") or event.get("type")))
    raw = event if isinstance(event, RawEvent) else parse_event(event)
    if raw.problem:
        return Drop(raw.id, raw.problem, raw.type)
    reason = _ignored_type(raw.type)
    if reason:
        return Drop(raw.id, reason, raw.type)
    if not isinstance(raw.data, Mapping):
        raise EventError(f"event [{raw.index}] ({shown(raw.id)}): 'data' is {shown(raw.data)}; expected an object")
    operation = _text(raw.data.get("operationName"))
    reason = _ignored_operation(raw.type, operation)
    if reason:
        return Drop(raw.id, reason, raw.type)
    return _target_hint(raw, operation, subscriptions, own_principal_ids)


def screen(item: Mapping[str, Any]) -> str:
    """Why an event is dropped, judged from its type and operation name alone ("" when it has to
    be read in full). A subscription's system topic delivers every ARM write and action in it,
    nearly all of them not about AKS: those are dropped here, before any SDK object is built
    (which costs more than the JSON parse itself). Every kept event is read and checked in full."""
    event_type = item.get("eventType", item.get("type"))
    if not isinstance(event_type, str) or not event_type.strip():
        return ""  # unreadable: the full read says what is wrong
    if reason := _ignored_type(event_type):
        return reason
    data = item.get("data")
    operation = data.get("operationName") if isinstance(data, Mapping) else None
    return _ignored_operation(event_type, operation) if isinstance(operation, str) and operation else ""


def _ignored_type(event_type: str) -> str:
    if event_type == SUBSCRIPTION_VALIDATION:
        return "subscription validation handshake: the Event Grid trigger answers it; nothing to reconcile"
    if event_type == DELETE_SUCCESS:
        return "a deleted resource leaves nothing to enforce"
    if event_type not in (WRITE_SUCCESS, ACTION_SUCCESS):
        # Going by the type alone: failure events may carry data.status "Succeeded".
        return f"event type {shown(event_type)} is neither {WRITE_SUCCESS} nor {ACTION_SUCCESS}"
    return ""


def _ignored_operation(event_type: str, operation: str) -> str:
    name = operation.lower()
    if event_type == WRITE_SUCCESS and (not name or name in _WRITES):
        return ""  # without an operation name, the subject decides
    if event_type == ACTION_SUCCESS and name in _RECHECK_ACTIONS:
        return ""
    if not name:
        return "action event without data.operationName: cannot tell which action ran"
    return f"operation {shown(operation)} cannot change the SSH access of an AKS pool"


def _target_hint(
    raw: RawEvent, operation: str, subscriptions: frozenset[str], own_principal_ids: frozenset[str]
) -> Hint | Drop:
    resource_id = raw.subject or _text(raw.data.get("resourceUri"))
    try:
        target = Target.from_id(resource_id)
    except OutOfScopeError as e:
        return Drop(raw.id, str(e), raw.type)
    if target.cluster.subscription not in {s.lower() for s in subscriptions}:
        return Drop(raw.id, f"subscription {target.cluster.subscription} not in WARDEN_SUBSCRIPTIONS", raw.type)
    claims = raw.data.get("claims")
    claims = claims if isinstance(claims, Mapping) else {}
    return Hint(
        target=target,
        event_id=raw.id,
        event_type=raw.type,
        operation=operation,
        correlation_id=_text(raw.data.get("correlationId")),
        caller=next((_text(claims.get(k)) for k in _CALLER_CLAIMS if _text(claims.get(k))), ""),
        event_time=raw.time.isoformat() if raw.time else "",
        own_write=_is_own_write(claims, own_principal_ids),
    )


def _is_own_write(claims: Mapping[str, Any], own_principal_ids: frozenset[str]) -> bool:
    own = {p.lower() for p in own_principal_ids}
    principals = {_text(claims.get(k)).lower() for k in (*_OBJECT_ID_CLAIMS, *_APP_ID_CLAIMS)}
    return bool(own & (principals - {""}))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
