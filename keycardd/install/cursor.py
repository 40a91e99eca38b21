"""Merging keycardd's hooks into Cursor's hooks.json, and taking exactly them out again.

Cursor voids the whole file when it sees one event name it does not know, so only documented events are written.
Gates get `failClosed: true`: if the shim cannot run at all, Cursor blocks instead of allowing.
"""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

from keycardd.install.shim import HookCommand, is_keycardd_command

GATES = ("preToolUse", "beforeShellExecution", "beforeMCPExecution", "beforeReadFile", "beforeSubmitPrompt")
OBSERVED = ("afterFileEdit", "afterShellExecution", "afterMCPExecution", "stop")
KNOWN_EVENTS = frozenset(
    {
        "preToolUse",
        "postToolUse",
        "postToolUseFailure",
        "subagentStart",
        "subagentStop",
        "beforeShellExecution",
        "afterShellExecution",
        "beforeMCPExecution",
        "afterMCPExecution",
        "beforeReadFile",
        "afterFileEdit",
        "beforeSubmitPrompt",
        "preCompact",
        "stop",
        "afterAgentResponse",
        "afterAgentThought",
        "sessionStart",
        "sessionEnd",
        "beforeTabFileRead",
        "afterTabFileEdit",
        "workspaceOpen",
    }
)
TIMEOUT_S = 10


def hooks_path(scope: str, project: Path | None) -> Path:
    if scope == "project":
        assert project is not None
        return project / ".cursor" / "hooks.json"
    return Path.home() / ".cursor" / "hooks.json"


def _ours(hook: Any) -> bool:
    return isinstance(hook, dict) and is_keycardd_command(str(hook.get("command", "")))


def uninstall(document: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(document)
    hooks = result.get("hooks")
    if not isinstance(hooks, dict):
        return result
    for event in list(hooks):
        if isinstance(hooks[event], list):
            kept = [hook for hook in hooks[event] if not _ours(hook)]
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
    return result


def install(document: dict[str, Any], command: HookCommand) -> dict[str, Any]:
    result = uninstall(document)
    result["version"] = 1
    hooks = result.setdefault("hooks", {})
    line = shlex.join(command.argv("cursor"))
    for event in GATES:
        hooks.setdefault(event, []).append({"command": line, "timeout": TIMEOUT_S, "failClosed": True})
    for event in OBSERVED:
        hooks.setdefault(event, []).append({"command": line, "timeout": TIMEOUT_S})
    return result


def unknown_events(document: dict[str, Any]) -> list[str]:
    """Event names Cursor would reject (one of them voids every hook in the file)."""
    return sorted(set(document.get("hooks") or {}) - KNOWN_EVENTS)


def installed_commands(document: dict[str, Any]) -> list[list[str]]:
    return [
        shlex.split(hook["command"])
        for hooks in (document.get("hooks") or {}).values()
        for hook in (hooks if isinstance(hooks, list) else [])
        if _ours(hook)
    ]
