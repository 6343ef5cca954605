"""Private-key stores: `KeyVaultKeyStore` through the real `SecretClient` over real HTTPS
against the loopback Key Vault fake (tests/keyvault_fake.py), and the demo-only
`LocalFileKeyStore`, held to the same contract."""

from __future__ import annotations

import http.client
import logging
import re
import ssl
import stat
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters.keyvault import LOCAL_KEYVAULT_TOKEN, KeyVaultKeyStore
from shared.core.errors import ConfigError, KeyStoreError
from shared.keys.key_store import CONTENT_TYPE, StoredKey, cluster_of, private_key_fingerprint, secret_name
from shared.local.keystore import LocalFileKeyStore

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER_ID = f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks_1"
OTHER_CLUSTER_ID = CLUSTER_ID.replace("aks_1", "aks2")
LONG_CLUSTER_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{'g' * 90}/providers/Microsoft.ContainerService/managedClusters/{'c' * 63}"
)
FORMATS = {
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
    "openssh": serialization.PrivateFormat.OpenSSH,
}
STORES = ["keyvault", "local-file"]


def pem_of(key: rsa.RSAPrivateKey, fmt: str = "pkcs8") -> str:
    return key.private_bytes(serialization.Encoding.PEM, FORMATS[fmt], serialization.NoEncryption()).decode()


