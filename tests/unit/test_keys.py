"""Node SSH keys: generation, validation of supplied keys, fingerprints as ssh-keygen prints them."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared.core.errors import KeyMaterialError
from shared.keys import GENERATED_BITS, fingerprint, generate_key_pair, parse_public_key, public_key_of

# A key made by OpenSSH's ssh-keygen (2048 bits) and what `ssh-keygen -l` printed for it.
OPENSSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDYWOnK8cW+LjpTwqCRCWWy2jI5fUI+skTC54RAP+JenwBcnV8kRjYM+LRhatAx4rrP0dB1b9KI3pUAH0ra2dGheZ6/fYteiSb0Z0TTrrq2e5I+cBVwuAoyjhARALb6FK2/2W1tq0Ue9PU3eU3w11fAHmDDY7c+ns+hmaGBTVK+I8A0gbF5bJnD4yGqNG9s16aC7GqX202d0HkSEVFmgKxIYw4O+R039FxYTjpGsLWwegDYVUV7QBsiJe8vGEW9OUgZswq0iozyJvhZgPps3jDn/UCVcSm2P9zCpQep7isBZ6Lyow7QSNnPhfcweC7Xo/BNNmbR61WuK6qWD1eBHgZJ someone@host"
OPENSSH_FINGERPRINT = "SHA256:nCQFpgve2vwZse2HUzilyty7p9bi9hX8602cJF0moow"


def openssh(key) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_fingerprints_are_what_ssh_keygen_prints():
    assert fingerprint(OPENSSH_KEY) == OPENSSH_FINGERPRINT
    assert parse_public_key(OPENSSH_KEY).fingerprint == OPENSSH_FINGERPRINT


def test_a_generated_pair_is_rsa_3072_and_its_halves_belong_together():
    pair = generate_key_pair()
    assert pair.public.bits == GENERATED_BITS >= 3072
    assert pair.public.openssh.startswith("ssh-rsa ")
    assert public_key_of(pair.private_pem) == pair.public
    assert "PRIVATE" not in repr(pair), "the private key must not show in reprs (logs, tracebacks)"


def test_a_supplied_rsa_key_is_taken_as_given():
    key = parse_public_key(OPENSSH_KEY + "\n")
    assert (key.openssh, key.bits) == (OPENSSH_KEY.rsplit(" ", 1)[0], 2048)


BAD = {
    "ed25519": (openssh(ed25519.Ed25519PrivateKey.generate().public_key()), "ed25519 key: AKS accepts only ssh-rsa"),
    "ecdsa": (openssh(ec.generate_private_key(ec.SECP256R1()).public_key()), "ecdsa key"),
    "rsa-1024": (openssh(rsa.generate_private_key(65537, 1024).public_key()), "1024 bits: at least 2048"),
    "private-key": (generate_key_pair(2048).private_pem, "this is a private key"),
    "two-keys": (OPENSSH_KEY + "\n" + OPENSSH_KEY, "exactly one public key"),
    "junk": ("not a key at all", "not an OpenSSH public key"),
    "empty": ("", "exactly one public key"),
    "truncated": (OPENSSH_KEY[:60], "not an OpenSSH public key"),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_unusable_keys_are_refused_with_the_reason_and_never_echoed(text, message):
    with pytest.raises(KeyMaterialError) as refused:
        parse_public_key(text)
    assert message in str(refused.value)
    if len(text) > 40:
        assert text[20:60] not in str(refused.value)


def test_a_stored_value_that_is_no_private_key_is_refused():
    with pytest.raises(KeyMaterialError, match="not an OpenSSH private key"):
        public_key_of("-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n")
