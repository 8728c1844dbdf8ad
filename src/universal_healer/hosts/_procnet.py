"""Pure parsers for the ``/proc`` text that service detection needs.

Both hosts read the same files (LocalHost directly, SSHHost in its one facts command) and hand
the text here, so a host's listeners and process names are the same value either way:

- ``/proc/net/tcp`` and ``/proc/net/tcp6``: one socket a line; state ``0A`` is LISTEN. The
  local address is the kernel's in-memory ``__be32`` words printed as hex in host byte order, so
  each 4-byte word is reversed (little-endian hosts: x86, arm64, as good as every server); the
  port is printed big-endian already.
- ``/proc/net/unix``: ``Num RefCount Protocol Flags Type St Inode Path``; a listening socket
  has ``__SO_ACCEPTCON`` (``00010000``) in Flags. Sockets without a path are left out.
- process names: one ``/proc/<pid>/comm`` a line. Names only: never command lines, which can
  hold secrets.

Malformed lines are skipped, never an exception: a line the kernel did not write as expected
just is not a listener.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from universal_healer.hosts.base import Listener

__all__ = [
    "ACCEPTCON",
    "LISTEN",
    "decode_address",
    "parse_comms",
    "parse_tcp",
    "parse_unix",
    "sorted_listeners",
]

LISTEN = "0A"
"""TCP_LISTEN in ``/proc/net/tcp``'s ``st`` column."""

ACCEPTCON = 0x00010000
"""``__SO_ACCEPTCON`` in ``/proc/net/unix``'s Flags column: the socket listens."""


def decode_address(hex_address: str) -> str:
    """``0100007F`` -> ``127.0.0.1``; 32 hex digits -> an IPv6 address (compressed).

    :raises ValueError: not 8 or 32 hex digits.
    """
    raw = bytes.fromhex(hex_address)
    if len(raw) not in (4, 16):
        raise ValueError(f"not an IPv4 or IPv6 address: {hex_address!r}")
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return str(ipaddress.IPv4Address(words))
    return str(ipaddress.IPv6Address(words))


def parse_tcp(text: str) -> tuple[Listener, ...]:
    """The listening sockets in ``/proc/net/tcp`` or ``/proc/net/tcp6`` text, sorted."""
    found: set[Listener] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3].upper() != LISTEN:
            continue
        address, _, port = fields[1].partition(":")
        try:
            listener = Listener(kind="tcp", address=decode_address(address), port=int(port, 16))
        except ValueError:
            continue
        found.add(listener)
    return sorted_listeners(found)


def parse_unix(text: str) -> tuple[Listener, ...]:
    """The listening unix sockets with a path in ``/proc/net/unix`` text, sorted."""
    found: set[Listener] = set()
    for line in text.splitlines():
        fields = line.split(None, 7)
        if len(fields) < 8 or not fields[0].endswith(":"):
            continue  # the header, or a socket without a path
        try:
            flags = int(fields[3], 16)
        except ValueError:
            continue
        path = fields[7].strip()
        if flags & ACCEPTCON and path:
            found.add(Listener(kind="unix", path=path))
    return sorted_listeners(found)


def parse_comms(text: str) -> tuple[str, ...]:
    """Sorted unique process names from ``/proc/<pid>/comm`` contents, one a line."""
    return tuple(sorted({line for line in text.splitlines() if line.strip()}))


def sorted_listeners(listeners: Iterable[Listener]) -> tuple[Listener, ...]:
    """Unique listeners in a stable order: TCP by address and port, then unix by path."""
    return tuple(
        sorted(
            set(listeners),
            key=lambda x: (x.kind, x.address or "", x.port or 0, x.path or ""),
        )
    )
