"""doctor from $HOME checks each config once, and its canary calls are not counted as the agents' decisions: they
are logged, marked as canaries, only when they carry a token the daemon issued (keycardd/canary.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conftest import DaemonProcess
from shims import C_SHIM, build_c_shim
from test_processes import start_with_a_replica

from keycardd import paths
from keycardd.install.doctor import CANARIES
from keycardd.protocol import CanaryRequest, DocumentReply, HookRequest, HookResult, StatusRequest

FORBIDDEN = json.dumps(CANARIES["claude"][0][1]).encode()
"""doctor's forbidden Claude Code canary, as doctor sends it: only its canary payloads can be marked as canaries."""
AGENTS_CALL = json.dumps(
    {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf / --no-preserve-root"}}
).encode()


def keycardctl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=180
    )


def status(daemon: DaemonProcess) -> dict[str, Any]:
    with daemon.client() as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    return reply.body


def logged(count: int) -> list[dict[str, Any]]:
    """The decision log once it holds `count` records (the writer batches; the loop only waits for it)."""
    log = paths.decision_log_path()
    for _ in range(500):
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)
    raise AssertionError(f"the decision log holds {len(lines)} records, expected {count}")


def test_doctor_from_home_checks_each_config_once_and_counts_no_canary(
    daemon: DaemonProcess, isolated_home: Path
) -> None:
    for agent in ("claude", "cursor"):
        assert keycardctl("install", agent).returncode == 0
    result = keycardctl("doctor", "--json", cwd=isolated_home)  # the project is $HOME: its configs are the user's
    checks = json.loads(result.stdout)
    assert all(check["ok"] for check in checks if " hook (" in check["check"]), checks  # (no Claude Code: onFailure)
    names = Counter(check["check"] for check in checks)
    assert names["claude config"] == names["cursor config"] == 1, names
    assert names["claude hook (C shim)"] == names["cursor hook (C shim)"] == 2, names  # forbidden and permitted

    document = status(daemon)
    assert sum(document["decisions"].values()) == 0, document["decisions"]
    assert document["latency_us"]["p50"] is None
    records = logged(4)
    assert len(records) == 4 and all(record["canary"] is True for record in records)
    assert [record["decision"] for record in records].count("deny") == 2  # the forbidden canaries, decided as ever
    assert "(doctor canary)" in keycardctl("decisions").stdout


def test_a_canary_mark_without_a_live_token_counts_as_the_agents_call(daemon: DaemonProcess) -> None:
    shim = build_c_shim()
    forged = subprocess.run(
        [str(shim), "claude"], input=FORBIDDEN, capture_output=True, env={**daemon.env, "KEYCARD_CANARY": "guessed"}
    )
    with daemon.client() as client:
        reply = client.request(CanaryRequest())
    assert isinstance(reply, DocumentReply)
    marked = subprocess.run(
        [str(C_SHIM), "claude"],
        input=FORBIDDEN,
        capture_output=True,
        env={**daemon.env, "KEYCARD_CANARY": reply.body["token"]},
    )
    assert forged.stdout == marked.stdout and b'"deny"' in marked.stdout, "a token never changes a decision"
    assert status(daemon)["decisions"]["deny"] == 1  # the forged one only
    first, second = logged(2)
    assert "canary" not in first and second["canary"] is True


def test_canaries_that_reach_a_replica_are_marked_by_the_primary(start_daemon: Callable[..., DaemonProcess]) -> None:
    """With `--processes 2` the kernel spreads the calls over both processes; only the primary knows the tokens, so a
    replica hands a marked call to it rather than counting it."""
    daemon, _replica = start_with_a_replica(start_daemon)
    with daemon.client() as client:
        reply = client.request(CanaryRequest())
    assert isinstance(reply, DocumentReply)
    env = {"cwd": "/", "KEYCARD_CANARY": reply.body["token"]}

    def one(_: int) -> bytes:
        with daemon.client() as client:
            answer = client.request(HookRequest(agent="claude", payload=FORBIDDEN, env=env))
        assert isinstance(answer, HookResult)
        return answer.stdout

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(40)))
    assert all(b'"deny"' in answer for answer in answers)
    records = logged(40)
    assert all(record["canary"] is True for record in records)
    assert sum(status(daemon)["decisions"].values()) == 0


def test_a_live_token_does_not_mark_an_agents_own_call(daemon: DaemonProcess) -> None:
    """An agent that got a token (it runs as the user: a script can ask the socket) and starts a nested agent with
    `KEYCARD_CANARY=<token>` must not get that agent's calls left out of the counts and the shadow evaluation."""
    with daemon.client() as client:
        reply = client.request(CanaryRequest())
        assert isinstance(reply, DocumentReply)
        env = {"cwd": "/", "KEYCARD_CANARY": reply.body["token"]}
        answer = client.request(HookRequest(agent="claude", payload=AGENTS_CALL, env=env))
    assert isinstance(answer, HookResult) and b'"deny"' in answer.stdout
    assert status(daemon)["decisions"]["deny"] == 1
    (record,) = logged(1)
    assert "canary" not in record
