"""Claude Code: hook payload -> `Call`, and `Decision` -> the exact stdout and exit code Claude Code expects.

Parsing is lenient (every field but `hook_event_name`/`tool_name` is optional; unknown fields and events are
fine) because the payload grows with every Claude Code release, and a strict parser would turn each new field into
a failure. Output follows the current contract: exit 0 with `hookSpecificOutput` JSON for decisions, and nothing at
all when keycardd has no objection, so Claude's own permission rules keep working.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keycardd.adapters.decision import Call, Decision, Kind
from keycardd.adapters.payload import Payload, add_secure_session, optional_str, required_str
from keycardd.engine import PROMPT_SUBMIT, Outcome

AGENT = "claude-code"
GATES = frozenset({"PreToolUse", "PermissionRequest", "UserPromptSubmit"})
OBSERVED = frozenset({"PostToolUse", "PostToolUseFailure", "SessionStart", "SessionEnd"})
SHELL_TOOLS = frozenset({"bash", "powershell"})
RENAMED_TOOLS = {"task": "agent"}
"""Tools Claude Code renamed keep one Cedar name: `Task` became `Agent` in v2.1.63."""

_FILE_TOOLS = {"read", "write", "edit", "multiedit"}
_encode = msgspec.json.Encoder().encode


def parse(payload: Payload, env: dict[str, str]) -> Call:
    """Normalise one Claude Code hook payload. A payload with no event name is the legacy PreToolUse shape."""
    data = payload.data
    event = data.get("hook_event_name")
    if not isinstance(event, str):
        # The legacy payload has no event name, and bytes that are not a JSON object may be any event: both are
        # treated as the PreToolUse gate, so garbage is denied rather than let through.
        event = "PreToolUse" if "tool_name" in data or payload.error is not None else "Unknown"
        event = payload.event_hint or event
    kind = Kind.GATE if event in GATES else Kind.OBSERVE if event in OBSERVED else Kind.UNKNOWN
    if kind is not Kind.GATE:
        return Call(agent=AGENT, event=event, kind=kind, tool=_tool_name(data.get("tool_name")))
    if payload.error is not None:
        return Call(agent=AGENT, event=event, kind=kind, malformed=payload.error)

    context: dict[str, Any] = {"agent": AGENT, "event": event}
    _common_context(context, data, env)
    if event == "UserPromptSubmit":
        prompt = data.get("prompt")
        if not isinstance(prompt, str):
            return Call(agent=AGENT, event=event, kind=kind, malformed="`prompt` is missing or not a string")
        context["prompt"] = prompt
        return Call(agent=AGENT, event=event, kind=kind, action=PROMPT_SUBMIT, tool="prompt", context=context)

    tool_name = data.get("tool_name")
    if not isinstance(tool_name, str) or not tool_name:
        return Call(agent=AGENT, event=event, kind=kind, malformed="`tool_name` is missing or not a string")
    tool_input = data.get("tool_input", {})
    if not isinstance(tool_input, dict):
        return Call(agent=AGENT, event=event, kind=kind, malformed="`tool_input` is not an object")
    tool = _tool_name(tool_name)
    context["tool_name"] = tool_name
    try:
        shell_line = _tool_context(tool, tool_input, context)
    except ValueError as exc:
        return Call(agent=AGENT, event=event, kind=kind, tool=tool, malformed=str(exc))
    content = tool_input.get("content")
    return Call(
        agent=AGENT,
        event=event,
        kind=kind,
        tool=tool,
        context=context,
        shell_line=shell_line,
        content=content if isinstance(content, str) else None,
        arguments=tool_input if tool.startswith("mcp__") or tool == "grep" else None,
    )


def _tool_name(name: object) -> str:
    if not isinstance(name, str):
        return ""
    if name.startswith("mcp__"):
        return name
    lowered = name.lower()
    return RENAMED_TOOLS.get(lowered, lowered)


def _common_context(context: dict[str, Any], data: dict[str, Any], env: dict[str, str]) -> None:
    cwd = optional_str(data, "cwd") or env.get("cwd")
    if cwd:
        context["cwd"] = cwd
    for key in ("session_id", "permission_mode"):
        value = optional_str(data, key)
        if value is not None:
            context[key] = value
    if env.get("CLAUDE_PROJECT_DIR"):
        context["project_dir"] = env["CLAUDE_PROJECT_DIR"]
    add_secure_session(context, env)


def _tool_context(tool: str, tool_input: dict[str, Any], context: dict[str, Any]) -> str | None:
    """Copy what policies need from `tool_input` into the context; returns the shell line for shell tools.

    Paths and URLs are copied as sent: `keycardd.adapters.facts` makes them canonical with the daemon's settings.
    """
    if tool in SHELL_TOOLS:
        command = required_str(tool_input, "command")
        context["command"] = command
        description = optional_str(tool_input, "description")
        if description is not None:
            context["description"] = description
        return command
    if tool in _FILE_TOOLS:
        context["file_path"] = required_str(tool_input, "file_path")
        content = tool_input.get("content")
        if isinstance(content, str):
            context["content_size"] = len(content.encode("utf-8", "surrogatepass"))
    elif tool == "notebookedit":
        context["file_path"] = required_str(tool_input, "notebook_path")
    elif tool.startswith("mcp__"):
        server, _, name = tool[len("mcp__") :].partition("__")
        context["mcp_server"] = server
        context["mcp_tool"] = name
    for key in ("path", "pattern", "url", "query", "prompt", "description", "subagent_type"):
        value = optional_str(tool_input, key)
        if value is not None:
            context[key] = value
    return None


def render(call: Call, decision: Decision | None) -> tuple[bytes, int]:
    """The stdout bytes and exit code for Claude Code. Observed and unknown events print nothing."""
    if decision is None or call.kind is not Kind.GATE:
        return b"", 0
    outcome, reason = decision.outcome, decision.reason
    if call.event == "PermissionRequest":
        if outcome is Outcome.DENY:
            body = {"behavior": "deny", "message": reason}
        elif outcome is Outcome.ALLOW:
            body = {"behavior": "allow"}
        else:  # ask and no objection: Claude's own permission dialog is exactly the right answer
            return b"", 0
        return _encode({"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": body}}), 0
    if call.event == "UserPromptSubmit":
        if outcome is Outcome.DENY:
            return _encode({"decision": "block", "reason": reason}), 0
        return b"", 0
    if outcome is Outcome.NO_OBJECTION:
        return b"", 0
    output = {
        "hookEventName": "PreToolUse",
        "permissionDecision": outcome.value,
        "permissionDecisionReason": reason,
    }
    return _encode({"hookSpecificOutput": output}), 0
