"""Requests to URLs our users give us (webhooks), which must never reach inside our network.

`check_url` refuses a URL whose host is, or resolves to, a private, loopback, link-local
(cloud metadata), shared, reserved or multicast address, and anything but https. `post` checks
the URL again at send time, then connects to the very address it checked (the TLS name check
and the Host header still use the URL's host), so a DNS answer that changes between check and
connect ("DNS rebinding") cannot steer it. Redirects are never followed.

WEBHOOK_ALLOW_LOOPBACK (development and tests only) lets http and https reach 127.0.0.0/8 and
::1, and nothing else that is not public.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

BODY_KEPT_BYTES = 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, in words for the user."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string
    address: IPAddress


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (tests replace this with a resolver they control)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _refusal(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if settings.WEBHOOK_ALLOW_LOOPBACK else "a loopback address"
    if address.is_link_local:
        return "a link-local address (such as cloud metadata)"
    if address.is_private:
        return "a private network address"
    if not address.is_global or address.is_multicast:
        return "a reserved or non-public address"
    return None


def check_url(url: str) -> Target:
    """The URL's target, with the address to connect to; UnsafeUrl if it may not be called."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("This is not a valid URL.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrl("Use an https:// URL.")
    if parts.username or parts.password:
        raise UnsafeUrl("Leave credentials out of the URL; verify our signature instead.")
    host = parts.hostname
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    try:
        addresses = [literal] if literal else resolve(host, port)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"The host {host} does not resolve.") from None
    if not addresses:
        raise UnsafeUrl(f"The host {host} does not resolve.")
    for address in addresses:
        if reason := _refusal(address):
            raise UnsafeUrl(f"The URL points to {reason}, which webhooks may not reach.")
    if parts.scheme == "http" and not (
        settings.WEBHOOK_ALLOW_LOOPBACK and all(a.is_loopback for a in addresses)
    ):
        raise UnsafeUrl("Use an https:// URL.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (error says why)
    body: str  # the first BODY_KEPT_BYTES of it
    latency_ms: int
    error: str = ""


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Answer:
    """POST `body` to `url`, checked (UnsafeUrl) and pinned to the checked address; at most
    `timeout_s` in all; redirects not followed. Never raises for network errors: the answer
    says what happened."""
    target = check_url(url)
    started = time.monotonic()
    timeout = urllib3.Timeout(total=timeout_s)
    address = str(target.address)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False)
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            kept = response.read(BODY_KEPT_BYTES, decode_content=True)
        finally:
            response.release_conn()
        status = response.status
        error = ""
        if 300 <= status < 400:
            error = f"Redirect to {response.headers.get('Location', '?')} not followed."
        text = kept.decode("utf-8", errors="replace")
        return Answer(status, text, _ms_since(started), error)
    except urllib3.exceptions.HTTPError as exc:
        return Answer(None, "", _ms_since(started), _network_error(exc))
    finally:
        pool.close()


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _network_error(exc: Exception) -> str:
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "No answer within the timeout."
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS failed (certificate or handshake)."
    return f"Could not connect ({exc.__class__.__name__})."
