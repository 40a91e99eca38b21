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

from keycardd import paths
from keycardd.client import Client, DaemonUnavailableError
from keycardd.install import agent_checks, claude, cursor
from keycardd.install.config_file import ConfigFileError, read_json
from keycardd.protocol import DocumentReply, ExplainRequest, StatusRequest

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


def run_checks(project: Path | None = None) -> list[Check]:
    checks = list(_daemon_checks())
    daemon_up = checks[0].ok
    for agent, path, commands in _installed(project):
        if not commands:
            continue
        checks.append(Check(f"{agent} config", True, f"{path}: {len(commands)} keycardd hooks"))
        for argv in {tuple(argv) for argv in commands}:
            if daemon_up:
                checks.extend(_canary_checks(agent, list(argv)))
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
    return checks


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
    private = socket_mode & 0o077 == 0 and dir_mode & 0o077 == 0
    yield Check(
        "socket permissions",
        private,
        f"socket {socket_mode:04o}, directory {dir_mode:04o}",
        "" if private else f"chmod 600 {socket_path} && chmod 700 {socket_path.parent}",
    )
    policy = status["policy"]
    if policy["error"]:
        yield Check("policy", False, policy["error"], "fix the file and line named; the last good policy stays active")
    else:
        yield Check("policy", True, f"{policy['count']} policies from {', '.join(policy['sources'])}")


def _installed(project: Path | None) -> Iterator[tuple[str, Path, list[list[str]]]]:
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


def _canary_checks(agent: str, argv: list[str]) -> Iterator[Check]:
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
        expected = _expected(agent, raw)
        try:
            result = subprocess.run(argv, input=raw, capture_output=True, timeout=15, check=False)
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


def _expected(agent: str, payload: bytes) -> dict[str, Any]:
    with Client(timeout_s=5) as client:
        reply = client.request(ExplainRequest(agent=agent, payload=payload, env={"cwd": os.getcwd()}))
    assert isinstance(reply, DocumentReply)
    return {
        "stdout": reply.body["output"]["stdout"],
        "exit_code": reply.body["output"]["exit_code"],
        "decision": reply.body["decision"],
    }
