"""Merging keycardd's hooks into Claude Code's settings.json, and taking exactly them out again.

Every other key and hook is kept. Hooks use the exec form (`command` + `args`, no shell: Claude Code 2.1.139+), so
a shell profile cannot pollute stdout and a missing interpreter cannot silently fail open.

Claude Code runs a tool call whose hook cannot start, crashes, times out or exits with an unexpected code. Since
v2.1.295 a command hook can say `"onFailure": "block"` (docs, "Block the action when a hook fails": "Requires Claude
Code v2.1.295 or later"), and such a failure then blocks the call. keycardd writes it on every gating event when the
installed Claude Code is that version or later, and never for an older one (its settings schema may reject the key).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from keycardd.install import http_hook
from keycardd.install.hook_groups import without_hooks
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
"""The events whose hook decides: a failure there must block (`onFailure`), not let the call run."""
ON_FAILURE_SINCE = (2, 1, 295)
"""The first Claude Code release that reads a hook's `onFailure`."""
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


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
    return without_hooks(settings, _ours)


def claude_version(executable: str | None = None) -> tuple[int, int, int] | None:
    """The version `claude --version` reports (the `claude` on PATH by default); None if it cannot be run."""
    executable = executable or shutil.which("claude")
    if executable is None:
        return None
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stdout) if result.returncode == 0 else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def supports_on_failure(version: tuple[int, int, int] | None) -> bool:
    return version is not None and version >= ON_FAILURE_SINCE


def install(settings: dict[str, Any], command: HookCommand, *, block_on_failure: bool = False) -> dict[str, Any]:
    """A copy of `settings` with keycardd's hooks (replacing any earlier keycardd entries: idempotent).

    With `block_on_failure` (only for a Claude Code that reads it), gating hooks get `"onFailure": "block"`.
    """
    result = uninstall(settings)
    hooks = result.setdefault("hooks", {})
    for event, matcher in EVENTS.items():
        argv = command.argv("claude")
        entry: dict[str, Any] = {"type": "command", "command": argv[0], "args": argv[1:], "timeout": TIMEOUT_S}
        if block_on_failure and event in GATES:
            entry["onFailure"] = "block"
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


def gates_without_on_failure(settings: dict[str, Any]) -> list[str]:
    """The gating events whose keycardd hook lets the call run when the hook itself fails (for doctor)."""
    missing = []
    for event in sorted(GATES):
        groups = (settings.get("hooks") or {}).get(event)
        for group in groups if isinstance(groups, list) else []:
            for hook in group.get("hooks", []) if isinstance(group, dict) else []:
                if _ours(hook) and hook.get("onFailure") != "block":
                    missing.append(event)
    return missing
