"""OpenAI Codex CLI: hook payload -> `Call`, and `Decision` -> the exact stdout Codex honours.

Codex's stdin is Claude-shaped (`hook_event_name`, `tool_name`, `tool_input`), so parsing reuses the Claude adapter's
context rules and only maps Codex's tool names onto the same Cedar resources. Output is where Codex differs, and
where a wrong answer fails open: a PreToolUse call is blocked only by exit 0 with a `hookSpecificOutput` deny that
carries `hookEventName` and a non-empty reason. `ask` and `allow` are "unsupported" there and the command runs, so an
`@itl` ask becomes a deny that tells the user how to approve, and allow prints nothing (Codex's own rules decide).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgspec

from keycardd.adapters import claude
from keycardd.adapters.decision import Call, Decision, Kind
from keycardd.adapters.payload import Payload, absolute_path, optional_str
from keycardd.engine import Outcome

AGENT = "codex"
GATES = frozenset({"PreToolUse", "PermissionRequest", "UserPromptSubmit"})
SHELL_TOOLS = frozenset({"bash", "shell", "exec_command", "local_shell", "unified_exec", "container.exec"})
"""Every name Codex has given its shell tool: all of them are `Tool::"bash"` to the policy."""
TOOL_NAMES = {"web_search": "websearch", "web_fetch": "webfetch", "view_image": "read"}
PATCH_TOOLS = frozenset({"apply_patch", "applypatch"})
_PATCH_FILE = re.compile(r"^\*\*\* (Add|Update|Delete) File: (.+?)\s*$|^\*\*\* Move to: (.+?)\s*$", re.MULTILINE)
_SHELL_PATCH = re.compile(r"\bapply_?patch\b.*?\*\*\* Begin Patch", re.IGNORECASE | re.DOTALL)
"""`apply_patch` run through the shell with its patch in the line: a heredoc, or the patch as its argument (Codex puts
an `apply_patch` on the shell's PATH that applies its first argument)."""
_encode = msgspec.json.Encoder().encode


def parse(payload: Payload, env: dict[str, str]) -> Call:
    """Normalise one Codex hook payload into the same Call a Claude Code payload for the same action gives."""
    data = payload.data
    tool_name = optional_str(data, "tool_name") or ""
    lowered = tool_name.lower()
    if lowered in PATCH_TOOLS and optional_str(data, "hook_event_name") in GATES and payload.error is None:
        return _patch_call(data, env, tool_name)
    if lowered in SHELL_TOOLS or lowered in TOOL_NAMES:
        mapped = "Bash" if lowered in SHELL_TOOLS else TOOL_NAMES[lowered]
        tool_input = data.get("tool_input")
        if lowered in SHELL_TOOLS and isinstance(tool_input, dict) and isinstance(tool_input.get("command"), list):
            # Codex's exec tools take an argv list: the policy sees the line a shell would run.
            argv = tool_input["command"]
            if not all(isinstance(arg, str) for arg in argv):
                return Call(agent=AGENT, event="PreToolUse", kind=Kind.GATE, malformed="`command` is not strings")
            tool_input = {**tool_input, "command": _shell_line(argv)}
        workdir = tool_input.get("workdir") if isinstance(tool_input, dict) else None
        if lowered in SHELL_TOOLS and isinstance(workdir, str) and workdir:
            # Codex runs the command there: `cat id_rsa` with workdir ~/.ssh reads ~/.ssh/id_rsa
            data = {**data, "cwd": absolute_path(workdir, str(data.get("cwd") or ""))}
        if lowered == "view_image" and isinstance(tool_input, dict) and "file_path" not in tool_input:
            tool_input = {**tool_input, "file_path": tool_input.get("path")}  # a read of that path
        data = {**data, "tool_name": mapped, "tool_input": tool_input}
        payload = dataclasses.replace(payload, data=data)
    call = claude.parse(payload, env)
    context = dict(call.context)
    if context:
        context["agent"] = AGENT
        if tool_name:
            context["tool_name"] = tool_name
    call = dataclasses.replace(call, agent=AGENT, context=context)
    if call.shell_line is not None and _SHELL_PATCH.search(call.shell_line):
        # Codex runs a model's `apply_patch <<'EOF'` through its shell tool and applies the patch itself: the shell
        # line is decided as a line, and every file the patch touches as the write or edit it is.
        files = _patch_parts(call.shell_line, context, call.event)
        if files:
            call = dataclasses.replace(call, parts=(dataclasses.replace(call, parts=()), *files))
    return call


def _shell_line(argv: list[str]) -> str:
    """`["bash", "-lc", "rm -rf x"]` is the line `rm -rf x`; any other argv is quoted into one line."""
    if len(argv) == 3 and argv[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and argv[1] in ("-lc", "-c"):
        return argv[2]
    import shlex  # noqa: PLC0415 - only for argv-shaped commands

    return shlex.join(argv)


def _patch_call(data: dict[str, Any], env: dict[str, str], tool_name: str) -> Call:
    """`apply_patch` edits several files at once: one part per file, each a `write` (new) or `edit` request."""
    event = str(data["hook_event_name"])
    context: dict[str, Any] = {"agent": AGENT, "event": event, "tool_name": tool_name}
    claude._common_context(context, data, env)  # the Claude adapter's context rules: the payloads share a shape
    tool_input = data.get("tool_input")
    patch = None
    if isinstance(tool_input, dict):
        patch = next((tool_input[k] for k in ("command", "input", "patch") if isinstance(tool_input.get(k), str)), None)
    elif isinstance(tool_input, str):
        patch = tool_input
    if patch is None:
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="edit", malformed="the patch text is missing")
    parts = _patch_parts(patch, context, event)
    if not parts:
        return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="edit", malformed="the patch names no file")
    return Call(agent=AGENT, event=event, kind=Kind.GATE, tool="edit", context=parts[0].context, parts=parts)


