"""Merging keycardd's hooks into Claude Code's settings.json, and taking exactly them out again.

Every other key and hook is kept. Hooks use the exec form (`command` + `args`, no shell: Claude Code 2.1.139+), so
a shell profile cannot pollute stdout and a missing interpreter cannot silently fail open.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from keycardd.install import http_hook
from keycardd.install.shim import HookCommand, is_keycardd_command

EVENTS: dict[str, str | None] = {
    "PreToolUse": "*",
    "PermissionRequest": "*",
    "UserPromptSubmit": None,
    "PostToolUse": "*",
    "SessionStart": None,
}
"""The events keycardd hooks, with their matcher (None: the event takes no matcher). Registering every event is
harmful (a `WorktreeCreate` hook replaces worktree creation), so this list is deliberate."""
TIMEOUT_S = 10
GATES = frozenset({"PreToolUse", "PermissionRequest", "UserPromptSubmit"})


def settings_path(scope: str, project: Path | None, *, http: bool = False) -> Path:
    """Where hooks go. http hooks hold the hook secret, so a project's go to the uncommitted settings.local.json."""
    if scope == "project":
        assert project is not None
        return project / ".claude" / ("settings.local.json" if http else "settings.json")
    return Path.home() / ".claude" / "settings.json"


def _ours(hook: Any) -> bool:
    if http_hook.is_ours(hook):
        return True
    return isinstance(hook, dict) and is_keycardd_command(str(hook.get("command", "")), hook.get("args") or [])


def uninstall(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of `settings` without keycardd's hooks (empty groups and events it leaves behind are removed)."""
    result = copy.deepcopy(settings)
    hooks = result.get("hooks")
    if not isinstance(hooks, dict):
        return result
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for group in groups:
            if not (isinstance(group, dict) and isinstance(group.get("hooks"), list)):
                kept_groups.append(group)
                continue
            remaining = [hook for hook in group["hooks"] if not _ours(hook)]
            if remaining or not group["hooks"]:  # drop only groups that held nothing but keycardd's hooks
                kept_groups.append({**group, "hooks": remaining})
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    if not hooks:
        del result["hooks"]
    return result


def install(settings: dict[str, Any], command: HookCommand) -> dict[str, Any]:
    """A copy of `settings` with keycardd's hooks (replacing any earlier keycardd entries: idempotent)."""
    result = uninstall(settings)
    hooks = result.setdefault("hooks", {})
    for event, matcher in EVENTS.items():
        argv = command.argv("claude")
        entry: dict[str, Any] = {"type": "command", "command": argv[0], "args": argv[1:], "timeout": TIMEOUT_S}
        group: dict[str, Any] = {"hooks": [entry]}
        if matcher is not None:
            group = {"matcher": matcher, **group}
        hooks.setdefault(event, []).append(group)
    return result


def install_http(settings: dict[str, Any], url: str, secret: str, project: Path | None = None) -> dict[str, Any]:
    """A copy of `settings` with keycardd's http hooks instead of any earlier keycardd hooks (command or http);
    `project` is the directory a project's hooks tell policies about (`context.project_dir`)."""
    result = uninstall(settings)
    hooks = result.setdefault("hooks", {})
    for event, matcher in EVENTS.items():
        group: dict[str, Any] = {"hooks": [http_hook.entry(url, secret, gate=event in GATES, project=project)]}
        if matcher is not None:
            group = {"matcher": matcher, **group}
        hooks.setdefault(event, []).append(group)
    return result


def installed_http(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event, hook) of each keycardd http hook in `settings`, for doctor."""
    found = []
    for event, groups in (settings.get("hooks") or {}).items():
        for group in groups if isinstance(groups, list) else []:
            for hook in group.get("hooks", []) if isinstance(group, dict) else []:
                if http_hook.is_ours(hook):
                    found.append((str(event), hook))
    return found


def installed_commands(settings: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(command, args) of each keycardd hook in `settings`, for doctor."""
    found = []
    for groups in (settings.get("hooks") or {}).values():
        for group in groups if isinstance(groups, list) else []:
            for hook in group.get("hooks", []) if isinstance(group, dict) else []:
                if _ours(hook) and not http_hook.is_ours(hook):
                    found.append((str(hook["command"]), [str(arg) for arg in hook.get("args") or []]))
    return found
