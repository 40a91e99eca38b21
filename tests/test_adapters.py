"""The answer table of decision-semantics.md, event by event, for both agents (in-process; the shim conformance
suite checks the same bytes through the real shims and socket)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, Outcome, PolicySource

POLICY = """
@id("base") permit (principal, action, resource);
@id("deny-it") @reason("not that file")
forbid (principal, action, resource) when { context has file_path && context.file_path like "*deny*" };
@id("ask-it") @itl("really?")
permit (principal, action, resource) when { context has file_path && context.file_path like "*ask*" };
@id("approve-it") @approve
permit (principal, action, resource) when { context has file_path && context.file_path like "*approve*" };
@id("deny-prompt") @reason("no secrets in prompts")
forbid (principal, action == Action::"Agent::PromptSubmit", resource)
when { context has prompt && context.prompt like "*secret*" };
@id("mcp-deny") forbid (principal, action, resource == Tool::"mcp__db__drop");
"""
ENGINE = Engine.compile([PolicySource("adapters.cedar", POLICY)])
OUTCOME_PATHS = {
    "deny": "/w/deny.txt",
    "ask": "/w/ask.txt",
    "allow": "/w/approve.txt",
    "no_objection": "/w/ok.txt",
}


def answer(agent: str, payload: Any, engine: Engine | None = ENGINE, error: str | None = None) -> tuple[Any, int]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    result = Decider(Settings(principal=EntityUid("User", "t@example.com"))).decide_hook(engine, error, agent, raw, {})
    return (json.loads(result.stdout) if result.stdout else None), result.exit_code


def claude(event: str, **fields: Any) -> dict[str, Any]:
    return {"session_id": "s", "cwd": "/w", "hook_event_name": event, **fields}


def cursor(event: str, **fields: Any) -> dict[str, Any]:
    return {
        "conversation_id": "c",
        "generation_id": "g",
        "hook_event_name": event,
        "workspace_roots": ["/w"],
        **fields,
    }


# ---- Claude Code -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["deny", "ask", "allow"])
def test_claude_pretooluse_decisions(outcome: str) -> None:
    output, code = answer(
        "claude", claude("PreToolUse", tool_name="Read", tool_input={"file_path": OUTCOME_PATHS[outcome]})
    )
    assert code == 0
    specific = output["hookSpecificOutput"]
    assert specific["hookEventName"] == "PreToolUse"
    assert specific["permissionDecision"] == outcome
    assert "permissionDecisionReason" in specific
    assert "continue" not in output


def test_claude_pretooluse_no_objection_prints_nothing() -> None:
    assert answer("claude", claude("PreToolUse", tool_name="Read", tool_input={"file_path": "/w/ok.txt"})) == (None, 0)


def test_claude_deny_reason_names_the_policy_and_its_reason() -> None:
    output, _ = answer("claude", claude("PreToolUse", tool_name="Read", tool_input={"file_path": "/w/deny"}))
    assert output["hookSpecificOutput"]["permissionDecisionReason"] == "keycardd policy 'deny-it': not that file"


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("deny", {"behavior": "deny", "message": "keycardd policy 'deny-it': not that file"}),
        ("allow", {"behavior": "allow"}),
        ("ask", None),
        ("no_objection", None),
    ],
)
def test_claude_permission_request(outcome: str, expected: dict[str, str] | None) -> None:
    payload = claude(
        "PermissionRequest",
        tool_name="Write",
        tool_input={"file_path": OUTCOME_PATHS[outcome], "content": "x"},
    )
    output, code = answer("claude", payload)
    assert code == 0
    if expected is None:
        assert output is None
    else:
        assert output == {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": expected}}


def test_claude_prompt_block_and_pass() -> None:
    blocked, _ = answer("claude", claude("UserPromptSubmit", prompt="print my secret key"))
    assert blocked == {"decision": "block", "reason": "keycardd policy 'deny-prompt': no secrets in prompts"}
    assert answer("claude", claude("UserPromptSubmit", prompt="add a test")) == (None, 0)


@pytest.mark.parametrize(
    "event", ["PostToolUse", "SessionStart", "SessionEnd", "Stop", "Notification", "BrandNewEvent"]
)
def test_claude_observed_and_unknown_events_print_nothing(event: str) -> None:
    payload = claude(event, tool_name="Read", tool_input={"file_path": "/w/deny.txt"}, source="startup")
    assert answer("claude", payload) == (None, 0)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b"",
        json.dumps(claude("PreToolUse", tool_input={"command": "ls"})).encode(),
        json.dumps(claude("PreToolUse", tool_name="Read", tool_input="oops")).encode(),
        json.dumps(claude("PreToolUse", tool_name="Read", tool_input={"path": "/x"})).encode(),
        json.dumps(claude("UserPromptSubmit")).encode(),
    ],
)
def test_claude_malformed_gate_is_denied_with_a_reason(payload: bytes) -> None:
    output, code = answer("claude", payload)
    assert code == 0
    if "UserPromptSubmit" in payload.decode(errors="replace"):
        assert output["decision"] == "block"
        assert "malformed" in output["reason"]
    else:
        assert output["hookSpecificOutput"]["permissionDecision"] == "deny"
        assert "malformed" in output["hookSpecificOutput"]["permissionDecisionReason"]


def test_claude_legacy_payload_without_event_name_is_a_pretooluse_gate() -> None:
    legacy = {
        "session_id": "abc",
        "tool_name": "MultiEdit",
        "tool_input": {"file_path": "/srv/deny.py", "edits": []},
    }
    output, _ = answer("claude", legacy)
    assert output["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_claude_bom_and_crlf_are_tolerated() -> None:
    raw = (
        b"\xef\xbb\xbf"
        + json.dumps(claude("PreToolUse", tool_name="Read", tool_input={"file_path": "/w/deny"})).encode()
        + b"\r\n"
    )
    output, _ = answer("claude", raw)
    assert output["hookSpecificOutput"]["permissionDecision"] == "deny"


@pytest.mark.parametrize(
    ("tool", "resource"),
    [("Task", "agent"), ("Agent", "agent"), ("WebFetch", "webfetch"), ("mcp__db__drop", "mcp__db__drop")],
)
def test_claude_tool_names_map_to_one_resource(tool: str, resource: str) -> None:
    engine = Engine.compile(
        [
            PolicySource(
                "t.cedar",
                f'permit (principal, action, resource);\nforbid (principal, action, resource == Tool::"{resource}");',
            )
        ]
    )
    output, _ = answer("claude", claude("PreToolUse", tool_name=tool, tool_input={"prompt": "x", "url": "u"}), engine)
    assert output["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_claude_windows_paths_are_normalised() -> None:
    payload = claude("PreToolUse", tool_name="Edit", tool_input={"file_path": "C:\\project\\deny\\prod.ts"})
    output, _ = answer("claude", payload)
    assert output["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_no_policy_denies_gates_and_names_the_error() -> None:
    output, _ = answer(
        "claude",
        claude("PreToolUse", tool_name="Read", tool_input={"file_path": "/w/ok"}),
        engine=None,
        error="/p/policy.cedar:3: unexpected token",
    )
    assert output["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "/p/policy.cedar:3" in output["hookSpecificOutput"]["permissionDecisionReason"]


# ---- Cursor ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "permission"),
    [("deny", "deny"), ("ask", "deny"), ("allow", "allow"), ("no_objection", "allow")],
)
def test_cursor_read_gate_never_asks(outcome: str, permission: str) -> None:
    output, code = answer("cursor", cursor("beforeReadFile", file_path=OUTCOME_PATHS[outcome], content="SECRET=1"))
    assert code == 0
    assert output["permission"] == permission
    if permission == "deny":
        assert output["user_message"]
        assert output["agent_message"]


@pytest.mark.parametrize(
    ("outcome", "permission"),
    [("deny", "deny"), ("ask", "deny"), ("allow", "allow"), ("no_objection", "allow")],
)
def test_cursor_pretooluse_answers_explicitly(outcome: str, permission: str) -> None:
    payload = cursor("preToolUse", tool_name="Write", tool_input={"file_path": OUTCOME_PATHS[outcome], "content": "x"})
    output, _ = answer("cursor", payload)
    assert output["permission"] == permission


def test_cursor_mcp_tool_input_as_string_or_object() -> None:
    as_string = cursor("beforeMCPExecution", tool_name="drop", tool_input='{"table":"users"}', server_name="db")
    as_object = cursor("beforeMCPExecution", tool_name="drop", tool_input={"table": "users"}, server_name="db")
    assert answer("cursor", as_string)[0]["permission"] == "deny"
    assert answer("cursor", as_object)[0]["permission"] == "deny"
    unknown_server = cursor("beforeMCPExecution", tool_name="drop", tool_input="{}", url="https://mcp.example.com/sse")
    assert answer("cursor", unknown_server)[0] == {"permission": "allow"}


def test_cursor_prompt_gate() -> None:
    blocked, _ = answer("cursor", cursor("beforeSubmitPrompt", prompt="here is my secret", attachments=[]))
    assert blocked == {
        "continue": False,
        "user_message": "keycardd policy 'deny-prompt': no secrets in prompts",
    }
    assert answer("cursor", cursor("beforeSubmitPrompt", prompt="hello"))[0] == {"continue": True}


@pytest.mark.parametrize(
    "event", ["afterFileEdit", "afterShellExecution", "stop", "sessionStart", "sessionEnd", "postToolUse"]
)
def test_cursor_observed_events_get_an_empty_object(event: str) -> None:
    assert answer("cursor", cursor(event, file_path="/w/deny.txt", status="completed")) == ({}, 0)


def test_cursor_unknown_events() -> None:
    assert answer("cursor", cursor("somethingHappened"))[0] == {}
    assert answer("cursor", cursor("afterSomethingNew", file_path="/w/ok.txt"))[0] == {}


@pytest.mark.parametrize("event", ["beforeSomethingNew", "preWebFetch", "beforeFileDelete"])
@pytest.mark.parametrize("payload", ["json", "garbage"])
def test_cursor_unknown_gate_fails_closed_naming_the_event(event: str, payload: str) -> None:
    """Before issue 13 an unknown `before*`/`pre*` event got `{"permission": "allow"}`: a new gate let all through."""
    raw = (
        json.dumps(cursor(event, file_path="/w/ok.txt")).encode()
        if payload == "json"
        else f'{{"hook_event_name": "{event}", garbage'.encode()
    )
    output, code = answer("cursor", raw)
    assert code == 0
    assert output["permission"] == "deny"
    assert output["continue"] is False
    assert event in output["user_message"]
    assert output["agent_message"] == output["user_message"]


def test_cursor_garbage_is_denied_in_every_gates_vocabulary() -> None:
    output, code = answer("cursor", b"\x00garbage")
    assert code == 0
    assert output["permission"] == "deny"
    assert output["continue"] is False
    assert output["user_message"].startswith("keycardd denied a malformed hook payload (unreadable): ")


def test_cursor_subagent_start_ask_becomes_deny() -> None:
    engine = Engine.compile(
        [PolicySource("t.cedar", '@itl("spawn?") permit (principal, action, resource == Tool::"agent");')]
    )
    output, _ = answer("cursor", cursor("subagentStart", subagent_type="shell", task="delete branches"), engine)
    assert output["permission"] == "deny"
    assert "spawn?" in output["user_message"]


def test_outcome_strictness_order() -> None:
    assert sorted(Outcome, key=lambda o: o.strictness) == [
        Outcome.ALLOW,
        Outcome.NO_OBJECTION,
        Outcome.ASK,
        Outcome.DENY,
    ]
