"""`keycardctl doctor`: is keycardd really in front of the agents? Each check says what is wrong and how to fix it.

The decisive check runs every installed hook command the way the agent would, with canary payloads, and compares
its stdout and exit code with what the daemon says the answer must be. That catches the traps that make hooks fail
open silently: a missing interpreter (exit 127), a missing script (exit 2 blocks everything), a shim that cannot
reach the daemon, output polluted by a shell profile.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keycardd import canary, paths
from keycardd.client import Client, DaemonUnavailableError
from keycardd.install import agent_checks, claude, cursor, system
from keycardd.install.config_file import ConfigFileError, read_json
from keycardd.managed import managed_policy_dir
from keycardd.protocol import CanaryRequest, DocumentReply, ExplainRequest, StatusRequest

CANARIES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "claude": [
        (
            "forbidden",
            {
                "hook_event_name": "PreToolUse",
                "session_id": "doctor",
                "tool_name": "Bash",
                "tool_input": {"command": "rm -rf / --no-preserve-root"},
            },
        ),
        (
            "permitted",
            {
                "hook_event_name": "PreToolUse",
                "session_id": "doctor",
                "tool_name": "Bash",
                "tool_input": {"command": "ls"},
            },
        ),
    ],
    "cursor": [
        (
            "forbidden",
            {
                "hook_event_name": "beforeShellExecution",
                "conversation_id": "doctor",
                "generation_id": "d1",
                "command": "rm -rf / --no-preserve-root",
                "cwd": "/",
            },
        ),
        (
            "permitted",
            {
                "hook_event_name": "beforeShellExecution",
                "conversation_id": "doctor",
                "generation_id": "d2",
                "command": "ls",
                "cwd": "/",
            },
        ),
    ],
    **agent_checks.CANARIES,
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(project: Path | None = None, root: Path = Path("/")) -> list[Check]:
    checks = [*_daemon_checks(), _mode_check(root)]
    daemon_up = checks[0].ok
    token = canary_token() if daemon_up else None
    for agent, path, commands in _installed(project, root):
        if not commands:
            continue
        checks.append(Check(f"{agent} config", True, f"{path}: {len(commands)} keycardd hooks"))
        if agent == "claude":
            checks.append(_on_failure_check(path))
        for argv in {tuple(argv) for argv in commands}:
            if daemon_up:
                checks.extend(_canary_checks(agent, list(argv), token))
    from keycardd.install.doctor_http import http_checks  # noqa: PLC0415 - it builds on this module

    checks.extend(http_checks(project, daemon_up, token))
    checks.extend(Check(*problem) for problem in agent_checks.trust_problems(project))
    if not any(check.name.endswith("config") for check in checks):
        checks.append(
            Check(
                "agent configs",
                False,
                "no agent has keycardd's hooks installed",
                "run `keycardctl install claude` and/or `keycardctl install cursor`",
            )
        )
    checks.extend(_directory_checks())
    return checks


def _on_failure_check(path: Path) -> Check:
    try:
        missing = claude.gates_without_on_failure(read_json(path))
    except ConfigFileError as exc:
        return Check("claude fail-closed", False, str(exc))
    if not missing:
        return Check("claude fail-closed", True, f"{path}: every gating hook has onFailure: block")
    needed = ".".join(map(str, claude.ON_FAILURE_SINCE))
    return Check(
        "claude fail-closed",
        False,
        f"{path}: {', '.join(missing)} hooks lack onFailure: block, so a crashing or missing shim lets calls run",
        f"upgrade Claude Code to {needed} or later, then run `keycardctl install claude` again",
    )


def _daemon_checks() -> Iterator[Check]:
    socket_path = paths.socket_path()
    try:
        with Client(socket_path, timeout_s=5) as client:
            reply = client.request(StatusRequest())
    except DaemonUnavailableError as exc:
        yield Check("daemon", False, str(exc), "start it with `keycardctl service start` (or run `keycardd`)")
        return
    assert isinstance(reply, DocumentReply)
    status = reply.body
    yield Check("daemon", True, f"keycardd {status['version']} (pid {status['pid']}) on {socket_path}")
    socket_mode = stat.S_IMODE(socket_path.stat().st_mode)
    dir_mode = stat.S_IMODE(socket_path.parent.stat().st_mode)
    # The directory may be $HOME: readable by others is fine, writable (others could replace the socket) is not.
    socket_private, dir_private = socket_mode & 0o077 == 0, dir_mode & 0o022 == 0
    fix = "" if socket_private else f"chmod 600 {socket_path}"
    if not dir_private:
        fix = "put the socket in a directory only you can write to (KEYCARDD_SOCKET)"
    yield Check(
        "socket permissions", socket_private and dir_private, f"socket {socket_mode:04o}, directory {dir_mode:04o}", fix
    )
    policy = status["policy"]
    if policy["error"]:
        yield Check("policy", False, policy["error"], "fix the file and line named; the last good policy stays active")
    else:
        yield Check("policy", True, f"{policy['count']} policies from {', '.join(policy['sources'])}")


def _managed_installs(root: Path) -> list[tuple[str, Path, dict[str, Any], list[list[str]]]]:
    found = []
    for agent, path in (
        ("claude", system.claude_managed_settings(root)),
        ("cursor", system.cursor_enterprise_hooks(root)),
    ):
        try:
            document = read_json(path)
        except ConfigFileError:
            continue
        if agent == "claude":
            commands = [[command, *args] for command, args in claude.installed_commands(document)]
        else:
            commands = cursor.installed_commands(document)
        if commands:
            found.append((agent, path, document, commands))
    return found


_USER_MODE_REACH = (
    "an agent running as you can still change them through scripts it writes and runs, or programs that write "
    "where their arguments do not say (SECURITY.md)"
)


def _mode_check(root: Path) -> Check:
    """Which mode is active, and what an agent could still change."""
    installs = _managed_installs(root)
    policy_dir = managed_policy_dir() if root == Path("/") else root / "etc" / "keycard" / "policy.d"
    policies = sorted(policy_dir.glob("*.cedar")) if policy_dir.is_dir() else []
    if not installs:
        return Check(
            "mode",
            True,
            "user mode: keycardd's hooks, shim and policy are your files; the guard denies changing them through the "
            f"agent's tools, but {_USER_MODE_REACH}",
            "for a team, `sudo keycardctl install claude --managed` puts them out of the agent's reach",
        )
    parts, problems = [], []
    for agent, path, document, commands in installs:
        executables = list(dict.fromkeys(Path(word) for argv in commands for word in argv if os.path.isabs(word)))
        problems += system.not_root_owned([path, *executables])
        if agent == "claude" and document.get("allowManagedHooksOnly") is not True:
            problems.append(path)
            parts.append(f"{agent}: {path} without allowManagedHooksOnly (user and project hooks still apply)")
        else:
            parts.append(f"{agent}: {path}, shim {executables[-1]}")
    problems += system.not_root_owned(policies)
    policy_note = f"managed policy {policy_dir} ({len(policies)} files)" if policies else f"no policy in {policy_dir}"
    reach = (
        "an agent can still edit your own policy (only within what managed policy leaves open) and stop your keycardd "
        "(gated calls are then denied until it restarts)"
    )
    if problems:
        unique = ", ".join(dict.fromkeys(map(str, problems)))
        return Check(
            "mode",
            False,
            f"managed ({'; '.join(parts)}; {policy_note}), but an agent can change: {unique}",
            "make them root-owned and not group/world-writable (chown root; chmod go-w)",
        )
    return Check("mode", True, f"managed: {'; '.join(parts)}; {policy_note}; {reach}")


def _installed(project: Path | None, root: Path = Path("/")) -> Iterator[tuple[str, Path, list[list[str]]]]:
    """Each config file once: run from $HOME, the project's `.claude/settings.json` is the user's (by resolved path)."""
    seen: set[Path] = set()
    for agent, path, commands in _each_config(project, root):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            yield agent, path, commands


def _each_config(project: Path | None, root: Path) -> Iterator[tuple[str, Path, list[list[str]]]]:
    for agent, path, _, commands in _managed_installs(root):
        yield agent, path, commands
    scopes: list[tuple[str, Path | None]] = [("user", None)]
    if project is not None:
        scopes.append(("project", project))
    for scope, directory in scopes:
        yield from agent_checks.installed(scope, directory)  # first: an unreadable Claude or Cursor file skips on
        path = claude.settings_path(scope, directory)
        try:
            settings = read_json(path)
        except ConfigFileError:
            yield "claude", path, []
            continue
        yield "claude", path, [[command, *args] for command, args in claude.installed_commands(settings)]
        path = cursor.hooks_path(scope, directory)
        try:
            document = read_json(path)
        except ConfigFileError:
            continue
        yield "cursor", path, cursor.installed_commands(document)


def canary_token() -> str | None:
    """A token that marks this run's canary calls, so the daemon logs them as canaries and counts none of them
    (keycardd/canary.py); None from a daemon that predates it (its canaries are then counted as before)."""
    try:
        with Client(timeout_s=5) as client:
            reply = client.request(CanaryRequest())
    except DaemonUnavailableError:
        return None
    return str(reply.body["token"]) if isinstance(reply, DocumentReply) else None


def _canary_checks(agent: str, argv: list[str], token: str | None = None) -> Iterator[Check]:
    python = any(arg.endswith(("keycard-hook.py", "keycard_hook.py")) for arg in argv)  # launcher, or older installs
    kind = "Python fallback shim" if python else "C shim"
    name = f"{agent} hook ({kind})"
    if not os.access(argv[0], os.X_OK):
        yield Check(
            name,
            False,
            f"{argv[0]} is missing or not executable (the agent would fail open: exit 127)",
            f"reinstall with `keycardctl install {agent}`",
        )
        return
    for label, payload in CANARIES[agent]:
        raw = json.dumps(payload).encode()
        expected = expected_answer(agent, raw)
        try:
            env = {**os.environ, canary.ENV: token} if token else None
            result = subprocess.run(argv, input=raw, capture_output=True, timeout=15, check=False, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            yield Check(
                name,
                False,
                f"{label} canary: the hook did not run ({exc})",
                f"reinstall with `keycardctl install {agent}`",
            )
            continue
        if result.returncode != expected["exit_code"] or result.stdout.decode("utf-8", "replace") != expected["stdout"]:
            detail = (
                f"{label} canary: got exit {result.returncode} and {result.stdout[:200]!r}, "
                f"expected exit {expected['exit_code']} and {expected['stdout'][:200]!r}"
            )
            yield Check(
                name,
                False,
                detail,
                f"check that the hook command runs by itself; reinstall with `keycardctl install {agent}`",
            )
            continue
        yield Check(name, True, f"{label} canary: {expected['decision'] or 'observed'} as the policy says")


def expected_answer(agent: str, payload: bytes) -> dict[str, Any]:
    """What the daemon says a hook must answer for `payload` (explained, neither counted nor logged)."""
    with Client(timeout_s=5) as client:
        reply = client.request(ExplainRequest(agent=agent, payload=payload, env={"cwd": os.getcwd()}))
    assert isinstance(reply, DocumentReply)
    return {
        "stdout": reply.body["output"]["stdout"],
        "exit_code": reply.body["output"]["exit_code"],
        "decision": reply.body["decision"],
    }


def _directory_checks() -> Iterator[Check]:
    """The directories keycardd refuses to start in (it never chmods one it did not create): say so here, since
    a daemon started by a hook has nowhere to say it."""
    for what, directory in (("state directory", paths.state_dir()), ("socket directory", paths.socket_path().parent)):
        if not directory.is_dir():
            continue
        try:
            paths.check_private_dir(directory)
        except paths.UnsafePathError as exc:
            yield Check(what, False, str(exc), f"chmod go-w {directory}, or point keycardd elsewhere")
