"""Where the private half of a rotated node SSH key is kept: the contract, no I/O.

`KeyStore` is what the rotation needs from a store: put a private key away under a name
derived from the cluster, tagged with the public key's fingerprint and the cluster id;
read it back and check it before the cluster is changed; find the version a previous
attempt stored, so that a re-run reuses that key instead of generating a second one.
Two stores implement it: `shared.adapters.keyvault.KeyVaultKeyStore` (Azure Key Vault,
the only one deployed) and `shared.local.keystore.LocalFileKeyStore` (demo only).

Between layers only `StoredKey` (the secret's id, name and version) and fingerprints
travel: never the key. Nothing here puts key material into a message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization

from shared.core.errors import KeyStoreError, OutOfScopeError, shown
from shared.core.models import ClusterRef, Target
from shared.keys import fingerprint

CONTENT_TYPE = "application/x-pem-file"
TAG_FINGERPRINT = "fingerprint"
TAG_CLUSTER_ID = "clusterId"
# Key Vault documents tag values of up to 512 characters (about-secrets, "Secret tags"); an
# earlier version of that page said 256. A cluster id can be 273 characters (a 90-character
# resource group, a 63-character name), so ids longer than the smaller bound are tagged with
# their digest instead, written `sha256:<hex of the lowercased id>`.
MAX_TAG_VALUE = 256
CLUSTER_DIGEST_PREFIX = "sha256:"
# Secret names: 1-127 letters, digits and dashes (about-keys-secrets-certificates).
SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_NAME_DIGEST_CHARS = 16  # 64 bits of the normalised cluster id: tells apart same-named clusters
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")  # as `ssh-keygen -l` prints it
FINGERPRINT_RULE = "'SHA256:' and 43 base64 characters, as `ssh-keygen -l` prints it"
# Lines of a PEM body at least this long count as key material when looking for leaks.
_MATERIAL_LINE = 16


@dataclass(frozen=True)
class StoredKey:
    """One stored version of a cluster's private key: JSON-safe, holds no key material.

    `secret_id` is the store's full id of that version (Key Vault:
    `https://<vault>/secrets/<name>/<version>`; local store: a `file://` URI).
    """

    secret_id: str
    name: str
    version: str


class KeyStore(Protocol):
    """What the rotation needs from a private-key store."""

    def store_private_key(self, cluster_id: str, private_key_pem: str, fingerprint: str) -> StoredKey:
        """Store a new version for the cluster; refuses a key whose fingerprint is not `fingerprint`."""
        ...

    def verify_stored(self, stored: StoredKey, fingerprint: str) -> None:
        """Read `stored` back; `KeyStoreError` unless it holds the private key of `fingerprint`."""
        ...

    def find_by_fingerprint(self, cluster_id: str, fingerprint: str) -> StoredKey | None:
        """The newest stored version for the cluster tagged with `fingerprint`, or None."""
        ...

    def describe(self) -> str:
        """One line saying which store this is, for logs and CLI output."""
        ...


def cluster_of(cluster_id: str) -> ClusterRef:
    """The cluster an id names; `OutOfScopeError` for anything but a managed-cluster id."""
    target = Target.from_id(cluster_id)
    if target.pool is not None:
        raise OutOfScopeError(f"{shown(cluster_id, 300)} is an agent pool id; a node SSH key belongs to the cluster")
    return target.cluster


def secret_name(cluster: ClusterRef) -> str:
    """`ssh-<cluster name>-<16 hex of sha256(normalised id)>`: readable, deterministic, and
    distinct for same-named clusters in other groups or subscriptions. At most 84 characters."""
    readable = cluster.name.lower().replace("_", "-")  # AKS names allow `_`, secret names do not
    return f"ssh-{readable}-{_digest(cluster)[:_NAME_DIGEST_CHARS]}"


def cluster_tag(cluster: ClusterRef) -> str:
    """The `clusterId` tag: the id itself, or `sha256:<hex>` when it exceeds `MAX_TAG_VALUE`."""
    return cluster.id if len(cluster.id) <= MAX_TAG_VALUE else CLUSTER_DIGEST_PREFIX + _digest(cluster)


def key_tags(cluster: ClusterRef, fingerprint: str) -> dict[str, str]:
    return {TAG_FINGERPRINT: fingerprint, TAG_CLUSTER_ID: cluster_tag(cluster)}


def tags_match(tags: Mapping[str, str] | None, cluster: ClusterRef, fingerprint: str) -> bool:
    """Whether a version's tags say it is this cluster's key of `fingerprint` (ids compare
    case-insensitively, as ARM ids do)."""
    tags = tags or {}
    return (
        tags.get(TAG_FINGERPRINT) == fingerprint
        and (tags.get(TAG_CLUSTER_ID) or "").lower() == cluster_tag(cluster).lower()
    )


def check_fingerprint(fingerprint: object) -> str:
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
        raise KeyStoreError(
            f"fingerprint {shown(fingerprint)} is not an OpenSSH SHA256 fingerprint; expected {FINGERPRINT_RULE}"
        )
    return fingerprint


def private_key_fingerprint(private_key_pem: str) -> str:
    """The OpenSSH SHA256 fingerprint of the public half of a PEM private key (PKCS#8, PKCS#1
    or OpenSSH format, unencrypted): `SHA256:` + unpadded base64 of the SHA-256 of the public
    key's SSH wire blob, exactly as `ssh-keygen -l` prints it.

    `KeyStoreError` (saying what was expected, never showing the text) when it is not one.
    """
    data = private_key_pem.encode() if isinstance(private_key_pem, str) else b""
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
        blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except Exception:  # any parse failure; the parser's text is not shown (it could quote the key)
        raise KeyStoreError(
            "the value is not an unencrypted PEM private key (PKCS#8, PKCS#1 or OpenSSH) with an SSH public half"
        ) from None
    return fingerprint(blob.decode())


def fingerprint_checked(private_key_pem: str, fingerprint_of: Callable[[str], str] = private_key_fingerprint) -> str:
    """`fingerprint_of(private_key_pem)`, any failure as a `KeyStoreError` that neither
    shows nor chains the parser's error (its text could quote the key)."""
    try:
        return fingerprint_of(private_key_pem)
    except KeyStoreError:
        raise
    except Exception:  # a supplied parser's message could quote the value
        raise KeyStoreError("the value is not a private key") from None


