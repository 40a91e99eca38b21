"""The loopback HTTP transport for Claude Code's `http` hooks: no process spawn per tool call, the same decisions.

Claude Code POSTs the hook's JSON to `/hooks/claude` and reads the answer from a 2xx JSON body. This module owns
only the HTTP: httptools parses every request (keycardd/http_messages.py: keep-alive, pipelining, chunked bodies,
limits), and the body goes, as bytes, into the same `HookRequest` the Unix-socket shims send, so the adapter,
counts, latency and decision log are the ones the shim path uses. The shim's stdout becomes the body (`{}` when it
prints nothing: no objection).

Only the user gets a decision. Every connection's owner uid is checked against ours in the kernel's socket table
before a byte is read (403), and every request must carry the per-user secret (401). A refusal is logged and
counted, and never decided. Bad requests get a clear 4xx JSON error: wrong path or method, wrong content type, a
body over the limit, headers that never end, a sender too slow to finish its request. The number of open
connections is capped, a new connection must start its request within the read timeout, and idle keep-alive
connections are closed after a while, so a flood costs bounded memory and time.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import msgspec
from anyio.abc import SocketAttribute, SocketListener, SocketStream

from keycardd import protocol, tcp_owner
from keycardd.hook_secret import HookSecretError, ensure_secret, read_secret
from keycardd.http_messages import END_OF_MESSAGE, BadRequest, RequestHead, RequestReader, json_response
from keycardd.protocol import ErrorReply, HookRequest, HookResult, Reply
from keycardd.stats import LATENCY_WINDOW, latency_summary

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 47474
ROUTES = {b"/hooks/claude": "claude"}
"""One endpoint per agent; the event comes from the payload, as on the shim path."""
FORWARDED_HEADERS = {
    b"x-keycard-run": "KEYCARD_RUN",
    b"x-keycard-run-session-id": "KEYCARD_RUN_SESSION_ID",
    b"x-claude-project-dir": "CLAUDE_PROJECT_DIR",
    b"x-keycard-canary": "KEYCARD_CANARY",
}
"""Headers that carry what a shim forwards from its environment: Claude Code fills the `KEYCARD_RUN*` ones from its
own (`allowedEnvVars`), a project install writes the project directory; doctor's canaries carry their token
(keycardd/canary.py). An empty value means unset."""
_READ_HEADERS = frozenset({b"authorization", b"content-type", b"content-length", *FORWARDED_HEADERS})
"""The headers this server acts on: each must come at most once."""
RECEIVE_SIZE = 1 << 16
ACCEPT_RETRY_S = 0.1
LINGER_S = 1.0
"""How long a refused request's remaining bytes are read and dropped before the connection closes."""
MAX_HEADERS = 16 * 1024
_NO_OBJECTION = b"{}"
_encode = msgspec.json.Encoder().encode

