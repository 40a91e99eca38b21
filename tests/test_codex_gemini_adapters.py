"""Codex CLI and Gemini CLI contracts, event by event: the exact stdout and exit code for each decision.

Both agents run the call on any answer they do not recognise as a block (Codex: an `ask`, an `allow`, a deny without
reason or `hookEventName`; Gemini: anything but `"decision": "deny"|"block"`), so these pin the bytes exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, PolicySource
from keycardd.explain import explain

POLICY = """
@id("base") permit (principal, action, resource);
@id("deny-it") @reason("not that file")
forbid (principal, action, resource) when { context has file_path && context.file_path like "*deny*" };
@id("ask-it") @itl("really?")
permit (principal, action, resource) when { context has file_path && context.file_path like "*ask*" };
@id("approve-it") @approve
permit (principal, action, resource) when { context has file_path && context.file_path like "*approve*" };
@id("no-rm") @reason("no recursive rm")
forbid (principal, action, resource == Tool::"bash") when { context has program && context.program == "rm" };
@id("ask-push") @itl("push?")
permit (principal, action, resource == Tool::"bash") when { context has program && context.program == "git" };
@id("deny-prompt") @reason("no secrets in prompts")
forbid (principal, action == Action::"Agent::PromptSubmit", resource)
when { context has prompt && context.prompt like "*secret*" };
@id("mcp-deny") @reason("no drops") forbid (principal, action, resource == Tool::"mcp__db__drop");
@id("gemini-only") @reason("gemini may not fetch")
forbid (principal, action, resource == Tool::"webfetch") when { context.agent == "gemini" };
"""
ENGINE = Engine.compile([PolicySource("agents.cedar", POLICY)])
SETTINGS = Settings(principal=EntityUid("User", "t@example.com"))
DENY_RM = "keycardd policy 'no-rm': no recursive rm (in `rm -rf x`)"


def answer(agent: str, payload: Any, engine: Engine | None = ENGINE) -> tuple[bytes, int]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    result = Decider(SETTINGS).decide_hook(engine, None if engine else "broken.cedar: bad", agent, raw, {})
    return result.stdout, result.exit_code


def codex(event: str = "PreToolUse", **fields: Any) -> dict[str, Any]:
    base = {"session_id": "s", "turn_id": "t", "cwd": "/w", "hook_event_name": event, "model": "m"}
    return {**base, "permission_mode": "default", "tool_use_id": "u", "transcript_path": None, **fields}


def gemini(event: str = "BeforeTool", **fields: Any) -> dict[str, Any]:
    return {"session_id": "s", "cwd": "/w", "hook_event_name": event, "timestamp": "2026-01-01T00:00:00Z", **fields}


def codex_deny(reason: str) -> bytes:
    output = {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}
    return json.dumps({"hookSpecificOutput": output}, separators=(",", ":")).encode()


def gemini_deny(reason: str) -> bytes:
    return json.dumps({"decision": "deny", "reason": reason}, separators=(",", ":")).encode()


# ---- Codex -------------------------------------------------------------------------------------------------------


def test_codex_shell_deny_is_the_exact_blocking_shape() -> None:
    payload = codex(tool_name="Bash", tool_input={"command": "rm -rf x"})
    assert answer("codex", payload) == (codex_deny(DENY_RM), 0)


@pytest.mark.parametrize("command", ["ls -la", "echo hi > /w/out.txt"])
def test_codex_permitted_shell_prints_nothing(command: str) -> None:
    """`permissionDecision: allow` is "unsupported" in Codex: silence is the only allow."""
    assert answer("codex", codex(tool_name="Bash", tool_input={"command": command})) == (b"", 0)


def test_codex_ask_becomes_a_deny_that_says_how_to_approve() -> None:
    stdout, code = answer("codex", codex(tool_name="Bash", tool_input={"command": "git push"}))
    reason = json.loads(stdout)["hookSpecificOutput"]["permissionDecisionReason"]
    assert code == 0
    assert stdout == codex_deny(reason)
    assert reason.startswith("keycardd policy 'ask-push': push?")
    assert "Codex hooks cannot ask" in reason
    assert "permit it without @itl" in reason


@pytest.mark.parametrize("name", ["shell", "exec_command", "local_shell", "unified_exec"])
def test_codex_every_shell_tool_is_tool_bash(name: str) -> None:
    payload = codex(tool_name=name, tool_input={"command": ["bash", "-lc", "rm -rf x"]})
    assert answer("codex", payload) == (codex_deny(DENY_RM), 0)
    argv = codex(tool_name=name, tool_input={"command": ["rm", "-rf", "x"]})
    assert answer("codex", argv) == (codex_deny(DENY_RM), 0)


def test_codex_apply_patch_decides_every_file_it_touches() -> None:
    """A patch that edits a harmless file first and a forbidden one second is still denied."""
    patch = "*** Begin Patch\n*** Update File: ok.txt\n@@\n-a\n+b\n*** Add File: deny.txt\n+x\n*** End Patch\n"
    stdout, _ = answer("codex", codex(tool_name="apply_patch", tool_input={"command": patch}))
    assert stdout == codex_deny("keycardd policy 'deny-it': not that file")
    moved = "*** Begin Patch\n*** Update File: ok.txt\n*** Move to: deny/ok.txt\n*** End Patch\n"
    assert answer("codex", codex(tool_name="apply_patch", tool_input={"command": moved}))[0].startswith(b"{")
    fine = "*** Begin Patch\n*** Update File: ok.txt\n@@\n-a\n+b\n*** End Patch\n"
    assert answer("codex", codex(tool_name="apply_patch", tool_input={"command": fine})) == (b"", 0)


def test_codex_apply_patch_through_the_shell_tool_decides_its_files() -> None:
    """Codex 0.171 runs a model's `apply_patch` heredoc through exec_command: the hook sees tool `Bash` and the patch
    in the command line. Before, that was just a shell line running `apply_patch`, so a forbidden file got through."""
    patch = "*** Begin Patch\n*** Update File: ok.txt\n@@\n-a\n+b\n*** Add File: deny.txt\n+x\n*** End Patch"
    command = f"apply_patch <<'EOF'\n{patch}\nEOF\n"
    assert answer("codex", codex(tool_name="Bash", tool_input={"command": command})) == (
        codex_deny("keycardd policy 'deny-it': not that file"),
        0,
    )
    fine = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: ok.txt\n+x\n*** End Patch\nEOF\n"
    assert answer("codex", codex(tool_name="Bash", tool_input={"command": fine})) == (b"", 0)
    rm_too = fine + "rm -rf x\n"
    assert answer("codex", codex(tool_name="Bash", tool_input={"command": rm_too})) == (codex_deny(DENY_RM), 0)


def test_codex_view_image_is_a_read_of_its_path() -> None:
    denied = codex(tool_name="view_image", tool_input={"path": "deny.png"})
    assert answer("codex", denied) == (codex_deny("keycardd policy 'deny-it': not that file"), 0)
    assert answer("codex", codex(tool_name="view_image", tool_input={"path": "ok.png"})) == (b"", 0)


def test_codex_patch_without_files_is_denied_as_malformed() -> None:
    stdout, _ = answer("codex", codex(tool_name="apply_patch", tool_input={"command": "rm everything"}))
    assert b"the patch names no file" in stdout
    assert json.loads(stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_codex_mcp_tool_maps_like_claude() -> None:
    assert answer("codex", codex(tool_name="mcp__db__drop", tool_input={})) == (
        codex_deny("keycardd policy 'mcp-deny': no drops"),
        0,
    )


def test_codex_prompt_and_permission_request_shapes() -> None:
    prompt = codex("UserPromptSubmit", prompt="my secret")
    assert answer("codex", prompt) == (
        b'{"decision":"block","reason":"keycardd policy \'deny-prompt\': no secrets in prompts"}',
        0,
    )
    request = codex("PermissionRequest", tool_name="Bash", tool_input={"command": "rm -rf x"})
    body = {"hookEventName": "PermissionRequest", "decision": {"behavior": "deny", "message": DENY_RM}}
    assert answer("codex", request) == (json.dumps({"hookSpecificOutput": body}, separators=(",", ":")).encode(), 0)
    asked = codex("PermissionRequest", tool_name="Bash", tool_input={"command": "git push"})
    assert answer("codex", asked) == (b"", 0)  # Codex's own approval prompt is the right answer here


@pytest.mark.parametrize("event", ["PostToolUse", "SessionStart", "Stop"])
def test_codex_observed_events_print_nothing(event: str) -> None:
    assert answer("codex", codex(event, tool_name="Bash", tool_input={"command": "rm -rf x"})) == (b"", 0)


@pytest.mark.parametrize("raw", [b"not json", b"[]", b""])
def test_codex_garbage_is_a_blocking_deny(raw: bytes) -> None:
    stdout, code = answer("codex", raw)
    specific = json.loads(stdout)["hookSpecificOutput"]
    assert (code, specific["hookEventName"], specific["permissionDecision"]) == (0, "PreToolUse", "deny")
    assert specific["permissionDecisionReason"]


def test_codex_no_policy_denies() -> None:
    stdout, _ = answer("codex", codex(tool_name="Bash", tool_input={"command": "ls"}), engine=None)
    assert stdout == codex_deny("keycardd has no valid policy (broken.cedar: bad); fix the policy file")


# ---- Gemini ------------------------------------------------------------------------------------------------------


def test_gemini_shell_deny_is_the_exact_blocking_shape() -> None:
    payload = gemini(tool_name="run_shell_command", tool_input={"command": "rm -rf x", "description": "d"})
    assert answer("gemini", payload) == (gemini_deny(DENY_RM), 0)


def test_gemini_shell_runs_in_dir_path() -> None:
    payload = gemini(tool_name="run_shell_command", tool_input={"command": "rm -rf x", "dir_path": "sub"})
    assert answer("gemini", payload) == (gemini_deny("keycardd policy 'no-rm': no recursive rm (in `rm -rf x`)"), 0)


def test_gemini_permitted_and_approved_print_nothing() -> None:
    assert answer("gemini", gemini(tool_name="run_shell_command", tool_input={"command": "ls"})) == (b"", 0)
    assert answer("gemini", gemini(tool_name="read_file", tool_input={"file_path": "approve.txt"})) == (b"", 0)


def test_gemini_ask_becomes_a_deny_that_says_so() -> None:
    stdout, code = answer("gemini", gemini(tool_name="write_file", tool_input={"file_path": "ask.txt", "content": "x"}))
    reason = json.loads(stdout)["reason"]
    assert (stdout, code) == (gemini_deny(reason), 0)
    assert reason.startswith("keycardd policy 'ask-it': really?") and "Gemini CLI hooks cannot ask" in reason


@pytest.mark.parametrize(
    ("tool_name", "tool_input"),
    [
        ("read_file", {"file_path": "deny.txt"}),
        ("write_file", {"file_path": "/w/deny.txt", "content": "x"}),
        ("replace", {"file_path": "deny.txt", "old_string": "a", "new_string": "b"}),
        ("read_many_files", {"include": ["ok.txt", "deny.txt"]}),
    ],
)
def test_gemini_file_tools_use_file_path(tool_name: str, tool_input: dict[str, Any]) -> None:
    assert answer("gemini", gemini(tool_name=tool_name, tool_input=tool_input)) == (
        gemini_deny("keycardd policy 'deny-it': not that file"),
        0,
    )


def test_gemini_mcp_and_agent_attribute() -> None:
    mcp = gemini(tool_name="drop", tool_input={}, mcp_context={"server_name": "db", "tool_name": "drop"})
    assert answer("gemini", mcp) == (gemini_deny("keycardd policy 'mcp-deny': no drops"), 0)
    fetch = {"prompt": "summarise https://example.com"}
    assert answer("gemini", gemini(tool_name="web_fetch", tool_input=fetch))[0] == gemini_deny(
        "keycardd policy 'gemini-only': gemini may not fetch"
    )
    assert answer("codex", codex(tool_name="web_fetch", tool_input=fetch)) == (b"", 0)  # same policy, agent differs


def test_gemini_prompt_gate() -> None:
    assert answer("gemini", gemini("BeforeAgent", prompt="a secret")) == (
        gemini_deny("keycardd policy 'deny-prompt': no secrets in prompts"),
        0,
    )
    assert answer("gemini", gemini("BeforeAgent", prompt="hello")) == (b"", 0)


@pytest.mark.parametrize("event", ["AfterTool", "BeforeModel", "SessionStart", "SomethingNew"])
def test_gemini_non_gates_print_nothing(event: str) -> None:
    assert answer("gemini", gemini(event, tool_name="run_shell_command", tool_input={"command": "rm -rf x"})) == (
        b"",
        0,
    )


@pytest.mark.parametrize("raw", [b"not json", b"[]", b"", b'{"hook_event_name":"BeforeTool","tool_name":5}'])
def test_gemini_garbage_is_a_blocking_deny(raw: bytes) -> None:
    stdout, code = answer("gemini", raw)
    document = json.loads(stdout)
    assert (code, document["decision"]) == (0, "deny")
    assert document["reason"].startswith("keycardd denied a malformed hook payload")
    assert "hookSpecificOutput" not in document  # Gemini ignores that shape: it would fail open


def test_explain_knows_both_agents() -> None:
    payload = json.dumps(gemini(tool_name="run_shell_command", tool_input={"command": "rm -rf x"})).encode()
    document = explain(ENGINE, None, SETTINGS, agent="gemini", payload=payload, env={})
    assert (document["agent"], document["tool"], document["decision"]) == ("gemini", "bash", "deny")
    payload = json.dumps(codex(tool_name="Bash", tool_input={"command": "ls"})).encode()
    assert explain(ENGINE, None, SETTINGS, agent="codex", payload=payload, env={})["agent"] == "codex"


# ---- Cursor running Claude Code's hooks too -------------------------------------------------------------------


def _hook(decider: Decider, agent: str, payload: dict[str, Any], env: dict[str, str]) -> Any:
    return decider.decide_hook(ENGINE, None, agent, json.dumps(payload).encode(), env)


CURSOR_SHELL = {"conversation_id": "c", "generation_id": "g", "hook_event_name": "beforeShellExecution",
                "command": "rm -rf x", "cwd": "/w"}  # fmt: skip
CLAUDE_SHELL = {"session_id": "c", "cwd": "/w", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                "tool_input": {"command": "rm -rf x"}}  # fmt: skip
CURSOR_ENV = {"CURSOR_VERSION": "2.1.46"}


def test_a_call_cursor_reports_through_both_hooks_is_decided_once() -> None:
    decider = Decider(SETTINGS)
    first = _hook(decider, "cursor", CURSOR_SHELL, {})
    second = _hook(decider, "claude", CLAUDE_SHELL, CURSOR_ENV)
    assert (first.repeated, second.repeated) == (False, True)
    assert second.decision == first.decision
    assert json.loads(second.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"  # still Claude's shape
    third = _hook(decider, "claude", CLAUDE_SHELL, CURSOR_ENV)
    assert third.repeated is False  # a pair is two calls: a later one is decided afresh


def test_claude_first_then_cursors_two_events_count_once() -> None:
    decider = Decider(SETTINGS)
    claude_answer = _hook(decider, "claude", CLAUDE_SHELL, CURSOR_ENV)
    pre_tool = {**CURSOR_SHELL, "hook_event_name": "preToolUse", "tool_name": "Shell",
                "tool_input": {"command": "rm -rf x", "working_directory": "/w"}}  # fmt: skip
    answers = [_hook(decider, "cursor", pre_tool, {}), _hook(decider, "cursor", CURSOR_SHELL, {})]
    assert [claude_answer.repeated, *(a.repeated for a in answers)] == [False, True, True]


def test_claude_code_itself_is_never_deduplicated_against_cursor() -> None:
    decider = Decider(SETTINGS)
    _hook(decider, "cursor", CURSOR_SHELL, {})
    assert _hook(decider, "claude", CLAUDE_SHELL, {}).repeated is False  # no CURSOR_VERSION: real Claude Code
