"""Spreading connections over the processes of `keycardd --processes N`, in the spirit of nginx's accept_mutex.

Every process waits in accept() on the same socket and the kernel wakes them all; the winner is whichever event
loop gets there first, not the process with the fewest connections, so connections that stay open (agents that
keep theirs, load generators) pile up on one process and leave the others idle: measured, one replica held 80-90%
of 64 persistent connections. Each process publishes how many connections it has open in a small shared map, and
a process holding more than the least loaded one (plus one) stays out of accept() for a moment, so the next
connection goes elsewhere. The least loaded process never waits, so no connection is ever left unaccepted.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile

import anyio

_COUNT = struct.Struct("q")
WAIT_S = 0.001
"""How long a busier process stays out of accept() before it looks again."""
NOT_ACCEPTING = 1 << 62
"""The count of a process that does not accept (still starting, or stopping): never the least loaded, so nobody
waits for it."""


class ConnectionBalance:
    """One slot per process in a shared map: that process's open connections. Each process writes only its own."""

    def __init__(self, fd: int, slot: int, processes: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, processes * _COUNT.size)
        self._slot = slot
        self._processes = processes
        self._open = 0
        self._accepting = False

    @classmethod
    def create(cls, processes: int) -> ConnectionBalance:
        """The primary's (slot 0): a private, already unlinked file that its replicas inherit by descriptor."""
        fd, path = tempfile.mkstemp(prefix="keycardd-balance-")
        os.unlink(path)
        os.ftruncate(fd, processes * _COUNT.size)
        balance = cls(fd, 0, processes)
        for slot in range(processes):
            _COUNT.pack_into(balance._map, slot * _COUNT.size, NOT_ACCEPTING)
        return balance

    def accepting(self, accepting: bool) -> None:
        """Join (or leave) the processes that take connections."""
        self._accepting = accepting
        self._publish()

    def opened(self) -> None:
        self._open += 1
        self._publish()

    def closed(self) -> None:
        self._open -= 1
        self._publish()

    async def wait_turn(self) -> None:
        """Before accepting: while this process holds more than its share, let a less loaded one take the next."""
        while self.should_wait():
            await anyio.sleep(WAIT_S)

    def should_wait(self) -> bool:
        """Does this process hold more connections than the least loaded accepting one, plus one?"""
        loads: list[int] = [_COUNT.unpack_from(self._map, index * _COUNT.size)[0] for index in range(self._processes)]
        return self._open > min(loads) + 1

    def _publish(self) -> None:
        _COUNT.pack_into(self._map, self._slot * _COUNT.size, self._open if self._accepting else NOT_ACCEPTING)
