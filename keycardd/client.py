"""A small synchronous client for the daemon socket, used by keycardctl (and by tests and benchmarks)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType

from keycardd import paths, protocol
from keycardd.protocol import Reply, Request


class DaemonUnavailableError(Exception):
    """No daemon answers on the socket (not running, refused, or gone mid-request)."""


class Client:
    """One persistent connection; use as a context manager. Each `request` sends one frame and reads one reply."""

    def __init__(self, socket_path: Path | None = None, timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path or paths.socket_path()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        try:
            self._sock.connect(str(self.socket_path))
        except PermissionError:
            self._sock.close()
            raise DaemonUnavailableError(
                f"permission denied on {self.socket_path}: keycardd's socket belongs to another user"
            ) from None
        except OSError as exc:
            self._sock.close()
            reason = exc.strerror or str(exc)  # "AF_UNIX path too long" has no strerror
            raise DaemonUnavailableError(f"keycardd is not running on {self.socket_path} ({reason})") from None

    def request(self, message: Request) -> Reply:
        try:
            self._sock.sendall(protocol.encode(message))
            length = protocol.frame_length(self._read_exactly(protocol.HEADER.size))
            return protocol.decode_reply(self._read_exactly(length))
        except (OSError, protocol.FrameError) as exc:
            raise DaemonUnavailableError(f"keycardd on {self.socket_path} did not answer ({exc})") from None

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self._sock.recv(min(size, 1 << 16))
            if not chunk:
                raise OSError("the daemon closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
