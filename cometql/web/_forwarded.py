"""The browser's own address behind a reverse proxy: ``X-Forwarded-For`` / ``X-Real-IP`` from trusted peers only.

Behind nginx every connection comes from nginx's address, so per-IP limits,
``users_in_pipes.ip`` and logs would all see one address. A proxy says who its
client was in a header, but anybody can send that header: it is believed only
when the TCP peer is one of ``[ws] trusted_proxies``. Rules (those of nginx's
``real_ip_recursive on``):

1. A peer that is not trusted is the client, whatever headers it sent.
2. From a trusted peer, ``X-Forwarded-For`` (every such header, in order, joined)
   is read from the right: each trusted proxy appended the address it saw, so the
   first address from the right that is *not* a trusted proxy is the client.
   Addresses left of it were written by the client itself and are ignored.
3. Without ``X-Forwarded-For``, ``X-Real-IP`` is taken.
4. A value that is not an address ends the walk: the last address read (a
   trusted one) is kept; with none, the peer.

Pure functions; the front calls ``client_address`` once per request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["Network", "client_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> _Address | None:
    """An address from a header value or a peer: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::ffff:1.2.3.4``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: _Address, networks: tuple[Network, ...]) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)


def client_address(peer: str, headers: Iterable[tuple[bytes, bytes]], trusted: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` unless ``peer`` is a trusted proxy that names another (rules above)."""
    peer_addr = _parse(peer) if trusted else None
    if peer_addr is None or not _trusted(peer_addr, trusted):
        return peer
    forwarded: list[str] = []
    real_ip = ""
    for name, value in headers:
        lname = name.lower()
        if lname == b"x-forwarded-for":
            forwarded += value.decode("latin-1").split(",")
        elif lname == b"x-real-ip":
            real_ip = value.decode("latin-1")
    hops = forwarded or ([real_ip] if real_ip else [])
    current = peer_addr
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            break
        current = addr
        if not _trusted(addr, trusted):
            break
    return str(current)
