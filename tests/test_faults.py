"""Faults: what the agents get while the daemon is killed, frozen, unlinked, starved of disk, or mid policy swap,
and that the daemon recovers on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import DaemonProcess, wait_for_socket
from shims import Shim, shims

from keycardd.client import Client
from keycardd.protocol import DocumentReply, HookRequest, HookResult, StatusRequest

C_SHIM: Shim = shims()[0]
BASH_RM = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf ~"}})
BASH_LS = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}})


def permission(stdout: bytes) -> tuple[str, str]:
    if not stdout:
        return "no_objection", ""
    specific = json.loads(stdout)["hookSpecificOutput"]
    return specific["permissionDecision"], specific["permissionDecisionReason"]


def test_killed_daemon_fails_closed_then_a_restart_recovers(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon()
    daemon.stop(signal.SIGKILL)
    decision, reason = permission(C_SHIM.run("claude", BASH_LS.encode(), "--no-autostart", env=daemon.env).stdout)
    assert decision == "deny" and reason.startswith("keycardd is not running")
    restarted = start_daemon()  # the stale socket file left by the kill is replaced
    assert permission(C_SHIM.run("claude", BASH_LS.encode(), env=restarted.env).stdout)[0] == "no_objection"


def test_frozen_daemon_times_out_closed_and_answers_again_when_thawed(daemon: DaemonProcess) -> None:
    daemon.process.send_signal(signal.SIGSTOP)
    try:
        result = C_SHIM.run("claude", BASH_LS.encode(), "--timeout-ms", "400", "--no-autostart", env=daemon.env)
        decision, reason = permission(result.stdout)
        assert decision == "deny"
        assert reason.startswith("keycardd did not answer within 400 ms")
    finally:
        daemon.process.send_signal(signal.SIGCONT)
    assert permission(C_SHIM.run("claude", BASH_RM.encode(), env=daemon.env).stdout)[0] == "deny"


def test_deleted_socket_makes_the_orphan_exit_and_the_next_call_starts_a_fresh_daemon(
    daemon: DaemonProcess, short_dir: Path
) -> None:
    daemon.socket.unlink()
    assert daemon.process.wait(timeout=10) == 75  # it knows nobody can reach it any more
    keycardd = Path(sys.executable).parent / "keycardd"
    env = {**daemon.env, "KEYCARDD_BIN": str(keycardd)}
    result = C_SHIM.run("claude", BASH_RM.encode(), "--timeout-ms", "10000", env=env)
    decision, reason = permission(result.stdout)
    assert decision == "deny" and "deny-rm-root-or-home" in reason  # a real decision from the autostarted daemon
    with Client(daemon.socket) as client:
        status = client.request(StatusRequest())
    assert isinstance(status, DocumentReply)
    os.kill(int(status.body["pid"]), signal.SIGTERM)


def test_unwritable_log_counts_drops_and_keeps_deciding(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the log directory should be")
    daemon = start_daemon(env={"KEYCARD_DECISION_LOG": str(blocked / "decisions.jsonl")})
    with daemon.client() as client:
        for _ in range(20):
            reply = client.request(HookRequest(agent="claude", payload=BASH_RM.encode()))
            assert isinstance(reply, HookResult) and b'"deny"' in reply.stdout
        deadline = time.monotonic() + 10
        while True:
            status = client.request(StatusRequest())
            assert isinstance(status, DocumentReply)
            if status.body["log"]["dropped"] >= 20 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert status.body["log"]["dropped"] >= 20
    assert daemon.process.poll() is None


def test_policy_replaced_mid_read_never_serves_a_half_policy(start_daemon: Callable[..., DaemonProcess]) -> None:
    deny_ls = (
        'permit (principal, action, resource);\n@id("no-ls") forbid (principal, action, resource == Tool::"bash")\n'
        'when { context has program && context.program == "ls" };\n'
    )
    allow_ls = "permit (principal, action, resource);\n"
    daemon = start_daemon(policy=allow_ls)
    policy = Path(daemon.env["KEYCARD_POLICY_FILE"])
    stop = threading.Event()

    def churn() -> None:
        index = 0
        while not stop.is_set():
            text = deny_ls if index % 2 else allow_ls
            with policy.open("w") as handle:  # written in two halves: a reader may see a truncated file
                handle.write(text[: len(text) // 2])
                handle.flush()
                time.sleep(0.001)
                handle.write(text[len(text) // 2 :])
            index += 1
            time.sleep(0.02)

    writer = threading.Thread(target=churn)
    writer.start()
    answers = set()
    try:
        with daemon.client() as client:
            for _ in range(300):
                reply = client.request(HookRequest(agent="claude", payload=BASH_LS.encode()))
                assert isinstance(reply, HookResult)
                answers.add(permission(reply.stdout)[0])
    finally:
        stop.set()
        writer.join()
    assert answers <= {"no_objection", "deny"}
    with daemon.client() as client:
        status = client.request(StatusRequest())
    assert isinstance(status, DocumentReply)
    assert status.body["policy"]["count"] in (1, 2)  # always one of the two whole policies


def test_restart_keeps_private_permissions(start_daemon: Callable[..., DaemonProcess]) -> None:
    first = start_daemon()
    first.stop()
    second = start_daemon()
    wait_for_socket(second.socket, second.process)
    assert second.socket.stat().st_mode & 0o777 == 0o600
    assert second.socket.parent.stat().st_mode & 0o777 == 0o700
    state = Path(second.env["XDG_STATE_HOME"]) / "keycard"
    assert state.stat().st_mode & 0o777 == 0o700


def test_daemon_killed_mid_request_fails_closed(daemon: DaemonProcess) -> None:
    daemon.process.send_signal(signal.SIGSTOP)  # the request will be in flight when the daemon dies
    shim = subprocess.Popen(
        [*C_SHIM.argv_prefix, "claude", "--no-autostart", "--timeout-ms", "10000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=daemon.env,
    )
    assert shim.stdin is not None
    shim.stdin.write(BASH_LS.encode())
    shim.stdin.close()
    time.sleep(0.5)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(timeout=10)
    assert shim.stdout is not None
    decision, reason = permission(shim.stdout.read())
    assert shim.wait(timeout=10) == 0
    assert decision == "deny"
    assert reason.startswith("keycardd closed the connection without an answer")
