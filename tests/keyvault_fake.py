"""A loopback fake of the Key Vault secrets REST API over HTTPS (a plugin of tests/conftest.py).

What it serves, in the real service's shapes (Key Vault REST reference; the SDKs' recorded
sessions, e.g. azure-sdk-for-js keyvault-secrets recordings):
- TLS only, with a certificate signed by a CA made here (`keyvault_tls`); a plain-http
  request fails the handshake and is counted in `tls_refused`.
- Challenge authentication: a request without `Authorization: Bearer <token>` gets 401,
  `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"` and `{"error": {"code": "Unauthorized", ...}}`.
  The only token accepted is `LOCAL_KEYVAULT_TOKEN`.
- `api-version` is required on every request (400 `BadParameter` without it).
- `PUT /secrets/{name}`: a new 32-hex version each time; answers the secret bundle (`value`,
  `id` = `https://<host>/secrets/<name>/<version>`, `attributes`, `tags`, `contentType`).
  The documented limits are enforced: names 1-127 letters, digits and dashes; values up to
  25 KB; at most 15 tags of 512-character names and values; contentType up to 255.
- `GET /secrets/{name}[/]` (latest), `GET /secrets/{name}/{version}`: 404 `SecretNotFound`
  with the service's message otherwise.
- `GET /secrets/{name}/versions[?maxresults=1..25]`: items without values, paged with
  `nextLink` (`$skiptoken`), `page_size` items at most (25 like the service by default).
  For a secret that does not exist: an empty list (`missing_versions = "empty"`) or 404
  (`"404"`): the adapter must cope with either.

`keyvault`: a running fake (`.url`, `.ca_file`, `.secrets`, `.requests`, `fail_next()`).
`keyvault_store`: a `KeyVaultKeyStore` on it through the real `SecretClient`, no SDK retries.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.adapters.keyvault import LOCAL_KEYVAULT_TOKEN, KeyVaultKeyStore

RESOURCE = "https://vault.azure.net"
SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
MAX_VALUE_BYTES = 25 * 1024
MAX_TAGS, MAX_TAG_CHARS, MAX_CONTENT_TYPE = 15, 512, 255
MAX_PAGE = 25


@dataclass
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A CA and a server certificate it signs for 127.0.0.1, ::1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warden test CA (loopback only)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digitalSignature, keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@dataclass
class Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    created: int
    enabled: bool = True

    def attributes(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.created,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }

    def item(self) -> dict[str, Any]:
        """What a versions listing shows: never the value."""
        body: dict[str, Any] = {"id": self.id, "attributes": self.attributes()}
        if self.tags:
            body["tags"] = self.tags
        if self.content_type is not None:
            body["contentType"] = self.content_type
        return body

    def bundle(self) -> dict[str, Any]:
        return {"value": self.value, **self.item()}


@dataclass
class Fault:
    method: str
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeKeyVault:
    """The fake's state; the server thread and the tests share it."""

    url: str = ""
    ca_file: str = ""
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    page_size: int = MAX_PAGE
    missing_versions: str = "empty"  # or "404"
    secrets: dict[str, tuple[str, list[Version]]] = field(default_factory=dict)  # lowercased name -> (name, versions)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tls_refused: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, method: str, status: int, code: str, message: str, **headers: str) -> None:
        """The next authorised `method` request answers `status` with this error instead."""
        self.faults.append(Fault(method, status, code, message, headers))

    def versions(self, name: str) -> list[Version]:
        return self.secrets.get(name.lower(), (name, []))[1]

    @property
    def challenge(self) -> str:
        return f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", resource="{RESOURCE}"'


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _not_found(name_or_id: str) -> dict[str, Any]:
    return _error(
        "SecretNotFound",
        f"A secret with (name/id) {name_or_id} was not found in this key vault. If you recently deleted this "
        "secret you may be able to recover it using the correct recovery command. For help resolving this "
        "issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _handler(vault: FakeKeyVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def do_GET(self) -> None:
            self._serve("GET")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            authorized = self.headers.get("Authorization") == f"Bearer {LOCAL_KEYVAULT_TOKEN}"
            status, payload, headers = self._route(method, parts.path, query, body, authorized)
            with vault.lock:
                vault.requests.append(
                    {
                        "method": method,
                        "path": parts.path,
                        "query": {k: v[0] for k, v in query.items()},
                        "authorization": self.headers.get("Authorization"),
                        "body_bytes": len(body),
                        "status": status,
                    }
                )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-keyvault-service-version", "fake")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _route(
            self, method: str, path: str, query: dict[str, list[str]], body: bytes, authorized: bool
        ) -> tuple[int, dict[str, Any], dict[str, str]]:
            if "Authorization" not in self.headers:
                return (
                    401,
                    _error("Unauthorized", "Request is missing a Bearer or PoP token."),
                    {"WWW-Authenticate": vault.challenge},
                )
            if not authorized:
                return (
                    401,
                    _error("Unauthorized", "The access token is not valid."),
                    {"WWW-Authenticate": vault.challenge},
                )
            if not query.get("api-version"):
                return 400, _error("BadParameter", "The api-version query parameter is required."), {}
            with vault.lock:
                fault = next((f for f in vault.faults if f.method == method), None)
                if fault:
                    vault.faults.remove(fault)
            if fault:
                return fault.status, _error(fault.code, fault.message), fault.headers
            segments = path.split("/")[1:]
            if len(segments) < 2 or segments[0] != "secrets" or len(segments) > 3:
                return 404, _error("NotFound", f"No route for {method} {path}"), {}
            name = segments[1]
            if not SECRET_NAME.fullmatch(name):
                return 400, _error("BadParameter", f"The request URI contains an invalid name: {name}"), {}
            rest = segments[2] if len(segments) == 3 else ""
            host = self.headers.get("Host", "")
            with vault.lock:
                if method == "PUT" and not rest:
                    return self._set(name, body, host)
                if method == "GET" and rest == "versions":
                    return self._list(name, query, host)
                if method == "GET":
                    return self._get(name, rest)
            return 405, _error("BadParameter", f"{method} is not supported on {path}"), {}

        def _set(self, name: str, body: bytes, host: str) -> tuple[int, dict[str, Any], dict[str, str]]:
            if "application/json" not in (self.headers.get("Content-Type") or ""):
                return 400, _error("BadParameter", "Content-Type must be application/json"), {}
            try:
                request = json.loads(body)
            except ValueError:
                return 400, _error("BadParameter", "The request body is not JSON"), {}
            value, tags, content_type = request.get("value"), request.get("tags"), request.get("contentType")
            if not isinstance(value, str) or len(value.encode()) > MAX_VALUE_BYTES:
                return 400, _error("BadParameter", "Property has invalid value"), {}
            if tags is not None and (
                not isinstance(tags, dict)
                or len(tags) > MAX_TAGS
                or any(
                    len(k) > MAX_TAG_CHARS or not isinstance(v, str) or len(v) > MAX_TAG_CHARS for k, v in tags.items()
                )
            ):
                return 400, _error("BadParameter", "Property has invalid value"), {}
            if content_type is not None and len(content_type) > MAX_CONTENT_TYPE:
                return 400, _error("BadParameter", "Property has invalid value"), {}
            shown_name, versions = vault.secrets.setdefault(name.lower(), (name, []))
            version = Version(
                id=f"https://{host}/secrets/{shown_name}/{uuid.uuid4().hex}",
                value=value,
                content_type=content_type,
                tags=tags or None,
                created=int(time.time()),
            )
            versions.append(version)
            return 200, version.bundle(), {}

        def _get(self, name: str, version: str) -> tuple[int, dict[str, Any], dict[str, str]]:
            versions = vault.versions(name)
            if not version:
                return (200, versions[-1].bundle(), {}) if versions else (404, _not_found(name), {})
            match = next((v for v in versions if v.id.rsplit("/", 1)[1] == version.lower()), None)
            return (200, match.bundle(), {}) if match else (404, _not_found(f"{name}/{version}"), {})

        def _list(
            self, name: str, query: dict[str, list[str]], host: str
        ) -> tuple[int, dict[str, Any], dict[str, str]]:
            try:
                maxresults = int(query.get("maxresults", [str(MAX_PAGE)])[0])
                offset = int(base64.urlsafe_b64decode(query.get("$skiptoken", ["MA=="])[0]).decode())
            except ValueError:
                return 400, _error("BadParameter", "invalid maxresults or $skiptoken"), {}
            if not 1 <= maxresults <= MAX_PAGE:
                return 400, _error("BadParameter", f"maxresults must be between 1 and {MAX_PAGE}"), {}
            if name.lower() not in vault.secrets and vault.missing_versions == "404":
                return 404, _not_found(name), {}
            # Listed by version id, not by creation: callers must not rely on the order.
            items = sorted(vault.versions(name), key=lambda v: v.id)
            size = min(maxresults, vault.page_size)
            page = items[offset : offset + size]
            next_link = None
            if offset + size < len(items):
                token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
                next_link = (
                    f"https://{host}/secrets/{name}/versions?api-version={query['api-version'][0]}"
                    f"&$skiptoken={token}&maxresults={maxresults}"
                )
            return 200, {"value": [v.item() for v in page], "nextLink": next_link}, {}

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    return Handler


