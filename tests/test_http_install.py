"""`keycardctl install claude --transport http` and doctor, as a user runs them: real files and a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DaemonProcess
from test_http_hooks import free_port, wait_for_port
from test_install import EXISTING_CLAUDE, keycardctl

from keycardd.hook_secret import read_secret
from keycardd.install import claude

GATES = {"PreToolUse", "PermissionRequest", "UserPromptSubmit"}


def secret_file(home: Path) -> Path:
    return home / ".local" / "state" / "keycard" / "http-hook.secret"


def test_user_install_writes_fail_closed_http_hooks_in_a_private_file(isolated_home: Path) -> None:
    settings = isolated_home / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(EXISTING_CLAUDE))
    settings.chmod(0o644)
    result = keycardctl("install", "claude", "--transport", "http", "--http-port", "47001")
    assert result.returncode == 0, result.stderr
    assert settings.stat().st_mode & 0o777 == 0o600  # it holds the secret now
    assert secret_file(isolated_home).stat().st_mode & 0o777 == 0o600
    secret = read_secret(secret_file(isolated_home))
    installed = json.loads(settings.read_text())
    hooks = claude.installed_http(installed)
    assert {event for event, _ in hooks} == {
        "PreToolUse",
        "PermissionRequest",
        "UserPromptSubmit",
        "PostToolUse",
        "SessionStart",
    }
    for event, hook in hooks:
        assert hook["url"] == "http://127.0.0.1:47001/hooks/claude"
        assert hook["headers"]["Authorization"] == f"Bearer {secret}"
        assert hook["timeout"] == 10
        assert (hook.get("onFailure") == "block") == (event in GATES)
        assert hook["allowedEnvVars"] == ["KEYCARD_RUN", "KEYCARD_RUN_SESSION_ID"]
        assert hook["headers"]["X-Keycard-Run"] == "${KEYCARD_RUN}"
        assert "X-Claude-Project-Dir" not in hook["headers"]  # a user install has no one project
    assert claude.installed_commands(installed) == []
    assert installed["hooks"]["Stop"] == EXISTING_CLAUDE["hooks"]["Stop"]
    assert installed["hooks"]["PreToolUse"][0] == EXISTING_CLAUDE["hooks"]["PreToolUse"][0]

    again = keycardctl("install", "claude", "--transport", "http", "--http-port", "47001")
    assert "already up to date" in again.stdout  # the secret is kept: idempotent
    assert keycardctl("uninstall", "claude").returncode == 0
    assert json.loads(settings.read_text()) == EXISTING_CLAUDE


def test_switching_transports_replaces_the_other_kind(isolated_home: Path) -> None:
    settings = isolated_home / ".claude" / "settings.json"
    assert keycardctl("install", "claude").returncode == 0
    assert keycardctl("install", "claude", "--transport", "http").returncode == 0
    document = json.loads(settings.read_text())
    assert len(claude.installed_http(document)) == 5
    assert claude.installed_commands(document) == []
    assert keycardctl("install", "claude").returncode == 0
    document = json.loads(settings.read_text())
    assert claude.installed_http(document) == []
    assert len(claude.installed_commands(document)) == 5


def test_project_install_keeps_the_secret_out_of_the_committed_settings(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    (project / ".claude").mkdir(parents=True)
    committed = project / ".claude" / "settings.json"
    assert keycardctl("install", "claude", "--project", str(project)).returncode == 0
    assert keycardctl("install", "claude", "--project", str(project), "--transport", "http").returncode == 0
    local = project / ".claude" / "settings.local.json"
    assert local.stat().st_mode & 0o777 == 0o600
    hooks = claude.installed_http(json.loads(local.read_text()))
    assert len(hooks) == 5
    assert {hook["headers"]["X-Claude-Project-Dir"] for _, hook in hooks} == {str(project.resolve())}
    assert not committed.exists(), "keycardd created it for the command hooks, and takes it away with them"
    assert keycardctl("uninstall", "claude", "--project", str(project)).returncode == 0
    assert not local.exists()


def test_cursor_has_no_http_transport() -> None:
    result = keycardctl("install", "cursor", "--transport", "http")
    assert result.returncode != 0
    assert "only Claude Code has http hooks" in result.stderr


def doctor_lines(env: dict[str, str]) -> dict[str, list[dict[str, object]]]:
    result = keycardctl("doctor", "--json", env=env)
    checks: dict[str, list[dict[str, object]]] = {}
    for check in json.loads(result.stdout):
        checks.setdefault(str(check["check"]), []).append(check)
    return checks


def test_doctor_posts_the_canaries_through_the_installed_http_hooks(
    isolated_home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    port = free_port()
    installed = keycardctl("install", "claude", "--transport", "http", "--http-port", str(port))
    assert "keycardd is not running" in installed.stdout
    daemon = start_daemon(args=["--http-port", str(port)])
    wait_for_port(port, daemon.process)
    again = keycardctl("install", "claude", "--transport", "http", "--http-port", str(port), env=daemon.env)
    assert f"keycardd (pid {daemon.process.pid}) already serves http hooks there" in again.stdout
    moved = keycardctl("install", "claude", "--transport", "http", "--http-port", str(free_port()), env=daemon.env)
    assert "does not serve http hooks there yet: restart it" in moved.stdout
    assert keycardctl("install", "claude", "--transport", "http", "--http-port", str(port)).returncode == 0
    checks = doctor_lines(daemon.env)
    name = f"claude http hook (http://127.0.0.1:{port}/hooks/claude)"
    assert [check["ok"] for check in checks[name]] == [True, True], checks[name]
    assert all(check["ok"] for check in checks["claude http settings permissions"])
    assert all(check["ok"] for check in checks["claude http fail-closed"])
    assert all(check["ok"] for check in checks["claude http listener owner"])
    status = json.loads(keycardctl("status", "--json", env=daemon.env).stdout)
    assert sum(status["decisions"].values()) == 0, "doctor's canaries (X-Keycard-Canary) are not the agent's calls"

    # a secret the daemon does not hold: every canary fails, and says why
    # ...and a gate that fails open, in a file others can read
    settings = isolated_home / ".claude" / "settings.json"
    document = json.loads(settings.read_text().replace(read_secret(secret_file(isolated_home)) or "?", "stale"))
    del document["hooks"]["PermissionRequest"][0]["hooks"][0]["onFailure"]
    settings.write_text(json.dumps(document))
    settings.chmod(0o644)
    checks = doctor_lines(daemon.env)
    assert not any(check["ok"] for check in checks[name])
    assert "401" in str(checks[name][0]["detail"])
    assert not checks["claude http settings permissions"][0]["ok"]
    assert checks["claude http fail-closed"][0]["detail"] == "gates without onFailure block: PermissionRequest"

    # the daemon down: the hooks block everything, and doctor says nothing answers
    daemon.stop()
    stopped = doctor_lines(daemon.env)
    assert not stopped["daemon"][0]["ok"]


SQUATTER = """
import encodings.idna, json, os, socket, sys
os.setgid(65534); os.setuid(65534)
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1]))); server.listen()
print("listening", flush=True)
while True:  # answers every hook as keycardd would for the canaries: `{}` (no objection) for anything
    connection, _ = server.accept()
    connection.recv(65536)
    connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
    connection.close()
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to listen as another uid")
def test_doctor_names_another_user_listening_on_the_hook_port(
    isolated_home: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """The port-squatting trap: keycardd not holding its port, and another local user answering the hooks."""
    port = free_port()
    assert keycardctl("install", "claude", "--transport", "http", "--http-port", str(port)).returncode == 0
    squatter = subprocess.Popen([sys.executable, "-c", SQUATTER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "listening"
        daemon = start_daemon(args=["--http-port", str(port)])  # the port is taken: Unix socket only
        checks = doctor_lines(daemon.env)
        owner = checks["claude http listener owner"][0]
        assert not owner["ok"]
        assert "belongs to uid 65534" in str(owner["detail"])
        assert f"uid 65534 is listening on 127.0.0.1 port {port}" in daemon.log()
    finally:
        squatter.kill()
        squatter.wait()


def test_a_port_that_is_not_one_is_a_clear_error_everywhere(isolated_home: Path) -> None:
    bad_env = {**os.environ, "KEYCARDD_HTTP_PORT": "http"}
    installed = keycardctl("install", "claude", "--transport", "http", env=bad_env)
    assert installed.returncode == 1
    assert installed.stderr.strip() == "keycardctl: KEYCARDD_HTTP_PORT: 'http' is not a TCP port number (1-65535)"
    assert (
        "is not a TCP port number" in keycardctl("install", "claude", "--transport", "http", "--http-port", "0").stderr
    )
    daemon = subprocess.run(
        [sys.executable, "-m", "keycardd.daemon", "--http-port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert daemon.returncode == 2
    assert "'70000' is not a TCP port number" in daemon.stderr
    assert not (isolated_home / ".claude" / "settings.json").exists()
