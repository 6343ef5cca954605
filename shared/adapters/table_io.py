"""What every part of the Table Storage adapter shares: the table names, the SDK's typing of
entities, writes cut into transactions, and `azure.core` exceptions turned into the warden's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty

from shared.core.errors import StoreConflictError, StoreError, StoreNotFoundError
from shared.core.records import from_entity

POOL_STATE_TABLE = "WardenPoolState"
AUDIT_TABLE = "WardenAudit"
NODE_CHECKS_TABLE = "WardenNodeChecks"
KEY_ROTATIONS_TABLE = "WardenKeyRotations"
REQUESTS_TABLE = "WardenRequests"
SLOTS_TABLE = "WardenSlots"
EXEMPTIONS_TABLE = "WardenExemptions"
TABLES = (
    POOL_STATE_TABLE,
    AUDIT_TABLE,
    NODE_CHECKS_TABLE,
    KEY_ROTATIONS_TABLE,
    REQUESTS_TABLE,
    SLOTS_TABLE,
    EXEMPTIONS_TABLE,
)
# Table Storage's limit per transaction; Azurite fails obscurely past it, so it is checked here.
MAX_TRANSACTION_OPERATIONS = 100
UNCHANGED = MatchConditions.IfNotModified  # a conditional write's `match_condition`

_R = TypeVar("_R")


def transactions(operations: list[tuple]) -> Iterator[list[tuple]]:
    """Group operations by partition (keeping their order) and cut each group into chunks."""
    by_partition: dict[str, list[tuple]] = {}
    for operation in operations:
        by_partition.setdefault(operation[1]["PartitionKey"], []).append(operation)
    for group in by_partition.values():
        for start in range(0, len(group), MAX_TRANSACTION_OPERATIONS):
            yield group[start : start + MAX_TRANSACTION_OPERATIONS]


def find_row(entities: list, row_key: str) -> Any:
    return next((e for e in entities if e["RowKey"] == row_key), None)


def if_match(entity: Any) -> dict[str, Any]:
    """The keywords of a write (or a transaction's operation) that only goes over this very row."""
    return {"etag": entity.metadata["etag"], "match_condition": MatchConditions.IfNotModified}


def chronological(entities: list, cluster_key: str | None) -> list:
    """One partition is already in RowKey (time) order; several need merging by RowKey."""
    return entities if cluster_key is not None else sorted(entities, key=lambda entity: entity["RowKey"])


def sdk_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """Every int as Edm.Int64: one type per column, and values above 2**31 survive."""
    return {
        name: EntityProperty(value, EdmType.INT64) if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in entity.items()
    }


def record_of(kind: type[_R], entity: Any, **extra: Any) -> _R:
    plain = {name: value.value if isinstance(value, EntityProperty) else value for name, value in entity.items()}
    try:
        return from_entity(kind, plain, **extra)
    except ValueError as error:
        raise StoreError(str(error)) from error


@contextmanager
def translated(action: str) -> Iterator[None]:
    """SDK errors -> warden errors. 409/412 only arise from conditional writes (create-if-absent,
    If-Match, transaction inserts): someone else wrote first."""
    try:
        yield
    except ResourceNotFoundError as error:
        raise StoreNotFoundError(f"{action}: not found ({describe(error)})") from error
    except HttpResponseError as error:
        if error.status_code in (409, 412):
            raise StoreConflictError(f"{action}: changed concurrently ({describe(error)})") from error
        raise StoreError(f"{action} failed: {describe(error)}") from error
    except AzureError as error:
        raise StoreError(f"{action} failed: {error}") from error


def describe(error: HttpResponseError) -> str:
    code = getattr(error, "error_code", None)
    code = getattr(code, "value", code) or "no error code"  # the SDK's TableErrorCode is an Enum
    lines = (error.message or "").strip().splitlines()
    return f"HTTP {error.status_code} {code}" + (f": {lines[0]}" if lines else "")
