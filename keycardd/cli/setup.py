"""keycardctl install | uninstall | doctor: put keycardd in front of each agent (Claude Code, Cursor, Codex, Gemini
CLI), and prove it is."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import tomlkit

from keycardd.cli._common import CliError, Subcommands, print_json
from keycardd.cli._daemon import DaemonUnavailableError, ask_daemon
from keycardd.hook_secret import HookSecretError, ensure_secret, secret_path
from keycardd.http_server import parse_port
from keycardd.install import claude, codex, cursor, gemini, http_hook, originals, system
from keycardd.install.config_file import ConfigFileError, read_json, write_json
from keycardd.install.doctor import run_checks
from keycardd.install.shim import hook_command, planned_hook_command, record_daemon, recorded_daemon_path
from keycardd.protocol import StatusRequest

MODULES: dict[str, Any] = {"claude": claude, "cursor": cursor, "codex": codex, "gemini": gemini}
"""Each agent's config module: `install(document, command)`, `uninstall(document)` on its JSON settings file."""


def register(commands: Subcommands) -> None:
    for verb, help_text in (("install", "add keycardd's hooks to an agent"), ("uninstall", "remove keycardd's hooks")):
        parser = commands.add_parser(verb, help=help_text)
        parser.add_argument("agent", choices=list(MODULES), help="the agent whose hooks to change")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--user", action="store_true", help="the user's settings (default)")
        scope.add_argument("--project", type=Path, metavar="DIR", help="the project's settings in DIR")
        scope.add_argument(
            "--managed",
            action="store_true",
            help="the system-wide settings an agent cannot change (Claude Code managed settings, Cursor enterprise "
            "hooks), with a root-owned shim: run as root",
        )
        parser.add_argument(
            "--root", type=Path, metavar="PREFIX", help="with --managed: write under PREFIX instead of / (to inspect)"
        )
        parser.add_argument("--dry-run", action="store_true", help="print the resulting file instead of writing it")
        if verb == "install":
            parser.add_argument(
                "--shim",
                choices=["auto", "c", "python"],
                default="auto",
                help="which shim to install (default: the C shim when a compiler exists)",
            )
            parser.add_argument(
                "--transport",
                choices=["command", "http"],
                default="command",
                help="claude only: `http` hooks straight into keycardd's loopback listener (no process per tool "
                "call; they block when keycardd is down), instead of command hooks running the shim",
            )
            parser.add_argument("--http-host", help="the listener's loopback address (default 127.0.0.1)")
            parser.add_argument(
                "--http-port", type=_port, help="the listener's port (default $KEYCARDD_HTTP_PORT or 47474)"
            )
        parser.set_defaults(handler=_install if verb == "install" else _uninstall)

    doctor = commands.add_parser("doctor", help="check the daemon, permissions, policy and every installed hook")
    doctor.add_argument("--project", type=Path, metavar="DIR", default=Path.cwd(), help="project to check too")
    doctor.add_argument("--json", action="store_true", help="print the checks as a JSON list (check, ok, detail, fix)")
    doctor.add_argument("--root", type=Path, metavar="PREFIX", default=Path("/"), help="where managed files live")
    doctor.set_defaults(handler=_doctor)


def _managed_root(args: argparse.Namespace) -> Path:
    if args.root is not None:
        return Path(args.root)
    if os.geteuid() != 0:
        raise CliError(
            f"--managed writes system files an agent must not be able to change: run it as root "
            f"(sudo keycardctl install {args.agent} --managed)"
        )
    return Path("/")


