"""keycard-hook's command line, run as the real shims (C and Python) and the plugin launcher: `--help` answers a
person, and a hook command the shim cannot parse still denies the agent's call, with the exit code that keeps each
agent's deny a deny (keycardd/shim/keycard-hook.c explains the choice)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from shims import Shim, shims

SHIMS = shims()
USAGE = b"usage: keycard-hook claude|cursor|codex|gemini "


def _unanswered_stdin(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run with a stdin that never ends: a shim that read it would never exit (the timeout only guards the suite)."""
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            code = process.wait(timeout=30)
        finally:
            process.kill()
        assert process.stdout is not None and process.stderr is not None
        return subprocess.CompletedProcess(argv, code, process.stdout.read(), process.stderr.read())


@pytest.mark.parametrize("shim", SHIMS, ids=lambda shim: shim.name)
@pytest.mark.parametrize("args", [["--help"], ["-h"], ["claude", "-h"], ["cursor", "--no-autostart", "--help"]])
def test_help_prints_the_usage_line_without_reading_stdin(shim: Shim, args: list[str]) -> None:
    result = _unanswered_stdin([*shim.argv_prefix, *args])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(USAGE) and result.stdout.count(b"\n") == 1
    assert result.stderr == b""


def _claude_deny(output: dict[str, Any]) -> str:
    return str(output["hookSpecificOutput"]["permissionDecisionReason"])


CASES = [
    # agent, event, exit code, the reason in the agent's own deny shape (None: nothing to deny)
    ("claude", "PreToolUse", 2, _claude_deny),
    ("codex", "PreToolUse", 2, _claude_deny),
    ("claude", "UserPromptSubmit", 2, lambda output: output["reason"] if output["decision"] == "block" else None),
    ("claude", "PermissionRequest", 0, lambda output: output["hookSpecificOutput"]["decision"]["message"]),
    ("claude", "PostToolUse", 1, None),
    (
        "cursor",
        "beforeShellExecution",
        2,
        lambda output: output["user_message"] if output["permission"] == "deny" else None,
    ),
    ("cursor", "beforeSubmitPrompt", 2, lambda output: output["user_message"] if not output["continue"] else None),
    ("cursor", "afterFileEdit", 1, None),
    ("gemini", "BeforeTool", 2, lambda output: output["reason"] if output["decision"] == "deny" else None),
    ("gemini", "AfterTool", 1, None),
]


@pytest.mark.parametrize("shim", SHIMS, ids=lambda shim: shim.name)
@pytest.mark.parametrize(("agent", "event", "code", "reason_of"), CASES, ids=[f"{case[0]}-{case[1]}" for case in CASES])
def test_an_unknown_option_is_a_usage_error_that_still_denies_the_agent(
    shim: Shim, agent: str, event: str, code: int, reason_of: Any
) -> None:
    payload = json.dumps({"hook_event_name": event, "tool_name": "Bash", "tool_input": {"command": "rm -rf /"}})
    # --fail-open names the event: a command the shim cannot parse is not trusted to open anything
    result = shim.run(agent, payload.encode(), "--fail-open", event, "--bogus")
    assert result.returncode == code, result.stderr
    stderr = result.stderr.decode()
    assert "unknown option `--bogus`" in stderr and f"keycardctl install {agent}" in stderr
    assert stderr.splitlines()[-1].startswith(USAGE.decode())
    if reason_of is None:
        assert result.stdout in (b"", b"{}")
    else:
        assert "unknown option `--bogus`" in reason_of(json.loads(result.stdout))


@pytest.mark.parametrize("shim", SHIMS, ids=lambda shim: shim.name)
@pytest.mark.parametrize("args", [["--timeout-ms"], ["--timeout-ms", "soon"], ["--timeout-ms", "0"], ["extra"]])
def test_a_bad_value_or_a_stray_argument_is_a_usage_error(shim: Shim, args: list[str]) -> None:
    payload = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}})
    result = shim.run("claude", payload.encode(), *args)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines()[-1].startswith(USAGE.decode())
    assert json.loads(result.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


def _launcher(tmp_path: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The plugin launcher with nothing installed to run (as in a fresh plugin cache)."""
    root = tmp_path / "plugin"
    root.mkdir(exist_ok=True)
    shutil.copy(REPO / "hooks" / "keycard-hook.sh", root / "keycard-hook.sh")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "none")}
    return subprocess.run(["sh", str(root / "keycard-hook.sh"), *args], input=stdin, capture_output=True, env=env)


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["cursor", "--help"]])
def test_the_launcher_answers_help_when_nothing_is_installed(tmp_path: Path, args: list[str]) -> None:
    result = _launcher(tmp_path, *args)
    assert result.returncode == 0
    assert result.stdout.startswith(b"usage: keycard-hook.sh claude|cursor|codex|gemini")


def test_the_launcher_takes_no_option_for_the_agent_name(tmp_path: Path) -> None:
    payload = json.dumps({"hook_event_name": "beforeShellExecution", "command": "rm -rf /"}).encode()
    result = _launcher(tmp_path, "--cursor", stdin=payload)
    assert json.loads(result.stdout)["permission"] == "deny"
    assert "keycardctl install cursor" in json.loads(result.stdout)["user_message"]
