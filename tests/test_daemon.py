"""The daemon as a user and an agent meet it: a real process on a real Unix socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from conftest import DaemonProcess, wait_for_socket

from keycardd import protocol
from keycardd.client import Client
from keycardd.protocol import DocumentReply, ErrorReply, HookRequest, HookResult, ReloadRequest, StatusRequest

DENY_READ_SECRETS = """
@id("permit-all")
permit (principal, action, resource);

@id("no-secrets") @reason("Secrets stay secret.")
forbid (principal, action == Action::"Agent::ToolUse", resource == Tool::"read")
when { context has file_path && context.file_path like "*/secrets/*" };
"""


def read_payload(path: str) -> bytes:
    return json.dumps(
        {
            "session_id": "s1",
            "cwd": "/work",
            "hook_event_name": "PreToolUse",
            "tool_name": "Read",
            "tool_input": {"file_path": path},
        }
    ).encode()


def hook(client: Client, payload: bytes, agent: str = "claude") -> HookResult:
    reply = client.request(HookRequest(agent=agent, payload=payload, env={"cwd": "/work"}))
    assert isinstance(reply, HookResult), reply
    return reply


def status(daemon: DaemonProcess) -> dict[str, object]:
    with daemon.client() as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    return reply.body


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def deny_reason(result: HookResult) -> str | None:
    if not result.stdout:
        return None
    output = json.loads(result.stdout)["hookSpecificOutput"]
    return output["permissionDecisionReason"] if output["permissionDecision"] == "deny" else None


def test_socket_and_directory_are_private(daemon: DaemonProcess) -> None:
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.socket.parent.stat().st_mode) == 0o700


def test_hook_request_gets_the_agents_exact_answer(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy=DENY_READ_SECRETS)
    with daemon.client() as client:
        denied = hook(client, read_payload("/work/secrets/prod.json"))
        passed = hook(client, read_payload("/work/src/app.py"))
    assert denied.exit_code == 0
    assert json.loads(denied.stdout) == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "keycardd policy 'no-secrets': Secrets stay secret.",
        }
    }
    assert passed.stdout == b""
    assert passed.exit_code == 0


def test_status_document_has_the_documented_keys(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        hook(client, read_payload("/home/dev/.ssh/id_rsa"))
        hook(client, read_payload("/work/README.md"))
    document = status(daemon)
    assert {
        "version",
        "pid",
        "uptime_s",
        "socket",
        "policy",
        "decisions",
        "latency_us",
        "log",
    } <= document.keys()
    assert document["pid"] == daemon.process.pid
    assert document["socket"] == str(daemon.socket)
    policy = document["policy"]
    assert isinstance(policy, dict)
    assert policy["sources"] == ["embedded:default"]
    assert policy["error"] is None
    assert len(policy["sha256"]) == 64
    assert document["decisions"] == {"allow": 0, "no_objection": 1, "ask": 0, "deny": 1}
    latency = document["latency_us"]
    assert isinstance(latency, dict)
    assert latency["p50"] is not None
    assert latency["p50"] > 0


def test_policy_change_is_live_without_restart(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy="permit (principal, action, resource);")
    policy_file = Path(daemon.env["KEYCARD_POLICY_FILE"])
    with daemon.client() as client:
        assert hook(client, read_payload("/work/secrets/a")).stdout == b""
        replacement = policy_file.with_suffix(".tmp")
        replacement.write_text(DENY_READ_SECRETS)
        replacement.replace(policy_file)  # editors and `mv` replace the file; the watcher must see it
        wait_until(lambda: deny_reason(hook(client, read_payload("/work/secrets/a"))) is not None)


def test_invalid_policy_keeps_last_good_and_is_loud(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy=DENY_READ_SECRETS)
    policy_file = Path(daemon.env["KEYCARD_POLICY_FILE"])
    good_sha = status(daemon)["policy"]["sha256"]  # type: ignore[index]
    policy_file.write_text(DENY_READ_SECRETS + "\nforbid (principal, action, resource) when { context.nope };\n")
    wait_until(lambda: status(daemon)["policy"]["error"] is not None)  # type: ignore[index]
    policy = status(daemon)["policy"]
    assert isinstance(policy, dict)
    assert policy["sha256"] == good_sha
    assert policy["error"].startswith(f"{policy_file}:9: ")
    with daemon.client() as client:
        assert deny_reason(hook(client, read_payload("/work/secrets/a"))) is not None
        reply = client.request(ReloadRequest())
    assert isinstance(reply, DocumentReply)
    assert reply.body["reloaded"] is False
    assert "policy rejected" in daemon.log()


def test_no_valid_policy_denies_gates_naming_the_file(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy="permit (principal, action, resource) when { oops };")
    with daemon.client() as client:
        reason = deny_reason(hook(client, read_payload("/work/src/app.py")))
    assert reason is not None
    assert "policy.cedar:1" in reason
    assert "no earlier policy to keep, so gated calls are denied" in daemon.log()
    text = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "status"], env=daemon.env, capture_output=True, text=True, check=False
    )
    assert text.returncode == 1
    assert "policy:    none active, so gated calls are denied" in text.stdout
    assert "None" not in text.stdout


def test_sighup_reloads(start_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy.d"
    policy_dir.mkdir()
    daemon = start_daemon(policy="permit (principal, action, resource);", env={"KEYCARD_POLICY_DIR": str(policy_dir)})
    assert status(daemon)["policy"]["count"] == 1  # type: ignore[index]
    (policy_dir / "extra.cedar").write_text(DENY_READ_SECRETS)
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: status(daemon)["policy"]["count"] == 3)  # type: ignore[index]


def test_oversized_frame_gets_an_error_and_the_daemon_keeps_serving(daemon: DaemonProcess) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(str(daemon.socket))
        raw.sendall(struct.pack(">I", protocol.MAX_FRAME + 1))
        reply = _read_reply(raw)
        assert isinstance(reply, ErrorReply)
        assert "exceeds" in reply.message
        assert raw.recv(1) == b""  # closed
    with daemon.client() as client:
        assert hook(client, read_payload("/work/x")).exit_code == 0


@pytest.mark.parametrize(
    "body",
    [b"\xc1", msgspec.msgpack.encode({"type": "launch-missiles"}), msgspec.msgpack.encode([1, 2, 3]), b""],
)
def test_malformed_frame_gets_an_error_and_closes(daemon: DaemonProcess, body: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(str(daemon.socket))
        raw.sendall(struct.pack(">I", len(body)) + body)
        reply = _read_reply(raw)
        assert isinstance(reply, ErrorReply)
        assert raw.recv(1) == b""
    assert status(daemon)["pid"] == daemon.process.pid


def test_unknown_agent_is_an_error_reply(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        reply = client.request(HookRequest(agent="vim", payload=b"{}"))
    assert isinstance(reply, ErrorReply)
    assert "unknown agent" in reply.message


def test_persistent_and_concurrent_connections(daemon: DaemonProcess) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with daemon.client() as client:
                for _ in range(25):
                    assert deny_reason(hook(client, read_payload("/home/x/.aws/credentials"))) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert status(daemon)["decisions"]["deny"] == 32 * 25  # type: ignore[index]


def test_slow_client_does_not_block_others(daemon: DaemonProcess) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stuck:
        stuck.connect(str(daemon.socket))
        stuck.sendall(struct.pack(">I", 100) + b"\x81")  # half a frame, then silence
        with daemon.client() as client:
            assert hook(client, read_payload("/work/x")).exit_code == 0


def test_second_daemon_refuses_to_steal_the_socket(
    daemon: DaemonProcess, start_daemon: Callable[..., DaemonProcess]
) -> None:
    second = start_daemon(wait=False)
    assert second.process.wait(timeout=15) == 1
    assert "already listening" in second.log()
    assert status(daemon)["pid"] == daemon.process.pid


def test_stale_socket_is_replaced(start_daemon: Callable[..., DaemonProcess], short_dir: Path) -> None:
    stale = short_dir / "keycardd.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))
    leftover.close()  # the file stays, nobody listens: a crashed daemon's socket
    daemon = start_daemon()
    assert status(daemon)["pid"] == daemon.process.pid


def test_sigterm_finishes_and_removes_the_socket(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.request(StatusRequest())  # an idle persistent connection must not hold shutdown up
    assert daemon.stop(signal.SIGTERM) == 0
    assert not daemon.socket.exists()
    client.close()


def test_in_flight_request_is_answered_during_shutdown(daemon: DaemonProcess) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(str(daemon.socket))
        raw.sendall(protocol.encode(HookRequest(agent="claude", payload=read_payload("/x"))))
        daemon.process.send_signal(signal.SIGTERM)
        assert isinstance(_read_reply(raw), HookResult)
    assert daemon.process.wait(timeout=10) == 0


def test_other_uid_is_refused_even_if_the_socket_is_opened_up(daemon: DaemonProcess) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    # Simulate a misconfiguration that exposes the socket: the peer-uid check must still refuse.
    daemon.socket.parent.chmod(0o755)
    daemon.socket.chmod(0o666)
    script = (
        "import os, socket, struct, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])\n"
        "try:\n"
        "    s.sendall(struct.pack('>I', 1) + b'\\x80')\n"
        "    print(repr(s.recv(100)))\n"
        "except (ConnectionResetError, BrokenPipeError):\n"
        "    print(repr(b''))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(daemon.socket)], capture_output=True, text=True, timeout=10
    )
    assert result.stdout.strip() == "b''", result.stderr
    wait_until(lambda: "refused a connection from uid 65534" in daemon.log())
    assert status(daemon)["connections"]["refused"] == 1  # type: ignore[index]


def test_socket_directory_blocks_other_uids(daemon: DaemonProcess) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    script = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('denied')\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", script, str(daemon.socket)], capture_output=True, text=True)
    assert result.stdout.strip() == "denied"


def test_decision_log_masks_tokens_and_hashes_contents(daemon: DaemonProcess) -> None:
    content = "API_KEY=sk-live-abcdefghijklmnopqrstuvwx\n"
    payload = json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Write",
            "session_id": "s9",
            "tool_input": {"file_path": "/work/config.py", "content": content},
        }
    ).encode()
    with daemon.client() as client:
        hook(client, payload)
        hook(client, b'{"hook_event_name":"PostToolUse","tool_name":"Read","tool_input":{}}')
    log_path = Path(status(daemon)["log"]["path"])  # type: ignore[index]
    wait_until(lambda: log_path.exists() and len(log_path.read_text().splitlines()) == 2)
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    decided, observed = (json.loads(line) for line in log_path.read_text().splitlines())
    assert "sk-live" not in log_path.read_text()
    assert decided["decision"] == "no_objection"
    assert decided["tool"] == "write"
    assert decided["content_size"] == len(content)
    assert len(decided["content_sha256"]) == 64
    assert decided["session_id"] == "s9"
    assert len(decided["id"]) == 32
    assert observed["decision"] == "observed"
    assert observed["event"] == "PostToolUse"


def test_daemon_restarts_cleanly_after_sigkill(start_daemon: Callable[..., DaemonProcess]) -> None:
    first = start_daemon()
    first.stop(signal.SIGKILL)
    assert first.socket.exists()  # a crash leaves the socket file behind
    second = start_daemon()
    wait_for_socket(second.socket, second.process)
    assert status(second)["pid"] == second.process.pid


def _read_reply(raw: socket.socket) -> protocol.Reply:
    header = _recv_exactly(raw, 4)
    return protocol.decode_reply(_recv_exactly(raw, protocol.frame_length(header)))


def _recv_exactly(raw: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
