"""Claude Code's http hooks served by a real keycardd on loopback: the same answers as the shim path, and nothing at
all for anyone who is not the user."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess
from shims import build_c_shim
from test_adapters import OUTCOME_PATHS
from test_adapters import POLICY as ADAPTER_POLICY
from test_conformance import VECTORS, cc

from keycardd.hook_secret import read_secret


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, "keycardd exited"
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"keycardd did not listen on port {port}")


class HttpDaemon:
    def __init__(self, daemon: DaemonProcess, port: int, host: str = "127.0.0.1") -> None:
        self.daemon = daemon
        self.port = port
        self.host = host
        secret = read_secret(Path(daemon.env["XDG_STATE_HOME"]) / "keycard" / "http-hook.secret")
        assert secret is not None
        self.secret = secret

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def post(
        self,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        path: str = "/hooks/claude",
        connection: http.client.HTTPConnection | None = None,
    ) -> tuple[int, bytes]:
        conn = connection or self.connection()
        sent = {"Content-Type": "application/json", "Authorization": f"Bearer {self.secret}", **(headers or {})}
        conn.request("POST", path, body=body, headers={k: v for k, v in sent.items() if v})
        response = conn.getresponse()
        data = response.read()
        if connection is None:
            conn.close()
        return response.status, data

    def status(self) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "keycardd.cli", "status", "--json"],
            env=self.daemon.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(json.loads(result.stdout))


@pytest.fixture
def http_daemon(start_daemon: Callable[..., DaemonProcess]) -> HttpDaemon:
    port = free_port()
    daemon = start_daemon(args=["--http", "on", "--http-port", str(port)])
    wait_for_port(port, daemon.process)
    return HttpDaemon(daemon, port)


DENY_RM = cc("PreToolUse", tool_name="Bash", tool_input={"command": "rm -rf ~"})
EXTRA_CLAUDE_PAYLOADS = [
    cc("PermissionRequest", tool_name="Read", tool_input={"file_path": "/home/dev/.ssh/id_rsa"}),
    cc("UserPromptSubmit", prompt="hello"),
    cc("PreToolUse", tool_name="Bash", tool_input={"command": "git push origin main"}),
    cc("PreToolUse", tool_name="Bash", tool_input={"command": 42}),
    cc("PreToolUse"),
    b"",
    b"[1, 2]",
]


def claude_corpus() -> list[tuple[str, bytes]]:
    """Every Claude Code payload of the shim conformance table, plus the gating shapes it lacks, plus every outcome
    of the adapter tests' policy for each gating event."""
    vectors = [(name, payload) for name, (agent, payload, _) in VECTORS.items() if agent == "claude"]
    extras = [(f"extra-{index}", payload) for index, payload in enumerate(EXTRA_CLAUDE_PAYLOADS)]
    outcomes = [
        (f"{event} {outcome}", cc(event, tool_name="Read", tool_input={"file_path": path}))
        for event in ("PreToolUse", "PermissionRequest")
        for outcome, path in OUTCOME_PATHS.items()
    ]
    prompts = [(f"prompt {word}", cc("UserPromptSubmit", prompt=f"a {word} prompt")) for word in ("secret", "plain")]
    return vectors + extras + outcomes + prompts