def _patch_parts(patch: str, context: dict[str, Any], event: str) -> tuple[Call, ...]:
    """One `write` (added file) or `edit` (updated, deleted, moved-to file) call per file the patch names."""
    cwd = str(context.get("cwd", ""))
    parts = []
    for match in _PATCH_FILE.finditer(patch):
        verb, path = (match[1], match[2]) if match[1] else ("Move", match[3])
        tool = "write" if verb == "Add" else "edit"
        part_context = {**context, "tool_name": "apply_patch", "file_path": absolute_path(path, cwd)}
        for key in ("command", "description"):
            part_context.pop(key, None)
        parts.append(Call(agent=AGENT, event=event, kind=Kind.GATE, tool=tool, context=part_context))
    return tuple(parts)


def render(call: Call, decision: Decision | None) -> tuple[bytes, int]:
    """Only a deny is ever printed: it is the one answer Codex both understands and cannot ignore."""
    if decision is None or call.kind is not Kind.GATE:
        return b"", 0
    outcome, reason = decision.outcome, decision.reason or "keycardd denied this call"
    if outcome is Outcome.ASK and call.event != "PermissionRequest":
        outcome, reason = Outcome.DENY, ask_as_deny(reason, "Codex")
    if outcome is not Outcome.DENY:
        return b"", 0  # allow is "unsupported" at PreToolUse; Codex's own approval flow handles the rest
    if call.event == "PermissionRequest":
        body = {"behavior": "deny", "message": reason}
        return _encode({"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": body}}), 0
    if call.event == "UserPromptSubmit":
        return _encode({"decision": "block", "reason": reason}), 0
    output = {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}
    return _encode({"hookSpecificOutput": output}), 0


def ask_as_deny(reason: str, agent_name: str) -> str:
    """The deny an `@itl` ask becomes for an agent whose hooks cannot ask: says why and how to get it approved."""
    return (
        f"{reason} (this needs a human's approval, and {agent_name} hooks cannot ask, so keycardd denied it: "
        "run it yourself, or permit it without @itl in the policy)"
    )
