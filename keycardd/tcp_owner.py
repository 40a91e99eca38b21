"""Who owns the other end of a loopback TCP connection: the kernel's socket table (`/proc/net/tcp{,6}` on Linux).

A Unix socket tells its peer's uid (SO_PEERCRED); TCP does not, but on one host both ends are in the kernel's table,
each line with its owner's uid. The client's end is the line whose local address is the client's address and whose
remote address is ours. Other systems have no such table keycardd can read, so there the secret alone authenticates.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

_TABLES: dict[int, Path] = {socket.AF_INET: Path("/proc/net/tcp"), socket.AF_INET6: Path("/proc/net/tcp6")}
_UID_FIELD = 7


def available() -> bool:
    """Can this system say who owns a TCP connection's other end?"""
    return _TABLES[socket.AF_INET].exists()


def peer_uid(family: int, peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the socket at `peer` that is connected to our `local`; None if the table has no such line."""
    key = f"{_hex_address(family, peer)} {_hex_address(family, local)} ".encode()
    try:
        table = _TABLES[family].read_bytes()
    except (KeyError, OSError):
        return None
    start = table.find(key)
    if start < 0:
        return None
    end = table.find(b"\n", start)
    fields = table[start : end if end >= 0 else None].split()
    try:
        return int(fields[_UID_FIELD - 1])  # `fields` starts at local_address, one after the `sl` column
    except (IndexError, ValueError):
        return None


def _hex_address(family: int, address: tuple[str, int]) -> str:
    """An address as the kernel prints it: each 32-bit word of the IP in host byte order, then the port, in hex."""
    packed = socket.inet_pton(family, address[0])
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{address[1]:04X}"
