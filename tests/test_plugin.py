"""The hooks/ folder as a Claude Code plugin: its manifest, and a launcher that never fails open."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, DaemonProcess
from shims import build_c_shim

from keycardd.install.claude import EVENTS

PLUGIN = REPO / "hooks"
PAYLOAD = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf /"}})


def test_manifest_registers_the_same_events_as_keycardctl_install() -> None:
    manifest = json.loads((PLUGIN / ".claude-plugin" / "plugin.json").read_text())
    assert manifest["name"] == "keycardd"
    assert set(manifest["hooks"]) == set(EVENTS)
    for event, groups in manifest["hooks"].items():
        (group,) = groups
        assert group.get("matcher") == EVENTS[event]
        (hook,) = group["hooks"]
        assert hook["command"] == 'sh "${CLAUDE_PLUGIN_ROOT}/keycard-hook.sh" claude'
        assert hook["timeout"] == 10
    marketplace = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text())
    assert marketplace["plugins"][0]["source"] == "./hooks"


def _launch(
    tmp_path: Path, env: dict[str, str], payload: str = PAYLOAD, agent: str = "claude"
) -> subprocess.CompletedProcess[bytes]:
    root = tmp_path / "plugin"  # a copy, as Claude Code caches plugins: no built shim next to the launcher
    root.mkdir(exist_ok=True)
    shutil.copy(PLUGIN / "keycard-hook.sh", root / "keycard-hook.sh")
    return subprocess.run(
        ["sh", str(root / "keycard-hook.sh"), agent],
        input=payload.encode(),
        capture_output=True,
        env=env,
        timeout=30,
    )


def test_launcher_uses_the_installed_shim(daemon: DaemonProcess, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "keycard" / "bin").mkdir(parents=True)
    shutil.copy(build_c_shim(), data / "keycard" / "bin" / "keycard-hook")
    result = _launch(tmp_path, {**daemon.env, "XDG_DATA_HOME": str(data), "PATH": "/usr/bin:/bin"})
    reason = json.loads(result.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason.startswith("keycardd policy 'deny-rm-root-or-home'")


def test_launcher_without_keycardd_fails_closed(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "none")}
    result = _launch(tmp_path, env)
    assert result.returncode == 0
    output = json.loads(result.stdout)["hookSpecificOutput"]
    assert output["permissionDecision"] == "deny"
    assert "keycardd is not installed" in output["permissionDecisionReason"]


NOT_INSTALLED = "keycardd is not installed"


def _claude_deny_reason(event: str, output: dict[str, Any]) -> str:
    """The deny's reason read from the shape Claude Code expects for `event`; KeyError for any other shape."""
    if event == "PermissionRequest":
        specific = output["hookSpecificOutput"]
        assert specific["hookEventName"] == "PermissionRequest" and specific["decision"]["behavior"] == "deny"
        return str(specific["decision"]["message"])
    if event == "UserPromptSubmit":
        assert output["decision"] == "block" and set(output) == {"decision", "reason"}
        return str(output["reason"])
    specific = output["hookSpecificOutput"]
    assert specific["hookEventName"] == "PreToolUse" and specific["permissionDecision"] == "deny"
    return str(specific["permissionDecisionReason"])


@pytest.mark.parametrize("event", ["PreToolUse", "PermissionRequest", "UserPromptSubmit"])
def test_launcher_without_keycardd_answers_each_claude_gate_in_its_shape(tmp_path: Path, event: str) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "none")}
    payload = json.dumps({"hook_event_name": event, "tool_name": "Bash", "prompt": "hi", "tool_input": {}}, indent=2)
    result = _launch(tmp_path, env, payload)
    assert result.returncode == 0
    reason = _claude_deny_reason(event, json.loads(result.stdout))
    assert NOT_INSTALLED in reason and "keycardctl install claude" in reason


@pytest.mark.parametrize("event", ["PostToolUse", "SessionStart", "SessionEnd"])
def test_launcher_without_keycardd_stays_silent_on_observed_claude_events(tmp_path: Path, event: str) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "none")}
    result = _launch(tmp_path, env, json.dumps({"hook_event_name": event}))
    assert (result.returncode, result.stdout) == (0, b"")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("beforeShellExecution", "deny"),
        ("preToolUse", "deny"),
        ("beforeFutureThing", "deny"),
        ("beforeSubmitPrompt", "block"),
        ("afterFileEdit", "observe"),
        ("stop", "observe"),
    ],
)
def test_launcher_without_keycardd_speaks_cursor(tmp_path: Path, event: str, expected: str) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "none")}
    result = _launch(tmp_path, env, json.dumps({"hook_event_name": event, "command": "ls"}), agent="cursor")
    assert result.returncode == 0
    output = json.loads(result.stdout)
    if expected == "deny":
        assert output["permission"] == "deny" and NOT_INSTALLED in output["agent_message"]
        assert "keycardctl install cursor" in output["user_message"]
    elif expected == "block":
        assert output["continue"] is False and NOT_INSTALLED in output["user_message"]
    else:
        assert output == {}
