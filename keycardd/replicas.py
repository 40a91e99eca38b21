"""The primary's side of `keycardd --processes N`: start, serve and stop its replica processes.

Each replica is `python -m keycardd.replica`, given the listening socket and one end of a private socketpair. The
primary serves the other end like a client connection, with a handler that also takes the replicas' reports. A
replica that exits on its own takes the whole daemon down with EX_TEMPFAIL, so the service manager (or the next
hook's autostart) brings back a complete set rather than a daemon silently running on fewer cores.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
from anyio.abc import Process, TaskStatus, UNIXSocketStream

from keycardd.protocol import ReplicaReport, Reply, Request

if TYPE_CHECKING:
    from keycardd.daemon import Daemon

log = logging.getLogger("keycardd.replicas")

STOP_GRACE_S = 5.0
_NOT_INHERITED = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")
"""systemd's variables are the primary's alone: a replica must not take its sockets or report readiness."""


class Replicas:
    def __init__(self, daemon: Daemon, count: int, listener: socket.socket, options: list[str]) -> None:
        self.count = count
        self._daemon = daemon
        self._listener = listener
        self._options = options
        self._processes: list[Process] = []
        self._ready: set[int] = set()
        """Replicas that said they serve: signalled from then on (before, SIGHUP's default action would kill them)."""
        self._stopping = False

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every replica, then serve their channels and watch them until the daemon stops."""
        env = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
        balance = self._daemon.server.balance
        async with anyio.create_task_group() as tasks:
            for slot in range(1, self.count + 1):
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                with theirs:
                    fds: tuple[int, ...] = (self._listener.fileno(), theirs.fileno())
                    fd_options = ["--listen-fd", str(fds[0]), "--channel-fd", str(fds[1])]
                    if balance is not None:
                        fds += (balance.fd,)
                        fd_options += ["--balance-fd", str(balance.fd), "--slot", str(slot)]
                        fd_options += ["--processes", str(self.count + 1)]
                    process = await anyio.open_process(
                        [sys.executable, "-m", "keycardd.replica", *fd_options, *self._options],
                        stdin=subprocess.DEVNULL,
                        stdout=None,
                        stderr=None,
                        env=env,
                        pass_fds=fds,
                        start_new_session=True,  # Ctrl-C reaches the primary alone; it stops the replicas in order
                    )
                self._processes.append(process)
                channel = await UNIXSocketStream.from_socket(ours)
                tasks.start_soon(self._daemon.server.serve_channel, channel, functools.partial(self._handle, process))
                tasks.start_soon(self._supervise, process)
            log.info("replica processes started: %s", ", ".join(str(process.pid) for process in self._processes))
            task_status.started()

    def signal(self, signum: signal.Signals) -> None:
        for process in self._processes:
            if process.returncode is None and process.pid in self._ready:
                process.send_signal(signum)

    async def _handle(self, process: Process, request: Request) -> Reply:
        if isinstance(request, ReplicaReport) and request.ready:
            self._ready.add(process.pid)
        return await self._daemon.handle_replica(request)

    async def stop(self) -> None:
        """Stop the replicas gracefully (they finish what they are answering and report), then kill stragglers."""
        self._stopping = True
        for process in self._processes:
            if process.returncode is None:
                process.terminate()  # a replica still starting up just ends
        with anyio.move_on_after(STOP_GRACE_S):
            for process in self._processes:
                await process.wait()
        for process in self._processes:
            if process.returncode is None:
                log.error("replica %d did not stop within %.0f s; killing it", process.pid, STOP_GRACE_S)
                process.kill()
                await process.wait()

    async def _supervise(self, process: Process) -> None:
        code = await process.wait()
        if self._stopping or self._daemon.server.closing:
            return
        self._daemon.stop_for_restart(f"replica {process.pid} exited ({code}); stopping so keycardd restarts whole")
