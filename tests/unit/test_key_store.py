"""The key store contract without I/O: secret names, tags, fingerprints, leak detection."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared.core.errors import KeyStoreError, OutOfScopeError
from shared.keys.key_store import (
    MAX_TAG_VALUE,
    SECRET_NAME,
    StoredKey,
    check_fingerprint,
    check_stored,
    cluster_of,
    cluster_tag,
    contains_key_material,
    key_tags,
    private_key_fingerprint,
    secret_name,
    tags_match,
)

SUB = "11111111-1111-1111-1111-111111111111"


def cluster_id(name: str = "aks1", group: str = "rg-aks", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"


FORMATS = {
    "pkcs8": (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
    "pkcs1": (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
    "openssh": (serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH),
}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def pem_of(key, fmt: str = "pkcs8") -> str:
    encoding, private_format = FORMATS[fmt]
    return key.private_bytes(encoding, private_format, serialization.NoEncryption()).decode()


KEY_TYPES = {
    "rsa-3072": lambda rsa_key: rsa_key,
    "ecdsa-p256": lambda _: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": lambda _: ed25519.Ed25519PrivateKey.generate(),
}
# Every PEM format of every key type (ed25519 has no traditional/PKCS#1-style PEM form).
KEY_CASES = [(kind, fmt) for kind in KEY_TYPES for fmt in FORMATS if (kind, fmt) != ("ed25519", "pkcs1")]


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
@pytest.mark.parametrize(("kind", "fmt"), KEY_CASES, ids=[f"{k}-{f}" for k, f in KEY_CASES])
def test_fingerprint_is_what_ssh_keygen_prints(tmp_path, rsa_key, kind, fmt):
    key = KEY_TYPES[kind](rsa_key)
    pem = pem_of(key, fmt)
    public = tmp_path / "key.pub"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    printed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public)], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert private_key_fingerprint(pem) == printed
    check_fingerprint(printed)


@pytest.mark.parametrize(
    "value",
    ["", "junk", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None],
    ids=["empty", "junk", "broken-pem", "none"],
)
def test_fingerprint_of_a_non_key_fails_without_quoting_it(value):
    with pytest.raises(KeyStoreError, match="not an unencrypted PEM private key") as caught:
        private_key_fingerprint(value)
    assert "AAAA" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_encrypted_private_key_is_refused(rsa_key):
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    with pytest.raises(KeyStoreError, match="unencrypted"):
        private_key_fingerprint(pem)


@pytest.mark.parametrize(
    ("name", "expected_prefix"),
    [("aks1", "ssh-aks1-"), ("Dev_Cluster-01", "ssh-dev-cluster-01-"), ("a" * 63, "ssh-" + "a" * 63 + "-")],
    ids=["plain", "underscore-and-capitals", "longest-name"],
)
def test_secret_name_is_readable_valid_and_deterministic(name, expected_prefix):
    cluster = cluster_of(cluster_id(name))
    secret = secret_name(cluster)
    assert secret.startswith(expected_prefix)
    assert SECRET_NAME.fullmatch(secret) and len(secret) <= 127
    digest = hashlib.sha256(cluster.key.encode()).hexdigest()[:16]
    assert secret == f"{expected_prefix}{digest}"
    # ARM ids are case-insensitive: another casing of the same id names the same secret.
    assert secret_name(cluster_of(cluster_id(name).upper().replace("SUBSCRIPTIONS", "subscriptions"))) == secret


@pytest.mark.parametrize(
    "other",
    [cluster_id(group="rg-other"), cluster_id(sub="22222222-2222-2222-2222-222222222222"), cluster_id("aks_1")],
    ids=["other-group", "other-subscription", "underscore-twin"],
)
def test_same_looking_clusters_get_different_secrets(other):
    assert secret_name(cluster_of(other)) != secret_name(cluster_of(cluster_id()))


@pytest.mark.parametrize(
    "bad",
    [cluster_id() + "/agentPools/np1", "/subscriptions/x/resourceGroups/rg", "not an id"],
    ids=["pool-id", "group-id", "junk"],
)
def test_only_a_cluster_id_names_a_key(bad):
    with pytest.raises(OutOfScopeError):
        cluster_of(bad)


def test_a_cluster_id_longer_than_a_tag_value_is_tagged_with_its_digest():
    short = cluster_of(cluster_id())
    assert cluster_tag(short) == short.id
    longest = cluster_of(cluster_id("c" * 63, "g" * 90))
    assert len(longest.id) > MAX_TAG_VALUE
    tag = cluster_tag(longest)
    assert tag == "sha256:" + hashlib.sha256(longest.id.lower().encode()).hexdigest()
    assert len(tag) <= MAX_TAG_VALUE
    assert tags_match(key_tags(longest, "SHA256:" + "A" * 43), longest, "SHA256:" + "A" * 43)


def test_tags_match_cluster_case_insensitively_and_fingerprint_exactly():
    cluster = cluster_of(cluster_id())
    fingerprint = "SHA256:" + "a" * 43
    tags = {"fingerprint": fingerprint, "clusterId": cluster.id.upper()}
    assert tags_match(tags, cluster, fingerprint)
    assert not tags_match(tags, cluster, "SHA256:" + "A" * 43)  # base64 is case-sensitive
    assert not tags_match({**tags, "clusterId": cluster_id("aks2")}, cluster, fingerprint)
    assert not tags_match(None, cluster, fingerprint)


@pytest.mark.parametrize(
    "bad",
    ["", "MD5:aa:bb", "SHA256:short", "SHA256:" + "A" * 43 + "=", "sha256:" + "A" * 43, 42],
    ids=["empty", "md5", "short", "padded", "lowercase-prefix", "not-a-string"],
)
def test_fingerprint_format_is_checked(bad):
    with pytest.raises(KeyStoreError, match="not an OpenSSH SHA256 fingerprint"):
        check_fingerprint(bad)


def test_check_stored_names_what_disagrees(rsa_key):
    pem = pem_of(rsa_key)
    fingerprint = private_key_fingerprint(pem)
    stored = StoredKey("id", "ssh-aks1-0", "v1")
    good = {"fingerprint": fingerprint}
    check_stored(stored, fingerprint, value=pem, tags=good, content_type="application/x-pem-file", where="s")
    with pytest.raises(KeyStoreError, match="content type 'text/plain'"):
        check_stored(stored, fingerprint, value=pem, tags=good, content_type="text/plain", where="s")

    def broken(_: str) -> str:
        raise ValueError(pem)  # a parser whose error quotes its input

    with pytest.raises(KeyStoreError, match="not a private key") as caught:
        check_stored(
            stored,
            fingerprint,
            value=pem,
            tags=good,
            content_type="application/x-pem-file",
            where="s",
            fingerprint_of=broken,
        )
    assert not contains_key_material(str(caught.value), pem) and caught.value.__suppress_context__


def test_key_material_is_recognised_by_any_line_of_its_body(rsa_key):
    pem = pem_of(rsa_key)
    line = pem.splitlines()[5]
    assert contains_key_material(f"error: {line} ...", pem)
    assert contains_key_material(pem, pem)
    assert not contains_key_material("-----BEGIN PRIVATE KEY----- only the armour", pem)
    assert not contains_key_material("anything", None)