def check_stored(
    stored: StoredKey,
    fingerprint: str,
    *,
    value: str | None,
    tags: Mapping[str, str] | None,
    content_type: str | None,
    where: str,
    fingerprint_of: Callable[[str], str] = private_key_fingerprint,
) -> None:
    """Raise `KeyStoreError` unless a read-back version holds the private key of `fingerprint`,
    tagged so and typed as PEM. `where` names the store and secret in the message."""
    found = (tags or {}).get(TAG_FINGERPRINT)
    if found != fingerprint:
        raise KeyStoreError(
            f"{where} version {stored.version} is tagged with fingerprint {shown(found)}, expected {fingerprint}"
        )
    if content_type != CONTENT_TYPE:
        raise KeyStoreError(
            f"{where} version {stored.version} has content type {shown(content_type)}, expected {CONTENT_TYPE}"
        )
    try:
        actual = fingerprint_checked(value or "", fingerprint_of)
    except KeyStoreError as e:
        raise KeyStoreError(f"{where} version {stored.version}: {e}") from None
    if actual != fingerprint:
        raise KeyStoreError(
            f"{where} version {stored.version} holds the private key of {actual}, not of {fingerprint}: "
            "the tag and the value disagree"
        )


def contains_key_material(text: str, private_key_pem: str | None) -> bool:
    """Whether `text` quotes the key: the whole PEM or any substantial line of its body."""
    if not private_key_pem or not text:
        return False
    lines = [line.strip() for line in private_key_pem.splitlines() if not line.startswith("-----")]
    return private_key_pem in text or any(len(line) >= _MATERIAL_LINE and line in text for line in lines)


def _digest(cluster: ClusterRef) -> str:
    return hashlib.sha256(cluster.key.encode()).hexdigest()
