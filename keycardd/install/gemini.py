"""Merging keycardd's hooks into Gemini CLI's settings.json, and taking exactly them out again.

Gemini runs user settings' hooks everywhere and a project's only in a folder the user trusts (its own
`trustedFolders.json`, which keycardd does not touch: trusting a folder also trusts its other settings). Timeouts are in
milliseconds, and the shim's own budget is well inside it: a hook Gemini times out keeps the tool waiting anyway.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from keycardd.install.hook_groups import without_hooks
from keycardd.install.shim import HookCommand, is_keycardd_command

EVENTS: dict[str, str | None] = {"BeforeTool": ".*", "BeforeAgent": None}
"""Gemini's two gates (tool calls and prompts), with their matcher (a regex; None: the event takes none)."""
TIMEOUT_MS = 10_000
NAME = "keycardd"


def settings_path(scope: str, project: Path | None) -> Path:
    if scope == "project":
        assert project is not None
        return project / ".gemini" / "settings.json"
    return Path.home() / ".gemini" / "settings.json"


def _ours(hook: Any) -> bool:
    return isinstance(hook, dict) and is_keycardd_command(str(hook.get("command", "")))


def uninstall(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of `settings` without keycardd's hooks (groups and events left empty are removed)."""
    return without_hooks(settings, _ours)


def install(settings: dict[str, Any], command: HookCommand) -> dict[str, Any]:
    """A copy of `settings` with keycardd's hooks (earlier keycardd entries replaced: idempotent)."""
    result = uninstall(settings)
    hooks = result.setdefault("hooks", {})
    line = shlex.join(command.argv("gemini"))
    for event, matcher in EVENTS.items():
        entry = {"name": NAME, "type": "command", "command": line, "timeout": TIMEOUT_MS}
        group: dict[str, Any] = {"hooks": [entry]}
        if matcher is not None:
            group = {"matcher": matcher, **group}
        hooks.setdefault(event, []).append(group)
    return result


def installed_commands(settings: dict[str, Any]) -> list[list[str]]:
    return [
        shlex.split(str(hook["command"]))
        for groups in (settings.get("hooks") or {}).values()
        for group in (groups if isinstance(groups, list) else [])
        for hook in (group.get("hooks") or [] if isinstance(group, dict) else [])
        if _ours(hook)
    ]


def folder_trusted(project: Path) -> bool:
    """Does Gemini CLI run `project`'s hooks? As Gemini decides it: folder trust off, or the longest matching rule of
    `~/.gemini/trustedFolders.json` is TRUST_FOLDER (or TRUST_PARENT of a folder inside). Unreadable means no."""
    settings_file = settings_path("user", None)
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.exists() else {}
        folder_trust = settings.get("security", {}).get("folderTrust", {}).get("enabled", True)
    except (OSError, ValueError, AttributeError):
        return False
    if folder_trust is False:
        return True
    rules_file = Path(
        os.environ.get("GEMINI_CLI_TRUSTED_FOLDERS_PATH") or Path.home() / ".gemini" / "trustedFolders.json"
    )
    try:
        rules = json.loads(rules_file.read_text(encoding="utf-8")) if rules_file.exists() else {}
    except (OSError, ValueError):
        return False
    location = project.resolve()
    best: tuple[int, object] = (-1, None)
    for rule, level in rules.items() if isinstance(rules, dict) else ():
        base = Path(rule).parent if level == "TRUST_PARENT" else Path(rule)
        base = base.resolve()
        if (location == base or base in location.parents) and len(rule) > best[0]:
            best = (len(rule), level)
    return best[1] in ("TRUST_FOLDER", "TRUST_PARENT")
