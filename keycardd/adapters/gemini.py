"""Google Gemini CLI: hook payload -> `Call`, and `Decision` -> the exact stdout Gemini honours.

Gemini blocks a tool (BeforeTool) or a prompt (BeforeAgent) only when the hook's JSON says `"decision": "deny"` (or
`"block"`); anything else, including a Claude-shaped `hookSpecificOutput` deny, lets the call run. So every deny is
`{"decision":"deny","reason":R}` with exit 0, allow and no objection print nothing, and there is no ask: an `@itl`
ask becomes a deny that says so. Gemini's tool names map onto the Cedar resources Claude Code's equivalents use, so
one policy guards both (`Tool::"bash"` for the shell, `read`/`write`/`edit` with `file_path`, `mcp__server__tool`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from keycardd.adapters.codex import ask_as_deny
from keycardd.adapters.decision import Call, Decision, Kind
from keycardd.adapters.payload import Payload, absolute_path, add_secure_session, optional_str
from keycardd.engine import PROMPT_SUBMIT, Outcome

AGENT = "gemini"
GATES = frozenset({"BeforeTool", "BeforeAgent"})
OBSERVED = frozenset(
    {
        "AfterTool",
        "AfterAgent",
        "BeforeModel",
        "AfterModel",
        "BeforeToolSelection",
        "SessionStart",
        "SessionEnd",
        "Notification",
        "PreCompress",
    }
)
TOOL_NAMES = {
    "run_shell_command": "bash",
    "read_file": "read",
    "read_many_files": "read",
    "write_file": "write",
    "replace": "edit",
    "glob": "glob",
    "grep_search": "grep",
    "search_file_content": "grep",
    "list_directory": "ls",
    "web_fetch": "webfetch",
    "google_web_search": "websearch",
    "invoke_agent": "agent",
}
"""Gemini's built-in tool names -> the Cedar resource of Claude Code's equivalent tool."""
_encode = msgspec.json.Encoder().encode


def parse(payload: Payload, env: dict[str, str]) -> Call:
    data = payload.data
    if payload.error is not None:
        hint = payload.event_hint
        if hint is not None and hint not in GATES:
            return Call(agent=AGENT, event=hint, kind=Kind.OBSERVE if hint in OBSERVED else Kind.UNKNOWN)
        return Call(agent=AGENT, event=hint or "BeforeTool", kind=Kind.GATE, malformed=payload.error)
    event = optional_str(data, "hook_event_name") or "unknown"
    kind = Kind.GATE if event in GATES else Kind.OBSERVE if event in OBSERVED else Kind.UNKNOWN
    if kind is not Kind.GATE:
        return Call(agent=AGENT, event=event, kind=kind)
    context = _common_context(event, data, env)
    try:
        if event == "BeforeAgent":
            context["prompt"] = _required(data, "prompt")
            return Call(agent=AGENT, event=event, kind=kind, action=PROMPT_SUBMIT, tool="prompt", context=context)
        return _tool_call(event, data, context)
    except ValueError as exc:
        return Call(agent=AGENT, event=event, kind=kind, malformed=str(exc))


def _common_context(event: str, data: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {"agent": AGENT, "event": event}
    cwd = optional_str(data, "cwd") or env.get("cwd")
    if cwd:
        context["cwd"] = cwd
    project = env.get("GEMINI_PROJECT_DIR") or env.get("CLAUDE_PROJECT_DIR")
    if project:
        context["project_dir"] = project
    session = optional_str(data, "session_id")
    if session:
        context["session_id"] = session
    add_secure_session(context, env)
    return context


def _tool_call(event: str, data: dict[str, Any], context: dict[str, Any]) -> Call:
    tool_name = _required(data, "tool_name")
    tool_input = data.get("tool_input", {})
    if not isinstance(tool_input, dict):
        raise ValueError("`tool_input` is not an object")  # noqa: TRY004 - becomes "malformed"
    context["tool_name"] = tool_name
    mcp = data.get("mcp_context")
    if isinstance(mcp, dict) and isinstance(mcp.get("server_name"), str):
        server, name = mcp["server_name"], optional_str(mcp, "tool_name") or tool_name
        context.update(mcp_server=server, mcp_tool=name)
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool=f"mcp__{server}__{name}", context=context)
    tool = TOOL_NAMES.get(tool_name, tool_name.lower())
    cwd = str(context.get("cwd", ""))
    directory = (
        optional_str(tool_input, "dir_path")
        or optional_str(tool_input, "directory")
        or optional_str(tool_input, "path")
    )  # `path`: search_file_content's directory in earlier Gemini CLI releases
    if tool == "bash":
        command = optional_str(tool_input, "command")
        if command is None:
            raise ValueError("`tool_input.command` is missing or not a string")
        if directory:  # Gemini runs the command there: relative paths in it resolve from it
            context["cwd"] = absolute_path(directory, cwd)
        context["command"] = command
        description = optional_str(tool_input, "description")
        if description is not None:
            context["description"] = description
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool=tool, context=context, shell_line=command)
    if tool_name == "read_many_files":
        return _read_many(event, tool_input, context)
    path = optional_str(tool_input, "file_path") or optional_str(tool_input, "absolute_path")
    if tool in ("read", "write", "edit"):
        if path is None:
            raise ValueError("`tool_input.file_path` is missing or not a string")
        context["file_path"] = absolute_path(path, cwd)
    if directory is not None:
        context["path"] = absolute_path(directory, cwd)
    for key in ("pattern", "url", "query", "prompt", "description"):
        value = optional_str(tool_input, key)
        if value is not None:
            context[key] = value
    content = optional_str(tool_input, "content")
    if content is not None:
        context["content_size"] = len(content.encode("utf-8", "surrogatepass"))
    arguments: dict[str, Any] | None = None
    include = optional_str(tool_input, "include")
    if tool == "grep" and include:
        arguments = {"glob": include}  # the files searched under the directory, as Claude Code's Grep `glob`
    if tool_name not in TOOL_NAMES:
        arguments = tool_input  # a tool of unknown shape: searched for paths and hosts like an MCP tool's arguments
    prompt = optional_str(tool_input, "prompt")
    if tool == "webfetch" and prompt:
        arguments = {"urls": _PROMPT_URL.findall(prompt)}  # web_fetch fetches the URLs written in its prompt
    return Call(
        agent=AGENT, event=event, kind=Kind.GATE, tool=tool, context=context, content=content, arguments=arguments
    )


_PROMPT_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
"""Gemini CLI's web_fetch takes its URLs from the prompt text (its own extraction: `https?://` up to a blank)."""


