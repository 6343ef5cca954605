"""Rotated private keys in Azure Key Vault, through azure-keyvault-secrets' `SecretClient`.

One secret per cluster (`shared.keys.key_store.secret_name`), a new version per stored key,
tagged `fingerprint` and `clusterId`, content type `application/x-pem-file`.

Credentials follow the loopback rule of the other adapters: a loopback vault URL is a local
stand-in (a fixed local token; the SDK's check that the challenge's resource domain matches
the vault's domain is off, since `127.0.0.1` can never match `vault.azure.net`; a
`connection_verify` CA file may be given for its self-signed certificate). Any other URL
gets `DefaultAzureCredential` and the SDK's full checks: https only, challenge resource
verified, system trust store. The warden's identity needs `Key Vault Secrets Officer` (get,
list, set) on the vault.

The private key is never logged nor put into an error: SDK errors are translated into
`KeyStoreError` from the service's code and message, withheld whole if they quote the key;
`logging_enable` (which logs request bodies) is refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient

from shared.config.endpoints import parse_endpoint
from shared.core.errors import ConfigError, KeyStoreError, shown
from shared.keys.key_store import (
    CONTENT_TYPE,
    StoredKey,
    check_fingerprint,
    check_stored,
    cluster_of,
    contains_key_material,
    fingerprint_checked,
    key_tags,
    private_key_fingerprint,
    secret_name,
    tags_match,
)

logger = logging.getLogger(__name__)

LOCAL_KEYVAULT_TOKEN = "warden-local-keyvault"
REQUIRED_ROLE = "Key Vault Secrets Officer (secrets get, list and set)"
# An activity must not hang for the SDK's default 300 s read timeout.
_DEFAULT_TIMEOUTS = {"connection_timeout": 10, "read_timeout": 30}
_WITHHELD = "(the service's message is withheld: it quoted key material)"


class LocalKeyVaultCredential:
    """A fixed token for a loopback Key Vault stand-in; never used for any other host."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(LOCAL_KEYVAULT_TOKEN, int(time.time()) + 3600)

    def close(self) -> None:
        pass


