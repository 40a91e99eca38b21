"""Property-based fuzzing of everything that parses untrusted input: frames, both adapters, the policy loader.

The fast run (make test) uses a few hundred examples per target; `make stress` runs the `slow` variants with 120,000
inputs in total by default (KEYCARDD_FUZZ_EXAMPLES scales them).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from typing import Any

import pytest
from conftest import DaemonProcess
from hardening_helpers import rss_kib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keycardd import protocol
from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, PolicyError, PolicySource, default_policy_source

FAST = 300
FULL = int(os.environ.get("KEYCARDD_FUZZ_EXAMPLES", "40000"))
"""The full run's budget: each adapter target gets 5/6 of it and the others 1/6, 120,000 inputs in total."""
ENGINE = Engine.compile([default_policy_source()])
DECIDER = Decider(Settings(principal=EntityUid("User", "fuzz@example.com")))
GATES = {
    "claude": ["PreToolUse", "PermissionRequest", "UserPromptSubmit"],
    "cursor": [
        "preToolUse",
        "beforeShellExecution",
        "beforeMCPExecution",
        "beforeReadFile",
        "beforeSubmitPrompt",
        "beforeTabFileRead",
        "subagentStart",
    ],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def gate_payloads(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """Structurally plausible but wrong payloads: real event names, random or missing fields and types."""
    agent = draw(st.sampled_from(["claude", "cursor"]))
    event = draw(st.sampled_from(GATES[agent]))
    keys = [
        "tool_name",
        "tool_input",
        "prompt",
        "command",
        "file_path",
        "cwd",
        "session_id",
        "conversation_id",
        "url",
        "workspace_roots",
        "generation_id",
    ]
    payload: dict[str, Any] = {"hook_event_name": event}
    for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=6)):
        payload[key] = draw(json_values)
    if draw(st.booleans()):
        payload["tool_name"] = draw(st.sampled_from(["Bash", "Read", "Write", "Shell", "mcp__a__b", "MCP:x", "Task"]))
        payload["tool_input"] = draw(
            st.dictionaries(st.sampled_from(["command", "file_path", "url", "content"]), json_values, max_size=3)
        )
    return agent, event, payload


def assert_gate_answer(agent: str, event: str, stdout: bytes) -> None:
    """A gate's answer is well-formed in the agent's contract; a deny always carries a reason."""
    if agent == "claude":
        if not stdout:
            return
        document = json.loads(stdout)
        if event == "UserPromptSubmit":
            assert document["decision"] == "block" and document["reason"]
        elif event == "PermissionRequest":
            decision = document["hookSpecificOutput"]["decision"]
            assert decision["behavior"] in ("allow", "deny")
            assert decision["behavior"] == "allow" or decision["message"]
        else:
            specific = document["hookSpecificOutput"]
            assert specific["permissionDecision"] in ("allow", "deny", "ask")
            assert specific["permissionDecisionReason"]
        return
    document = json.loads(stdout)
    if event == "beforeSubmitPrompt":
        assert document["continue"] in (True, False)
        assert document["continue"] or document["user_message"]
    else:
        assert document["permission"] in ("allow", "deny", "ask")
        assert document["permission"] == "allow" or document["user_message"]


def check_payload(case: tuple[str, str, dict[str, Any]]) -> None:
    agent, event, payload = case
    answer = DECIDER.decide_hook(ENGINE, None, agent, json.dumps(payload).encode(), {})
    assert answer.exit_code == 0
    assert_gate_answer(agent, event, answer.stdout)


def check_bytes(agent: str, raw: bytes) -> None:
    answer = DECIDER.decide_hook(ENGINE, None, agent, raw, {})
    assert answer.exit_code == 0
    if answer.decision is not None and not raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        assert answer.decision.outcome.value == "deny"  # not a JSON object at all: garbage is never let through
        assert "malformed" in answer.decision.reason


def check_frame(body: bytes) -> None:
    with contextlib.suppress(protocol.FrameError):
        protocol.decode_request(body)


def check_policy(text: str) -> None:
    try:
        Engine.compile([PolicySource("fuzz.cedar", text)])
    except PolicyError as exc:
        assert str(exc).startswith("fuzz.cedar")


policy_fragments = st.lists(
    st.sampled_from(
        [
            "permit",
            "forbid",
            "(",
            ")",
            "principal",
            "action",
            "resource",
            ",",
            ";",
            "==",
            "when",
            "{",
            "}",
            "context",
            ".",
            "command",
            "has",
            "like",
            '"*x*"',
            '@id("a")',
            '@itl("?")',
            "@approve",
            'Tool::"bash"',
            'Action::"Agent::ToolUse"',
            "&&",
            "||",
            "!",
            "in",
            "[",
            "]",
            "unless",
            "//",
            "\n",
            "is",
            "User",
            '"',
            "\\",
        ]
    ),
    max_size=40,
).map(" ".join)


def _fuzz(examples: int, strategy: st.SearchStrategy[Any], check: Any) -> None:
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        check(value)

    run()


TARGETS = {
    "adapter-structured": (gate_payloads(), check_payload),
    "adapter-bytes-claude": (st.binary(max_size=300), lambda raw: check_bytes("claude", raw)),
    "adapter-bytes-cursor": (st.binary(max_size=300), lambda raw: check_bytes("cursor", raw)),
    "frame-decoder": (st.binary(max_size=200), check_frame),
    "policy-loader-text": (st.text(max_size=200), check_policy),
    "policy-loader-shaped": (policy_fragments, check_policy),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzz_fast(target: str) -> None:
    strategy, check = TARGETS[target]
    _fuzz(FAST, strategy, check)


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzz_full(target: str) -> None:
    strategy, check = TARGETS[target]
    _fuzz(FULL // len(TARGETS) * 5 if target.startswith("adapter") else FULL // len(TARGETS), strategy, check)


def _garbage_burst(daemon: DaemonProcess, count: int) -> None:
    for index in range(count):
        body = os.urandom(index % 300)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(5)
            raw.connect(str(daemon.socket))
            raw.sendall(struct.pack(">I", len(body)) + body)
            with contextlib.suppress(OSError):
                raw.recv(4096)


@pytest.mark.parametrize("count", [pytest.param(300, id="fast"), pytest.param(5000, id="full", marks=pytest.mark.slow)])
def test_daemon_survives_garbage_frames_with_bounded_memory(daemon: DaemonProcess, count: int) -> None:
    _garbage_burst(daemon, 100)
    before = rss_kib(daemon.process.pid)
    _garbage_burst(daemon, count)
    after = rss_kib(daemon.process.pid)
    assert daemon.process.poll() is None
    assert after - before < 20 * 1024, f"RSS grew by {after - before} KiB over {count} garbage frames"
    with daemon.client() as client:
        reply = client.request(protocol.HookRequest(agent="claude", payload=b"{}"))
    assert isinstance(reply, protocol.HookResult)
