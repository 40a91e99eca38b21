"""Keep keycardd's processes' environment and memory from the other processes of the same user.

The agent keycardd checks runs as the user, and on Linux any process of a user may read another's
`/proc/<pid>/environ`: the daemon's holds what its service was started with, such as OTEL_EXPORTER_OTLP_HEADERS
(the collector's credentials) or KEYCARD_API_CLIENT_SECRET, and the agent's Bash could read it with `cat`. A process
that is not "dumpable" has its /proc files owned by root, so only root can read them, attach a debugger or get a core
dump of it. macOS has no such file to read (`ps -E` shows another process's environment only to root).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4


def keep_private() -> bool:
    """Make this process non-dumpable (Linux); True when it is. An exec resets it, so each process calls this."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
    except (OSError, AttributeError):
        failed = True
    if failed:
        log.warning("cannot keep this process's environment private from the user's other processes (prctl)")
    return not failed