@pytest.mark.parametrize("policy", [None, ADAPTER_POLICY], ids=["default-policy", "adapter-test-policy"])
def test_both_transports_give_identical_answers_for_the_whole_corpus(
    start_daemon: Callable[..., DaemonProcess], policy: str | None
) -> None:
    """Byte for byte: the http body is the C shim's stdout (`{}` where the shim prints nothing), over one
    keep-alive connection, against the same daemon; with the default policy and with the adapter tests' policy,
    which has every outcome (deny, ask, allow, no objection)."""
    port = free_port()
    daemon = start_daemon(policy=policy, args=["--http", "on", "--http-port", str(port)])
    wait_for_port(port, daemon.process)
    http_daemon = HttpDaemon(daemon, port)
    shim = build_c_shim()
    env = {**http_daemon.daemon.env, "KEYCARDD_SOCKET": str(http_daemon.daemon.socket)}
    connection = http_daemon.connection()
    before = http_daemon.status()["decisions"]
    decided = 0
    answers: set[str] = set()
    for name, payload in claude_corpus():
        result = subprocess.run([str(shim), "claude", "--no-autostart"], input=payload, capture_output=True, env=env)
        assert result.returncode == 0, (name, result.stderr)
        status, body = http_daemon.post(payload, connection=connection)
        assert status == 200, (name, body)
        assert body == (result.stdout or b"{}"), name
        decided += 1
        answers.add(_answer_kind(json.loads(body)))
    connection.close()
    expected = {"{}", "deny", "ask", "PermissionRequest deny"}
    assert expected | ({"allow", "PermissionRequest allow", "block"} if policy else set()) <= answers
    after = http_daemon.status()
    # every call was counted once per transport: the same decide path
    assert sum(after["decisions"].values()) - sum(before.values()) == 2 * sum(
        1 for _, payload in claude_corpus() if _is_gate(payload)
    )
    assert after["http"]["served"] == decided


def _answer_kind(document: dict[str, Any]) -> str:
    specific = document.get("hookSpecificOutput", {})
    if "decision" in specific:
        return f"PermissionRequest {specific['decision']['behavior']}"
    return str(specific.get("permissionDecision") or document.get("decision") or "{}")


def _is_gate(payload: bytes) -> bool:
    try:
        document = json.loads(payload.removeprefix(b"\xef\xbb\xbf"))
    except ValueError:
        return True
    if not isinstance(document, dict):
        return True
    return document.get("hook_event_name", "PreToolUse") in {"PreToolUse", "PermissionRequest", "UserPromptSubmit"}


def test_keep_alive_serves_many_requests_on_one_connection(http_daemon: HttpDaemon) -> None:
    connection = http_daemon.connection()
    for _ in range(3):
        assert http_daemon.post(DENY_RM, connection=connection)[0] == 200
    first = connection.sock
    assert http_daemon.post(cc("SessionStart", source="startup"), connection=connection) == (200, b"{}")
    assert connection.sock is first  # still the same TCP connection
    connection.close()


@pytest.mark.parametrize(
    ("authorization", "label"),
    [("", "no secret"), ("Bearer wrong", "a wrong secret"), ("Basic x", "another scheme")],
)
def test_requests_without_the_secret_are_refused_and_never_decided(
    http_daemon: HttpDaemon, authorization: str, label: str
) -> None:
    before = http_daemon.status()
    status, body = http_daemon.post(DENY_RM, headers={"Authorization": authorization})
    assert status == 401, label
    assert "hookSpecificOutput" not in json.loads(body)
    after = http_daemon.status()
    assert after["decisions"] == before["decisions"]
    assert after["http"]["refused"] == before["http"]["refused"] + 1
    assert "refused a request with" in http_daemon.daemon.log()
    assert http_daemon.secret not in http_daemon.daemon.log()


def test_the_secret_is_private_and_kept_across_restarts(
    http_daemon: HttpDaemon, start_daemon: Callable[..., DaemonProcess]
) -> None:
    path = Path(http_daemon.daemon.env["XDG_STATE_HOME"]) / "keycard" / "http-hook.secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(http_daemon.secret) >= 40
    http_daemon.daemon.stop()
    port = free_port()
    again = start_daemon(args=["--http", "on", "--http-port", str(port)], socket_name="again.sock")
    wait_for_port(port, again.process)
    assert HttpDaemon(again, port).secret == http_daemon.secret


