"""keycardctl install | uninstall | doctor: put keycardd in front of each agent (Claude Code, Cursor, Codex, Gemini
CLI), and prove it is."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from keycardd.cli._common import CliError, Subcommands, print_json
from keycardd.install import claude, codex, cursor, gemini
from keycardd.install.config_file import ConfigFileError, read_json, write_json
from keycardd.install.doctor import run_checks
from keycardd.install.shim import hook_command

MODULES: dict[str, Any] = {"claude": claude, "cursor": cursor, "codex": codex, "gemini": gemini}
"""Each agent's config module: `install(document, command)`, `uninstall(document)` on its JSON settings file."""


def register(commands: Subcommands) -> None:
    for verb, help_text in (("install", "add keycardd's hooks to an agent"), ("uninstall", "remove keycardd's hooks")):
        parser = commands.add_parser(verb, help=help_text)
        parser.add_argument("agent", choices=list(MODULES))
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--user", action="store_true", help="the user's settings (default)")
        scope.add_argument("--project", type=Path, metavar="DIR", help="the project's settings in DIR")
        parser.add_argument("--dry-run", action="store_true", help="print the resulting file instead of writing it")
        if verb == "install":
            parser.add_argument(
                "--shim",
                choices=["auto", "c", "python"],
                default="auto",
                help="which shim to install (default: the C shim when a compiler exists)",
            )
        parser.set_defaults(handler=_install if verb == "install" else _uninstall)

    doctor = commands.add_parser("doctor", help="check the daemon, permissions, policy and every installed hook")
    doctor.add_argument("--project", type=Path, metavar="DIR", default=Path.cwd(), help="project to check too")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler=_doctor)


def _target(args: argparse.Namespace) -> Path:
    if args.project is not None and not args.project.is_dir():
        # Creating it would turn a typo into a stray directory that no agent ever reads.
        raise CliError(f"the project directory {args.project} does not exist")
    scope = "project" if args.project else "user"
    if args.agent == "claude":
        return claude.settings_path(scope, args.project)
    if args.agent == "codex":
        return codex.hooks_path(scope, args.project)
    if args.agent == "gemini":
        return gemini.settings_path(scope, args.project)
    return cursor.hooks_path(scope, args.project)


def _apply(args: argparse.Namespace, change: Any) -> int:
    path = _target(args)
    try:
        before = read_json(path)
    except ConfigFileError as exc:
        raise CliError(str(exc)) from None
    after = change(before)
    if args.dry_run:
        print(json.dumps(after, indent=2))
        return 0
    if after == before:
        print(f"{path}: already up to date")
    else:
        backup = write_json(path, after)
        print(f"wrote {path}" + (f" (previous version in {backup})" if backup else ""))
    if args.agent == "codex":
        _codex_trust(path, before, after, args.project)
    return 0


def _codex_trust(path: Path, before: dict[str, Any], after: dict[str, Any], project: Path | None) -> None:
    """Record Codex's trust in exactly keycardd's handlers (and drop it for the ones just removed)."""
    config_path = codex.config_path()
    try:
        config = codex.read_config(config_path)
    except ConfigFileError as exc:
        raise CliError(f"{exc} (the hooks are in {path} but Codex will skip them untrusted)") from None
    source = path.resolve()
    updated = codex.set_trust(config, codex.trust_entries(before, source), codex.trust_entries(after, source))
    if updated.as_string() != config.as_string():
        codex.write_config(config_path, updated)
        print(f"wrote {config_path} (Codex's trust in keycardd's hooks)")
    if project is not None and codex.trust_entries(after, source) and not codex.project_trusted(updated, project):
        print(f"note: Codex loads {path} only once you trust {project.resolve()} in Codex")


def _install(args: argparse.Namespace) -> int:
    try:
        command = hook_command(args.shim)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    module = MODULES[args.agent]
    code = _apply(args, lambda document: module.install(document, command))
    kind = "C shim" if command.kind == "c" else "Python fallback shim"
    if command.kind == "python" and args.shim == "auto":
        kind += " (no working C compiler was found)"
    if not args.dry_run:
        print(f"hook: {' '.join(command.argv(args.agent))}  [{kind}]")
    return code


def _uninstall(args: argparse.Namespace) -> int:
    return _apply(args, MODULES[args.agent].uninstall)


def _doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args.project.resolve() if args.project else None)
    if args.json:
        print_json([{"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks])
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
            if not check.ok and check.fix:
                print(f"     fix: {check.fix}")
    return 0 if all(check.ok for check in checks) else 1