class _TlsServer(ThreadingHTTPServer):
    """Each connection's TLS handshake runs in its own thread, so a client that never
    completes one (plain http) cannot hold up the others."""

    daemon_threads = True

    def __init__(self, vault: FakeKeyVault, context: ssl.SSLContext):
        super().__init__(("127.0.0.1", 0), _handler(vault))
        self.vault = vault
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            connection = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.vault.tls_refused.append(type(e).__name__)
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        except OSError:
            pass  # the client went away
        finally:
            connection.close()


@pytest.fixture(scope="session")
def keyvault_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("keyvault-tls"))


def _forget_challenges() -> None:
    # The SDK caches challenges per host:port for the whole process. A later fake on a reused
    # port must be challenged again, as a new vault would be. (A private module of the SDK.)
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()


@pytest.fixture
def keyvault(keyvault_tls: TlsFiles) -> Iterator[FakeKeyVault]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(keyvault_tls.cert_file, keyvault_tls.key_file)
    vault = FakeKeyVault(ca_file=str(keyvault_tls.ca_file))
    server = _TlsServer(vault, context)
    vault.url = f"https://127.0.0.1:{server.server_port}"
    _forget_challenges()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield vault
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        _forget_challenges()


@pytest.fixture
def keyvault_store(keyvault: FakeKeyVault) -> Iterator[KeyVaultKeyStore]:
    # retry_total=0: a failure reaches the test at once instead of after the SDK's retries.
    with KeyVaultKeyStore(keyvault.url, connection_verify=keyvault.ca_file, retry_total=0) as store:
        yield store
