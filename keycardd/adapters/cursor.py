"""Cursor: hook payload -> `Call`, and `Decision` -> the JSON Cursor expects.

Cursor treats empty or unexpected stdout on a gate as a failure (and, with `failClosed`, as a block), so every gate
gets an explicit JSON object on every path. Tool names map onto the same Cedar resources as Claude Code's, so one
policy governs both agents. A shell command fires both `preToolUse` (tool `Shell`) and `beforeShellExecution`;
`ShellDedupe` decides it once and answers both from that one decision.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

import msgspec

from keycardd.adapters.decision import Call, Decision, Kind
from keycardd.adapters.payload import Payload, add_secure_session, optional_str
from keycardd.engine import PROMPT_SUBMIT, Outcome

AGENT = "cursor"
GATES = frozenset(
    {
        "preToolUse",
        "beforeShellExecution",
        "beforeMCPExecution",
        "beforeReadFile",
        "beforeTabFileRead",
        "beforeSubmitPrompt",
        "subagentStart",
    }
)
OBSERVED = frozenset(
    {
        "postToolUse",
        "postToolUseFailure",
        "afterFileEdit",
        "afterTabFileEdit",
        "afterShellExecution",
        "afterMCPExecution",
        "afterAgentResponse",
        "afterAgentThought",
        "stop",
        "subagentStop",
        "sessionStart",
        "sessionEnd",
        "preCompact",
    }
)
TOOL_NAMES = {
    "shell": "bash",
    "read": "read",
    "write": "write",
    "edit": "edit",
    "grep": "grep",
    "delete": "delete",
    "task": "agent",
    "glob": "glob",
}
"""Cursor's preToolUse tool names -> the Cedar resource Claude Code's equivalent tool uses."""
_NO_ASK = frozenset({"preToolUse", "beforeReadFile", "beforeTabFileRead", "subagentStart"})
"""Gates where Cursor does not honour `ask` (or treats it as deny): keycardd says deny, explicitly."""
UNREADABLE = "unreadable"
"""The event name used when the payload is not a JSON object, so its real event cannot be known."""
_encode = msgspec.json.Encoder().encode


def parse(payload: Payload, env: dict[str, str]) -> Call:
    data = payload.data
    if payload.error is not None:
        hint = payload.event_hint
        if hint is not None and hint not in GATES and not looks_like_gate(hint):  # observed or unknown: stays so
            return Call(agent=AGENT, event=hint, kind=Kind.OBSERVE if hint in OBSERVED else Kind.UNKNOWN)
        return Call(agent=AGENT, event=hint or UNREADABLE, kind=Kind.GATE, malformed=payload.error)
    event = optional_str(data, "hook_event_name") or "unknown"
    kind = Kind.GATE if event in GATES else Kind.OBSERVE if event in OBSERVED else Kind.UNKNOWN
    if kind is Kind.UNKNOWN and looks_like_gate(event):
        # A newer Cursor's gate: allowing it would let through whatever it guards, so it fails closed.
        reason = f"`{event}` is a Cursor event keycardd does not know, so it is denied (fail closed): update keycardd"
        return Call(agent=AGENT, event=event, kind=Kind.GATE, malformed=reason)
    if kind is not Kind.GATE:
        return Call(agent=AGENT, event=event, kind=kind)
    context = _common_context(event, data, env)
    try:
        return _gate_call(event, data, context)
    except ValueError as exc:
        return Call(agent=AGENT, event=event, kind=kind, malformed=str(exc))


def _common_context(event: str, data: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {"agent": AGENT, "event": event}
    roots = data.get("workspace_roots")
    first_root = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None
    cwd = optional_str(data, "cwd") or first_root or env.get("cwd")
    if cwd:
        context["cwd"] = cwd
    if first_root:
        context["project_dir"] = first_root
    session = optional_str(data, "conversation_id") or optional_str(data, "session_id")
    if session:
        context["session_id"] = session
    add_secure_session(context, env)
    return context


def _gate_call(event: str, data: dict[str, Any], context: dict[str, Any]) -> Call:
    if event == "beforeSubmitPrompt":
        context["prompt"] = _required(data, "prompt")
        return Call(agent=AGENT, event=event, kind=Kind.GATE, action=PROMPT_SUBMIT, tool="prompt", context=context)
    if event == "beforeShellExecution":
        command = _required(data, "command")
        context.update(tool_name="Shell", command=command)
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="bash", context=context, shell_line=command)
    if event in ("beforeReadFile", "beforeTabFileRead"):
        path = optional_str(data, "file_path") or optional_str(data, "filePath")
        if path is None:
            raise ValueError("`file_path` is missing or not a string")
        context.update(tool_name="Read", file_path=path)
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="read", context=context)
    if event == "beforeMCPExecution":
        return _mcp_call(event, data, context)
    if event == "subagentStart":
        context["tool_name"] = "Task"
        for source, target in (("task", "prompt"), ("subagent_type", "subagent_type")):
            value = optional_str(data, source)
            if value is not None:
                context[target] = value
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="agent", context=context)
    return _tool_call(event, data, context)


def _tool_call(event: str, data: dict[str, Any], context: dict[str, Any]) -> Call:
    """preToolUse: the generic gate. Tool input shapes beyond Shell are undocumented, so read them leniently."""
    tool_name = _required(data, "tool_name")
    tool_input = _object(data.get("tool_input", {}))
    context["tool_name"] = tool_name
    if tool_name.startswith("MCP:"):
        tool = f"mcp__{tool_name[len('MCP:') :]}"
        context["mcp_tool"] = tool_name[len("MCP:") :]
    else:
        tool = TOOL_NAMES.get(tool_name.lower(), tool_name.lower())
    working_directory = optional_str(tool_input, "working_directory")
    if working_directory:
        context["cwd"] = working_directory
    if tool == "bash":
        command = optional_str(tool_input, "command")
        if command is None:
            raise ValueError("`tool_input.command` is missing or not a string")
        context["command"] = command
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool=tool, context=context, shell_line=command)
    path = next(
        (optional_str(tool_input, key) for key in ("file_path", "target_file", "path") if key in tool_input),
        None,
    )
    if path is not None:
        context["file_path"] = path
    for key in ("pattern", "url", "query", "prompt", "description", "subagent_type"):
        value = optional_str(tool_input, key)
        if value is not None:
            context[key] = value
    content = optional_str(tool_input, "content")
    if content is not None:
        context["content_size"] = len(content.encode("utf-8", "surrogatepass"))
    # An MCP tool, or a tool of unknown shape (`EditNotebook`'s `target_notebook`): its arguments are searched for
    # paths and hosts, so that a file tool this adapter does not know still meets the guard.
    arguments = tool_input if tool.startswith("mcp__") or tool_name.lower() not in TOOL_NAMES else None
    return Call(
        agent=AGENT, event=event, kind=Kind.GATE, tool=tool, context=context, content=content, arguments=arguments
    )


def _mcp_call(event: str, data: dict[str, Any], context: dict[str, Any]) -> Call:
    tool_name = _required(data, "tool_name")
    server = optional_str(data, "server_name") or optional_str(data, "server")
    tool = f"mcp__{server}__{tool_name}" if server else f"mcp__{tool_name}"
    context.update(tool_name=tool_name, mcp_tool=tool_name)
    if server:
        context["mcp_server"] = server
    for source, target in (("url", "mcp_server_url"), ("command", "mcp_server_command")):
        value = optional_str(data, source)
        if value is not None:
            context[target] = value
    arguments = _object(data.get("tool_input", {}))  # validated: a gate must not run on input it cannot read
    return Call(agent=AGENT, event=event, kind=Kind.GATE, tool=tool, context=context, arguments=arguments)


def _required(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"`{key}` is missing or not a string")  # noqa: TRY004 - becomes "malformed"
    return value


def _object(value: object) -> dict[str, Any]:
    """Cursor documents `tool_input` as a JSON string for MCP and sends objects elsewhere: accept both."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ValueError("`tool_input` is a string but not JSON") from None
    if not isinstance(value, dict):
        raise ValueError("`tool_input` is not an object")  # noqa: TRY004 - becomes "malformed"
    return value


