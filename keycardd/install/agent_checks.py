"""doctor's view of the Codex CLI and Gemini CLI installs: where their hooks are, canaries to run through them, and the
traps peculiar to each (Codex skips an untrusted hook silently; Gemini ignores a project's hooks in an untrusted
folder; Cursor also runs Claude Code's hooks, so with both installs one Cursor call reaches keycardd twice)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keycardd.install import claude, codex, cursor, gemini
from keycardd.install.config_file import ConfigFileError, read_json

CANARIES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "codex": [
        (
            label,
            {
                "hook_event_name": "PreToolUse",
                "session_id": "doctor",
                "turn_id": "doctor",
                "cwd": "/",
                "tool_name": "Bash",
                "tool_input": {"command": command},
                "tool_use_id": "doctor",
            },
        )
        for label, command in (("forbidden", "rm -rf / --no-preserve-root"), ("permitted", "ls"))
    ],
    "gemini": [
        (
            label,
            {
                "hook_event_name": "BeforeTool",
                "session_id": "doctor",
                "cwd": "/",
                "timestamp": "1970-01-01T00:00:00Z",
                "tool_name": "run_shell_command",
                "tool_input": {"command": command},
            },
        )
        for label, command in (("forbidden", "rm -rf / --no-preserve-root"), ("permitted", "ls"))
    ],
}


def installed(scope: str, directory: Path | None) -> Iterator[tuple[str, Path, list[list[str]]]]:
    """(agent, config path, keycardd hook argvs) for Codex and Gemini CLI in one scope."""
    for agent, path, commands in (
        ("codex", codex.hooks_path(scope, directory), codex.installed_commands),
        ("gemini", gemini.settings_path(scope, directory), gemini.installed_commands),
    ):
        try:
            yield agent, path, commands(read_json(path))
        except ConfigFileError:
            yield agent, path, []


def trust_problems(project: Path | None) -> Iterator[tuple[str, bool, str, str]]:
    """(check name, ok, detail, fix) for Codex's hook trust and Cursor's double hooks."""
    scopes: list[tuple[str, Path | None]] = [("user", None)] + ([("project", project)] if project else [])
    checked: set[Path] = set()
    for scope, directory in scopes:
        path = codex.hooks_path(scope, directory)
        if path.resolve() in checked:  # run from $HOME (or CODEX_HOME's parent), the project's file is the user's
            continue
        checked.add(path.resolve())
        try:
            document = read_json(path)
            config = codex.read_config(codex.config_path())
        except ConfigFileError as exc:
            yield "codex trust", False, str(exc), "fix or move the file named"
            continue
        if not codex.installed_commands(document):
            continue
        if directory is not None and not codex.project_trusted(config, directory):
            detail = f"Codex does not load {path}: the project is not trusted in {codex.config_path()}"
            yield "codex trust", False, detail, "trust the project in Codex, or use `keycardctl install codex` (user)"
            continue
        stale = codex.untrusted(document, path.resolve(), config)
        if stale:
            detail = f"Codex skips {len(stale)} keycardd hook(s) in {path} as untrusted, so those calls go unguarded"
            yield "codex trust", False, detail, "run `keycardctl install codex` again (or trust them in Codex's /hooks)"
        else:
            yield "codex trust", True, f"Codex trusts every keycardd hook in {path}", ""
    if project is not None and _distinct(gemini.settings_path("project", project), gemini.settings_path("user", None)):
        try:
            gemini_hooks = gemini.installed_commands(read_json(gemini.settings_path("project", project)))
        except ConfigFileError:
            gemini_hooks = []
        if gemini_hooks and not gemini.folder_trusted(project):
            detail = (
                f"Gemini CLI ignores the hooks in {gemini.settings_path('project', project)}: the folder is not trusted"
            )
            yield (
                "gemini folder trust",
                False,
                detail,
                "trust the folder in Gemini CLI, or `keycardctl install gemini` (user)",
            )
        elif gemini_hooks:
            yield "gemini folder trust", True, f"Gemini CLI trusts {project}, so its keycardd hooks run", ""
    yield from _cursor_overlap(scopes)


def _distinct(project_file: Path, user_file: Path) -> bool:
    """A project's config is its own only when it is not the user's (a project at $HOME shares it)."""
    return project_file.resolve() != user_file.resolve()


def _cursor_overlap(scopes: list[tuple[str, Path | None]]) -> Iterator[tuple[str, bool, str, str]]:
    """Cursor runs `.claude/settings*.json` hooks too: say which keycardd hook decides Cursor's calls."""
    has_cursor = has_claude = False
    for scope, directory in scopes:
        try:
            has_cursor |= bool(cursor.installed_commands(read_json(cursor.hooks_path(scope, directory))))
            has_claude |= bool(claude.installed_commands(read_json(claude.settings_path(scope, directory))))
        except ConfigFileError:
            continue
    if has_cursor and has_claude:
        detail = (
            "Cursor runs its own keycardd hooks and also Claude Code's from .claude/settings*.json; keycardd decides a "
            "call Cursor reports through both once (the Claude-shaped twin carries CURSOR_VERSION) and the Cursor "
            "hook's answer is the one Cursor uses"
        )
        fix = "to have only the Cursor hook run, turn off third-party hooks in Cursor's settings"
        yield "cursor and claude hooks", True, detail, fix
