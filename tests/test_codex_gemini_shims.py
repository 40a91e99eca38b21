"""`keycard-hook codex|gemini` through both real shims: the daemon's answer byte for byte, and, when the daemon
cannot answer, a deny in the shape that agent honours (a Claude-shaped deny is ignored by Gemini: it fails open)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess
from shims import REPO, Shim, shims
from test_conformance import FakeDaemon, _stall

from keycardd import paths
from keycardd.engine import Outcome
from keycardd.protocol import DocumentReply, StatusRequest
from keycardd.stats import DecisionStats

SHIMS = shims()
SHIM_IDS = [shim.name for shim in SHIMS]
POLICY = """
@id("base") permit (principal, action, resource);
@id("no-rm") @reason("no recursive rm") forbid (principal, action, resource == Tool::"bash")
when { context has program && context.program == "rm" };
"""


def codex(event: str = "PreToolUse", **fields: Any) -> bytes:
    base = {"session_id": "s", "turn_id": "t", "cwd": "/w", "hook_event_name": event, "model": "m"}
    return json.dumps({**base, "permission_mode": "default", "tool_use_id": "u", **fields}).encode()


def gemini(event: str = "BeforeTool", **fields: Any) -> bytes:
    return json.dumps({"session_id": "s", "cwd": "/w", "hook_event_name": event, "timestamp": "t", **fields}).encode()


CODEX_RM = codex(tool_name="Bash", tool_input={"command": "rm -rf x"})
GEMINI_RM = gemini(tool_name="run_shell_command", tool_input={"command": "rm -rf x"})


@pytest.mark.parametrize("shim", SHIMS, ids=SHIM_IDS)
def test_daemon_answers_through_the_shim(shim: Shim, start_daemon: Any) -> None:
    daemon: DaemonProcess = start_daemon(policy=POLICY)
    reason = "keycardd policy 'no-rm': no recursive rm (in `rm -rf x`)"
    result = shim.run("codex", CODEX_RM, "--no-autostart", env=daemon.env)
    assert (result.returncode, json.loads(result.stdout)["hookSpecificOutput"]["permissionDecisionReason"]) == (
        0,
        reason,
    )
    result = shim.run("gemini", GEMINI_RM, "--no-autostart", env=daemon.env)
    assert (result.returncode, result.stdout) == (
        0,
        json.dumps({"decision": "deny", "reason": reason}, separators=(",", ":")).encode(),
    )
    ls = gemini(tool_name="run_shell_command", tool_input={"command": "ls"})
    assert shim.run("gemini", ls, "--no-autostart", env=daemon.env).stdout == b""


@pytest.mark.parametrize("shim", SHIMS, ids=SHIM_IDS)
@pytest.mark.parametrize(
    ("payload", "event"),
    [
        (CODEX_RM, "PreToolUse"),
        (codex("UserPromptSubmit", prompt="hi"), "UserPromptSubmit"),
        (codex("PermissionRequest", tool_name="Bash", tool_input={"command": "ls"}), "PermissionRequest"),
        (b"garbage", "PreToolUse"),
    ],
    ids=["pretooluse", "prompt", "permission-request", "garbage"],
)
def test_codex_no_daemon_denies_in_the_blocking_shape(shim: Shim, payload: bytes, event: str) -> None:
    result = shim.run("codex", payload, "--no-autostart")
    document = json.loads(result.stdout)
    assert result.returncode == 0
    if event == "UserPromptSubmit":
        reason = document["reason"]
        assert document["decision"] == "block"
    elif event == "PermissionRequest":
        reason = document["hookSpecificOutput"]["decision"]["message"]
        assert document["hookSpecificOutput"]["decision"]["behavior"] == "deny"
    else:
        specific = document["hookSpecificOutput"]
        assert (specific["hookEventName"], specific["permissionDecision"]) == ("PreToolUse", "deny")
        reason = specific["permissionDecisionReason"]
    assert reason.startswith("keycardd is not running") and str(paths.socket_path()) in reason


@pytest.mark.parametrize("shim", SHIMS, ids=SHIM_IDS)
@pytest.mark.parametrize(
    "payload",
    [GEMINI_RM, gemini("BeforeAgent", prompt="hi"), b"garbage", b""],
    ids=["before-tool", "before-agent", "garbage", "empty"],
)
def test_gemini_no_daemon_denies_in_gemini_shape(shim: Shim, payload: bytes) -> None:
    """Before: the shim refused `gemini` as unknown and printed a Claude-shaped deny, which Gemini runs through."""
    result = shim.run("gemini", payload, "--no-autostart")
    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert set(document) == {"decision", "reason"}
    assert document["decision"] == "deny"
    assert document["reason"].startswith("keycardd is not running")


@pytest.mark.parametrize("shim", SHIMS, ids=SHIM_IDS)
@pytest.mark.parametrize(
    ("agent", "payload"),
    [
        ("gemini", gemini("AfterTool", tool_name="run_shell_command", tool_input={}, tool_response={})),
        ("gemini", gemini("SessionStart", source="startup")),
        ("codex", codex("PostToolUse", tool_name="Bash", tool_input={})),
    ],
)
def test_no_daemon_observed_events_stay_silent(shim: Shim, agent: str, payload: bytes) -> None:
    result = shim.run(agent, payload, "--no-autostart")
    assert (result.returncode, result.stdout) == (0, b"")


@pytest.mark.parametrize("shim", SHIMS, ids=SHIM_IDS)
def test_gemini_fail_open_is_opt_in_per_event(shim: Shim) -> None:
    result = shim.run("gemini", GEMINI_RM, "--no-autostart", "--fail-open", "BeforeAgent")
    assert json.loads(result.stdout)["decision"] == "deny"
    result = shim.run("gemini", GEMINI_RM, "--no-autostart", "--fail-open", "BeforeTool")
    assert result.stdout == b""


@pytest.mark.parametrize("shim", SHIMS, ids=SHIM_IDS)
def test_stalled_daemon_the_shim_ends_itself_with_a_gemini_deny(shim: Shim) -> None:
    """A timed-out Gemini hook keeps the tool waiting until its child exits: the shim must end on its own budget
    (the subprocess timeout here is only a generous liveness bound, not a speed assertion)."""
    fake = FakeDaemon(paths.socket_path(), _stall)
    try:
        result = shim.run("gemini", GEMINI_RM, "--timeout-ms", "300", timeout=4.5)
    finally:
        fake.close()
    document = json.loads(result.stdout)
    assert document == {"decision": "deny", "reason": document["reason"]}
    assert "did not answer within 300 ms" in document["reason"]


def test_unknown_agent_still_fails_closed(shim: Shim = SHIMS[0]) -> None:
    result = shim.run("vim", CODEX_RM, "--no-autostart", env={**os.environ})
    assert "unknown agent" in json.loads(result.stdout)["hookSpecificOutput"]["permissionDecisionReason"]


def test_status_counts_decisions_per_agent(start_daemon: Any) -> None:
    daemon: DaemonProcess = start_daemon(policy=POLICY)
    shim = SHIMS[0]
    for agent, payload in (
        ("codex", CODEX_RM),
        ("gemini", GEMINI_RM),
        ("gemini", gemini(tool_name="run_shell_command", tool_input={"command": "ls"})),
    ):
        assert shim.run(agent, payload, "--no-autostart", env=daemon.env).returncode == 0
    with daemon.client() as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    assert reply.body["decisions_by_agent"] == {"codex": {"deny": 1}, "gemini": {"deny": 1, "no_objection": 1}}
    assert reply.body["decisions"]["deny"] == 2


def test_per_agent_counts_survive_a_replica_report() -> None:
    replica, primary = DecisionStats(), DecisionStats()
    replica.record(Outcome.DENY, 10.0, "gemini")
    replica.record(Outcome.ALLOW, 10.0, "codex")
    primary.record(Outcome.DENY, 10.0, "gemini")
    primary.merge(*replica.drain())
    assert primary.by_agent == {"gemini": {"deny": 2}, "codex": {"allow": 1}}
    assert primary.counts["deny"] == 2 and primary.counts["allow"] == 1
    assert replica.by_agent == {}


@pytest.mark.parametrize(
    "payload", [GEMINI_RM, gemini("BeforeAgent", prompt="hi"), b""], ids=["tool", "prompt", "empty"]
)
def test_plugin_launcher_without_keycardd_denies_in_gemini_shape(tmp_path: Path, payload: bytes) -> None:
    """Before: `sh keycard-hook.sh gemini` printed a Claude-shaped deny, which Gemini ignores."""
    root = tmp_path / "plugin"
    root.mkdir()
    shutil.copy(REPO / "hooks" / "keycard-hook.sh", root / "keycard-hook.sh")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "none")}
    result = subprocess.run(
        ["sh", str(root / "keycard-hook.sh"), "gemini"], input=payload, capture_output=True, env=env
    )
    document = json.loads(result.stdout)
    assert (result.returncode, document["decision"]) == (0, "deny")
    assert "keycardd is not installed" in document["reason"]
    observed = gemini("AfterTool", tool_name="x", tool_input={})
    result = subprocess.run(
        ["sh", str(root / "keycard-hook.sh"), "gemini"], input=observed, capture_output=True, env=env
    )
    assert (result.returncode, result.stdout) == (0, b"")
