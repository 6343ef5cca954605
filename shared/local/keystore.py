"""A local file key store: DEMO ONLY, NOT Key Vault, never deployed (`shared/local/` is in
`.funcignore`).

It keeps a rotated private key the way `KeyVaultKeyStore` does — one "secret" per cluster,
a new version per key, tagged with the fingerprint and the cluster id — as plain files on
this machine: `<directory>/<secret name>/<version>.pem` (mode 0600) and `<version>.json`
(its tags), in directories of mode 0700. Files on a disk are not a vault: use it for the
local demo and tests only. Everything it logs says so.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
import uuid
from pathlib import Path

from shared.core.errors import KeyStoreError, shown
from shared.keys.key_store import (
    CONTENT_TYPE,
    StoredKey,
    check_fingerprint,
    check_stored,
    cluster_of,
    key_tags,
    private_key_fingerprint,
    secret_name,
    tags_match,
)

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


class LocalFileKeyStore:
    """A `shared.keys.key_store.KeyStore` in a local directory (demo only, not Key Vault)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory).resolve()
        _private_directory(self.directory, create_parents=True)
        logger.warning("%s: private keys are written to files on this machine", self.describe())

    def describe(self) -> str:
        return f"local file key store (demo only, not Key Vault): {self.directory}"

    def store_private_key(self, cluster_id: str, private_key_pem: str, fingerprint: str) -> StoredKey:
        cluster = cluster_of(cluster_id)
        check_fingerprint(fingerprint)
        actual = private_key_fingerprint(private_key_pem)
        if actual != fingerprint:
            raise KeyStoreError(f"refusing to store: the private key's fingerprint is {actual}, not {fingerprint}")
        name = secret_name(cluster)
        folder = self.directory / name
        _private_directory(folder)
        version = uuid.uuid4().hex
        pem = folder / f"{version}.pem"
        # The key first, its tags last: a version is listed only once both are written.
        _write_private(pem, private_key_pem)
        meta = {"tags": key_tags(cluster, fingerprint), "contentType": CONTENT_TYPE, "created": time.time()}
        _write_private(folder / f"{version}.json", json.dumps(meta, indent=2))
        stored = StoredKey(pem.as_uri(), name, version)
        logger.info("stored the private key of %s (%s) in the %s as %s", cluster, fingerprint, self.describe(), pem)
        return stored

    def verify_stored(self, stored: StoredKey, fingerprint: str) -> None:
        check_fingerprint(fingerprint)
        where = f"secret {stored.name} in the {self.describe()}"
        pem = self._pem_path(stored)
        if stored.secret_id != pem.as_uri():
            raise KeyStoreError(f"{where}: the stored id {shown(stored.secret_id, 200)} is not in this store")
        try:
            value = pem.read_text(encoding="utf-8")
            meta = json.loads(pem.with_suffix(".json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyStoreError(f"{where} version {stored.version} was not found") from None
        except (OSError, ValueError) as e:
            raise KeyStoreError(f"{where} version {stored.version} could not be read: {type(e).__name__}") from None
        mode = stat.S_IMODE(pem.stat().st_mode)
        if mode != FILE_MODE:
            raise KeyStoreError(f"{where} version {stored.version}: {pem} has mode {mode:o}, expected {FILE_MODE:o}")
        check_stored(
            stored, fingerprint, value=value, tags=meta.get("tags"), content_type=meta.get("contentType"), where=where
        )

    def find_by_fingerprint(self, cluster_id: str, fingerprint: str) -> StoredKey | None:
        cluster = cluster_of(cluster_id)
        check_fingerprint(fingerprint)
        name = secret_name(cluster)
        found: list[tuple[float, str]] = []
        for meta_file in sorted((self.directory / name).glob("*.json")):
            try:
                meta = json.loads(meta_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # half-written or foreign: not a stored version
            if meta.get("contentType") == CONTENT_TYPE and tags_match(meta.get("tags"), cluster, fingerprint):
                found.append((float(meta.get("created") or 0.0), meta_file.stem))
        if not found:
            return None
        _, version = max(found)
        pem = self.directory / name / f"{version}.pem"
        return StoredKey(pem.as_uri(), name, version)

    def _pem_path(self, stored: StoredKey) -> Path:
        if not (_is_token(stored.name) and _is_token(stored.version)):
            raise KeyStoreError(f"stored key {shown(stored.name)}/{shown(stored.version)} is not a name and version")
        return self.directory / stored.name / f"{stored.version}.pem"


def _is_token(value: object) -> bool:
    """A name or version that stays inside its directory: letters, digits, dashes."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 127
        and all(c.isascii() and (c.isalnum() or c == "-") for c in value)
    )


def _private_directory(path: Path, *, create_parents: bool = False) -> None:
    """Create `path` with mode 0700, or accept it if it exists with no group/other access.
    An existing directory others can read is refused, never chmod-ed (it may be someone's /tmp)."""
    try:
        if create_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=DIRECTORY_MODE)
        os.chmod(path, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    except FileExistsError:
        if not path.is_dir():
            raise KeyStoreError(f"local key store: {path} exists and is not a directory") from None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(
                f"local key store: {path} has mode {mode:o}, open to group or others; expected {DIRECTORY_MODE:o}"
            ) from None


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only (created 0600, never over an existing one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(text)
    finally:
        if fd != -1:
            os.close(fd)
