"""What a webhook may be sent to, and how each delivery is signed.

Signing (https://www.standardwebhooks.com/, written here in a few lines because the reference
``standardwebhooks`` package is thinly maintained and the algorithm is one HMAC): the signed
content is ``{webhook-id}.{webhook-timestamp}.{body}``, the key is the base64 part of the
``whsec_`` secret, and the header is ``v1,<base64 HMAC-SHA256>``.

Server-side request forgery: a subscription URL must be https (plain http only to loopback, and
loopback only when ``webhook_allow_loopback`` is set — tests); every address the host resolves to
must be public unless ``webhook_allow_private`` is set. The check runs at subscription time and
again before every attempt (a DNS answer can change); redirects are not followed; responses are
read up to ``webhook_max_response_bytes`` and a timeout bounds each attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.errors import InvalidInput

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port,
                                                                   type=socket.SOCK_STREAM)})


@dataclass(frozen=True)
class UrlPolicy:
    allow_loopback: bool = False
    allow_private: bool = False


def _refuse(message: str, rule: str) -> InvalidInput:
    return InvalidInput(message, rule=f"webhook.url.{rule}", field="url")


def check_url(url: str, policy: UrlPolicy, resolver: Resolver = resolve) -> None:
    """Refuse a URL that could reach anything but a public https endpoint (see module doc)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # a malformed bracketed (IPv6) host
        msg = "a webhook URL must be an absolute https:// URL"
        raise _refuse(msg, "scheme") from None
    if host is None or parts.scheme not in ("https", "http"):
        msg = "a webhook URL must be an absolute https:// URL"
        raise _refuse(msg, "scheme")
    if parts.username or parts.password:
        msg = "a webhook URL must not carry credentials; use the signing secret"
        raise _refuse(msg, "credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        msg = "the webhook URL's port is not a number in 1-65535"
        raise _refuse(msg, "port") from None
    try:
        addresses = resolver(host, port)
    except (OSError, ValueError):  # ValueError: not encodable as a host name (IDNA, NUL)
        msg = f"the webhook host {host!r} does not resolve"
        raise _refuse(msg, "resolve") from None
    if not addresses:
        msg = f"the webhook host {host!r} does not resolve"
        raise _refuse(msg, "resolve")
    for text in addresses:
        for address in _and_embedded(ipaddress.ip_address(text.split("%")[0])):
            _check_address(host, address, parts.scheme, policy)


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _and_embedded(address: Address) -> list[Address]:
    """The address, and the IPv4 address an IPv6 one carries (6to4, Teredo, NAT64), which
    the network may route to: ``[64:ff9b::a00:1]`` reaches 10.0.0.1 through a NAT64 gateway."""
    out: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            out.append(address.sixtofour)
        if address.teredo is not None:
            out.append(address.teredo[1])
        if address.ipv4_mapped is not None:
            out.append(address.ipv4_mapped)
        if any(address in net for net in _NAT64):
            out.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return out


def _check_address(host: str, address: Address, scheme: str, policy: UrlPolicy) -> None:
    if address.is_multicast:
        msg = f"{host} resolves to a multicast address ({address})"
        raise _refuse(msg, "private")
    if address.is_loopback:
        if not policy.allow_loopback:
            msg = f"{host} resolves to a loopback address ({address})"
            raise _refuse(msg, "loopback")
        return
    if scheme != "https":
        msg = "a webhook URL must use https (plain http is allowed only to loopback)"
        raise _refuse(msg, "scheme")
    if not address.is_global and not policy.allow_private:
        msg = (f"{host} resolves to a private, link-local or reserved address "
               f"({address}); webhooks go only to public addresses")
        raise _refuse(msg, "private")


# --- signing (Standard Webhooks) --------------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: int,
           tolerance: int = 300) -> bool:
    """What a receiver does: check the timestamp is recent and one v1 signature matches."""
    timestamp = int(headers["webhook-timestamp"])
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, headers["webhook-id"], timestamp, body).split(",", 1)[1]
    return any(hmac.compare_digest(expected, sig.split(",", 1)[1])
               for sig in headers["webhook-signature"].split() if sig.startswith("v1,"))
