"""The http hook listener under slow senders and connection floods, in-process with short limits so each test takes
a second: a real TCP listener and real client sockets, only the decision is a stand-in."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketListener, SocketStream

from keycardd.http_server import HttpHookServer, HttpLimits, bind_http
from keycardd.protocol import HookRequest, HookResult, Reply

pytestmark = pytest.mark.anyio
SECRET = "s3cret-for-tests"
LIMITS = HttpLimits(read_timeout_s=0.3, idle_timeout_s=0.6, max_connections=4)
FLOOD_LIMITS = HttpLimits(read_timeout_s=0.3, idle_timeout_s=5, max_connections=4)


def request(body: bytes = b"{}") -> bytes:
    return (
        b"POST /hooks/claude HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + SECRET.encode() + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


async def decide(hook: HookRequest) -> Reply:
    return HookResult(stdout=b'{"decided":true}')


@asynccontextmanager
async def serving(limits: HttpLimits = LIMITS) -> AsyncIterator[tuple[HttpHookServer, int]]:
    server = HttpHookServer(decide, SECRET, limits)
    sock = bind_http("127.0.0.1", 0)
    port = sock.getsockname()[1]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, await SocketListener.from_socket(sock))
        yield server, port
        server.shutdown()


async def read_until_closed(stream: SocketStream, timeout_s: float = 5.0) -> bytes:
    received = b""
    with anyio.fail_after(timeout_s):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


async def read_response(stream: SocketStream) -> bytes:
    received = b""
    with anyio.fail_after(5):
        while b'{"decided":true}' not in received and b'"error"' not in received:
            received += await stream.receive()
    return received


async def test_a_slow_head_gets_408_and_is_closed() -> None:
    async with serving() as (server, port), await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"POST /hooks/claude HTTP/1.1\r\nHost: x\r\n")  # ...and never the rest
        response = await read_until_closed(stream)
        assert response.startswith(b"HTTP/1.1 408 ")
        assert server.rejected == 1


async def test_a_trickling_body_gets_408_within_the_read_timeout() -> None:
    async with serving() as (server, port), await anyio.connect_tcp("127.0.0.1", port) as stream:
        full = request(b'{"hook_event_name": "PreToolUse", "tool_name": "Bash"}')
        head, body = full.split(b"\r\n\r\n")
        await stream.send(head + b"\r\n\r\n")
        started = anyio.current_time()
        response = b""
        for byte in body:  # one byte every 0.1 s: each arrives in time, the whole never does
            try:
                await stream.send(bytes([byte]))
                with anyio.move_on_after(0.1):
                    response += await stream.receive()
            except (anyio.BrokenResourceError, anyio.EndOfStream):
                break
        response += await read_until_closed(stream)
        assert response.startswith(b"HTTP/1.1 408 ")
        assert anyio.current_time() - started < 1.5
        assert server.served == 0


async def test_idle_keep_alive_connections_are_closed() -> None:
    async with serving() as (server, port), await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request())
        assert b"200 OK" in await read_response(stream)
        assert server.open_connections == 1
        assert await read_until_closed(stream, timeout_s=3) == b""  # closed after idle_timeout_s, no error sent
        assert server.open_connections == 0


async def test_a_connection_flood_is_capped_and_the_user_is_served_afterwards() -> None:
    async with serving(FLOOD_LIMITS) as (server, port):
        idle = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(LIMITS.max_connections)]
        await anyio.sleep(0.1)
        assert server.open_connections == LIMITS.max_connections
        async with await anyio.connect_tcp("127.0.0.1", port) as extra:
            response = await read_until_closed(extra)
        assert response.startswith(b"HTTP/1.1 503 ")
        assert b"too many open connections" in response
        started = anyio.current_time()
        for stream in idle:  # the flood is closed: a connection must start its first request within the read timeout
            assert await read_until_closed(stream, timeout_s=3) == b""
            await stream.aclose()
        assert anyio.current_time() - started < 1  # not the 5 s idle timeout
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:  # ...and the next hook is answered
            await stream.send(request())
            assert b"200 OK" in await read_response(stream)
        assert server.served == 1


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving() as (server, port), await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request() * 3)
        received = b""
        with anyio.fail_after(5):
            while received.count(b'{"decided":true}') < 3:
                received += await stream.receive()
        assert received.count(b"HTTP/1.1 200 OK") == 3
        assert server.served == 3


async def test_shutdown_answers_the_request_in_flight() -> None:
    release = anyio.Event()

    async def slow_decide(hook: HookRequest) -> Reply:
        await release.wait()
        return HookResult(stdout=b'{"decided":true}')

    server = HttpHookServer(slow_decide, SECRET, HttpLimits(read_timeout_s=2))
    sock = bind_http("127.0.0.1", 0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, await SocketListener.from_socket(sock))
        async with await anyio.connect_tcp("127.0.0.1", sock.getsockname()[1]) as stream:
            await stream.send(request())
            await anyio.sleep(0.1)
            server.shutdown()
            release.set()
            response = await read_until_closed(stream)
        assert b"200 OK" in response
        assert b"connection: close" in response
        with anyio.fail_after(3):
            await server.stopped.wait()


async def test_running_out_of_file_descriptors_does_not_stop_the_listener() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with serving(HttpLimits(read_timeout_s=5, idle_timeout_s=5, max_connections=10_000)) as (server, port):
        assert server.open_connections == 0
        open_fds = len(os.listdir("/proc/self/fd"))
        clients = []
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_fds + 40, hard))
        try:
            with anyio.move_on_after(3):
                while True:  # each connection costs a client and a server descriptor, until accept() fails
                    clients.append(await anyio.connect_tcp("127.0.0.1", port))
        except OSError:
            pass
        finally:
            await anyio.sleep(0.5)  # accept() has failed and is retrying
            for stream in clients:
                await stream.aclose()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert len(clients) < 40
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(request())
            assert b"200 OK" in await read_response(stream)
        assert server.served == 1


async def test_a_failing_decision_is_a_500_and_the_listener_keeps_serving() -> None:
    calls = 0

    async def flaky(hook: HookRequest) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return HookResult(stdout=b'{"decided":true}')

    server = HttpHookServer(flaky, SECRET, LIMITS)
    sock = bind_http("127.0.0.1", 0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, await SocketListener.from_socket(sock))
        async with await anyio.connect_tcp("127.0.0.1", sock.getsockname()[1]) as stream:
            await stream.send(request())
            response = await read_until_closed(stream)
        assert response.startswith(b"HTTP/1.1 500 ")
        assert b"internal error" in response
        async with await anyio.connect_tcp("127.0.0.1", sock.getsockname()[1]) as stream:
            await stream.send(request())
            assert b"200 OK" in await read_response(stream)
        server.shutdown()
