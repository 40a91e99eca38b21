"""`keycardd --processes N`: replica processes share the socket, decide on their own, and the primary stays whole.

Every test runs the real daemon with one replica (`--processes 2`) and talks to it over the socket, one connection
per call as the shims do, so the kernel spreads the calls over both processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import DaemonProcess
from test_daemon import deny_reason, hook, read_payload, status, wait_until

from keycardd.client import DaemonUnavailableError
from keycardd.protocol import DocumentReply, ErrorReply, ReplicaReport, StatusRequest

DENY_SECRETS = (
    '@id("no-secrets") forbid (principal, action, resource)\n'
    '  when { context has file_path && context.file_path like "*/secrets/*" };\n'
)
PERMIT_ALL = '@id("all") permit (principal, action, resource);\n'


def start_with_a_replica(start_daemon: Callable[..., DaemonProcess], **kwargs: object) -> tuple[DaemonProcess, int]:
    """The daemon with `--processes 2`, once its replica serves; returns it and the replica's pid."""
    daemon = start_daemon(args=["--processes", "2"], **kwargs)
    wait_until(lambda: re.search(r"\[replica (\d+)\] INFO serving", daemon.log()) is not None, timeout_s=20)
    match = re.search(r"\[replica (\d+)\] INFO serving", daemon.log())
    assert match is not None
    return daemon, int(match[1])


def decide_on_fresh_connections(daemon: DaemonProcess, payload: bytes, calls: int) -> list[str | None]:
    """Deny reasons (None: no objection) of `calls` hook calls, each on its own connection, 8 at a time."""

    def one(_: int) -> str | None:
        with daemon.client() as client:
            return deny_reason(hook(client, payload))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(calls)))