def looks_like_gate(event: str) -> bool:
    """Cursor names its gates `before*` and `pre*`; an unknown one is treated as a gate (and denied)."""
    return event.startswith(("before", "pre"))


def render(call: Call, decision: Decision | None) -> tuple[bytes, int]:
    """Always a JSON object: gates get an explicit answer, everything else `{}`."""
    if decision is None or call.kind is not Kind.GATE:
        return b"{}", 0
    outcome, reason = decision.outcome, decision.reason
    if call.event == UNREADABLE or call.event not in GATES:
        # Answer in every gate's vocabulary at once (Cursor ignores unknown keys): its real shape is unknown.
        return _encode({"permission": "deny", "continue": False, "user_message": reason, "agent_message": reason}), 0
    if call.event == "beforeSubmitPrompt":
        if outcome is Outcome.DENY:
            return _encode({"continue": False, "user_message": reason}), 0
        return _encode({"continue": True}), 0
    if outcome is Outcome.ASK and call.event in _NO_ASK:
        outcome, reason = Outcome.DENY, f"{reason} (approval needed, and Cursor cannot ask at {call.event})"
    if outcome in (Outcome.DENY, Outcome.ASK):
        return _encode({"permission": outcome.value, "user_message": reason, "agent_message": reason}), 0
    return _encode({"permission": "allow"}), 0


class ShellDedupe:
    """Remembers recent shell decisions by (conversation, generation, command) so Cursor's twin events agree."""

    def __init__(self, capacity: int = 512, ttl_s: float = 30.0) -> None:
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, Decision]] = OrderedDict()
        self._capacity = capacity
        self._ttl_s = ttl_s

    @staticmethod
    def key(call: Call, payload: Payload) -> tuple[str, str, str] | None:
        if call.agent != AGENT or call.shell_line is None:
            return None
        data = payload.data
        return (
            optional_str(data, "conversation_id") or "",
            optional_str(data, "generation_id") or "",
            call.shell_line,
        )

    def get(self, key: tuple[str, str, str]) -> Decision | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self._ttl_s:
            return None
        return entry[1]

    def put(self, key: tuple[str, str, str], decision: Decision) -> None:
        self._entries[key] = (time.monotonic(), decision)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
