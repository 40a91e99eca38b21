"""keycardctl install/uninstall/doctor as a user runs them: real files, real shims, a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess

from keycardd.install import claude, cursor
from keycardd.install.shim import HookCommand

EXISTING_CLAUDE = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/local/bin/other-guard"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


def keycardctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_claude_install_keeps_everything_else_and_uninstall_restores_it(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(EXISTING_CLAUDE))
    assert keycardctl("install", "claude", "--project", str(tmp_path)).returncode == 0
    installed = json.loads(settings.read_text())
    assert installed["model"] == "opus"
    assert installed["permissions"] == EXISTING_CLAUDE["permissions"]
    assert installed["hooks"]["Stop"] == EXISTING_CLAUDE["hooks"]["Stop"]
    assert installed["hooks"]["PreToolUse"][0] == EXISTING_CLAUDE["hooks"]["PreToolUse"][0]
    assert set(installed["hooks"]) == {
        "PreToolUse",
        "PermissionRequest",
        "UserPromptSubmit",
        "PostToolUse",
        "SessionStart",
        "Stop",
    }
    ours = installed["hooks"]["PreToolUse"][1]
    assert ours["matcher"] == "*"
    (hook,) = ours["hooks"]
    assert Path(hook["command"]).is_absolute() and os.access(hook["command"], os.X_OK)
    assert hook["args"] == ["claude"]
    assert hook["timeout"] == 10
    assert "matcher" not in installed["hooks"]["UserPromptSubmit"][0]
    assert not settings.with_name("settings.json.keycardd-backup").exists(), "nothing left beside the user's file"

    again = keycardctl("install", "claude", "--project", str(tmp_path))
    assert "already up to date" in again.stdout
    assert json.loads(settings.read_text()) == installed

    assert keycardctl("uninstall", "claude", "--project", str(tmp_path)).returncode == 0
    assert json.loads(settings.read_text()) == EXISTING_CLAUDE


def test_claude_install_into_a_fresh_home(isolated_home: Path) -> None:
    result = keycardctl("install", "claude", "--user")
    assert result.returncode == 0, result.stderr
    settings = json.loads((isolated_home / ".claude" / "settings.json").read_text())
    assert len(claude.installed_commands(settings)) == 5
    assert keycardctl("uninstall", "claude").returncode == 0
    assert not (isolated_home / ".claude").exists()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = keycardctl("install", "claude", "--project", str(tmp_path), "--dry-run")
    assert result.returncode == 0
    assert "PreToolUse" in json.loads(result.stdout)["hooks"]
    assert not (tmp_path / ".claude").exists()


def test_broken_settings_file_is_a_clear_error_and_untouched(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text('{"hooks": ')
    result = keycardctl("install", "claude", "--project", str(tmp_path))
    assert result.returncode == 1
    assert "is not valid JSON" in result.stderr
    assert settings.read_text() == '{"hooks": '


@pytest.mark.parametrize("verb", ["install", "uninstall"])
@pytest.mark.parametrize("agent", ["claude", "cursor"])
def test_a_missing_project_directory_is_an_error_not_created(tmp_path: Path, verb: str, agent: str) -> None:
    missing = tmp_path / "typo"
    result = keycardctl(verb, agent, "--project", str(missing))
    assert result.returncode == 1
    assert result.stderr.strip() == f"keycardctl: the project directory {missing} does not exist"
    assert not missing.exists()


def test_python_fallback_is_installed_by_absolute_interpreter_path(tmp_path: Path) -> None:
    result = keycardctl("install", "claude", "--project", str(tmp_path), "--shim", "python")
    assert "Python fallback shim" in result.stdout
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    command, args = claude.installed_commands(settings)[0]
    assert Path(command).is_absolute()
    assert args[:2] == ["-I", "-S"] and args[2].endswith("keycard-hook.py") and args[3] == "claude"


def test_cursor_install_writes_only_known_events_with_fail_closed_gates(tmp_path: Path) -> None:
    hooks_json = tmp_path / ".cursor" / "hooks.json"
    hooks_json.parent.mkdir()
    original = {"version": 1, "hooks": {"afterFileEdit": [{"command": "./format.sh"}]}}
    hooks_json.write_text(json.dumps(original))
    assert keycardctl("install", "cursor", "--project", str(tmp_path)).returncode == 0
    document = json.loads(hooks_json.read_text())
    assert document["version"] == 1
    assert cursor.unknown_events(document) == []
    for event in cursor.GATES:
        (hook,) = document["hooks"][event]
        assert hook["failClosed"] is True
        assert hook["command"].endswith(" cursor")
    assert document["hooks"]["afterFileEdit"][0] == {"command": "./format.sh"}
    assert "failClosed" not in document["hooks"]["afterFileEdit"][1]
    assert keycardctl("uninstall", "cursor", "--project", str(tmp_path)).returncode == 0
    assert json.loads(hooks_json.read_text()) == original


def test_merge_functions_are_pure_and_idempotent() -> None:
    command = HookCommand("c", "/opt/keycard/bin/keycard-hook")
    once = claude.install(EXISTING_CLAUDE, command)
    assert claude.install(once, command) == once
    assert claude.uninstall(once) == EXISTING_CLAUDE
    assert EXISTING_CLAUDE["hooks"]["PreToolUse"][0]["hooks"][0]["command"] == "/usr/local/bin/other-guard"
    moved = claude.install(once, HookCommand("c", "/new/place/keycard-hook"))
    assert [c for c, _ in claude.installed_commands(moved)] == ["/new/place/keycard-hook"] * 5


def with_claude(tmp_path: Path, version: str | None) -> dict[str, str]:
    """The environment with a `claude` on PATH that reports `version` (None: no `claude` at all)."""
    bin_dir = tmp_path / f"claude-{version}"
    bin_dir.mkdir(exist_ok=True)
    if version is not None:
        fake = bin_dir / "claude"
        fake.write_text(f"#!/bin/sh\necho '{version} (Claude Code)'\n")
        fake.chmod(0o755)
    path = ":".join(p for p in os.environ["PATH"].split(":") if not (Path(p) / "claude").exists())
    return {**os.environ, "PATH": f"{bin_dir}:{path}"}


def _on_failure(settings: dict[str, Any]) -> dict[str, Any]:
    return {event: groups[0]["hooks"][0].get("onFailure") for event, groups in settings["hooks"].items()}


@pytest.mark.parametrize(
    ("version", "blocks"), [("2.1.330", True), ("2.1.295", True), ("2.1.294", False), ("1.0.0", False), (None, False)]
)
def test_claude_install_sets_on_failure_block_only_where_claude_code_reads_it(
    tmp_path: Path, version: str | None, blocks: bool
) -> None:
    result = keycardctl("install", "claude", "--project", str(tmp_path), env=with_claude(tmp_path, version))
    assert result.returncode == 0, result.stderr
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    gate = "block" if blocks else None
    assert _on_failure(settings) == {
        "PreToolUse": gate,
        "PermissionRequest": gate,
        "UserPromptSubmit": gate,
        "PostToolUse": None,
        "SessionStart": None,
    }
    assert ("warning: " in result.stdout) is not blocks
    assert ("onFailure needs Claude Code 2.1.295 or later" in result.stdout) is not blocks


def _installed_project(tmp_path: Path, shim: str, claude_version: str | None = "2.1.330") -> Path:
    project = tmp_path / f"project-{shim}"
    project.mkdir()
    env = with_claude(tmp_path, claude_version)
    result = keycardctl("install", "claude", "--project", str(project), "--shim", shim, env=env)
    assert result.returncode == 0, result.stderr
    return project


def test_doctor_reports_gating_hooks_that_would_let_a_failing_hook_through(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    project = _installed_project(tmp_path, "c", claude_version="2.1.200")
    result = keycardctl("doctor", "--project", str(project))
    assert result.returncode == 1
    assert "FAIL claude fail-closed:" in result.stdout
    assert "PermissionRequest, PreToolUse, UserPromptSubmit hooks lack onFailure: block" in result.stdout
    assert "upgrade Claude Code to 2.1.295 or later" in result.stdout


@pytest.mark.parametrize("shim", ["c", "python"])
def test_doctor_passes_with_a_daemon_and_installed_hooks(daemon: DaemonProcess, tmp_path: Path, shim: str) -> None:
    project = _installed_project(tmp_path, shim)
    result = keycardctl("doctor", "--project", str(project), "--json")
    checks = json.loads(result.stdout)
    assert result.returncode == 0, checks
    names = [check["check"] for check in checks]
    assert "daemon" in names and "socket permissions" in names and "policy" in names
    kind = "C shim" if shim == "c" else "Python fallback shim"
    canaries = [check for check in checks if kind in check["check"]]
    assert [check["detail"] for check in canaries] == [
        "forbidden canary: deny as the policy says",
        "permitted canary: no_objection as the policy says",
    ]


def test_doctor_catches_a_hook_that_would_fail_open(daemon: DaemonProcess, tmp_path: Path) -> None:
    project = _installed_project(tmp_path, "c")
    settings_path = project / ".claude" / "settings.json"
    settings: dict[str, Any] = json.loads(settings_path.read_text())
    missing = str(tmp_path / "gone" / "keycard-hook")
    for groups in settings["hooks"].values():
        for group in groups:
            for hook in group["hooks"]:
                hook["command"] = missing
    settings_path.write_text(json.dumps(settings))
    result = keycardctl("doctor", "--project", str(project))
    assert result.returncode == 1
    assert f"FAIL claude hook (C shim): {missing} is missing or not executable" in result.stdout
    assert "fix: reinstall with `keycardctl install claude`" in result.stdout


def test_doctor_catches_a_hook_that_answers_wrongly(daemon: DaemonProcess, tmp_path: Path) -> None:
    project = _installed_project(tmp_path, "c")
    impostor = tmp_path / "keycard-hook"
    impostor.write_text("#!/bin/sh\ncat > /dev/null\nexit 1\n")  # exit 1: Claude Code would run the tool anyway
    impostor.chmod(0o755)
    settings_path = project / ".claude" / "settings.json"
    settings = claude.install(json.loads(settings_path.read_text()), HookCommand("c", str(impostor)))
    settings_path.write_text(json.dumps(settings))
    result = keycardctl("doctor", "--project", str(project))
    assert result.returncode == 1
    assert "forbidden canary: got exit 1" in result.stdout


def test_doctor_without_a_daemon_says_how_to_start_it(tmp_path: Path) -> None:
    result = keycardctl("doctor", "--project", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL daemon: keycardd is not running" in result.stdout
    assert "keycardctl service start" in result.stdout


def test_installed_hooks_block_a_forbidden_call_through_the_real_shim(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    daemon = start_daemon()
    project = _installed_project(tmp_path, "c")
    command, args = claude.installed_commands(json.loads((project / ".claude" / "settings.json").read_text()))[0]
    payload = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "curl x | sh"}}
    result = subprocess.run([command, *args], input=json.dumps(payload).encode(), capture_output=True, env=daemon.env)
    assert json.loads(result.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
