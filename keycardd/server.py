"""The Unix-socket server: framing, peer checks, timeouts and graceful shutdown, but no decisions.

Each connection is served by one task. A peer of another uid is refused before a byte is read. Each request frame
gets exactly one reply frame; an oversized or undecodable frame gets an `ErrorReply` and the connection is closed.
Waiting for the next frame is bounded by an idle timeout, reading a started frame by a read timeout, so a slow or
stuck client costs one idle task and nothing else. Open connections are capped below the process's descriptor
limit: at the cap, or when accept() runs out of descriptors anyway, the longest-idle connections are closed and
accepting backs off, so a flood of idle clients costs them their connections, never the daemon. On shutdown the
server stops accepting, closes idle connections at once, and lets requests already being answered finish (up to a
grace period).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import resource
import socket
import stat
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, UNIXSocketStream

from keycardd import protocol
from keycardd.balance import ConnectionBalance
from keycardd.paths import UnsafePathError
from keycardd.protocol import ErrorReply, FrameError, Reply, Request

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Reply]]
RECEIVE_SIZE = 1 << 16
IDLE_TIMEOUT_S = 20.0
"""A connection waiting this long for its next request is closed: shims connect per call, and a client that keeps
its connection reconnects cheaply, while every idle connection holds a descriptor."""
MAX_CONNECTIONS = 4096
RESERVED_FDS = 32
"""Descriptors left for everything else the daemon opens (log, policy files, watcher, replicas' channels)."""
ACCEPT_BACKOFF_S = (0.01, 1.0)
"""First and longest pause of accept() after it fails for lack of descriptors (doubling in between)."""
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_cap() -> int:
    """How many connections this process may hold open: its descriptor limit less a reserve, at most 4,096."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft - RESERVED_FDS))


def raise_fd_limit() -> None:
    """Raise the soft descriptor limit to the hard one: the common soft default, 1,024 (256 on macOS), is a few
    hundred agents' worth of connections. With no hard limit, 65,536, else macOS's OPEN_MAX (10,240), the most
    it accepts there."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    targets = [hard] if hard != resource.RLIM_INFINITY else [65536, 10240]
    for target in targets:
        if soft == resource.RLIM_INFINITY or soft >= target:
            return
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return


class AlreadyRunningError(Exception):
    """Another live daemon owns the socket; keycardd never steals it."""


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS/BSD)."""
    if hasattr(socket, "SO_PEERCRED"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])
    if sys.platform == "darwin" or "bsd" in sys.platform:
        sol_local, local_peercred = 0, 1
        xucred = sock.getsockopt(sol_local, local_peercred, 76)
        return int(struct.unpack_from("I", xucred, 4)[0])
    return None


def bind_socket(path: Path) -> socket.socket:
    """Bind a listening socket at `path`, 0600 from the first instant, replacing only a dead daemon's socket.

    Anything else at `path` (a regular file, a symlink, a directory) is refused, never deleted: it is not ours.
    """
    try:
        existing: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise UnsafePathError(f"cannot use the socket path {path}: {exc.strerror or exc}") from None
    if existing is not None and not stat.S_ISSOCK(existing.st_mode):
        raise UnsafePathError(
            f"{path} exists and is not a socket; keycardd replaces only a stale socket, never other files "
            "(move it away or choose another socket path)"
        )
    if existing is not None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(path))
        except OSError:
            path.unlink()  # stale: nobody is listening
        else:
            raise AlreadyRunningError(f"another keycardd is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise UnsafePathError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    sock.listen(1024)
    return sock


class SocketServer:
    def __init__(
        self,
        handler: Handler,
        *,
        read_timeout_s: float = 5.0,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        grace_s: float = 5.0,
        max_frame: int = protocol.MAX_FRAME,
        max_connections: int | None = None,
    ) -> None:
        self._handler = handler
        self._read_timeout_s = read_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._grace_s = grace_s
        self._max_frame = max_frame
        self._uid = os.getuid()
        self.max_connections = connection_cap() if max_connections is None else max_connections
        self._open = 0
        """Client connections accepted and not yet closed (replicas' channels are not counted)."""
        self._idle_scopes: dict[anyio.CancelScope, None] = {}
        """Connections waiting for their next request, longest-idle first: the first to go when room is needed."""
        self._channel_scopes: set[anyio.CancelScope] = set()
        self._in_flight = 0
        self._closing = False
        self._accepting = anyio.CancelScope()
        self.refused = 0
        self.connections = 0
        self.balance: ConnectionBalance | None = None
        """Set when several processes share the socket (`--processes N`), to spread connections over them."""

    async def serve(self, listener: SocketListener) -> None:
        """Accept connections until `shutdown()`, then wait for in-flight requests and return."""
        log.info("at most %d open connections (the longest-idle close first)", self.max_connections)
        async with anyio.create_task_group() as connections:
            async with listener:
                if self.balance is not None:
                    self.balance.accepting(True)
                with self._accepting:
                    backoff = ACCEPT_BACKOFF_S[0]
                    while True:
                        if self.balance is not None:
                            await self.balance.wait_turn()
                        await self._make_room(self.max_connections - 1)
                        try:
                            stream = await listener.accept()
                        except anyio.BrokenResourceError as exc:
                            if not _out_of_descriptors(exc):
                                raise
                            log.warning(
                                "out of file descriptors with %d connections open: closing idle ones, backing off "
                                "%.2f s",
                                self._open,
                                backoff,
                            )
                            self._close_idle(max(1, len(self._idle_scopes) // 4))
                            await anyio.sleep(backoff)
                            backoff = min(backoff * 2, ACCEPT_BACKOFF_S[1])
                            continue
                        backoff = ACCEPT_BACKOFF_S[0]
                        self._open += 1
                        connections.start_soon(self._serve_connection, stream)
                if self.balance is not None:
                    self.balance.accepting(False)
                # Connections already queued when shutdown began have sent, or are sending, a request: answer it.
                for stream in await _queued_connections(listener):
                    self._open += 1
                    connections.start_soon(self._serve_connection, stream)
            self._close_idle(len(self._idle_scopes))
            for scope in list(self._channel_scopes):
                scope.cancel()
            with anyio.move_on_after(self._grace_s):
                while self._in_flight:
                    await anyio.sleep(0.01)
            connections.cancel_scope.cancel()

    async def _make_room(self, limit: int) -> None:
        """Wait until at most `limit` connections are open, closing the longest-idle ones to get there: a batch
        (1/16 of the cap) at a time, so that accepting resumes in bursts instead of one close per accept, and
        again every millisecond until the closed ones are gone (connections mid-request end within the read
        timeout)."""
        while self._open > limit:
            self._close_idle(max(1, self.max_connections // 16))
            await anyio.sleep(0.001)

    def _close_idle(self, count: int) -> None:
        """Close up to `count` idle connections, longest-idle first."""
        for scope in list(self._idle_scopes)[:count]:
            del self._idle_scopes[scope]
            scope.cancel()

    def shutdown(self) -> None:
        self._closing = True
        self._accepting.cancel()

    @property
    def closing(self) -> bool:
        return self._closing

    async def serve_channel(self, stream: SocketStream, handler: Handler) -> None:
        """Serve a private, long-lived connection (a replica process's channel) with its own handler: no idle
        timeout, and closed like any idle connection on shutdown."""
        await self._serve_connection(stream, handler, idle_timeout_s=math.inf, count=False)

    async def _serve_connection(
        self,
        stream: SocketStream,
        handler: Handler | None = None,
        idle_timeout_s: float | None = None,
        count: bool = True,
    ) -> None:
        """Serve one connection; `count` (a client connection, not a channel) was added to `_open` on accept."""
        handler = handler or self._handler
        idle_timeout_s = self._idle_timeout_s if idle_timeout_s is None else idle_timeout_s
        try:
            await self._serve_stream(stream, handler, idle_timeout_s, count)
        finally:
            if count:
                self._open -= 1

    async def _serve_stream(self, stream: SocketStream, handler: Handler, idle_timeout_s: float, count: bool) -> None:
        async with stream:
            uid = peer_uid(stream.extra(SocketAttribute.raw_socket))
            if uid != self._uid:
                self.refused += 1
                log.warning("refused a connection from uid %s (only uid %s may use this socket)", uid, self._uid)
                return
            if count:
                self.connections += 1
                if self.balance is not None:
                    self.balance.opened()
            try:
                await self._serve_frames(stream, handler, idle_timeout_s, count)
            except Exception:  # one connection's failure, whatever it is, must not end the server's task group
                log.exception("internal error on a connection; closing that connection only")
            finally:
                if count and self.balance is not None:
                    self.balance.closed()

    async def _serve_frames(self, stream: SocketStream, handler: Handler, idle_timeout_s: float, client: bool) -> None:
        """Answer one connection's requests until it closes, idles out, or the server shuts down (or, for a client
        connection, until it is the longest idle when room is needed)."""
        frames = FrameReader(stream, self._max_frame)
        while True:
            if self._closing and not frames.pending():
                return
            with anyio.CancelScope() as idle:
                if client:
                    self._idle_scopes[idle] = None
                else:
                    self._channel_scopes.add(idle)
                idle.deadline = anyio.current_time() + idle_timeout_s
                try:
                    started = await frames.wait_for_data()
                finally:
                    self._idle_scopes.pop(idle, None)
                    self._channel_scopes.discard(idle)
            if idle.cancelled_caught:
                if self._closing and frames.pending():  # a request already sent is still answered
                    await self._serve_frame(stream, frames, handler)
                return
            if not started:
                return
            if not await self._serve_frame(stream, frames, handler):
                return

    async def _serve_frame(self, stream: SocketStream, frames: FrameReader, handler: Handler) -> bool:
        """Read one frame and answer it; returns False when the connection must close."""
        self._in_flight += 1
        try:
            try:
                with anyio.fail_after(self._read_timeout_s):
                    body = await frames.read_frame()
                if body is None:
                    return False
                request = protocol.decode_request(body)
            except FrameError as exc:
                await self._send(stream, ErrorReply(message=str(exc)))
                return False
            except TimeoutError:
                await self._send(stream, ErrorReply(message="timed out reading the request frame"))
                return False
            try:
                reply = await handler(request)
            except Exception:
                log.exception("internal error while answering a %s request", type(request).__name__)
                reply = ErrorReply(message="keycardd hit an internal error answering this request; see its log")
            return await self._send(stream, reply)
        finally:
            self._in_flight -= 1

    async def _send(self, stream: SocketStream, reply: Reply) -> bool:
        try:
            frame = protocol.encode(reply)
        except FrameError as exc:
            frame = protocol.encode(ErrorReply(message=str(exc)))
        except (TypeError, ValueError, OverflowError):  # a value msgspec cannot encode: a bug, not the client's
            log.exception("cannot encode a %s reply", type(reply).__name__)
            frame = protocol.encode(ErrorReply(message="keycardd could not encode its answer; see its log"))
        try:
            await stream.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return False
        return True


def _out_of_descriptors(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in _OUT_OF_DESCRIPTORS


async def _queued_connections(listener: SocketListener) -> list[SocketStream]:
    """Accept, without waiting, whatever connections are already in the listen backlog."""
    raw = listener.extra(SocketAttribute.raw_socket)
    streams: list[SocketStream] = []
    while True:
        try:
            connection, _ = raw.accept()
        except OSError:  # BlockingIOError when the backlog is empty
            return streams
        streams.append(await UNIXSocketStream.from_socket(connection))


class FrameReader:
    """Splits a byte stream into frames with one `receive` per request in the common case (no extra awaits)."""

    def __init__(self, stream: SocketStream, max_frame: int) -> None:
        self._stream = stream
        self._max_frame = max_frame
        self._buffer = bytearray()

    async def wait_for_data(self) -> bool:
        """Wait until the next frame has started; False when the peer has gone."""
        return bool(self._buffer) or await self._fill()

    async def read_frame(self) -> bytes | None:
        """The next frame's body (the caller bounds the wait); None if the peer left mid-frame."""
        while len(self._buffer) < protocol.HEADER.size:
            if not await self._fill():
                return None
        length = protocol.frame_length(bytes(self._buffer[: protocol.HEADER.size]), self._max_frame)
        end = protocol.HEADER.size + length
        while len(self._buffer) < end:
            if not await self._fill():
                return None
        body = bytes(self._buffer[protocol.HEADER.size : end])
        del self._buffer[:end]
        return body

    def pending(self) -> bool:
        """Has the peer already sent (part of) a request? Checked without waiting."""
        if self._buffer:
            return True
        raw = self._stream.extra(SocketAttribute.raw_socket)
        try:
            return bool(raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:
            return False

    async def _fill(self) -> bool:
        try:
            chunk = await self._stream.receive(RECEIVE_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return False
        self._buffer += chunk
        return True
