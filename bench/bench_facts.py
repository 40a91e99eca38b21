"""What canonical facts cost on the hot path: PowerShell analysis, file-tool and MCP decisions, host parsing.

The PowerShell lines are those of tests/test_powershell.py (attacks and ordinary lines); every figure is the whole
in-process decision (decode, adapter, facts, analysis, every Cedar request) unless it says analysis. The 64 KiB
shapes are the most expensive found for the PowerShell reader (one command with many words; many parameters).
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any

from bench._harness import percentiles
from keycardd.adapters import Decider, Settings
from keycardd.canonical import url_hosts
from keycardd.engine import Engine, EntityUid, default_policy_source
from keycardd.powershell import analyze

TESTS = Path(__file__).resolve().parent.parent / "tests" / "test_powershell.py"
ROUNDS = 20
CWD = "/home/bench/app"
HUGE = {
    "words": ("Write-Output " + "a " * 40000)[: 64 * 1024],
    "parameters": ("Remove-Item " + "-x " * 30000)[: 64 * 1024],
    "strings": ("gc " + "'a', " * 15000)[: 64 * 1024],
    "commands": ("gc a; " * 999 + "Write-Output " + "b " * 30000)[: 64 * 1024],
}
FILE_CALLS = {
    "read": {"tool_name": "Read", "tool_input": {"file_path": "src/../src/main.py"}},
    "grep_glob": {"tool_name": "Grep", "tool_input": {"pattern": "x", "path": "~", "glob": "**/*.ts"}},
    "webfetch": {"tool_name": "WebFetch", "tool_input": {"url": "http://0xA9FEA9FE/latest/", "prompt": "x"}},
    "mcp_20_args": {
        "tool_name": "mcp__fs__copy",
        "tool_input": {f"arg{i}": f"/work/app/file{i}.txt" if i % 2 else f"value {i}" for i in range(20)},
    },
}


def _lines() -> list[str]:
    """The string literals of the test module's line lists (parsed, not imported: no pytest needed)."""
    tree = ast.parse(TESTS.read_text())
    lines: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            lines += [item.value for item in node.value.elts if isinstance(item, ast.Constant)]
    return [line for line in lines if isinstance(line, str)]


def _time(function: Any, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def run() -> dict[str, Any]:
    engine = Engine.compile([default_policy_source()])
    decider = Decider(Settings(principal=EntityUid("User", "bench@example.com"), home="/home/bench"))

    def decide(body: dict[str, Any]) -> None:
        payload = json.dumps({"hook_event_name": "PreToolUse", "cwd": CWD, **body}).encode()
        decider.decide_hook(engine, None, "claude", payload, {})

    lines = _lines()
    analysis = [t for line in lines for t in _time(lambda line=line: analyze(line), ROUNDS)]
    decisions = [
        t
        for line in lines
        for t in _time(lambda line=line: decide({"tool_name": "PowerShell", "tool_input": {"command": line}}), 5)
    ]
    huge = {}
    for name, line in HUGE.items():
        started, cpu = time.perf_counter(), time.process_time()
        decide({"tool_name": "PowerShell", "tool_input": {"command": line}})
        huge[name] = {"wall_ms": round((time.perf_counter() - started) * 1e3), "cpu_ms": round(
            (time.process_time() - cpu) * 1e3
        )}  # fmt: skip
    files = {name: percentiles(_time(lambda body=body: decide(body), 200)) for name, body in FILE_CALLS.items()}
    hosts = percentiles(_time(lambda: url_hosts("http://user@0xA9FEA9FE:80/latest/meta-data/"), 2000))
    return {
        "powershell_lines": len(lines),
        "powershell_analysis": percentiles(analysis),
        "powershell_decision": percentiles(decisions),
        "powershell_64kib": huge,
        "file_tool_decision": files,
        "url_hosts": hosts,
    }