def alive(pid: int) -> bool:
    """Running or stopped, but not gone and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_the_replica_answers_while_the_primary_cannot(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, _replica = start_with_a_replica(start_daemon, policy=PERMIT_ALL + DENY_SECRETS)
    daemon.process.send_signal(signal.SIGSTOP)
    try:
        reasons = decide_on_fresh_connections(daemon, read_payload("/work/secrets/key"), 10)
        assert all(reason is not None and "no-secrets" in reason for reason in reasons), reasons
        assert decide_on_fresh_connections(daemon, read_payload("/work/src/app.py"), 10) == [None] * 10
    finally:
        daemon.process.send_signal(signal.SIGCONT)


def test_persistent_connections_are_spread_over_the_processes(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, _replica = start_with_a_replica(start_daemon)
    clients = []
    try:
        for _ in range(20):  # each connection is open, and counted by the process holding it, before the next
            client = daemon.client(timeout_s=0.3)
            hook(client, read_payload("/work/src/app.py"))
            clients.append(client)
        daemon.process.send_signal(signal.SIGSTOP)
        answered = 0
        for client in clients:
            try:
                hook(client, read_payload("/work/src/app.py"))
                answered += 1
            except DaemonUnavailableError:
                pass
        assert 9 <= answered <= 11, f"the replica holds {answered} of 20 persistent connections"
    finally:
        daemon.process.send_signal(signal.SIGCONT)
        for client in clients:
            client.close()


def test_the_primary_keeps_accepting_while_its_replica_starts(start_daemon: Callable[..., DaemonProcess]) -> None:
    """A replica still compiling its policy takes no connections, so the primary must take them all meanwhile."""
    slow = "".join(
        f'@id("p{n}") permit (principal, action == Action::"Agent::ToolUse", resource == Tool::"read")'
        f' when {{ context has file_path && context.file_path like "*/w{n}/*" }};\n'
        for n in range(6000)
    )
    daemon = start_daemon(args=["--processes", "2"], policy=PERMIT_ALL + slow)
    if "INFO serving" in daemon.log():
        pytest.skip("the replica was ready before the check: nothing would be measured")
    held = [daemon.client() for _ in range(4)]  # open connections that count against the primary
    try:
        for client in held:
            hook(client, read_payload("/work/src/app.py"))
        assert decide_on_fresh_connections(daemon, read_payload("/work/src/app.py"), 4) == [None] * 4
        assert "INFO serving" not in daemon.log(), "the calls waited for a replica that was still starting"
    finally:
        for client in held:
            client.close()


def test_status_and_the_decision_log_count_every_process(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, _replica = start_with_a_replica(start_daemon, policy=PERMIT_ALL + DENY_SECRETS)
    assert decide_on_fresh_connections(daemon, read_payload("/work/secrets/a"), 120).count(None) == 0
    wait_until(lambda: status(daemon)["decisions"]["deny"] == 120)  # type: ignore[index]
    document = status(daemon)
    assert document["processes"] == 2
    text = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "status"], env=daemon.env, capture_output=True, text=True, check=True
    ).stdout
    assert "processes: 2 deciding (the primary and 1 replica)" in text
    log_path = Path(document["log"]["path"])  # type: ignore[index]
    wait_until(lambda: log_path.exists() and len(log_path.read_text().splitlines()) == 120)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert {record["decision"] for record in records} == {"deny"}
    assert len({record["id"] for record in records}) == 120


def test_requests_a_replica_does_not_own_are_answered_by_the_primary(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon, _replica = start_with_a_replica(start_daemon)

    def pid_on_a_fresh_connection(_: int) -> object:
        with daemon.client() as client:
            reply = client.request(StatusRequest())
        assert isinstance(reply, DocumentReply)
        return reply.body["pid"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(pid_on_a_fresh_connection, range(40))) == {daemon.process.pid}


def test_a_policy_change_reaches_every_process(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, replica = start_with_a_replica(start_daemon, policy=PERMIT_ALL)
    assert decide_on_fresh_connections(daemon, read_payload("/work/secrets/a"), 20) == [None] * 20
    Path(daemon.env["KEYCARD_POLICY_FILE"]).write_text(PERMIT_ALL + DENY_SECRETS)
    wait_until(lambda: None not in decide_on_fresh_connections(daemon, read_payload("/work/secrets/a"), 20))
    daemon.process.send_signal(signal.SIGHUP)  # the primary passes SIGHUP on
    wait_until(lambda: daemon.log().count("SIGHUP: reloading policy") >= 2)
    assert alive(replica)


def test_sigterm_stops_the_replicas_too(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, replica = start_with_a_replica(start_daemon)
    assert daemon.stop() == 0
    wait_until(lambda: not alive(replica), timeout_s=5)
    assert not daemon.socket.exists()


def test_a_replica_stops_when_its_primary_dies(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, replica = start_with_a_replica(start_daemon)
    daemon.process.kill()
    daemon.process.wait()
    wait_until(lambda: not alive(replica), timeout_s=5)


def test_a_dead_replica_stops_the_daemon_for_a_restart(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, replica = start_with_a_replica(start_daemon)
    os.kill(replica, signal.SIGKILL)
    assert daemon.process.wait(timeout=10) == 75  # EX_TEMPFAIL: the service manager restarts it whole
    assert f"replica {replica} exited" in daemon.log()


def test_a_report_on_the_public_socket_is_refused_and_changes_nothing(daemon: DaemonProcess) -> None:
    forged = ReplicaReport(decisions={"deny": 1000}, log_lines=b'{"forged": true}\n', log_records=1, ready=True)
    with daemon.client() as client:
        reply = client.request(forged)
    assert isinstance(reply, ErrorReply)
    assert reply.message == "unsupported request ReplicaReport"
    document = status(daemon)
    assert document["decisions"]["deny"] == 0  # type: ignore[index]
    log_path = Path(document["log"]["path"])  # type: ignore[index]
    assert not log_path.exists() or "forged" not in log_path.read_text()


@pytest.mark.parametrize("value", ["0", "65", "two", "-1"])
def test_a_bad_process_count_is_refused(value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.daemon", "--processes", value], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"must be a whole number from 1 to 64, not {value!r}" in result.stderr


def test_decisions_are_the_same_bytes_from_either_process(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, replica = start_with_a_replica(start_daemon)
    payload = json.dumps(
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf ~/ && ls"}}
    ).encode()

    def answer_while_stopped(pid: int) -> bytes:
        os.kill(pid, signal.SIGSTOP)
        try:
            with daemon.client() as client:
                return hook(client, payload).stdout
        finally:
            os.kill(pid, signal.SIGCONT)

    from_replica = answer_while_stopped(daemon.process.pid)
    from_primary = answer_while_stopped(replica)
    assert from_replica == from_primary
    assert b"deny-rm-root-or-home" in from_primary
