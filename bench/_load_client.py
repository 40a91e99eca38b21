"""A load generator process: many keep-alive connections from one process, multiplexed with `selectors`.

Run as a script (`python -I -S bench/_load_client.py KIND ADDRESS CONNECTIONS REQUESTS START_AT < requests`), only
the standard library. KIND is `http` (ADDRESS a loopback port; answers are HTTP/1.1 responses, each must be 200) or
`frame` (ADDRESS a Unix socket path; answers are keycardd's length-prefixed frames). stdin holds the requests to
send, each as a 4-byte big-endian length and its bytes: connection `i` sends them in turn starting at the `i`th, so
the connections together send the whole mix all the time.

Every connection is a separate socket, opened before START_AT, that sends its next request only after the answer to
the previous one has arrived whole, REQUESTS times: each request is a full hook decision in the daemon, exactly as
from one client per process. What it saves is the clients' cost: the 64 one-connection Python processes the
benchmarks used to start spent more CPU per request than the daemon (about 400 vs 290 us), on the same two
cores. The exit status is 1 if any answer was not a success, or a connection closed early.
"""

from __future__ import annotations

import selectors
import socket
import struct
import sys
import time


def _requests(data: bytes) -> list[bytes]:
    found, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        found.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return found


def _http_answer(buffer: bytearray) -> int | None:
    """The length of the complete response at the start of `buffer` (None: not complete yet; -1: not a 200)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1.1 200 "):
        return -1
    length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    total = end + 4 + length
    return total if len(buffer) >= total else None


def _frame_answer(buffer: bytearray) -> int | None:
    """The same for a frame: its length once whole, -1 when it is not a hook result (an error reply)."""
    if len(buffer) < 4:
        return None
    total = 4 + struct.unpack_from(">I", buffer)[0]
    if len(buffer) < total:
        return None
    return total if buffer.find(b"\xabhook_result", 4, total) >= 0 else -1


def main() -> int:
    kind, address, connections, per_connection, start_at = sys.argv[1:6]
    requests = _requests(sys.stdin.buffer.read())
    answer_length = _http_answer if kind == "http" else _frame_answer
    selector = selectors.DefaultSelector()
    state: dict[socket.socket, list[object]] = {}
    for index in range(int(connections)):
        if kind == "http":
            sock = socket.create_connection(("127.0.0.1", int(address)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(address)
        state[sock] = [int(per_connection), index % len(requests), bytearray()]
        selector.register(sock, selectors.EVENT_READ)
    while time.time() < float(start_at):
        time.sleep(0.001)
    for sock, (_, next_request, _) in state.items():
        sock.sendall(requests[next_request])  # type: ignore[index]
    open_connections = len(state)
    while open_connections:
        for key, _ in selector.select():
            sock = key.fileobj  # type: ignore[assignment]
            entry = state[sock]
            buffer: bytearray = entry[2]  # type: ignore[assignment]
            data = sock.recv(65536)
            if not data:
                return 1
            buffer += data
            length = answer_length(buffer)
            if length is None:
                continue
            if length < 0 or length != len(buffer):
                return 1
            buffer.clear()
            entry[0] = remaining = entry[0] - 1  # type: ignore[operator]
            if remaining == 0:
                selector.unregister(sock)
                sock.close()
                open_connections -= 1
                continue
            entry[1] = next_request = (entry[1] + 1) % len(requests)  # type: ignore[operator]
            sock.sendall(requests[next_request])
    return 0


if __name__ == "__main__":
    sys.exit(main())
