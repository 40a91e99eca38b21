"""Decision latency when a team's policies all target the shell (issue 20), against the spread mix of `core`.

Two distributions at 5,000 and 20,000 policies: `spread` (`synthetic_policies`: 50 tools, each bucket ~1/50 of the
set) and `shell_heavy` (`shell_heavy_policies`: one in eight on `Tool::"bash"`, testing program, command prefix,
arguments and substrings). Each runs in a real daemon; the figures are the daemon's own per-decision latencies
(from its decision log, as `status` reports them) for a one-command and a three-command Bash line, after warm-up.

Targets (issue 20): shell-heavy 5,000: p50 <= 300 us (one command) and <= 600 us (three); 20,000: <= 1 ms.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench._harness import daemon, shell_heavy_policies, synthetic_policies
from keycardd.client import Client
from keycardd.protocol import HookRequest

LINES = {
    "one_command": "git push origin main",
    "three_commands": "git status && npm test --w42 && rm -rf build",
}
WARMUP = 50
SAMPLES = 300
DISTRIBUTIONS = {"spread": synthetic_policies, "shell_heavy": shell_heavy_policies}


def _payload(line: str) -> bytes:
    return json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "session_id": "s",
            "cwd": "/w",
            "tool_name": "Bash",
            "tool_input": {"command": line},
        }
    ).encode()


def _logged_latencies(state: Path, expected: int) -> list[float]:
    """The daemon's per-decision latencies, in order, once its background writer has logged all of them."""
    deadline = time.monotonic() + 60
    while True:
        logs = list(state.rglob("decisions.jsonl"))
        rows = [json.loads(row) for row in logs[0].read_text().splitlines()] if logs else []
        if len(rows) >= expected or time.monotonic() > deadline:
            return [float(row["latency_us"]) for row in rows]
        time.sleep(0.1)


def _p50_p99(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(ordered[len(ordered) // 2], 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "n": len(ordered),
    }


def _measure(policy: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with daemon(policy) as bench_daemon:
        with Client(bench_daemon.socket) as client:
            for line in LINES.values():
                for _ in range(WARMUP + SAMPLES):
                    client.request(HookRequest(agent="claude", payload=_payload(line)))
        latencies = _logged_latencies(bench_daemon.state, len(LINES) * (WARMUP + SAMPLES))
        for index, name in enumerate(LINES):
            start = index * (WARMUP + SAMPLES) + WARMUP
            result[name] = _p50_p99(latencies[start : start + SAMPLES])
        result["rss_mb"] = bench_daemon.rss_mb()
    return result


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"lines": LINES}
    for count in (5000, 20000):
        for name, generate in DISTRIBUTIONS.items():
            results.setdefault(name, {})[str(count)] = _measure(generate(count))
    results["ratio_shell_heavy_over_spread"] = {
        str(count): {
            line: round(
                results["shell_heavy"][str(count)][line]["p50_us"] / results["spread"][str(count)][line]["p50_us"], 2
            )
            for line in LINES
        }
        for count in (5000, 20000)
    }
    heavy = results["shell_heavy"]
    results["targets"] = {
        "shell_heavy_5000_one_command_p50_le_300us": heavy["5000"]["one_command"]["p50_us"] <= 300,
        "shell_heavy_5000_three_commands_p50_le_600us": heavy["5000"]["three_commands"]["p50_us"] <= 600,
        "shell_heavy_20000_p50_le_1ms": heavy["20000"]["one_command"]["p50_us"] <= 1000,
    }
    print("shell-heavy / spread p50:", json.dumps(results["ratio_shell_heavy_over_spread"]))
    return results
