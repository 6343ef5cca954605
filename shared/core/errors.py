"""The project's error classes.

Adapters translate SDK errors into these, so the layers above never see an SDK type.
Two families matter to callers: `retryable` errors (conflict, throttled, transient) are
retried with backoff; every other `ArmError` is terminal for the pool it concerns.
"""

from __future__ import annotations

# Longest excerpt of a bad value an error message shows: names are at most 90 characters, and
# a message must stay one readable line even when the input is a megabyte.
SHOWN_CHARS = 80


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` for an error message: its repr (quotes, escapes: one line), cut with an ellipsis."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    try:
        text = repr(value)
    except RecursionError:  # a deeply nested list or dict from untrusted JSON
        return f"a deeply nested {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "…"


class WardenError(Exception):
    """Base class of every error the warden raises on purpose."""


class ConfigError(WardenError):
    """A setting or the policy is invalid. The CLI exits 2 and nothing is written."""


class PolicyError(ConfigError):
    """The policy does not validate; `path` is the JSON path of the offending field."""

    def __init__(self, path: str, message: str):
        super().__init__(f"policy {path}: {message}")
        self.path = path
        self.detail = message  # without the path, for a caller that adds where the policy came from


class OutOfScopeError(WardenError):
    """A resource id outside `WARDEN_SUBSCRIPTIONS`, or not an AKS cluster/pool id."""


class KeyMaterialError(WardenError):
    """An SSH key that cannot be used (wrong type, too short, a private key, junk): exit 2 / HTTP 400."""


class StoreError(WardenError):
    """A Table Storage request failed (service error, connection failure, malformed row)."""


class StoreNotFoundError(StoreError):
    """The row (or table) asked for does not exist."""


class StoreConflictError(WardenError):
    """A row changed since it was read (stale ETag): re-read and decide again."""


class Superseded(WardenError):
    """A planned write no longer applies when it is about to go out: the mode switched to
    audit, the subscription left the scope, the policy changed, or the pool already has the
    mode (`done`). Nothing is written."""

    def __init__(self, message: str, *, done: bool = False):
        super().__init__(message)
        self.done = done


class ArmError(WardenError):
    """An Azure Resource Manager request failed. `code`/`message` are ARM's own."""

    retryable = False

    def __init__(self, code: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class NotFoundError(ArmError):
    """404: the cluster, pool or operation is gone."""


class ConflictError(ArmError):
    """409 `OperationNotAllowed`: another operation runs on the cluster; wait for idle, retry."""

    retryable = True


class ThrottledError(ArmError):
    """429: retry after `retry_after` seconds."""

    retryable = True


class TransientError(ArmError):
    """5xx or a connection failure: retry with capped exponential backoff."""

    retryable = True


class PermanentError(ArmError):
    """Any other 4xx: terminal for the pool, recorded with ARM's code and message."""


class CredentialError(PermanentError):
    """No token for ARM: not signed in (`az login`), or no managed identity. Not retried."""


class OperationFailedError(ArmError):
    """A long-running operation ended `Failed` or `Canceled`: terminal for the pool."""


class KeyStoreError(WardenError):
    """Storing, reading back or finding a private key failed (Key Vault or the local store).

    The message names the store, the secret and what went wrong, never the key itself.
    `retryable`: throttled (429), a 5xx or a connection failure; `status`/`code` are the
    service's own when it answered.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