class KeyVaultKeyStore:
    """A `shared.keys.key_store.KeyStore` on one vault.

    `client_kwargs` go to `SecretClient` (e.g. `retry_total`, timeouts, and for a loopback
    vault only `connection_verify=<CA file>`). `fingerprint_of_private_pem` computes the
    fingerprint a read-back key must have (OpenSSH SHA256 by default).
    """

    def __init__(
        self,
        vault_url: str,
        credential: Any = None,
        *,
        fingerprint_of_private_pem: Callable[[str], str] = private_key_fingerprint,
        **client_kwargs: Any,
    ):
        self.vault_url = str(vault_url or "").rstrip("/")
        self.local = _checked_vault_url(self.vault_url)
        self._fingerprint_of = fingerprint_of_private_pem
        if client_kwargs.get("logging_enable"):
            raise ValueError("logging_enable logs request bodies, which hold the private key; it is refused here")
        if not self.local:
            for option in ("connection_verify", "verify_challenge_resource"):
                if option in client_kwargs:
                    raise ValueError(f"{option} may only be changed for a loopback (local) vault, not {self.vault_url}")
        self._owned_credential = None
        if credential is None:
            credential = self._default_credential()
        options = {**_DEFAULT_TIMEOUTS, **client_kwargs}
        if self.local:
            # The loopback stand-in answers the real challenge (resource https://vault.azure.net),
            # whose domain a loopback host cannot match.
            options["verify_challenge_resource"] = False
        self._client = SecretClient(self.vault_url, credential, **options)

    def _default_credential(self) -> Any:
        if self.local:
            return LocalKeyVaultCredential()
        from azure.identity import DefaultAzureCredential

        self._owned_credential = DefaultAzureCredential()
        return self._owned_credential

    def describe(self) -> str:
        return f"Azure Key Vault {self.vault_url}"

    def check(self) -> None:
        """One read of the vault as the identity (the first page of secret names, no value):
        raises `KeyStoreError` when the vault does not answer it."""
        try:
            next(iter(self._client.list_properties_of_secrets(max_page_size=1)), None)
        except AzureError as e:
            raise self._error("listing its secrets", e) from e

    def store_private_key(self, cluster_id: str, private_key_pem: str, fingerprint: str) -> StoredKey:
        """A new version of the cluster's secret holding `private_key_pem`. Refused, with
        nothing written, unless the key's public half has `fingerprint`."""
        cluster = cluster_of(cluster_id)
        check_fingerprint(fingerprint)
        actual = fingerprint_checked(private_key_pem, self._fingerprint_of)
        if actual != fingerprint:
            raise KeyStoreError(f"refusing to store: the private key's fingerprint is {actual}, not {fingerprint}")
        name = secret_name(cluster)
        try:
            secret = self._client.set_secret(
                name, private_key_pem, tags=key_tags(cluster, fingerprint), content_type=CONTENT_TYPE
            )
        except (AzureError, ValueError) as e:
            raise self._error(f"storing the private key of {cluster} as secret {name}", e, private_key_pem) from (
                None if contains_key_material(str(e), private_key_pem) else e
            )
        stored = StoredKey(secret.id or "", secret.name or name, secret.properties.version or "")
        logger.info(
            "stored the private key of %s (%s) in %s as %s", cluster, fingerprint, self.describe(), stored.secret_id
        )
        return stored

    def verify_stored(self, stored: StoredKey, fingerprint: str) -> None:
        """Read the exact version back (name + version) and check its tag, content type and
        that its value is the private key of `fingerprint`."""
        check_fingerprint(fingerprint)
        where = f"secret {stored.name} in {self.describe()}"
        if not stored.secret_id.lower().startswith(f"{self.vault_url.lower()}/secrets/"):
            raise KeyStoreError(f"{where}: the stored id {shown(stored.secret_id, 200)} is not in this vault")
        try:
            secret = self._client.get_secret(stored.name, stored.version)
        except ResourceNotFoundError as e:
            raise KeyStoreError(
                f"{where} version {stored.version} was not found (deleted, or never stored)", status=404, code=_code(e)
            ) from e
        except (AzureError, ValueError) as e:
            raise self._error(f"reading back {where} version {stored.version}", e) from e
        if (secret.id or "").lower() != stored.secret_id.lower():
            raise KeyStoreError(f"{where}: asked for {stored.secret_id}, the vault answered {shown(secret.id, 200)}")
        check_stored(
            stored,
            fingerprint,
            value=secret.value,
            tags=secret.properties.tags,
            content_type=secret.properties.content_type,
            where=where,
            fingerprint_of=self._fingerprint_of,
        )

    def find_by_fingerprint(self, cluster_id: str, fingerprint: str) -> StoredKey | None:
        """The newest enabled version of the cluster's secret tagged with `fingerprint` and
        the cluster, or None (also when the secret does not exist). Lists versions: no values."""
        cluster = cluster_of(cluster_id)
        check_fingerprint(fingerprint)
        name = secret_name(cluster)
        try:
            versions = [
                p
                for p in self._client.list_properties_of_secret_versions(name)
                if p.enabled is not False
                and p.content_type == CONTENT_TYPE
                and tags_match(p.tags, cluster, fingerprint)
            ]
        except ResourceNotFoundError:
            return None
        except (AzureError, ValueError) as e:
            raise self._error(f"listing the versions of secret {name} in {self.describe()}", e) from e
        if not versions:
            return None
        newest = max(versions, key=lambda p: (p.created_on.timestamp() if p.created_on else 0.0, p.version or ""))
        return StoredKey(newest.id or "", newest.name or name, newest.version or "")

    def _error(self, action: str, e: Exception, private_key_pem: str | None = None) -> KeyStoreError:
        """`e` as a `KeyStoreError`: what was being done, the service's status, code and
        message, and what would help. Never the key: a message that quotes it is withheld."""
        if isinstance(e, HttpResponseError) and e.status_code is not None:
            status = e.status_code
            code, message = _service_error(e)
            if contains_key_material(message, private_key_pem):
                message = _WITHHELD
            retryable = status == 429 or status >= 500
            hint = ""
            if status in (401, 403):
                hint = f"; the warden's identity needs the role {REQUIRED_ROLE} on the vault"
            elif retryable:
                hint = "; retry later"
            answer = f"{status} {code}" if code else str(status)
            return KeyStoreError(
                f"{action} failed: {self.describe()} answered {answer}: {message}{hint}",
                status=status,
                code=code,
                retryable=retryable,
                retry_after=_retry_after(e),
            )
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        if contains_key_material(str(e), private_key_pem):
            text = _WITHHELD
        if isinstance(e, ClientAuthenticationError):  # the credential could not get a token
            return KeyStoreError(f"{action} failed: no token for {self.describe()}: {text}")
        if "CERTIFICATE_VERIFY_FAILED" in str(e):
            return KeyStoreError(f"{action} failed: the TLS certificate of {self.describe()} is not trusted: {text}")
        if isinstance(e, (ServiceRequestError, ServiceResponseError)):
            return KeyStoreError(f"{action} failed: could not reach {self.describe()}: {text}", retryable=True)
        return KeyStoreError(f"{action} failed: {text}")

    def close(self) -> None:
        self._client.close()
        if self._owned_credential is not None:
            self._owned_credential.close()

    def __enter__(self) -> KeyVaultKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked_vault_url(url: str) -> bool:
    """True for a loopback vault; `ConfigError` for anything but an https URL."""
    try:
        endpoint = parse_endpoint(url, http_on_loopback=False)
    except ValueError as e:
        raise ConfigError(f"Key Vault URL {shown(url)}: {e}; expected https://<vault>.vault.azure.net") from e
    return endpoint.is_loopback


def _service_error(e: HttpResponseError) -> tuple[str | None, str]:
    """Key Vault's `{"error": {"code", "message"}}`, else the HTTP reason."""
    try:
        error = json.loads(e.response.text())["error"]
        return str(error.get("code") or "") or None, str(error.get("message") or "").strip()
    except Exception:  # any body that is not Key Vault's error shape
        return None, (e.reason or "").strip()


def _code(e: HttpResponseError) -> str | None:
    return _service_error(e)[0]


def _retry_after(e: HttpResponseError) -> float | None:
    try:
        return float(e.response.headers["Retry-After"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