OTHER_UID_PROBE = """
import os, socket, sys
port, secret = int(sys.argv[1]), sys.argv[2]
import encodings.idna  # noqa: F401 - codecs cannot be loaded from root's Python install after setuid
os.setgid(65534); os.setuid(65534)  # first: the kernel records the uid that creates the socket
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    s.sendall(("POST /hooks/claude HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n"
               "Connection: close\\r\\nAuthorization: Bearer " + secret + "\\r\\n"
               "Content-Length: 2\\r\\n\\r\\n{}").encode())
except OSError:
    pass
data = b""
try:
    while chunk := s.recv(4096):
        data += chunk
except OSError:
    pass
print(data.split(b"\\r\\n", 1)[0].decode() or "closed")
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another uid")
def test_another_uid_is_refused_even_with_the_secret(http_daemon: HttpDaemon) -> None:
    """Loopback TCP is open to every local user: a leaked secret alone must not be enough."""
    before = http_daemon.status()
    result = subprocess.run(
        [sys.executable, "-c", OTHER_UID_PROBE, str(http_daemon.port), http_daemon.secret],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() in {"HTTP/1.1 403 Forbidden", "closed"}
    after = http_daemon.status()
    assert after["http"]["refused"] == before["http"]["refused"] + 1
    assert after["http"]["served"] == before["http"]["served"]
    assert "refused a connection from uid 65534" in http_daemon.daemon.log()


def raw_exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes and read until the server closes: for requests no well-behaved client would send."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_bad_requests_get_clear_errors_and_the_daemon_keeps_deciding(http_daemon: HttpDaemon) -> None:
    daemon = http_daemon
    auth = f"Bearer {daemon.secret}"
    assert daemon.post(DENY_RM, path="/hooks/cursor")[0] == 404
    assert daemon.post(DENY_RM, headers={"Content-Type": "text/plain"})[0] == 415
    assert daemon.post(DENY_RM, headers={"Content-Type": ""})[0] == 415
    connection = daemon.connection()
    connection.request("GET", "/hooks/claude", headers={"Authorization": auth})
    assert connection.getresponse().status == 405
    connection.close()
    too_big = b'{"hook_event_name": "PreToolUse", "pad": "' + b"x" * (1 << 20) + b'"}'
    status, body = daemon.post(too_big)
    assert status == 413
    assert "limit" in json.loads(body)["error"]
    # the same, chunked: no Content-Length to refuse up front
    head = f"POST /hooks/claude HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n"
    chunked = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (1 << 16, b"x" * (1 << 16)) for _ in range(20))
    assert raw_exchange(daemon.port, chunked).startswith(b"HTTP/1.1 413 ")
    assert raw_exchange(daemon.port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge_head = head.encode() + b"X-Pad: " + b"y" * 70000 + b"\r\n\r\n"
    assert raw_exchange(daemon.port, huge_head).split(b" ", 2)[1] in {b"431", b"400"}
    truncated = head.encode() + b"Content-Length: 50\r\n\r\n{}"
    assert raw_exchange(daemon.port, truncated, half_close=True).startswith(b"HTTP/1.1 400 ")
    # after all that, still deciding, and none of it reached the policy
    status, body = daemon.post(DENY_RM)
    assert status == 200
    assert json.loads(body)["hookSpecificOutput"]["permissionDecision"] == "deny"
    document = daemon.status()
    assert document["http"]["rejected"] >= 8
    assert document["decisions"]["deny"] == 1


def test_a_payload_that_is_not_json_is_denied_as_on_the_shim_path(http_daemon: HttpDaemon) -> None:
    """The body is the hook's stdin: undecidable bytes are a deny (which blocks even without onFailure)."""
    status, body = http_daemon.post(b"\x00\xffnot json")
    assert status == 200
    decision = json.loads(body)["hookSpecificOutput"]
    assert decision["permissionDecision"] == "deny"
    assert "malformed hook payload" in decision["permissionDecisionReason"]


