"""A replica process of `keycardd --processes N`: one more decider on the primary's listening socket.

cedarpy holds the GIL, so one daemon process decides on one core at a time. A replica accepts connections from the
socket the primary bound, keeps its own parsed policy (read from the same sources, hot-reloaded the same way, and
the zone's policy from the primary's verified disk cache), and answers `hook` and `explain` requests itself.
Everything it does not own (status, reload, credentials) it forwards to the primary over a private socketpair, and
it reports its decision counts, latencies and decision-log records there every `REPORT_INTERVAL_S`, so `status`
and the log stay whole with one writer. It stops when the primary does, or when the primary disappears.

    python -m keycardd.replica --listen-fd N --channel-fd M [--unparseable deny|ask] [--config FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketListener, SocketStream, UNIXSocketStream

from keycardd import process_privacy, protocol
from keycardd.balance import ConnectionBalance
from keycardd.engine import Outcome
from keycardd.http_server import HttpOptions, open_listener
from keycardd.protocol import ErrorReply, ReplicaReport, Reply, Request
from keycardd.server import FrameReader

if TYPE_CHECKING:
    from keycardd.daemon import Daemon

log = logging.getLogger("keycardd.replica")

REPORT_INTERVAL_S = 0.1
MAX_PENDING_LOG = 768 * 1024
"""Decision-log bytes a replica holds between reports; beyond it records are dropped and counted, like the queue's."""


class PrimaryGoneError(Exception):
    """The private channel to the primary is closed: the primary has stopped or died."""


class PrimaryLink:
    """A replica's channel to its primary: forwarded requests and reports, one exchange at a time."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._frames = FrameReader(stream, protocol.MAX_FRAME)
        self._lock = anyio.Lock()
        self._parent = os.getppid()
        self._log_lines = bytearray()
        self._log_records = 0
        self._log_dropped = 0
        self._served = 0
        self._refused = 0
        self._queue_dropped = 0
        self._http: dict[str, int] = {}

    async def forward(self, request: Request) -> Reply:
        """Ask the primary; a gone primary is an error reply, never a hang."""
        try:
            return await self._exchange(request)
        except PrimaryGoneError:
            return ErrorReply(message="keycardd is stopping (its primary process is gone); retry once it restarts")

    def buffer_log(self, lines: bytes, records: int) -> None:
        """The replica's decision-log sink: records wait here for the next report."""
        if len(self._log_lines) + len(lines) > MAX_PENDING_LOG:
            self._log_dropped += records
            return
        self._log_lines += lines
        self._log_records += records

    async def report_until_gone(self, daemon: Daemon) -> None:
        """Say ready, then report every interval until the primary is gone (re-parented, or the channel closed)."""
        try:
            await self._exchange(ReplicaReport(ready=True))
            if daemon.zone is not None:  # a zone change between our first load and `ready` sent no SIGHUP
                await daemon.zone.load_cache()
            while os.getppid() == self._parent:
                await anyio.sleep(REPORT_INTERVAL_S)
                await self.report(daemon)
        except PrimaryGoneError:
            pass
        if not daemon.server.closing:
            log.error("the primary keycardd process is gone; this replica (pid %d) stops", os.getpid())
            daemon.server.shutdown()

    async def flush(self, daemon: Daemon) -> None:
        """The last report, as the replica stops; lost only if the primary is already gone."""
        with contextlib.suppress(PrimaryGoneError):
            await self.report(daemon)

    async def report(self, daemon: Daemon) -> None:
        """Send what happened since the last report (nothing when nothing did)."""
        counts, latencies = daemon.stats.drain()
        served, refused, queue_dropped = daemon.server.connections, daemon.server.refused, daemon.decision_log.dropped
        http = daemon.http.counts() if daemon.http is not None else {}
        http_changes = {
            key: value - self._http.get(key, 0) for key, value in http.items() if value != self._http.get(key, 0)
        }
        report = ReplicaReport(
            decisions=counts,
            latencies_us=latencies,
            log_lines=bytes(self._log_lines),
            log_records=self._log_records,
            log_dropped=self._log_dropped + queue_dropped - self._queue_dropped,
            shadow=daemon.shadow.drain(),
            served=served - self._served,
            refused=refused - self._refused,
            http=http_changes,
        )
        self._log_lines.clear()
        self._log_records = self._log_dropped = 0
        self._served, self._refused, self._queue_dropped = served, refused, queue_dropped
        self._http = http
        if report != ReplicaReport():
            await self._exchange(report)

    async def _exchange(self, request: Request) -> Reply:
        async with self._lock:
            try:
                await self._stream.send(protocol.encode(request))
                body = await self._frames.read_frame()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                raise PrimaryGoneError from None
            if body is None:
                raise PrimaryGoneError
            return protocol.decode_reply(body)


async def serve(
    listen_fd: int,
    channel_fd: int,
    unparseable: Outcome,
    config_path: str | None,
    balance: ConnectionBalance | None,
    *,
    http: HttpOptions | None = None,
    autostarted: bool = False,
) -> int:
    from keycardd.daemon import build_daemon  # noqa: PLC0415 - the daemon module imports this one

    channel = await UNIXSocketStream.from_socket(socket.socket(fileno=channel_fd))
    link = PrimaryLink(channel)
    listener_socket = socket.socket(fileno=listen_fd)
    daemon = build_daemon(
        listener_socket.getsockname(), unparseable, config_path, primary=link, search_cwd=not autostarted
    )
    daemon.server.balance = balance
    await daemon.reload_policy()
    http_listener = None
    served = open_listener(http, daemon.handle, reuse_port=True) if http is not None else None
    if served is not None:  # the primary's port, shared through SO_REUSEPORT
        daemon.http, http_socket = served
        http_listener = await SocketListener.from_socket(http_socket)
    log.info("serving")
    await daemon.run(await SocketListener.from_socket(listener_socket), http_listener=http_listener)
    log.info("stopped")
    return daemon.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    from keycardd.daemon import backend_options  # noqa: PLC0415 - the daemon module imports this one

    parser = argparse.ArgumentParser(prog="keycardd-replica", description="A replica process of keycardd.")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--unparseable", choices=["deny", "ask"], default="deny")
    parser.add_argument("--config")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--balance-fd", type=int)
    parser.add_argument("--slot", type=int)
    parser.add_argument("--processes", type=int)
    parser.add_argument("--http-host", help="serve http hooks on this loopback address too (the primary's)")
    parser.add_argument("--http-port", type=int)
    parser.add_argument("--autostarted", action="store_true")
    args = parser.parse_args(argv)
    log_format = "%(asctime)s %(name)s[replica %(process)d] %(levelname)s %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)
    process_privacy.keep_private()
    fds, unparseable = (args.listen_fd, args.channel_fd), Outcome(args.unparseable)
    balance = None
    if args.balance_fd is not None and args.slot is not None and args.processes is not None:
        balance = ConnectionBalance(args.balance_fd, args.slot, args.processes)
    http = HttpOptions("auto", args.http_host, args.http_port) if args.http_host and args.http_port else None
    start = functools.partial(serve, http=http, autostarted=args.autostarted)
    return anyio.run(start, *fds, unparseable, args.config, balance, backend_options=backend_options())


if __name__ == "__main__":
    sys.exit(main())
