"""Node SSH keys: generate a pair, validate a supplied public key, fingerprint it. Pure.

AKS accepts only `ssh-rsa` keys on `linuxProfile.ssh.publicKeys` (an ed25519 key is rejected
with `InvalidParameter`). Generated keys are RSA 3072; supplied ones must be RSA of at least 2048
bits. Fingerprints are what `ssh-keygen -l` prints: `SHA256:` and the unpadded base64 of the
SHA-256 of the key's SSH wire form. A private key never leaves `KeyPair.private_pem`: every other
value here (and in records, events, orchestration history) is public.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from shared.core.errors import KeyMaterialError

GENERATED_BITS = 3072
MIN_BITS = 2048
_KINDS = {
    ed25519.Ed25519PublicKey: "ed25519",
    ec.EllipticCurvePublicKey: "ecdsa",
    dsa.DSAPublicKey: "dsa",
}


@dataclass(frozen=True)
class PublicKey:
    openssh: str  # `ssh-rsa AAAA...` without a comment
    fingerprint: str
    bits: int


@dataclass(frozen=True)
class KeyPair:
    public: PublicKey
    private_pem: str = field(repr=False)  # only ever handed to the key store


def generate_key_pair(bits: int = GENERATED_BITS) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    return KeyPair(_public(key.public_key()), private_pem)


def public_key_of(private_pem: str) -> PublicKey:
    """The public half of a stored private key (to check a key store gave back the right one)."""
    try:
        key = serialization.load_ssh_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyMaterialError("the stored value is not an OpenSSH private key") from None
    return _public(key.public_key())


def parse_public_key(text: str) -> PublicKey:
    """A supplied key, validated for AKS; `KeyMaterialError` says what is wrong with it.
    Messages never echo the input: it might be a private key pasted by mistake."""
    if "PRIVATE KEY" in text:
        raise KeyMaterialError("this is a private key: supply only the public half (the .pub file, `ssh-rsa AAAA...`)")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1:
        raise KeyMaterialError(
            f"expected exactly one public key (one `ssh-rsa AAAA...` line), found {len(lines)} lines"
        )
    try:
        key = serialization.load_ssh_public_key(lines[0].encode())
    except (ValueError, UnsupportedAlgorithm):
        raise KeyMaterialError("not an OpenSSH public key: expected one line `ssh-rsa AAAA... [comment]`") from None
    if not isinstance(key, rsa.RSAPublicKey):
        kind = next((name for cls, name in _KINDS.items() if isinstance(key, cls)), type(key).__name__)
        raise KeyMaterialError(f"a {kind} key: AKS accepts only ssh-rsa node keys (others fail with InvalidParameter)")
    if key.key_size < MIN_BITS:
        raise KeyMaterialError(
            f"an RSA key of {key.key_size} bits: at least {MIN_BITS} are needed ({GENERATED_BITS} advised)"
        )
    return _public(key)


def fingerprint(public_openssh: str) -> str:
    """`SHA256:...` of an `ssh-rsa AAAA...` line, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(public_openssh.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _public(key: rsa.RSAPublicKey) -> PublicKey:
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return PublicKey(openssh, fingerprint(openssh), key.key_size)