def test_ipv6_loopback_when_asked(start_daemon: Callable[..., DaemonProcess]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    port = free_port()
    daemon = start_daemon(args=["--http", "on", "--http-host", "::1", "--http-port", str(port)])
    wait_for_port(port, daemon.process, host="::1")
    served = HttpDaemon(daemon, port, host="::1")
    status, body = served.post(DENY_RM)
    assert status == 200
    assert json.loads(body)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert served.status()["http"]["listening"] == f"[::1]:{port}"


def test_a_non_loopback_address_is_refused(start_daemon: Callable[..., DaemonProcess]) -> None:
    port = free_port()
    daemon = start_daemon(args=["--http", "on", "--http-host", "0.0.0.0", "--http-port", str(port)])
    deadline = time.monotonic() + 10
    while "not serving http hooks" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "is not a loopback address" in daemon.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert daemon.process.poll() is None  # the Unix socket keeps serving


def test_without_a_secret_auto_mode_does_not_listen(start_daemon: Callable[..., DaemonProcess]) -> None:
    port = free_port()
    daemon = start_daemon(args=["--http-port", str(port)])
    with daemon.client() as client:
        from keycardd.protocol import DocumentReply, StatusRequest

        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    assert "http" not in reply.body
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_with_processes_every_process_serves_the_port_and_the_primary_counts_all(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    port = free_port()
    daemon = start_daemon(args=["--processes", "2", "--http", "on", "--http-port", str(port)])
    wait_for_port(port, daemon.process)
    served = HttpDaemon(daemon, port)
    deadline = time.monotonic() + 10
    while listeners_on(port) < 2 and time.monotonic() < deadline:  # the replica binds after loading its policy
        time.sleep(0.05)
    assert listeners_on(port) == 2
    for _ in range(30):  # new connections: SO_REUSEPORT spreads them over both processes by address hash
        status, body = served.post(DENY_RM)
        assert status == 200
        assert json.loads(body)["hookSpecificOutput"]["permissionDecision"] == "deny"
    deadline = time.monotonic() + 5
    while (document := served.status())["http"]["served"] < 30 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert document["http"]["served"] == 30
    assert document["decisions"]["deny"] == 30
    assert document["processes"] == 2


def listeners_on(port: int) -> int:
    """Listening sockets on 127.0.0.1:port, from the kernel's table."""
    key = f"0100007F:{port:04X} 00000000:0000 0A"
    return Path("/proc/net/tcp").read_text().count(key)


def test_status_shows_the_listener_and_its_refusals(http_daemon: HttpDaemon) -> None:
    http_daemon.post(DENY_RM)
    http_daemon.post(DENY_RM, headers={"Authorization": "Bearer nope"})
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "status"],
        env=http_daemon.daemon.env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("http:"))
    assert (
        line == f"http:      hooks on 127.0.0.1:{http_daemon.port}: 1 answered, 1 refused as not yours, 0 bad requests"
    )


def test_socket_activation_the_first_http_hook_starts_the_daemon(tmp_path: Path, short_dir: Path) -> None:
    """What keycardd-http.socket does: systemd holds the port, and the first hook call starts keycardd."""
    import shutil

    from keycardd.hook_secret import ensure_secret

    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (Debian package: systemd)")
    secret = ensure_secret()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KEYCARDD_SOCKET"}
    argv = [activate, "-l", str(short_dir / "activated.sock"), "-l", f"127.0.0.1:{port}"]
    argv += ["-E", "HOME", "-E", "XDG_STATE_HOME", "-E", "PATH", sys.executable, "-m", "keycardd.daemon"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()  # systemd's socket: listening
                break
            except OSError:
                time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
        connection.request("POST", "/hooks/claude", body=DENY_RM, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["hookSpecificOutput"]["permissionDecision"] == "deny"
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_http_decisions_reach_the_decision_log_as_shim_decisions_do(http_daemon: HttpDaemon) -> None:
    shim = build_c_shim()
    env = {**http_daemon.daemon.env, "KEYCARDD_SOCKET": str(http_daemon.daemon.socket)}
    subprocess.run([str(shim), "claude", "--no-autostart"], input=DENY_RM, capture_output=True, env=env, check=True)
    assert http_daemon.post(DENY_RM)[0] == 200
    log = Path(http_daemon.daemon.env["XDG_STATE_HOME"]) / "keycard" / "log" / "decisions.jsonl"
    deadline = time.monotonic() + 10
    while (not log.exists() or len(log.read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    shim_record, http_record = (json.loads(line) for line in log.read_text().splitlines())
    varying = {"id", "time", "latency_us", "seq", "prev"}  # the chain position differs by design
    assert {k: v for k, v in shim_record.items() if k not in varying} == {
        k: v for k, v in http_record.items() if k not in varying
    }
    assert http_record["decision"] == "deny"