def _read_many(event: str, tool_input: dict[str, Any], context: dict[str, Any]) -> Call:
    """read_many_files reads every path or glob in `include`: each is a `read` of that path."""
    include = tool_input.get("include", tool_input.get("paths"))
    if not isinstance(include, list) or not include or not all(isinstance(item, str) for item in include):
        raise ValueError("`tool_input.include` is missing or not a list of strings")
    cwd = str(context.get("cwd", ""))
    parts = tuple(
        Call(
            agent=AGENT,
            event=event,
            kind=Kind.GATE,
            tool="read",
            context={**context, "file_path": absolute_path(p, cwd)},
        )
        for p in include
    )
    return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="read", context=parts[0].context, parts=parts)


def _required(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"`{key}` is missing or not a string")  # noqa: TRY004 - becomes "malformed"
    return value


def render(call: Call, decision: Decision | None) -> tuple[bytes, int]:
    """A deny is `{"decision":"deny","reason":R}`; everything else prints nothing."""
    if decision is None or call.kind is not Kind.GATE:
        return b"", 0
    outcome, reason = decision.outcome, decision.reason or "keycardd denied this call"
    if outcome is Outcome.ASK:
        outcome, reason = Outcome.DENY, ask_as_deny(reason, "Gemini CLI")
    if outcome is Outcome.DENY:
        return _encode({"decision": "deny", "reason": reason}), 0
    return b"", 0
