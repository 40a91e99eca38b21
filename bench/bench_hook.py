"""The hook as the agent runs it: spawn the shim, pipe the payload, read the answer.

Floors are measured in the same run with the same spawning code: `/bin/true` for the C shim, and
`python3 -I -S -c pass` for the Python fallback. The fallback runs as installed hooks run it: through its launcher,
which reuses its cached bytecode. Targets (issue 3): C shim p50 <= 2.5x its floor, Python fallback p50 <= 1.6x its
floor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import daemon, percentiles

REPO = Path(__file__).resolve().parent.parent
C_SHIM = REPO / "hooks" / "keycard-hook"
PYTHON_LAUNCHER = REPO / "keycardd" / "shim" / "keycard-hook.py"
PYTHON_SCRIPT = REPO / "keycardd" / "shim" / "keycard_hook.py"
PAYLOAD = json.dumps(
    {
        "session_id": "s",
        "cwd": "/w",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "git status && npm test -- --coverage | tee test.log"},
    }
).encode()
ROUNDS = 300


def _spawn_samples(argv: list[str], payload: bytes, env: dict[str, str]) -> list[float]:
    for _ in range(20):
        subprocess.run(argv, input=payload, capture_output=True, env=env, check=False)
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run(argv, input=payload, capture_output=True, env=env, check=False)
        samples.append(time.perf_counter() - started)
    return samples


def run() -> dict[str, Any]:
    if not C_SHIM.exists():
        subprocess.run(["make", "-C", str(REPO), "shim"], check=True)
    results: dict[str, Any] = {}
    with daemon() as bench_daemon:
        env = {"KEYCARDD_SOCKET": str(bench_daemon.socket), "PATH": "/usr/bin:/bin"}
        answer = subprocess.run([str(C_SHIM), "claude"], input=PAYLOAD, capture_output=True, env=env, check=True)
        results["answer"] = answer.stdout.decode() or "(no objection: empty stdout)"
        floors = {
            "true": percentiles(_spawn_samples(["/bin/true"], PAYLOAD, env)),
            "python_floor": percentiles(_spawn_samples([sys.executable, "-I", "-S", "-c", "pass"], PAYLOAD, env)),
        }
        shims = {
            "c_shim": percentiles(_spawn_samples([str(C_SHIM), "claude"], PAYLOAD, env)),
            "python_shim": percentiles(
                _spawn_samples([sys.executable, "-I", "-S", str(PYTHON_LAUNCHER), "claude"], PAYLOAD, env)
            ),
        }
        # For comparison only: the shim run as a script, compiled on every call (what the launcher avoids).
        results["python_shim_uncached"] = percentiles(
            _spawn_samples([sys.executable, "-I", "-S", str(PYTHON_SCRIPT), "claude"], PAYLOAD, env)
        )
    results.update(floors)
    results.update(shims)
    c_ratio = shims["c_shim"]["p50_us"] / floors["true"]["p50_us"]
    python_ratio = shims["python_shim"]["p50_us"] / floors["python_floor"]["p50_us"]
    results["ratios"] = {"c_over_true": round(c_ratio, 2), "python_over_floor": round(python_ratio, 2)}
    results["targets"] = {"c_le_2.5x_true": c_ratio <= 2.5, "python_le_1.6x_floor": python_ratio <= 1.6}
    return results
