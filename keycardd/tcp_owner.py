"""Who owns the other end of a loopback TCP connection: an exact lookup in the kernel's socket table (Linux).

A Unix socket tells its peer's uid (SO_PEERCRED); TCP does not, but on one host both ends are in the kernel's table,
each with the uid that created it. `sock_diag` (the netlink interface `ss` uses) looks one socket up by its address
tuple, in microseconds, where reading `/proc/net/tcp` formats the whole table (milliseconds on a busy host, for
every new connection). Other systems have no such interface keycardd can use, so there the secret alone
authenticates.
"""

from __future__ import annotations

import socket
import struct
import sys

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_ALL_STATES = 0xFFFFFFFF
_NO_COOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST = struct.Struct("=BBBxI2s2s16s16sIII")  # inet_diag_req_v2 with its inet_diag_sockid
_UID_OFFSET = _HEADER.size + 64
"""inet_diag_msg: family, state, timer, retrans (4 bytes), sockid (48), expires, rqueue, wqueue, then uid."""


def available() -> bool:
    """Can this system say who owns a TCP connection's other end?"""
    return sys.platform.startswith("linux") and hasattr(socket, "AF_NETLINK")


def listener_uid(family: int, address: tuple[str, int]) -> int | None:
    """The uid owning the socket listening at `address` (the kernel looks a listener up by its local address)."""
    return peer_uid(family, address, ("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # noqa: S104 - a lookup key


def peer_uid(family: int, peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the socket at `peer` that is connected to our `local`; None if the kernel has no such socket."""
    request = _REQUEST.pack(
        family,
        socket.IPPROTO_TCP,
        0,
        _ALL_STATES,
        struct.pack(">H", peer[1]),
        struct.pack(">H", local[1]),
        socket.inet_pton(family, peer[0]).ljust(16, b"\0"),
        socket.inet_pton(family, local[0]).ljust(16, b"\0"),
        0,
        _NO_COOKIE,
        _NO_COOKIE,
    )
    message = _HEADER.pack(_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + request
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(1.0)
            diag.sendto(message, (0, 0))
            reply = diag.recv(8192)
    except OSError:
        return None
    if len(reply) < _UID_OFFSET + 4 or _HEADER.unpack_from(reply)[1] == _NLMSG_ERROR:
        return None
    return int(struct.unpack_from("=I", reply, _UID_OFFSET)[0])
