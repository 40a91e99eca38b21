"""systemd integration with the standard library only: socket activation (`LISTEN_FDS`) and `Type=notify`.

Both are no-ops outside systemd, so the daemon calls them unconditionally.
"""

from __future__ import annotations

import os
import socket

SD_LISTEN_FDS_START = 3


def listen_fds(*, unset_environment: bool = True) -> list[socket.socket]:
    """The listening sockets systemd passed to this process (sd_listen_fds(3)); empty when not socket-activated.

    The variables are cleared afterwards so that child processes do not mistake the sockets for their own.
    """
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return []
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    finally:
        if unset_environment:
            for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
                os.environ.pop(name, None)
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    return sockets


def notify(state: str) -> bool:
    """Send `state` (e.g. `READY=1`, `STOPPING=1`) to the service manager (sd_notify(3)); False when not under one."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError:
            return False
    return True
