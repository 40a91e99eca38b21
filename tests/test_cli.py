"""keycardctl's core commands as a person runs them: real processes, with and without a daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import DaemonProcess

from keycardd.engine import default_policy_source
from keycardd.protocol import HookRequest

SSH_READ = json.dumps(
    {"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": {"file_path": "/home/dev/.ssh/id_ed25519"}}
)


def keycardctl(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_status_without_a_daemon_is_one_clear_sentence() -> None:
    result = keycardctl("status")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("keycardctl: keycardd is not running on ")
    assert "start it with" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_json_from_a_running_daemon(daemon: DaemonProcess) -> None:
    result = keycardctl("status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["pid"] == daemon.process.pid
    assert document["policy"]["sources"] == ["embedded:default"]


def test_status_text_from_a_running_daemon(daemon: DaemonProcess) -> None:
    result = keycardctl("status")
    assert result.returncode == 0
    assert f"pid {daemon.process.pid}" in result.stdout
    assert "embedded:default" in result.stdout


def test_status_text_reads_as_sentences_on_a_fresh_daemon(daemon: DaemonProcess) -> None:
    lines = dict(line.split(":", 1) for line in keycardctl("status").stdout.splitlines() if ":" in line[:12])
    assert lines["latency"].strip() == "no decisions yet"
    assert lines["shadow"].strip() == "off (no shadow policy set)"
    assert "None" not in keycardctl("status").stdout and "{" not in keycardctl("status").stdout


def test_a_reader_that_goes_away_ends_keycardctl_quietly(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    record = {"time": "t", "decision": "deny", "agent": "claude-code", "event": "PreToolUse", "tool": "bash"}
    log.write_text("".join(json.dumps({**record, "command": f"echo {n}"}) + "\n" for n in range(20_000)))
    env = {**os.environ, "KEYCARD_DECISION_LOG": str(log)}
    reader = subprocess.Popen(
        [sys.executable, "-m", "keycardd.cli", "decisions", "-n", "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().startswith(b"t deny")
    reader.stdout.close()  # what `| head -1` does
    assert reader.wait(timeout=60) == 128 + signal.SIGPIPE
    assert reader.stderr.read() == b""


def test_explain_text_of_an_unreadable_payload_has_no_empty_tool() -> None:
    result = keycardctl("explain", "--agent", "cursor", stdin="garbage")
    assert result.returncode == 0, result.stderr
    header = "decision: deny  [cursor unreadable, decided in-process (no daemon is running)]"
    assert result.stdout.splitlines()[0] == header


def test_explain_in_process_says_so() -> None:
    result = keycardctl("explain", "--json", stdin=SSH_READ)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["daemon"] is False
    assert document["decision"] == "deny"
    assert document["policies"] == ["deny-private-key-and-credential-files"]
    assert document["request"]["resource"] == 'Tool::"read"'
    assert document["request"]["context"]["file_path"] == "/home/dev/.ssh/id_ed25519"
    text = keycardctl("explain", stdin=SSH_READ)
    assert "in-process (no daemon is running)" in text.stdout


def test_explain_through_the_daemon(daemon: DaemonProcess, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(SSH_READ)
    result = keycardctl("explain", str(payload), "--json")
    document = json.loads(result.stdout)
    assert document["daemon"] is True
    assert document["decision"] == "deny"
    status = json.loads(keycardctl("status", "--json").stdout)
    assert status["decisions"]["deny"] == 0  # explaining is not deciding: nothing counted


def test_explain_cursor_payload() -> None:
    payload = json.dumps({"hook_event_name": "beforeSubmitPrompt", "prompt": "hi", "conversation_id": "c"})
    document = json.loads(keycardctl("explain", "--agent", "cursor", "--json", stdin=payload).stdout)
    assert document["decision"] == "no_objection"
    assert json.loads(document["output"]["stdout"]) == {"continue": True}


def test_explain_missing_file_is_a_clear_error() -> None:
    result = keycardctl("explain", "/nonexistent/payload.json")
    assert result.returncode == 1
    assert result.stderr.startswith("keycardctl: cannot read /nonexistent/payload.json")


def test_policy_validate_reports_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.cedar"
    good.write_text('@id("a") permit (principal, action, resource);\n')
    bad = tmp_path / "bad.cedar"
    bad.write_text(
        "permit (principal, action, resource);\n\nforbid (principal, action, resource) when { context.x };\n"
    )
    assert keycardctl("policy", "validate", str(good)).stdout.startswith("valid: 1 policy (")
    result = keycardctl("policy", "validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3:" in result.stderr


def test_agent_policy_prints_the_embedded_default_without_a_file() -> None:
    result = keycardctl("agent", "policy")
    assert result.returncode == 0
    assert result.stdout == default_policy_source().text


def test_agent_policy_prints_the_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "p.cedar"
    policy.write_text("permit (principal, action, resource);\n")
    env = {**os.environ, "KEYCARD_POLICY_FILE": str(policy)}
    assert keycardctl("agent", "policy", env=env).stdout == policy.read_text()


def test_reload_rejected_policy_fails_with_the_error(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy="permit (principal, action, resource);")
    Path(daemon.env["KEYCARD_POLICY_FILE"]).write_text("permit (principal, action, resource) when { nope };")
    result = keycardctl("reload", env=daemon.env)
    assert result.returncode == 1
    assert "rejected" in result.stderr
    assert "policy.cedar:1" in result.stderr


def test_decisions_shows_recent_decisions(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        client.request(HookRequest(agent="claude", payload=SSH_READ.encode()))
    log = Path(json.loads(keycardctl("status", "--json").stdout)["log"]["path"])
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    result = keycardctl("decisions", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["decision"] == "deny"
    human = keycardctl("decisions").stdout
    assert "deny" in human
    assert "deny-private-key-and-credential-files" in human


def test_reload_without_a_daemon_gives_the_same_hint_as_status() -> None:
    reload, status = keycardctl("reload"), keycardctl("status")
    assert reload.returncode == status.returncode == 1
    assert reload.stderr == status.stderr
    assert len(reload.stderr.strip().splitlines()) == 1 and "start it with" in reload.stderr
