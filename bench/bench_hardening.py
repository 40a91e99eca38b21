"""Hardening figures for run-to-run comparison: inputs fuzzed, load latency and errors, fault scenarios passed.

The suites themselves are run (pytest's own counts are recorded): the fast fuzz run, the fault, access and secret
scenarios, and 64 concurrent real shims x 100 calls (the 64 x 1,000 run is `make stress`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import DaemonProcess, wait_for_socket  # noqa: E402 - the test helpers live beside the tests
from test_fuzz import FAST, TARGETS  # noqa: E402
from test_load import run_load  # noqa: E402


def _pytest(*args: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    counts = {kind: int(number) for number, kind in re.findall(r"(\d+) (passed|failed|skipped)", result.stdout)}
    return {kind: counts.get(kind, 0) for kind in ("passed", "failed", "skipped")}


def _load(workers: int, calls: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="kcl", dir="/tmp"))
    root.chmod(0o700)
    env = {
        **os.environ,
        "KEYCARDD_SOCKET": str(root / "d.sock"),
        "XDG_STATE_HOME": str(root / "state"),
        "KEYCARDD_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "keycardd.daemon"], env=env)
    try:
        wait_for_socket(root / "d.sock", process)
        result = run_load(DaemonProcess(root / "d.sock", process, root / "log", env), workers, calls)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    return {"workers": workers, "calls_each": calls, **{k: round(v, 2) for k, v in result.items()}}


def run() -> dict[str, Any]:
    return {
        "fuzz_inputs_fast_run": FAST * len(TARGETS) + 300 + 200,  # + the shell analysis properties
        "fuzz_tests": _pytest(
            "tests/test_fuzz.py", "tests/test_shell.py", "-m", "not slow", "-k", "fuzz or never_raises or total"
        ),
        "fault_access_secret_scenarios": _pytest(
            "tests/test_faults.py", "tests/test_access.py", "tests/test_secrets.py"
        ),
        "load": _load(64, 100),
    }
