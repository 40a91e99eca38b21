"""The real Claude Code CLI with the http hooks `keycardctl install claude --transport http` writes: no shim process,
keycardd's loopback listener decides, and a daemon that is down blocks (`onFailure: block`).

`onFailure` on http hooks needs a newer Claude Code than the command-hook suite, so this suite pins its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, DaemonProcess
from fake_anthropic import Script, fake_anthropic
from test_claude_e2e import Project
from test_http_hooks import free_port, wait_for_port

pytestmark = pytest.mark.e2e

VERSION = "2.1.330"
"""The first release this suite was proven with (issue 16: http hooks honour `onFailure`)."""
CLAUDE_DIR = REPO / ".cache" / f"claude-{VERSION}"
CLAUDE_BIN = CLAUDE_DIR / "node_modules" / ".bin" / "claude"


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    if CLAUDE_BIN.exists():
        return CLAUDE_BIN
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so the real Claude Code CLI cannot be installed for the end-to-end test")
    CLAUDE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"@anthropic-ai/claude-code@{VERSION}"],
        cwd=CLAUDE_DIR,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0 or not CLAUDE_BIN.exists():
        pytest.skip(f"npm could not install @anthropic-ai/claude-code@{VERSION}: {result.stderr.strip()[-300:]}")
    return CLAUDE_BIN


def install_http(root: Path, port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    install = ["install", "claude", "--project", str(root), "--transport", "http", "--http-port", str(port)]
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *install],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    settings = root / ".claude" / "settings.local.json"
    assert (
        not (root / ".claude" / "settings.json").exists()
        or "http" not in (root / ".claude" / "settings.json").read_text()
    )
    return settings


@pytest.fixture
def http_setup(
    tmp_path: Path, start_daemon: Callable[..., DaemonProcess], isolated_home: Path
) -> tuple[Project, DaemonProcess]:
    port = free_port()
    root = tmp_path / "project"
    install_http(root, port)
    # no --http flag: the secret the install created is what turns the listener on
    daemon = start_daemon(args=["--http-port", str(port)], socket_name="unused-by-claude.sock")
    wait_for_port(port, daemon.process)
    return Project(root, isolated_home, tmp_path / "no-such.sock"), daemon


def test_forbidden_bash_is_denied_over_http(http_setup: tuple[Project, DaemonProcess], claude_bin: Path) -> None:
    project, daemon = http_setup
    before = _status(daemon)
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker} && rm -rf ~", "description": "x"}))
    assert not marker.exists()
    assert "keycardd policy 'deny-rm-root-or-home'" in script.tool_result_text()
    assert script.tool_results()[0].get("is_error") is True
    after = _status(daemon)
    assert after["http"]["served"] >= 2  # UserPromptSubmit and PreToolUse at least
    assert after["connections"]["served"] == before["connections"]["served"] + 1  # only this status request: no shim
    assert after["decisions"]["deny"] == before["decisions"]["deny"] + 1


def test_permitted_bash_runs_over_http(http_setup: tuple[Project, DaemonProcess], claude_bin: Path) -> None:
    project, _ = http_setup
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker} && echo made-it", "description": "x"}))
    assert marker.exists()
    assert "made-it" in script.tool_result_text()


def test_ask_blocks_in_print_mode_over_http(http_setup: tuple[Project, DaemonProcess], claude_bin: Path) -> None:
    project, _ = http_setup
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker} && git push", "description": "x"}))
    assert not marker.exists()
    assert "keycardd policy 'ask-before-push'" in script.tool_result_text()


def test_reading_a_private_key_is_denied_over_http(http_setup: tuple[Project, DaemonProcess], claude_bin: Path) -> None:
    project, _ = http_setup
    key = project.home / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n")
    script, _ = project.claude(claude_bin, ("Read", {"file_path": str(key)}))
    assert "deny-private-key-and-credential-files" in script.tool_result_text()
    assert "secret-key-material" not in script.tool_result_text()


def test_daemon_down_blocks_over_http(http_setup: tuple[Project, DaemonProcess], claude_bin: Path) -> None:
    project, daemon = http_setup
    daemon.stop()
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert not marker.exists()
    assert script.requests == []  # the UserPromptSubmit gate blocks first: the prompt never reaches the model


def test_without_on_failure_a_down_daemon_lets_the_tool_run(
    http_setup: tuple[Project, DaemonProcess], claude_bin: Path
) -> None:
    """Why the installer writes `onFailure: block`: the same hooks without it fail open when keycardd is down."""
    project, daemon = http_setup
    settings = project.root / ".claude" / "settings.local.json"
    document = json.loads(settings.read_text())
    for groups in document["hooks"].values():
        for group in groups:
            for hook in group["hooks"]:
                hook.pop("onFailure", None)
    settings.write_text(json.dumps(document))
    daemon.stop()
    marker = project.root / "ran"
    project.claude(claude_bin, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert marker.exists()


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "status", "--json"],
        env=daemon.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout))


def test_the_project_directory_reaches_policies_over_http(
    tmp_path: Path, start_daemon: Callable[..., DaemonProcess], isolated_home: Path, claude_bin: Path
) -> None:
    """As `CLAUDE_PROJECT_DIR` does on the shim path: Claude Code cannot interpolate it into headers, so the
    project install writes it, and a policy on `context.project_dir` decides the same over http."""
    port = free_port()
    root = tmp_path / "project"
    install_http(root, port)
    policy = (
        '@id("base") permit (principal, action, resource);\n'
        '@id("this-project") @reason("Not in this project.") forbid (principal, action, resource == Tool::"bash")\n'
        f'when {{ context has project_dir && context.project_dir == "{root.resolve()}" }};\n'
    )
    daemon = start_daemon(policy=policy, args=["--http-port", str(port)], socket_name="project.sock")
    wait_for_port(port, daemon.process)
    project = Project(root, isolated_home, tmp_path / "no-such.sock")
    marker = root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert not marker.exists()
    assert "keycardd policy 'this-project': Not in this project." in script.tool_result_text()


APPROVE_POLICY = """@id("base") permit (principal, action, resource);
@id("approve-touch") @approve permit (principal, action, resource == Tool::"bash")
when { context has program && context.program == "touch" };
@id("approve-writing-the-marker") @approve permit (principal, action, resource == Tool::"write")
when { context has file_path && context.file_path like "*/ran" };
"""


@pytest.mark.parametrize("approved", [True, False], ids=["allow", "no-objection"])
def test_allow_over_http_stands_in_for_the_permission_prompt(
    tmp_path: Path, start_daemon: Callable[..., DaemonProcess], isolated_home: Path, claude_bin: Path, approved: bool
) -> None:
    """Without --allowedTools, Bash needs a permission that print mode cannot ask for: the command runs only when
    the http hook answers allow."""
    port = free_port()
    root = tmp_path / "project"
    install_http(root, port)
    policy = APPROVE_POLICY if approved else APPROVE_POLICY.splitlines()[0] + "\n"
    daemon = start_daemon(policy=policy, args=["--http-port", str(port)], socket_name="allow.sock")
    wait_for_port(port, daemon.process)
    marker = root / "ran"
    script = Script([("Bash", {"command": f"touch {marker}", "description": "x"})])
    with fake_anthropic(script) as url:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(isolated_home),
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": "sk-ant-dummy",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "IS_SANDBOX": "1",
        }
        result = subprocess.run(
            [str(claude_bin), "-p", "do the task", "--output-format", "stream-json", "--verbose"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert marker.exists() is approved, script.tool_result_text()
    assert _status(daemon)["decisions"]["allow"] == (1 if approved else 0)
