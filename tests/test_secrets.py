"""Secret hygiene: secrets that pass through keycardd (in commands, file contents, read payloads, tool output) must
not appear in the decision log, the daemon's log, status, explain's log-side output, or hook answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import DaemonProcess
from hardening_helpers import find_secrets
from shims import shims

from keycardd.protocol import DocumentReply, StatusRequest

GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
OPENAI = "sk-" + "live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiJhbGljZSJ9." + "c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SECRETS = [GITHUB, OPENAI, AWS, JWT]

PAYLOADS = [
    (
        "claude",
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "session_id": "s",
            "tool_input": {"command": f"curl -H 'Authorization: Bearer {JWT}' http://169.254.169.254/"},
        },
    ),
    (
        "claude",
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": f"export GH_TOKEN={GITHUB} && git push"},
        },
    ),
    (
        "claude",
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Write",
            "tool_input": {"file_path": "/w/.env", "content": f"OPENAI_API_KEY={OPENAI}\n"},
        },
    ),
    (
        "claude",
        {
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "cat .env"},
            "tool_response": {"stdout": f"AWS_ACCESS_KEY_ID={AWS}\n"},
        },
    ),
    ("claude", {"hook_event_name": "UserPromptSubmit", "prompt": "deploy it"}),
    (
        "cursor",
        {"hook_event_name": "beforeReadFile", "file_path": "/w/config.json", "content": f'{{"key": "{OPENAI}"}}'},
    ),
    (
        "cursor",
        {
            "hook_event_name": "beforeShellExecution",
            "command": f"echo {GITHUB} | gh auth login --with-token",
            "conversation_id": "c",
            "generation_id": "g",
        },
    ),
    ("cursor", {"hook_event_name": "afterShellExecution", "command": "env", "output": f"TOKEN={JWT}"}),
]


def test_secrets_never_reach_logs_status_or_hook_output(daemon: DaemonProcess, tmp_path: Path) -> None:
    outputs: list[bytes | str] = []
    for shim in shims():
        for agent, payload in PAYLOADS:
            result = shim.run(agent, json.dumps(payload).encode(), env=daemon.env)
            outputs += [result.stdout, result.stderr]
    with daemon.client() as client:
        status = client.request(StatusRequest())
    assert isinstance(status, DocumentReply)
    outputs.append(json.dumps(status.body))
    decisions = Path(status.body["log"]["path"])
    deadline = time.monotonic() + 10
    expected_lines = 2 * len(PAYLOADS)  # every payload, once per shim
    while time.monotonic() < deadline and (
        not decisions.exists() or len(decisions.read_text().splitlines()) < expected_lines
    ):
        time.sleep(0.05)
    explained = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "decisions", "--json", "-n", "100"],
        capture_output=True,
        text=True,
        env=daemon.env,
    )
    outputs += [explained.stdout, explained.stderr]
    leaks = find_secrets(SECRETS, texts=outputs, files=[decisions, daemon.log_path])
    assert leaks == []
    records = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert any(record.get("content_sha256") for record in records)  # contents are logged only as a digest
    assert any("[MASKED]" in (record.get("command") or "") for record in records)


def test_scanner_finds_what_it_is_given(tmp_path: Path) -> None:
    leaky = tmp_path / "leak.log"
    leaky.write_text(f"oops {GITHUB}\n")
    assert find_secrets([GITHUB, OPENAI], files=[leaky], texts=[b"clean", f"also {OPENAI}"]) == [
        "text #1: sk-liv...",
        f"{leaky}: ghp_A1...",
    ]


def test_explain_masks_secrets_in_the_requests_it_returns() -> None:
    from keycardd.adapters import Settings
    from keycardd.engine import Engine, EntityUid, default_policy_source
    from keycardd.explain import explain

    secret = "hunter2-Zq8v7Xc6Lp"
    line = f"curl -u deploy:{secret} https://api.example.com/ && mysql -p{secret} db"
    payload = {"hook_event_name": "PreToolUse", "cwd": "/p", "tool_name": "Bash", "tool_input": {"command": line}}
    document = explain(
        Engine.compile([default_policy_source()]),
        None,
        Settings(principal=EntityUid("User", "u@example.com"), home="/h", fold_case=False),
        agent="claude",
        payload=json.dumps(payload).encode(),
        env={},
    )
    text = json.dumps(document)
    assert secret not in text
    assert "deploy" in text  # the request is still there, only the password is masked
