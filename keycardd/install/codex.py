"""Merging keycardd's hooks into Codex's hooks.json, and recording Codex's trust in them; and taking both out again.

Codex runs a hook only when its trust is recorded, and skips an untrusted one silently (the command then runs), so
installing without trust would be a guard that never fires. Codex records trust in `config.toml` under
`[hooks.state."<hooks.json path>:<event>:<group>:<handler>"]` as `trusted_hash = "sha256:<hex>"`, the hash being
SHA-256 of the handler's group as canonical JSON (sorted keys, no spaces):
`{"event_name":"pre_tool_use","hooks":[{"async":false,"command":…,"timeout":…,"type":"command"}],"matcher":"*"}`.
tests/test_codex_install.py checks this against the real `codex app-server` (`hooks/list`, `trustStatus`).
`config.toml` is edited with tomlkit so the user's comments and layout survive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from keycardd.install.config_file import ConfigFileError, replace_file
from keycardd.install.hook_groups import without_hooks
from keycardd.install.shim import HookCommand, is_keycardd_command

EVENTS: dict[str, str | None] = {"PreToolUse": "*", "PermissionRequest": "*", "UserPromptSubmit": None}
"""The gates keycardd hooks, with their matcher (None: the event takes none). Observed events cost a process each
and Codex cannot be told anything by them, so they are left out."""
TIMEOUT_S = 10


def codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")


def hooks_path(scope: str, project: Path | None) -> Path:
    if scope == "project":
        assert project is not None
        return project.resolve() / ".codex" / "hooks.json"
    return codex_home() / "hooks.json"


def config_path() -> Path:
    """Where Codex records hook trust: the user's config.toml, for user and project hooks alike."""
    return codex_home() / "config.toml"


def _snake(event: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()


def _ours(hook: Any) -> bool:
    return isinstance(hook, dict) and is_keycardd_command(str(hook.get("command", "")))


def uninstall(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` without keycardd's hooks (groups and events left empty are removed)."""
    return without_hooks(document, _ours)


def install(document: dict[str, Any], command: HookCommand) -> dict[str, Any]:
    """A copy of `document` with keycardd's hooks appended (earlier keycardd entries replaced: idempotent)."""
    result = uninstall(document)
    hooks = result.setdefault("hooks", {})
    line = shlex.join(command.argv("codex"))
    for event, matcher in EVENTS.items():
        group: dict[str, Any] = {"hooks": [{"type": "command", "command": line, "timeout": TIMEOUT_S}]}
        if matcher is not None:
            group = {"matcher": matcher, **group}
        hooks.setdefault(event, []).append(group)
    return result


def trust_entries(document: dict[str, Any], source: Path) -> dict[str, str]:
    """{hooks.state key: the trusted_hash Codex expects} for each keycardd handler in `document`, read from `source`."""
    entries = {}
    for event, groups in (document.get("hooks") or {}).items():
        for group_index, group in enumerate(groups if isinstance(groups, list) else []):
            handlers = group.get("hooks") if isinstance(group, dict) else None
            for handler_index, handler in enumerate(handlers if isinstance(handlers, list) else []):
                if _ours(handler):
                    key = f"{source}:{_snake(event)}:{group_index}:{handler_index}"
                    entries[key] = handler_hash(event, group.get("matcher"), handler)
    return entries


def handler_hash(event: str, matcher: object, handler: dict[str, Any]) -> str:
    normalised = {
        "async": bool(handler.get("async", False)),
        "command": handler.get("command"),
        "timeout": handler.get("timeout"),
        "type": handler.get("type", "command"),
    }
    group: dict[str, Any] = {"event_name": _snake(event), "hooks": [normalised]}
    if matcher is not None:
        group["matcher"] = matcher
    canonical = json.dumps(group, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def read_config(path: Path) -> tomlkit.TOMLDocument:
    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read {path}: {exc}") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigFileError(f"{path} is not valid TOML ({exc}): fix or move it first") from None


def set_trust(config: tomlkit.TOMLDocument, remove: dict[str, str], add: dict[str, str]) -> tomlkit.TOMLDocument:
    """A copy of `config` with the `remove` keys' trust taken out and the `add` keys trusted."""
    result = tomlkit.parse(tomlkit.dumps(config))
    hooks = result.get("hooks")
    state = hooks.get("state") if isinstance(hooks, dict) else None
    if isinstance(hooks, dict) and isinstance(state, dict):
        for key in remove:
            if key not in add and key in state:
                del state[key]
        if not state and not add:
            del hooks["state"]
        if not hooks:
            del result["hooks"]
        text = tomlkit.dumps(result)
        result = tomlkit.parse(text.rstrip("\n") + "\n" if text.strip() else "")  # no blank line left behind
    if add:
        if "hooks" not in result:
            result["hooks"] = tomlkit.table(is_super_table=True)
        hooks = result["hooks"]
        if "state" not in hooks:
            hooks["state"] = tomlkit.table(is_super_table=True)
        for key, digest in add.items():
            entry = hooks["state"].get(key)
            if isinstance(entry, dict):
                entry["trusted_hash"] = digest
            else:
                table = tomlkit.table()
                table["trusted_hash"] = digest
                hooks["state"][key] = table
    return result


def untrusted(document: dict[str, Any], source: Path, config: tomlkit.TOMLDocument) -> list[str]:
    """Keys of keycardd handlers whose recorded trust is missing or stale: Codex skips them, so calls go unguarded."""
    hooks = config.get("hooks")
    state = hooks.get("state") if isinstance(hooks, dict) else None
    state = state if isinstance(state, dict) else {}
    return [
        key
        for key, digest in trust_entries(document, source).items()
        if not (isinstance(state.get(key), dict) and state[key].get("trusted_hash") == digest)
    ]


def project_trusted(config: tomlkit.TOMLDocument, project: Path) -> bool:
    """Does Codex load `project`'s `.codex` layer? Only for a project (or a parent) marked trusted in config.toml."""
    projects = config.get("projects")
    if not isinstance(projects, dict):
        return False
    resolved = project.resolve()
    for directory in (resolved, *resolved.parents):
        entry = projects.get(str(directory))
        if isinstance(entry, dict) and entry.get("trust_level") == "trusted":
            return True
    return False


def installed_commands(document: dict[str, Any]) -> list[list[str]]:
    return [
        shlex.split(str(hook["command"]))
        for groups in (document.get("hooks") or {}).values()
        for group in (groups if isinstance(groups, list) else [])
        for hook in (group.get("hooks") or [] if isinstance(group, dict) else [])
        if _ours(hook)
    ]


def write_config(path: Path, config: tomlkit.TOMLDocument) -> None:
    """Atomic replace, permissions kept (config.toml may hold tokens: a new one is private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    replace_file(path, tomlkit.dumps(config).encode("utf-8"), mode)
