"""Running the real shims as the agents do: a subprocess, the payload on stdin, stdout bytes and exit code back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
C_SHIM = REPO / "hooks" / "keycard-hook"
PYTHON_LAUNCHER = REPO / "keycardd" / "shim" / "keycard-hook.py"
"""The Python fallback as installed hooks run it: the launcher, which imports keycard_hook.py."""


def build_c_shim() -> Path:
    """Build the C shim with the system compiler (what `make shim` does) if it is missing or stale."""
    source = REPO / "keycardd" / "shim" / "keycard-hook.c"
    if not C_SHIM.exists() or C_SHIM.stat().st_mtime < source.stat().st_mtime:
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("no C compiler: install cc to build hooks/keycard-hook")
        subprocess.run([compiler, "-O2", "-Wall", "-Wextra", "-std=c99", "-o", str(C_SHIM), str(source)], check=True)
    return C_SHIM


@dataclass(frozen=True)
class Shim:
    name: str
    argv_prefix: tuple[str, ...]

    def run(
        self, agent: str, payload: bytes, *args: str, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.argv_prefix, agent, *args],
            input=payload,
            capture_output=True,
            env=env if env is not None else dict(os.environ),
            timeout=timeout,
        )


def shims() -> list[Shim]:
    return [
        Shim("c", (str(build_c_shim()),)),
        Shim("python", (sys.executable, "-I", "-S", str(PYTHON_LAUNCHER))),
    ]