def _port(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _target(args: argparse.Namespace, *, http: bool = False) -> Path:
    if args.managed:
        root = _managed_root(args)
        if args.agent == "claude":
            return system.claude_managed_settings(root)
        return system.cursor_enterprise_hooks(root)
    if args.root is not None:
        raise CliError("--root only goes with --managed")
    if args.project is not None and not args.project.is_dir():
        # Creating it would turn a typo into a stray directory that no agent ever reads.
        raise CliError(f"the project directory {args.project} does not exist")
    scope = "project" if args.project else "user"
    if args.agent == "claude":
        return claude.settings_path(scope, args.project, http=http)
    if args.agent == "codex":
        return codex.hooks_path(scope, args.project)
    if args.agent == "gemini":
        return gemini.settings_path(scope, args.project)
    return cursor.hooks_path(scope, args.project)


def _residue(document: dict[str, Any]) -> str:
    """A config document as `originals` compares it."""
    return json.dumps(document, sort_keys=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        return read_json(path)
    except ConfigFileError as exc:
        raise CliError(str(exc)) from None


def _holds_keycardd_hooks(agent: str, document: dict[str, Any]) -> bool:
    if agent == "claude":
        return bool(claude.installed_commands(document) or claude.installed_http(document))
    return bool(MODULES[agent].installed_commands(document))


def _apply(args: argparse.Namespace, change: Any, *, http: bool = False, removing: bool = False) -> int:
    """Change one agent config file; `removing` (uninstall) puts back the file keycardd found, if nothing else in it
    changed since (see `originals`)."""
    path = _target(args, http=http)
    before = _read(path)
    after = change(before)
    if args.dry_run:
        print(json.dumps(after, indent=2))
        return 0
    uninstall = MODULES[args.agent].uninstall
    existed = path.exists()
    # Codex's trust follows its hooks in: recorded after they are written, dropped before they go (so the
    # directory install created for both is empty, and removed, when hooks.json is).
    if args.agent == "codex" and removing:
        _codex_trust(path, before, after, args.project)
    if removing and originals.restore(path, _residue(after)):
        if path.exists():
            print(f"restored {path} as it was before keycardd changed it")
        elif existed:
            print(f"removed {path}: it did not exist before keycardd's install")
        else:
            print(f"keycardd's hooks are not installed in {path}: nothing to uninstall")
    elif after == before:
        print(
            f"keycardd's hooks are not installed in {path}: nothing to uninstall"
            if removing
            else f"{path}: already up to date"
        )
    else:
        if not removing and not _holds_keycardd_hooks(args.agent, before):  # a pristine file: worth putting back
            originals.remember(path, _residue(uninstall(after)))
        write_json(path, after, private=http)
        print(f"wrote {path}")
    if args.agent == "codex" and not removing:
        _codex_trust(path, before, after, args.project)
    return 0


def _codex_trust(path: Path, before: dict[str, Any], after: dict[str, Any], project: Path | None) -> None:
    """Record Codex's trust in exactly keycardd's handlers (and drop it for the ones just removed); a config.toml
    that had none of keycardd's trust goes back to exactly what it was once they are all removed again."""
    config_path = codex.config_path()
    try:
        config = codex.read_config(config_path)
    except ConfigFileError as exc:
        raise CliError(f"{exc} (the hooks are in {path} but Codex will skip them untrusted)") from None
    source = path.resolve()
    ours_after = codex.trust_entries(after, source)
    updated = codex.set_trust(config, codex.trust_entries(before, source), ours_after)
    if not ours_after and originals.restore(config_path, tomlkit.dumps(updated)):
        print(f"restored {config_path} as it was before keycardd recorded Codex's trust")
    elif updated.as_string() != config.as_string():
        if not codex.trust_entries(before, source):
            originals.remember(config_path, tomlkit.dumps(codex.set_trust(updated, ours_after, {})))
        codex.write_config(config_path, updated)
        print(f"wrote {config_path} (Codex's trust in keycardd's hooks)")
    if project is not None and codex.trust_entries(after, source) and not codex.project_trusted(updated, project):
        print(f"note: Codex loads {path} only once you trust {project.resolve()} in Codex")


def _install(args: argparse.Namespace) -> int:
    if args.transport == "http":
        return _install_http(args)
    target = _target(args)  # checks --managed's root and --project's directory before anything is built
    try:
        if args.dry_run:  # what would be installed, without compiling or copying anything
            shim_dir = system.managed_shim_dir(_managed_root(args)) if args.managed else None
            command = planned_hook_command(args.shim, shim_dir)
        elif args.managed:
            command = system.install_managed_shim(_managed_root(args), args.shim)
        else:
            command = hook_command(args.shim)
    except (RuntimeError, OSError) as exc:
        raise CliError(str(exc)) from None
    if args.agent == "claude":
        version = claude.claude_version()
        block = claude.supports_on_failure(version)

        def change(document: dict[str, Any]) -> dict[str, Any]:
            installed = claude.install(document, command, block_on_failure=block)
            return system.managed_claude_settings(installed) if args.managed else installed

        code = _apply(args, change)
        if not args.dry_run:
            print(_on_failure_note(version, block))
    else:
        module = MODULES[args.agent]
        code = _apply(args, lambda document: module.install(document, command))
    if not args.dry_run and not args.managed:
        _record_daemon()
    kind = "C shim" if command.kind == "c" else "Python fallback shim"
    if command.kind == "python" and args.shim == "auto":
        kind += " (no working C compiler was found)"
    if not args.dry_run:
        print(f"hook: {' '.join(command.argv(args.agent))}  [{kind}]")
        if args.managed:
            reachable = system.not_root_owned([target, Path(command.executable), *map(Path, command.prefix[-1:])])
            if reachable and args.root is None:
                print(f"warning: not root-owned, so an agent could change them: {', '.join(map(str, reachable))}")
    return code


def _record_daemon() -> None:
    """Tell the hooks which keycardd to start when it is not running (see `record_daemon`), or say why not."""
    link = recorded_daemon_path()
    try:
        daemon = record_daemon()
    except OSError as exc:
        print(f"note: hooks cannot start keycardd by themselves: {link} cannot be written ({exc.strerror})")
        return
    if daemon is not None:
        print(f"autostart: {link} -> {daemon} (hooks start it when it is not running)")
    elif link.exists():
        print(f"note: {link} is not keycardd's link and was left as it is; hooks start the keycardd found there")
    else:
        print("note: no keycardd beside this Python, so hooks start the keycardd on PATH or in $KEYCARDD_BIN")


def _install_http(args: argparse.Namespace) -> int:
    if args.agent != "claude":
        raise CliError("only Claude Code has http hooks; install cursor with command hooks")
    if args.managed:
        raise CliError("--managed installs command hooks (a root-owned shim); leave out --transport http")
    try:
        # A dry run creates nothing, and prints no secret: a placeholder names where it would be.
        secret = f"<the secret in {secret_path()}>" if args.dry_run else ensure_secret()
    except HookSecretError as exc:
        raise CliError(str(exc)) from None
    try:
        url = http_hook.url(args.http_host, args.http_port)
    except ValueError as exc:
        raise CliError(f"KEYCARDD_HTTP_PORT: {exc}") from None
    if args.project is not None and not args.dry_run and _holds_keycardd_hooks("claude", _read(_target(args))):
        _apply(args, claude.uninstall, removing=True)  # command hooks in the committed settings.json would run as well
    project = args.project.resolve() if args.project is not None else None
    code = _apply(args, lambda document: claude.install_http(document, url, secret, project), http=True)
    if not args.dry_run:
        print(f"hook: POST {url}  [http, onFailure block: tool calls are blocked while keycardd does not answer]")
        print(_listener_note(url))
    return code


def _on_failure_note(version: tuple[int, int, int] | None, block: bool) -> str:
    found = "no `claude` on PATH" if version is None else f"Claude Code {'.'.join(map(str, version))}"
    if block:
        return f"{found}: gating hooks block the call if the hook itself fails (onFailure: block)"
    needed = ".".join(map(str, claude.ON_FAILURE_SINCE))
    return (
        f"warning: {found}; onFailure needs Claude Code {needed} or later, so a hook that crashes or is missing "
        "lets the call run: upgrade Claude Code and run this again"
    )


def _listener_note(url: str) -> str:
    """Whether the running daemon already answers at `url`: it reads the secret when its listener starts."""
    try:
        status = ask_daemon(StatusRequest())
    except DaemonUnavailableError:
        return "keycardd is not running: start it with `keycardctl service install` (or `keycardd`)"
    listening = status.get("http", {}).get("listening")
    if listening and url.startswith(f"http://{listening}/"):
        return f"keycardd (pid {status['pid']}) already serves http hooks there"
    return (
        f"keycardd (pid {status['pid']}) does not serve http hooks there yet: restart it "
        "(`keycardctl service stop`, then `keycardctl service start`, or restart your `keycardd`)"
    )


def _uninstall(args: argparse.Namespace) -> int:
    module = MODULES[args.agent]
    code = _apply(args, module.uninstall, removing=True)
    if args.agent == "claude" and args.project is not None and _target(args, http=True).exists():
        code = _apply(args, module.uninstall, http=True, removing=True) or code
    return code


def _doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args.project.resolve() if args.project else None, args.root)
    if args.json:
        print_json([{"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks])
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
            if not check.ok and check.fix:
                print(f"     fix: {check.fix}")
    return 0 if all(check.ok for check in checks) else 1