HookHandler = Callable[[HookRequest], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_body: int = protocol.MAX_FRAME
    """The largest request body, the same limit as a shim's frame."""
    read_timeout_s: float = 5.0
    """From a request's first byte to its last: slower senders get 408."""
    idle_timeout_s: float = 60.0
    """How long a keep-alive connection may wait for its next request."""
    max_connections: int = 256


class _Refusal(Exception):
    """A request that gets an error status instead of a decision; the connection is closed after it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpHookServer:
    """Serves http hooks until `shutdown()`; then answers what is in flight and closes idle connections."""

    def __init__(self, handler: HookHandler, secret: str, limits: HttpLimits | None = None) -> None:
        self._handler = handler
        self._authorization = f"Bearer {secret}".encode()
        self._limits = limits or HttpLimits()
        self._uid = os.getuid()
        self._check_uid = tcp_owner.available()
        self._accepting = anyio.CancelScope()
        self._idle_scopes: set[anyio.CancelScope] = set()
        self._in_flight = 0
        self._closing = False
        self.stopped = anyio.Event()
        self.address = ""
        self.open_connections = 0
        self.served = 0
        """Requests answered with a decision."""
        self.refused = 0
        """Requests or connections refused as not the user's: wrong uid, missing or wrong secret."""
        self.rejected = 0
        """Requests answered with another 4xx/5xx: bad path, method, content type, size, timeouts, overload."""
        self._latencies_us: deque[float] = deque(maxlen=LATENCY_WINDOW)
        """Daemon-side time of each decided request, from its parsed head to its answer sent (this process's)."""

    def status(self) -> dict[str, object]:
        return {
            "listening": self.address,
            "uid_check": self._check_uid,
            **self.counts(),
            "latency_us": latency_summary(self._latencies_us),
        }

    def counts(self) -> dict[str, int]:
        """The counters a replica process reports to its primary."""
        return {
            "served": self.served,
            "refused": self.refused,
            "rejected": self.rejected,
            "open_connections": self.open_connections,
        }

    def add(self, counts: dict[str, int]) -> None:
        """Add a replica's report (`--processes N`: every process accepts on the port, the primary reports)."""
        self.served += counts.get("served", 0)
        self.refused += counts.get("refused", 0)
        self.rejected += counts.get("rejected", 0)
        self.open_connections += counts.get("open_connections", 0)

    async def serve(self, listener: SocketListener) -> None:
        raw = listener.extra(SocketAttribute.raw_socket)
        host, port = raw.getsockname()[:2]
        self.address = f"[{host}]:{port}" if raw.family == socket.AF_INET6 else f"{host}:{port}"
        try:
            await self._accept_until_shutdown(listener)
        finally:
            self.stopped.set()

    async def _accept_until_shutdown(self, listener: SocketListener) -> None:
        async with anyio.create_task_group() as connections:
            async with listener:
                with self._accepting:
                    while True:
                        try:
                            stream = await listener.accept()
                        except OSError as exc:  # out of file descriptors (EMFILE/ENFILE): wait, do not stop
                            log.error("http hook listener cannot accept a connection (%s); retrying", exc)
                            await anyio.sleep(ACCEPT_RETRY_S)
                            continue
                        connections.start_soon(self._serve_connection, stream)
            for scope in list(self._idle_scopes):
                scope.cancel()
            with anyio.move_on_after(self._limits.read_timeout_s):
                while self._in_flight:
                    await anyio.sleep(0.01)
            connections.cancel_scope.cancel()

    def shutdown(self) -> None:
        self._closing = True
        self._accepting.cancel()

    async def _serve_connection(self, stream: SocketStream) -> None:
        async with stream:
            raw = stream.extra(SocketAttribute.raw_socket)
            if self.open_connections >= self._limits.max_connections:
                self.rejected += 1
                await self._send_error(stream, _Refusal(503, "too many open connections"))
                return
            refusal = self._peer_refusal(raw)
            if refusal is not None:
                self.refused += 1
                log.warning("http hook listener: %s", refusal.message)
                await self._send_error(stream, refusal)
                return
            self.open_connections += 1
            try:
                # The first request must come within the read timeout (a client connects to send one), so that
                # connections nobody uses cannot hold the slots for the idle timeout.
                reader = RequestReader(MAX_HEADERS)
                wait_s = self._limits.read_timeout_s
                while await self._serve_request(stream, reader, wait_s):
                    wait_s = self._limits.idle_timeout_s
            except Exception:  # a bug here must cost one connection, not the daemon
                log.exception("internal error serving an http hook connection")
            finally:
                self.open_connections -= 1

    def _peer_refusal(self, raw: socket.socket) -> _Refusal | None:
        """The owner check, before a byte is read: only our uid's sockets may talk to us."""
        if not self._check_uid:
            return None
        try:
            peer, local = raw.getpeername()[:2], raw.getsockname()[:2]
        except OSError:
            return _Refusal(403, "the client left before it could be identified")
        uid = tcp_owner.peer_uid(raw.family, peer, local)
        if uid != self._uid:
            return _Refusal(403, f"refused a connection from uid {uid} (only uid {self._uid} may use it)")
        return None

    async def _serve_request(self, stream: SocketStream, reader: RequestReader, wait_s: float) -> bool:
        """Read one request (waiting up to `wait_s` for it to start) and answer it; False when the connection is
        done."""
        request = await self._next_request(stream, reader, wait_s)
        if request is None:
            return False
        started = time.perf_counter()
        self._in_flight += 1
        try:
            try:
                agent, env = self._admit(request)
                body = await self._read_body(stream, reader)
            except _Refusal as refusal:
                if refusal.status in (401, 403):
                    self.refused += 1
                    log.warning("http hook listener: %s", refusal.message)
                else:
                    self.rejected += 1
                await self._send_error(stream, refusal)
                await _linger(stream)
                return False
            try:
                reply = await self._handler(HookRequest(agent=agent, payload=body, env=env))
            except Exception:
                log.exception("internal error while answering an http hook")
                reply = ErrorReply(message="keycardd hit an internal error answering this hook; see its log")
            if not isinstance(reply, HookResult):
                self.rejected += 1
                message = reply.message if isinstance(reply, ErrorReply) else "keycardd could not answer this hook"
                return await self._send_error(stream, _Refusal(500, message))
            self.served += 1
            kept = await self._send(stream, 200, reply.stdout or _NO_OBJECTION, close=not request.keep_alive)
            self._latencies_us.append((time.perf_counter() - started) * 1e6)
            return kept
        finally:
            self._in_flight -= 1

    async def _next_request(self, stream: SocketStream, reader: RequestReader, wait_s: float) -> RequestHead | None:
        """Wait (up to `wait_s`) for the next request's head; None when the connection should close. A request
        already received (pipelined) is taken without a timer."""
        started = reader.started
        deadline = anyio.current_time() + (self._limits.read_timeout_s if started else wait_s)
        while True:
            event = reader.next_event()
            if isinstance(event, RequestHead):
                return event
            if isinstance(event, BadRequest):
                self.rejected += 1
                await self._send_error(stream, _Refusal(event.status, event.message))
                await _linger(stream)
                return None
            if event is not None:  # CLOSED: the client has gone (no body can come before a head)
                return None
            if self._closing and not started:
                return None
            with anyio.CancelScope(deadline=deadline) as wait:
                if not started:
                    self._idle_scopes.add(wait)
                try:
                    data = await _receive(stream)
                finally:
                    self._idle_scopes.discard(wait)
            if wait.cancelled_caught:
                if started:
                    self.rejected += 1
                    await self._send_error(stream, _Refusal(408, "timed out reading the request head"))
                return None
            if data and not started:
                started = True
                deadline = anyio.current_time() + self._limits.read_timeout_s
            reader.feed(data)

    def _admit(self, request: RequestHead) -> tuple[str, dict[str, str]]:
        """Route, authenticate and check the request head; the agent and forwarded environment if it passes."""
        headers = request.headers
        if request.repeated & _READ_HEADERS:
            names = ", ".join(sorted(name.decode("latin-1") for name in request.repeated & _READ_HEADERS))
            raise _Refusal(400, f"repeated header ({names}): which value counts would be a guess")
        if not hmac.compare_digest(headers.get(b"authorization", b""), self._authorization):
            present = "a wrong" if b"authorization" in headers else "no"
            raise _Refusal(401, f"refused a request with {present} hook secret")
        target = request.target.split(b"?", 1)[0]
        agent = ROUTES.get(target)
        if agent is None:
            raise _Refusal(404, f"no hook endpoint at {target.decode('latin-1')!r} (try /hooks/claude)")
        if request.method != b"POST":
            raise _Refusal(405, "hooks are POSTed")
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if content_type != b"application/json":
            raise _Refusal(415, "the body must be application/json")
        length = headers.get(b"content-length")
        if length is not None and int(length) > self._limits.max_body:  # llhttp has checked it is a number
            raise _Refusal(413, f"the body is over the {self._limits.max_body}-byte limit")
        env = {}
        for header, name in FORWARDED_HEADERS.items():
            value = headers.get(header)
            if value:
                env[name] = value.decode("utf-8", "replace")
        return agent, env

    async def _read_body(self, stream: SocketStream, reader: RequestReader) -> bytes:
        """The whole body (also chunked), within the read timeout and size limit. A body that came with its head
        (the common case) is taken without a timer."""
        chunks: list[bytes] = []
        size = 0
        deadline = anyio.current_time() + self._limits.read_timeout_s
        while True:
            event = reader.next_event()
            if isinstance(event, bytes):
                size += len(event)
                if size > self._limits.max_body:
                    raise _Refusal(413, f"the body is over the {self._limits.max_body}-byte limit")
                chunks.append(event)
            elif event is END_OF_MESSAGE:
                return b"".join(chunks)
            elif isinstance(event, BadRequest):  # bad chunked framing, or the client closed mid-body
                raise _Refusal(event.status, event.message)
            elif event is None:
                with anyio.move_on_after(deadline - anyio.current_time()):
                    reader.feed(await _receive(stream))
                    continue
                raise _Refusal(408, "timed out reading the request body")
            else:  # nothing else can come within a body
                raise _Refusal(400, "the connection closed before the body ended")

    async def _send_error(self, stream: SocketStream, refusal: _Refusal) -> bool:
        await self._send(stream, refusal.status, _encode({"error": refusal.message}), close=True)
        return False

    async def _send(self, stream: SocketStream, status: int, body: bytes, *, close: bool) -> bool:
        """Send one response; False when the connection must close afterwards."""
        close = close or self._closing
        try:
            await stream.send(json_response(status, body, close=close))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return False
        return not close


async def _linger(stream: SocketStream) -> None:
    """After refusing a request whose body may still be arriving: send our end of the stream and drop what comes for
    a moment, so that the client reads the refusal instead of a reset (closing with unread bytes sends one, which
    can reach the client before it has read the answer)."""
    with anyio.move_on_after(LINGER_S):
        try:
            await stream.send_eof()
            while await stream.receive(RECEIVE_SIZE):
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass


async def _receive(stream: SocketStream) -> bytes:
    """The next bytes from the client, or b"" when it has gone (what the reader takes as the end of the stream)."""
    try:
        return await stream.receive(RECEIVE_SIZE)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        return b""


def bind_http(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on a loopback address only: keycardd never listens beyond this host."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4]
    if not ipaddress.ip_address(address[0]).is_loopback:
        raise OSError(f"{host} is not a loopback address; http hooks are served on loopback only")
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # Linux: only the same uid may share the port
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def _warn_if_squatted(options: HttpOptions) -> None:
    """Another user on our port receives the hooks (and their secret) and answers them: say so loudly."""
    if not tcp_owner.available():
        return
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    try:
        address = socket.getaddrinfo(options.host, options.port, family, socket.SOCK_STREAM)[0][4]
    except OSError:
        return
    uid = tcp_owner.listener_uid(family, (str(address[0]), int(address[1])))
    if uid is not None and uid != os.getuid():
        log.error(
            "uid %d is listening on %s port %d: it receives this user's http hooks and their secret; "
            "stop it, or move keycardd and the hooks to another port (--http-port, install --http-port)",
            uid,
            options.host,
            options.port,
        )


def parse_port(text: str) -> int:
    """A TCP port from the command line or `$KEYCARDD_HTTP_PORT`; ValueError saying what is wrong otherwise."""
    if not text.isdigit() or not 0 < int(text) < 1 << 16:
        raise ValueError(f"{text!r} is not a TCP port number (1-65535)")
    return int(text)


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """`keycardd --http auto|on|off --http-host H --http-port P`."""

    mode: str = "auto"
    """`auto` serves http hooks once `keycardctl install claude --transport http` has created the hook secret; `on`
    creates the secret if needed; `off` never listens."""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT


def open_listener(
    options: HttpOptions, handler: HookHandler, *, reuse_port: bool = False, inherited: socket.socket | None = None
) -> tuple[HttpHookServer, socket.socket] | None:
    """The http hook server and its bound socket (`inherited` from socket activation, which then decides the address),
    or None when it is off or cannot start (said in the log: the Unix socket keeps serving either way)."""
    if options.mode == "off":
        return None
    try:
        secret = ensure_secret() if options.mode == "on" else read_secret()
    except HookSecretError as exc:
        log.error("not serving http hooks: %s", exc)
        return None
    if secret is None:
        return None
    if inherited is not None:
        if not ipaddress.ip_address(inherited.getsockname()[0]).is_loopback:
            log.error("not serving http hooks: the socket passed in is not on a loopback address")
            return None
        return HttpHookServer(handler, secret), inherited
    try:
        sock = bind_http(options.host, options.port, reuse_port=reuse_port)
    except OSError as exc:
        log.error("not serving http hooks: cannot listen on %s port %d (%s)", options.host, options.port, exc)
        _warn_if_squatted(options)
        return None
    return HttpHookServer(handler, secret), sock
