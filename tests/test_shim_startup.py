"""The Python fallback's start-up cost: what it imports and whether its bytecode is reused.

Each hook call is a fresh interpreter, so an import or a compile the shim does not need is paid on every tool call
of every agent. `make bench` measures the time; these tests pin the two causes that once doubled it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from shims import PYTHON_LAUNCHER

SHIM_DIR = PYTHON_LAUNCHER.parent

ALLOWED_IMPORTS = {"keycard_hook", "_socket"}
"""What importing the shim may add to a bare `python3 -I -S`: no `os`, `socket` or `struct` wrappers."""


def test_the_shim_imports_only_c_modules_beyond_the_bare_interpreter() -> None:
    probe = (
        "import sys; before = set(sys.modules); "
        f"sys.path.insert(0, {str(SHIM_DIR)!r}); import keycard_hook; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert set(result.stdout.split()) <= ALLOWED_IMPORTS, result.stdout


def test_the_launcher_caches_the_shim_bytecode_and_answers_like_the_script(tmp_path: Path) -> None:
    for name in ("keycard-hook.py", "keycard_hook.py"):
        shutil.copy(SHIM_DIR / name, tmp_path / name)
    payload = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}})
    env = {"KEYCARDD_SOCKET": str(tmp_path / "absent.sock"), "PATH": "/usr/bin:/bin"}

    def run(script: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-I", "-S", str(tmp_path / script), "claude", "--no-autostart"]
        return subprocess.run(argv, input=payload, capture_output=True, text=True, env=env, check=False)

    # A module beside the shim must not shadow the standard library the shim imports.
    (tmp_path / "_socket.py").write_text("raise SystemExit('the stdlib was shadowed')\n")
    launched = run("keycard-hook.py")
    cached = list((tmp_path / "__pycache__").glob("keycard_hook.*.pyc"))
    assert len(cached) == 1, "the launcher must import the shim, so Python caches its bytecode"
    direct = run("keycard_hook.py")
    assert (launched.returncode, launched.stdout) == (direct.returncode, direct.stdout)
    assert json.loads(launched.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
