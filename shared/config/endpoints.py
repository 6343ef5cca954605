"""Endpoint URLs read as the HTTP client (requests, then urllib3) will read them. Pure."""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.core.errors import shown

LOOPBACK_HOSTS = "127.0.0.0/8, localhost or ::1"


@dataclass(frozen=True)
class Endpoint:
    """An http(s) URL as the HTTP client reads it: `host` lowercased, IPv6 without brackets."""

    scheme: str
    host: str
    port: int | None

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_endpoint(url: str, *, http_on_loopback: bool = True) -> Endpoint:
    """`url` read the way azure-core's transport (requests, then urllib3) will connect to it.

    Raises `ValueError` saying what is wrong (without repeating the URL) for anything two URL
    parsers could read differently: `urllib.parse` and urllib3 disagree on backslashes and on
    userinfo (`http://evil.example\\@127.0.0.1/` is 127.0.0.1 to one, evil.example to the
    other), so those are refused, and both must then name the same host and port. Plain
    http is refused unless `http_on_loopback` and the host is loopback.
    """
    from urllib3.util import parse_url  # read only when a setting is, not at start-up

    _refuse_odd_characters(url)
    try:
        ours, theirs = urlsplit(url), parse_url(url)
        ours_port = ours.port  # raises ValueError for a port that is not a number in range
    except ValueError as e:  # urllib3's LocationParseError too; its text repeats the URL, never shown
        raise ValueError("it is not a URL the HTTP client can read (look at the host and port)") from e
    if ours.scheme.lower() not in ("http", "https"):
        raise ValueError("it is not a URL starting with http:// or https://")
    if "@" in ours.netloc or theirs.auth is not None:
        raise ValueError("it has a user name or password before '@' (not shown); credentials never go in the URL")
    host = (theirs.host or "").strip("[]").lower()
    if not ours.hostname or not host:
        raise ValueError("it names no host")
    if (ours.hostname.lower(), ours_port) != (host, theirs.port):
        raise ValueError(
            f"it is ambiguous: the HTTP client would connect to {shown(theirs.host)}, not {shown(ours.hostname)}"
        )
    endpoint = Endpoint(ours.scheme.lower(), host, ours_port)
    if endpoint.scheme == "http" and not (http_on_loopback and endpoint.is_loopback):
        only = f", which only a loopback host ({LOOPBACK_HOSTS}) may" if http_on_loopback else ""
        raise ValueError(f"it uses plain http{only}; use https")
    return endpoint


def is_loopback_url(url: str) -> bool:
    """True only for an unambiguous http(s) URL whose host is loopback."""
    try:
        return parse_endpoint(url).is_loopback
    except ValueError:
        return False


def _refuse_odd_characters(url: str) -> None:
    # Backslashes split the parsers (see parse_endpoint); whitespace and control or format
    # characters (tabs, newlines, zero-width and bidi marks) are stripped or refused by some.
    if "\\" in url:
        raise ValueError("it contains a backslash")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        raise ValueError("it contains whitespace or a control character")
