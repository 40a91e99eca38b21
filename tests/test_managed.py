"""Issue 13, managed mode: hooks in the agents' system-wide settings with a root-owned shim, and a managed policy
directory that user policy cannot weaken. Real keycardctl runs, a real daemon and the real shims."""

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
from shims import shims

from keycardd.protocol import DocumentReply, StatusRequest

OPEN_POLICY = '@id("everything") @approve\npermit (principal, action, resource);\n'
CLOSED_POLICY = '@id("reads-only") permit (principal, action, resource == Tool::"read");\n'
MANAGED_POLICY = """
@id("team-no-curl") @reason("The team does not let agents fetch with curl.")
forbid (principal, action == Action::"Agent::ToolUse", resource == Tool::"bash")
when { context has program && context.program == "curl" };

@id("team-ask-terraform") @itl("Apply infrastructure changes?")
permit (principal, action == Action::"Agent::ToolUse", resource == Tool::"bash")
when { context has program && context.program == "terraform" };
"""


def keycardctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def with_claude(tmp_path: Path, version: str) -> dict[str, str]:
    bin_dir = tmp_path / "claude-bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "claude"
    fake.write_text(f"#!/bin/sh\necho '{version} (Claude Code)'\n")
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def bash(command: str) -> bytes:
    return json.dumps(
        {"hook_event_name": "PreToolUse", "session_id": "s", "tool_name": "Bash", "tool_input": {"command": command}}
    ).encode()


def decision(stdout: bytes) -> tuple[str, str]:
    if not stdout:
        return "no_objection", ""
    output = json.loads(stdout)["hookSpecificOutput"]
    return str(output["permissionDecision"]), str(output["permissionDecisionReason"])


# ---- installing ------------------------------------------------------------------------------------------------


def test_install_claude_managed_writes_managed_settings_and_a_root_owned_shim(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = keycardctl("install", "claude", "--managed", "--root", str(root), env=with_claude(tmp_path, "2.1.330"))
    assert result.returncode == 0, result.stderr
    settings = json.loads((root / "etc" / "claude-code" / "managed-settings.json").read_text())
    assert settings["allowManagedHooksOnly"] is True
    pre = settings["hooks"]["PreToolUse"][0]["hooks"][0]
    assert pre["onFailure"] == "block"
    shim = Path(pre["command"])
    assert shim.is_relative_to(root / "usr" / "local" / "libexec" / "keycard")
    assert os.access(shim, os.X_OK)
    assert shim.stat().st_uid == os.getuid() and not shim.stat().st_mode & 0o022
    assert not (tmp_path / "home" / ".claude").exists()  # the user's settings are not touched


def test_install_cursor_managed_writes_the_enterprise_hooks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = keycardctl("install", "cursor", "--managed", "--root", str(root), "--shim", "python")
    assert result.returncode == 0, result.stderr
    document = json.loads((root / "etc" / "cursor" / "hooks.json").read_text())
    gate = document["hooks"]["beforeShellExecution"][0]
    assert gate["failClosed"] is True
    assert str(root / "usr" / "local" / "libexec" / "keycard" / "keycard-hook.py") in gate["command"]
    assert (root / "usr" / "local" / "libexec" / "keycard" / "keycard_hook.py").exists()


def test_root_only_goes_with_managed(tmp_path: Path) -> None:
    result = keycardctl("install", "claude", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "--root only goes with --managed" in result.stderr


def test_doctor_says_which_mode_is_active(daemon: DaemonProcess, tmp_path: Path) -> None:
    root = tmp_path / "root"
    user = json.loads(keycardctl("doctor", "--json", "--root", str(root)).stdout)
    mode = next(check for check in user if check["check"] == "mode")
    assert mode["detail"].startswith("user mode:") and "scripts it writes and runs" in mode["detail"]
    assert keycardctl("install", "claude", "--managed", "--root", str(root)).returncode == 0
    managed = json.loads(keycardctl("doctor", "--json", "--root", str(root)).stdout)
    mode = next(check for check in managed if check["check"] == "mode")
    assert mode["ok"], mode
    assert mode["detail"].startswith(f"managed: claude: {root / 'etc' / 'claude-code' / 'managed-settings.json'}")
    assert "an agent can still edit your own policy" in mode["detail"]
    canaries = [check for check in managed if check["check"] == "claude hook (C shim)"]
    assert canaries and all(check["ok"] for check in canaries)  # the managed shim really answers


# ---- the managed policy layer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_user_policy_cannot_weaken_managed_policy(
    shim: Any, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    managed = tmp_path / "managed" / "policy.d"
    managed.mkdir(parents=True)
    (managed / "team.cedar").write_text(MANAGED_POLICY)
    env = {"KEYCARD_MANAGED_POLICY_DIR": str(managed)}
    daemon = start_daemon(policy=OPEN_POLICY, env=env)  # the user's policy approves everything
    run = lambda command: decision(shim.run("claude", bash(command), env=daemon.env).stdout)  # noqa: E731
    assert run("curl https://example.com") == (
        "deny",
        "keycardd policy 'team-no-curl': The team does not let agents fetch with curl. (in `curl https://example.com`)",
    )
    assert run("terraform apply")[0] == "ask"  # a user @approve does not skip the managed ask
    assert run("ls")[0] == "allow"  # elsewhere the user's policy decides
    write = json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Write",
            "tool_input": {"file_path": str(managed / "x.cedar"), "content": "x"},
        }
    ).encode()
    assert decision(shim.run("claude", write, env=daemon.env).stdout)[0] == "deny"  # the guard protects it too
    with daemon.client() as client:
        status = client.request(StatusRequest())
    assert isinstance(status, DocumentReply)
    assert status.body["policy"]["managed"]["sources"] == [str(managed / "team.cedar")]


def test_managed_asks_never_turn_a_users_deny_into_an_ask(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    managed = tmp_path / "managed"
    managed.mkdir()
    (managed / "team.cedar").write_text(MANAGED_POLICY)
    daemon = start_daemon(policy=CLOSED_POLICY, env={"KEYCARD_MANAGED_POLICY_DIR": str(managed)})
    result = shims()[0].run("claude", bash("terraform apply"), env=daemon.env)
    verdict, reason = decision(result.stdout)
    assert verdict == "deny" and "default deny" in reason


def test_a_broken_managed_policy_fails_closed_naming_the_file(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    managed = tmp_path / "managed"
    managed.mkdir()
    (managed / "broken.cedar").write_text("forbid (principal, action, resource) when { nonsense };\n")
    daemon = start_daemon(policy=OPEN_POLICY, env={"KEYCARD_MANAGED_POLICY_DIR": str(managed)})
    verdict, reason = decision(shims()[0].run("claude", bash("ls"), env=daemon.env).stdout)
    assert verdict == "deny"
    assert str(managed / "broken.cedar") in reason


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_doctor_fails_a_managed_install_an_agent_could_change(daemon: DaemonProcess, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert keycardctl("install", "claude", "--managed", "--root", str(root)).returncode == 0
    shim = root / "usr" / "local" / "libexec" / "keycard" / "keycard-hook"
    os.chown(shim, 65534, 65534)  # as if the user (here: nobody) owned it
    result = keycardctl("doctor", "--root", str(root))
    assert result.returncode == 1
    assert f"but an agent can change: {shim}" in result.stdout
    assert "fix: make them root-owned and not group/world-writable" in result.stdout
