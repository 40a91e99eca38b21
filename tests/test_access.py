"""Access: only the daemon's own user can use it, through every door (socket, keycardctl, the shims)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, DaemonProcess
from shims import build_c_shim

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to run clients as another uid")

NOBODY = 65534
PAYLOAD = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}}).encode()


def as_nobody(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    def drop() -> None:
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    return subprocess.run(argv, input=stdin, capture_output=True, env=env, preexec_fn=drop, timeout=60)


def world_readable_python() -> str:
    """An interpreter another user can run (the test's own may live under root's home)."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o001:
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
            ).stdout.strip()
            if version == str(tuple(sys.version_info[:2])):
                return candidate
    pytest.skip("no interpreter of this Python version is runnable by another user")


def test_keycardctl_as_another_user_gets_a_clear_refusal(daemon: DaemonProcess) -> None:
    python = world_readable_python()
    env = {**daemon.env, "HOME": "/tmp", "PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()])}
    result = as_nobody([python, "-m", "keycardd.cli", "status"], env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.decode().startswith(f"keycardctl: permission denied on {daemon.socket}")
    assert b"Traceback" not in result.stderr


def test_c_shim_as_another_user_fails_closed(daemon: DaemonProcess) -> None:
    public = Path(tempfile.mkdtemp(prefix="kcshim", dir="/tmp"))  # tmp_path's parents are root-only
    public.chmod(0o755)
    shim = public / "keycard-hook"
    shutil.copy(build_c_shim(), shim)
    try:
        result = as_nobody([str(shim), "claude", "--no-autostart"], {**daemon.env, "HOME": "/tmp"}, PAYLOAD)
    finally:
        shutil.rmtree(public)
    assert result.returncode == 0
    specific = json.loads(result.stdout)["hookSpecificOutput"]
    assert specific["permissionDecision"] == "deny"
    assert "cannot be used (Permission denied)" in specific["permissionDecisionReason"]


def test_python_shim_as_another_user_fails_closed(daemon: DaemonProcess) -> None:
    python = world_readable_python()
    shim = REPO / "keycardd" / "shim" / "keycard-hook.py"
    result = as_nobody(
        [python, "-I", "-S", str(shim), "claude", "--no-autostart"], {**daemon.env, "HOME": "/tmp"}, PAYLOAD
    )
    assert result.returncode == 0, result.stderr
    specific = json.loads(result.stdout)["hookSpecificOutput"]
    assert specific["permissionDecision"] == "deny"
    assert "cannot be used (Permission denied)" in specific["permissionDecisionReason"]
