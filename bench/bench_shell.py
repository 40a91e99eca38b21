"""Shell analysis cost over the test corpus (target p50 <= 200 us per line), and the whole in-daemon decision
for the same lines (analysis plus one Cedar request per simple command and per file written)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench._harness import percentiles
from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, default_policy_source
from keycardd.shell import analyze

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "shell_corpus.jsonl"
ROUNDS = 20


def run() -> dict[str, Any]:
    lines = [json.loads(row)["line"] for row in CORPUS.read_text().splitlines()]
    for line in lines:
        analyze(line)
    analysis = []
    for _ in range(ROUNDS):
        for line in lines:
            started = time.perf_counter()
            analyze(line)
            analysis.append(time.perf_counter() - started)
    engine = Engine.compile([default_policy_source()])
    decider = Decider(Settings(principal=EntityUid("User", "bench@example.com")))
    payloads = [
        json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": line}}).encode()
        for line in lines
    ]
    decisions = []
    for _ in range(ROUNDS // 4):
        for payload in payloads:
            started = time.perf_counter()
            decider.decide_hook(engine, None, "claude", payload, {})
            decisions.append(time.perf_counter() - started)
    result = {
        "lines": len(lines),
        "analysis": percentiles(analysis),
        "decision_with_default_policy": percentiles(decisions),
    }
    result["targets"] = {"analysis_p50_le_200us": result["analysis"]["p50_us"] <= 200}
    return result