def body_of(pem: str) -> str:
    """The base64 middle of a PEM: what must never appear anywhere but the store."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@pytest.fixture(scope="module")
def keys() -> list[rsa.RSAPrivateKey]:
    # 2048 bits: the stores take any RSA key, and parsing (with its key checks) is 3x faster
    # than at 3072; the size the rotation generates is round-tripped once, below.
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


@pytest.fixture(params=STORES)
def key_store(request, tmp_path) -> Iterator[KeyVaultKeyStore | LocalFileKeyStore]:
    """Each store in turn; the Key Vault one through the fake (fixture `keyvault`)."""
    if request.param == "keyvault":
        yield request.getfixturevalue("keyvault_store")
    else:
        yield LocalFileKeyStore(tmp_path / "keys")


# --- the contract, for both stores -------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS), ids=sorted(FORMATS))
def test_store_verify_find_round_trip(key_store, keys, fmt):
    pem = pem_of(keys[0], fmt)
    fingerprint = private_key_fingerprint(pem)

    stored = key_store.store_private_key(CLUSTER_ID, pem, fingerprint)

    assert stored.name == secret_name(cluster_of(CLUSTER_ID))
    assert len(stored.version) == 32 and f"/{stored.name}/{stored.version}" in stored.secret_id
    key_store.verify_stored(stored, fingerprint)
    assert key_store.find_by_fingerprint(CLUSTER_ID, fingerprint) == stored


def test_a_generated_size_key_round_trips(key_store):
    pem = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=3072))
    fingerprint = private_key_fingerprint(pem)
    stored = key_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    key_store.verify_stored(stored, fingerprint)
    assert key_store.find_by_fingerprint(CLUSTER_ID, fingerprint) == stored


def test_a_second_key_is_a_new_version_and_find_picks_by_fingerprint(key_store, keys):
    pems = [pem_of(k) for k in keys]
    fingerprints = [private_key_fingerprint(p) for p in pems]
    first = key_store.store_private_key(CLUSTER_ID, pems[0], fingerprints[0])
    second = key_store.store_private_key(CLUSTER_ID, pems[1], fingerprints[1])

    assert (first.name, first.version != second.version) == (second.name, True)
    assert key_store.find_by_fingerprint(CLUSTER_ID, fingerprints[0]) == first
    assert key_store.find_by_fingerprint(CLUSTER_ID, fingerprints[1]) == second
    key_store.verify_stored(first, fingerprints[0])
    key_store.verify_stored(second, fingerprints[1])


def test_a_rerun_finds_the_newest_copy_of_the_same_key(key_store, keys):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    key_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    time.sleep(1.05)  # Key Vault's `created` is in whole seconds
    again = key_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    assert key_store.find_by_fingerprint(CLUSTER_ID, fingerprint) == again


@pytest.mark.parametrize(
    ("cluster", "which"),
    [(CLUSTER_ID, "other-key"), (OTHER_CLUSTER_ID, "same-key"), (OTHER_CLUSTER_ID, "other-key")],
    ids=["same-cluster-unknown-fingerprint", "other-cluster-same-key", "other-cluster-nothing-stored"],
)
def test_find_returns_none_when_nothing_matches(key_store, keys, cluster, which):
    pem = pem_of(keys[0])
    key_store.store_private_key(CLUSTER_ID, pem, private_key_fingerprint(pem))
    wanted = private_key_fingerprint(pem_of(keys[1] if which == "other-key" else keys[0]))
    assert key_store.find_by_fingerprint(cluster, wanted) is None


def test_a_cluster_id_too_long_for_a_tag_round_trips(key_store, keys):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    stored = key_store.store_private_key(LONG_CLUSTER_ID, pem, fingerprint)
    key_store.verify_stored(stored, fingerprint)
    assert key_store.find_by_fingerprint(LONG_CLUSTER_ID, fingerprint) == stored


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("other-key", "the private key's fingerprint is SHA256:"),
        ("not-a-key", "not an unencrypted PEM private key"),
        ("bad-fingerprint", "not an OpenSSH SHA256 fingerprint"),
    ],
    ids=["fingerprint-of-another-key", "value-not-a-key", "fingerprint-malformed"],
)
def test_store_refuses_a_key_that_is_not_the_fingerprints_and_writes_nothing(key_store, keys, which, message):
    pem = pem_of(keys[0])
    fingerprint = {
        "other-key": private_key_fingerprint(pem_of(keys[1])),
        "not-a-key": private_key_fingerprint(pem),
        "bad-fingerprint": "SHA256:nope",
    }[which]
    value = "not a key" if which == "not-a-key" else pem
    with pytest.raises(KeyStoreError, match=message) as caught:
        key_store.store_private_key(CLUSTER_ID, value, fingerprint)
    assert body_of(pem) not in str(caught.value)
    assert key_store.find_by_fingerprint(CLUSTER_ID, private_key_fingerprint(pem)) is None


def test_verify_fails_clearly_on_a_wrong_fingerprint(key_store, keys):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    stored = key_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    other = private_key_fingerprint(pem_of(keys[1]))
    with pytest.raises(KeyStoreError, match=re.escape(f"is tagged with fingerprint {fingerprint!r}, expected {other}")):
        key_store.verify_stored(stored, other)


def test_verify_fails_on_a_version_that_does_not_exist(key_store, keys):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    stored = key_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    missing = StoredKey(stored.secret_id.replace(stored.version, "0" * 32), stored.name, "0" * 32)
    with pytest.raises(KeyStoreError, match=f"version {'0' * 32} was not found"):
        key_store.verify_stored(missing, fingerprint)


# --- Key Vault: the value and tags as stored, tampering, errors ---------------------------


def test_the_secret_is_tagged_and_typed_in_the_vault(keyvault, keyvault_store, keys):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    stored = keyvault_store.store_private_key(CLUSTER_ID, pem, fingerprint)

    assert stored.secret_id == f"{keyvault.url}/secrets/{stored.name}/{stored.version}"
    (version,) = keyvault.versions(stored.name)
    assert version.id == stored.secret_id
    assert version.value == pem  # the key went through the SDK's pipeline whole
    assert version.content_type == CONTENT_TYPE == "application/x-pem-file"
    assert version.tags == {"fingerprint": fingerprint, "clusterId": cluster_of(CLUSTER_ID).id}


def test_a_long_cluster_id_is_tagged_with_its_digest(keyvault, keyvault_store, keys):
    pem = pem_of(keys[0])
    stored = keyvault_store.store_private_key(LONG_CLUSTER_ID, pem, private_key_fingerprint(pem))
    (version,) = keyvault.versions(stored.name)
    assert version.tags["clusterId"].startswith("sha256:") and len(version.tags["clusterId"]) == 71


def test_find_follows_next_links_across_pages(keyvault, keyvault_store, keys):
    keyvault.page_size = 1
    pems = [pem_of(k) for k in keys] + [pem_of(keys[0], "pkcs1")]
    stored = [keyvault_store.store_private_key(CLUSTER_ID, p, private_key_fingerprint(p)) for p in pems]
    assert keyvault_store.find_by_fingerprint(CLUSTER_ID, private_key_fingerprint(pems[1])) == stored[1]
    pages = [r for r in keyvault.requests if r["path"].endswith("/versions") and r["status"] == 200]
    assert len(pages) == 3 and "$skiptoken" in pages[-1]["query"]


@pytest.mark.parametrize("missing_versions", ["empty", "404"], ids=["empty-list", "not-found"])
def test_find_on_a_cluster_never_stored_is_none(keyvault, keyvault_store, keys, missing_versions):
    keyvault.missing_versions = missing_versions
    assert keyvault_store.find_by_fingerprint(CLUSTER_ID, private_key_fingerprint(pem_of(keys[0]))) is None


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda v, other: setattr(v, "value", "not a key at all"), "is not an unencrypted PEM private key"),
        (
            lambda v, other: setattr(v, "value", other),
            "holds the private key of SHA256:.*the tag and the value disagree",
        ),
        (lambda v, other: setattr(v, "content_type", "text/plain"), "content type 'text/plain'"),
        (lambda v, other: setattr(v, "tags", None), "tagged with fingerprint None"),
    ],
    ids=["value-not-a-key", "value-another-key", "content-type", "tags-gone"],
)
def test_verify_fails_clearly_on_a_tampered_version(keyvault, keyvault_store, keys, tamper, message):
    pem, other = pem_of(keys[0]), pem_of(keys[1])
    fingerprint = private_key_fingerprint(pem)
    stored = keyvault_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    tamper(keyvault.versions(stored.name)[0], other)
    with pytest.raises(KeyStoreError, match=message) as caught:
        keyvault_store.verify_stored(stored, fingerprint)
    assert stored.name in str(caught.value) and stored.version in str(caught.value)
    for text in (body_of(pem), body_of(other)):
        assert text not in "".join(traceback.format_exception(caught.value))


def test_verify_refuses_an_id_from_another_vault(keyvault_store, keys):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    stored = keyvault_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    elsewhere = StoredKey(stored.secret_id.replace("127.0.0.1", "other.vault.azure.net"), stored.name, stored.version)
    with pytest.raises(KeyStoreError, match="is not in this vault"):
        keyvault_store.verify_stored(elsewhere, fingerprint)


@pytest.mark.parametrize(
    ("method", "status", "code", "retryable", "message"),
    [
        ("PUT", 403, "Forbidden", False, "answered 403 Forbidden: .*needs the role Key Vault Secrets Officer"),
        ("PUT", 429, "Throttled", True, "answered 429 Throttled: .*retry later"),
        ("PUT", 500, "InternalServerError", True, "answered 500 InternalServerError"),
        ("GET", 403, "Forbidden", False, "listing the versions of secret ssh-aks-1-.* answered 403"),
    ],
    ids=["set-forbidden", "set-throttled", "set-server-error", "list-forbidden"],
)
def test_service_errors_become_key_store_errors(
    keyvault, keyvault_store, keys, method, status, code, retryable, message
):
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    keyvault.fail_next(method, status, code, "Operation failed (fake).", **{"Retry-After": "7"})
    with pytest.raises(KeyStoreError, match=message) as caught:
        if method == "PUT":
            keyvault_store.store_private_key(CLUSTER_ID, pem, fingerprint)
        else:
            keyvault_store.find_by_fingerprint(CLUSTER_ID, fingerprint)
    error = caught.value
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    assert error.retry_after == 7.0
    assert body_of(pem) not in "".join(traceback.format_exception(error))


def test_no_key_material_in_logs_or_errors(keyvault, keyvault_store, keys, caplog):
    """Everything a rotation's key-store calls log (azure's HTTP logging included, at DEBUG)
    and every error text, chained causes included, is searched for the key."""
    caplog.set_level(logging.DEBUG)
    pem, other = pem_of(keys[0]), pem_of(keys[1])
    fingerprint = private_key_fingerprint(pem)
    errors: list[BaseException] = []

    stored = keyvault_store.store_private_key(CLUSTER_ID, pem, fingerprint)
    keyvault_store.verify_stored(stored, fingerprint)
    keyvault_store.find_by_fingerprint(CLUSTER_ID, fingerprint)
    # A service whose error echoes the request, a refused store, a failed verification.
    keyvault.fail_next("PUT", 400, "BadParameter", f"Property has invalid value: {pem}")
    for call in (
        lambda: keyvault_store.store_private_key(CLUSTER_ID, pem, fingerprint),
        lambda: keyvault_store.store_private_key(CLUSTER_ID, other, fingerprint),
        lambda: keyvault_store.verify_stored(stored, private_key_fingerprint(other)),
    ):
        with pytest.raises(KeyStoreError) as caught:
            call()
        errors.append(caught.value)

    assert "withheld: it quoted key material" in str(errors[0])
    assert keyvault.versions(stored.name)[0].value == pem  # it did travel, to the vault only
    assert "Request URL: 'https://127.0.0.1" in caplog.text  # azure's HTTP logging was captured
    texts = [caplog.text, *(r.getMessage() for r in caplog.records), repr(stored), keyvault_store.describe()]
    texts += ["".join(traceback.format_exception(e)) for e in errors]
    for secret in (pem, other):
        for line in body_of(secret).splitlines() or [body_of(secret)]:
            assert all(line[:64] not in text for text in texts)


# --- the SDK's side of the protocol --------------------------------------------------------


class RecordingCredential:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict]] = []

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(LOCAL_KEYVAULT_TOKEN, int(time.time()) + 3600)


def test_the_sdk_answers_the_challenge_before_sending_the_key(keyvault, keys):
    credential = RecordingCredential()
    pem = pem_of(keys[0])
    with KeyVaultKeyStore(keyvault.url, credential, connection_verify=keyvault.ca_file, retry_total=0) as store:
        store.store_private_key(CLUSTER_ID, pem, private_key_fingerprint(pem))

    challenged, authorised = keyvault.requests
    # The first request goes without a token and without the body (the key), and is challenged.
    assert (challenged["method"], challenged["authorization"], challenged["body_bytes"], challenged["status"]) == (
        "PUT",
        None,
        0,
        401,
    )
    assert authorised["authorization"] == f"Bearer {LOCAL_KEYVAULT_TOKEN}" and authorised["status"] == 200
    assert challenged["query"]["api-version"] == authorised["query"]["api-version"] == "2026-04-01"
    # The scope and tenant come from the challenge.
    ((scopes, kwargs),) = credential.calls
    assert scopes == ("https://vault.azure.net/.default",)
    assert kwargs["tenant_id"] == keyvault.tenant_id


def test_an_untrusted_certificate_is_refused_before_any_request(keyvault, keys):
    pem = pem_of(keys[0])
    with KeyVaultKeyStore(keyvault.url, retry_total=0) as store, pytest.raises(KeyStoreError, match="not trusted"):
        store.store_private_key(CLUSTER_ID, pem, private_key_fingerprint(pem))
    assert keyvault.requests == []


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("http://127.0.0.1:1", {}, ConfigError),
        ("https://vault.example\\@127.0.0.1", {}, ConfigError),
        ("https://myvault.vault.azure.net", {"connection_verify": False}, ValueError),
        ("https://myvault.vault.azure.net", {"verify_challenge_resource": False}, ValueError),
        ("https://127.0.0.1:1", {"logging_enable": True}, ValueError),
    ],
    ids=[
        "plain-http",
        "ambiguous-url",
        "unverified-tls-for-a-real-vault",
        "unverified-challenge-for-a-real-vault",
        "body-logging",
    ],
)
def test_unsafe_settings_are_refused_before_any_connection(url, options, error):
    with pytest.raises(error):
        KeyVaultKeyStore(url, **options)


# --- the fake itself ----------------------------------------------------------------------


def _https(keyvault, method: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    port = int(keyvault.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=keyvault.ca_file)
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_the_fake_refuses_plain_http(keyvault):
    port = int(keyvault.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/secrets/x?api-version=2026-04-01")
        connection.getresponse()
    connection.close()
    deadline = time.monotonic() + 5
    while not keyvault.tls_refused and time.monotonic() < deadline:
        time.sleep(0.01)
    assert keyvault.tls_refused and keyvault.requests == []


@pytest.mark.parametrize(
    ("headers", "path", "status", "code"),
    [
        ({}, "/secrets/x?api-version=2026-04-01", 401, "Unauthorized"),
        ({"Authorization": "Bearer stolen"}, "/secrets/x?api-version=2026-04-01", 401, "Unauthorized"),
        ({"Authorization": f"Bearer {LOCAL_KEYVAULT_TOKEN}"}, "/secrets/x", 400, "BadParameter"),
        (
            {"Authorization": f"Bearer {LOCAL_KEYVAULT_TOKEN}"},
            "/secrets/x?api-version=2026-04-01",
            404,
            "SecretNotFound",
        ),
        (
            {"Authorization": f"Bearer {LOCAL_KEYVAULT_TOKEN}"},
            "/secrets/a_b?api-version=2026-04-01",
            400,
            "BadParameter",
        ),
    ],
    ids=["no-token", "wrong-token", "no-api-version", "unknown-secret", "invalid-name"],
)
def test_the_fake_answers_like_the_service(keyvault, headers, path, status, code):
    import json

    response = _https(keyvault, "GET", path, headers)
    assert response.status == status
    assert json.loads(response.body)["error"]["code"] == code
    if status == 401:
        assert response.headers["WWW-Authenticate"] == (
            f'Bearer authorization="https://login.microsoftonline.com/{keyvault.tenant_id}", '
            'resource="https://vault.azure.net"'
        )


# --- the local file store ------------------------------------------------------------------


def test_local_store_files_are_private(tmp_path, keys, caplog):
    caplog.set_level(logging.INFO)
    root = tmp_path / "keys"
    store = LocalFileKeyStore(root)
    pem = pem_of(keys[0])
    stored = store.store_private_key(CLUSTER_ID, pem, private_key_fingerprint(pem))

    assert store.describe() == f"local file key store (demo only, not Key Vault): {root.resolve()}"
    assert "demo only, not Key Vault" in caplog.text and body_of(pem)[:64] not in caplog.text
    secret_dir = root / stored.name
    for directory in (root, secret_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(secret_dir.iterdir())
    assert [f.name for f in files] == [f"{stored.version}.json", f"{stored.version}.pem"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert (secret_dir / f"{stored.version}.pem").read_text() == pem
    assert stored.secret_id == (secret_dir / f"{stored.version}.pem").as_uri()


def test_local_store_refuses_a_directory_others_can_read(tmp_path):
    shared_dir = tmp_path / "shared"
    shared_dir.mkdir(mode=0o755)
    shared_dir.chmod(0o755)
    with pytest.raises(KeyStoreError, match="has mode 755, open to group or others"):
        LocalFileKeyStore(shared_dir)
    assert stat.S_IMODE(shared_dir.stat().st_mode) == 0o755  # refused, not changed


def test_local_store_verify_notices_a_loosened_file(tmp_path, keys):
    store = LocalFileKeyStore(tmp_path / "keys")
    pem = pem_of(keys[0])
    fingerprint = private_key_fingerprint(pem)
    stored = store.store_private_key(CLUSTER_ID, pem, fingerprint)
    Path(store.directory / stored.name / f"{stored.version}.pem").chmod(0o644)
    with pytest.raises(KeyStoreError, match="has mode 644, expected 600"):
        store.verify_stored(stored, fingerprint)


@pytest.mark.parametrize(
    "stored",
    [StoredKey("x", "../../etc", "passwd"), StoredKey("x", "ssh-a", "v/../../x")],
    ids=["name-escapes", "version-escapes"],
)
def test_local_store_never_reads_outside_its_directory(tmp_path, stored):
    store = LocalFileKeyStore(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="is not a name and version"):
        store.verify_stored(stored, "SHA256:" + "A" * 43)
