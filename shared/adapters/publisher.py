"""Outcome events: what the warden did, published to an Event Grid topic as CloudEvents 1.0.

Publishing is a side channel. A delivery failure is logged and reported as `False`, never
raised: it must not fail the remediation it reports on. Only a programming error (an unknown
kind, a subject that is no AKS id, data that is not JSON or holds key material) raises.

Credentials follow the loopback rule of the ARM endpoint: a loopback endpoint is a local test
receiver (a fixed `aeg-sas-key`, plain http allowed); anything else uses `DefaultAzureCredential`
(managed identity on Azure) over https only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient

from shared.config.endpoints import is_loopback_url, parse_endpoint
from shared.core.errors import OutOfScopeError, shown
from shared.core.models import Target

logger = logging.getLogger(__name__)

LOCAL_KEY = "local"
# The SDK passes per-call options on to its CloudEvent model too, which logs a warning for each.
_PER_CALL_OPTIONS = ("retry_total", "connection_timeout", "read_timeout")
_SDK_MODEL_LOGGER = "azure.eventgrid._legacy._generated._serialization"


class OutcomeKind(StrEnum):
    """The CloudEvent `type` of each outcome."""

    REMEDIATED = "Warden.SshAccess.Remediated"
    REMEDIATION_FAILED = "Warden.SshAccess.RemediationFailed"
    UNSUPPORTED = "Warden.SshAccess.Unsupported"
    DRIFT = "Warden.SshAccess.Drift"
    DRIFT_DETECTED = "Warden.SshAccess.DriftDetected"  # on the nodes, by verification
    KEY_ROTATED = "Warden.SshKey.Rotated"
    EXEMPTION_GRANTED = "Warden.SshAccess.ExemptionGranted"  # granted, or changed (renewed)
    EXEMPTION_REMOVED = "Warden.SshAccess.ExemptionRemoved"  # ended early by an operator
    EXEMPTION_EXPIRED = "Warden.SshAccess.ExemptionExpired"


EVENT_GRID_SCOPE = "https://eventgrid.azure.net/.default"  # the audience of Event Grid's data plane


class OutcomePublisher:
    """Publishes outcome events to one Event Grid topic endpoint (`.../api/events`).

    `retries` and `timeout` (seconds, per connect and per read) bound how long a publish can
    hold up its caller; the SDK's defaults allow 10 retries and 300 s per read.
    """

    def __init__(self, endpoint: str, credential: Any = None, *, retries: int = 2, timeout: float = 10.0):
        self.endpoint = _checked_endpoint(endpoint)
        self._owned_credential = None
        self.credential = credential if credential is not None else self._default_credential()
        self._client = EventGridPublisherClient(self.endpoint, self.credential)
        self._options = {"retry_total": retries, "connection_timeout": timeout, "read_timeout": timeout}
        _quiet_per_call_option_warnings()

    def _default_credential(self) -> Any:
        if is_loopback_url(self.endpoint):
            return AzureKeyCredential(LOCAL_KEY)
        from azure.identity import DefaultAzureCredential

        self._owned_credential = DefaultAzureCredential()
        return self._owned_credential

    def publish(
        self, kind: OutcomeKind | str, subject: str, data: Mapping[str, Any], event_id: str | None = None
    ) -> bool:
        """Send one outcome about the cluster or pool `subject` (its resource id); `True` once the
        topic accepted it, `False` (logged) when it could not be delivered. `event_id`: a stable
        id (from the orchestration step), so that subscribers can recognise a redelivery."""
        event = outcome_event(kind, subject, data, event_id)
        try:
            self._client.send([event], **self._options)
        except AzureError as e:
            logger.warning("outcome %s for %s not published to %s: %s", event.type, subject, self.endpoint, e)
            return False
        return True

    def check(self) -> None:
        """Whether the identity can authenticate to the topic, without publishing (a publish is a
        write subscribers see): a key credential is taken as is, a token credential must hand out
        an Event Grid token. Raises `AzureError` when it cannot."""
        if hasattr(self.credential, "get_token"):
            self.credential.get_token(EVENT_GRID_SCOPE)

    def close(self) -> None:
        self._client.close()
        if self._owned_credential is not None:
            self._owned_credential.close()

    def __enter__(self) -> OutcomePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def outcome_event(
    kind: OutcomeKind | str, subject: str, data: Mapping[str, Any], event_id: str | None = None
) -> CloudEvent:
    """The CloudEvent for one outcome; raises `ValueError` for a bad kind, subject or data."""
    try:
        event_type = OutcomeKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in OutcomeKind)
        raise ValueError(f"outcome kind {kind!r} is unknown; expected one of {allowed}") from None
    try:
        Target.from_id(subject)
    except OutOfScopeError as e:
        raise ValueError(f"outcome subject: {e}") from e
    ids = {"id": event_id} if event_id else {}
    return CloudEvent(source=subject, type=event_type.value, subject=subject, data=_checked_data(data), **ids)


def _checked_data(data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"outcome data is a {type(data).__name__}; expected a JSON object (a mapping)")
    try:
        text = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"outcome data is not JSON-serialisable: {e}") from e
    if "PRIVATE KEY" in text:
        raise ValueError("outcome data holds private key material; publish the Key Vault secret id instead")
    return json.loads(text)


def _checked_endpoint(endpoint: str) -> str:
    try:
        parse_endpoint(endpoint or "")  # the same judgement as WARDEN_EVENTS_ENDPOINT's
    except ValueError as e:
        raise ValueError(
            f"Event Grid endpoint {shown(endpoint)}: {e}; expected https://<topic>.<region>-1.eventgrid.azure.net/api/events"
        ) from e
    return endpoint


class _PerCallOptionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and args[0] in _PER_CALL_OPTIONS and "is not a known attribute" in str(record.msg))


def _quiet_per_call_option_warnings() -> None:
    sdk_logger = logging.getLogger(_SDK_MODEL_LOGGER)
    if not any(isinstance(f, _PerCallOptionFilter) for f in sdk_logger.filters):
        sdk_logger.addFilter(_PerCallOptionFilter())
