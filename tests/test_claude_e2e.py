"""End to end with the real Claude Code CLI (from npm), offline against a scripted fake Messages API.

The hooks fire for real: Claude Code runs the built C shim from the project's `.claude/settings.json`, the shim asks
a real keycardd, and the test checks both what happened on disk and what the model was told.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, DaemonProcess
from fake_anthropic import Script, fake_anthropic
from shims import build_c_shim

pytestmark = pytest.mark.e2e

CLAUDE_DIR = REPO / ".cache" / "claude"
CLAUDE_BIN = CLAUDE_DIR / "node_modules" / ".bin" / "claude"


ON_FAILURE_VERSION = "2.1.330"
"""A Claude Code that reads `onFailure` (2.1.295 or later; the version issue 13 verified it in)."""


def install_claude_code(version: str | None = None) -> Path:
    """Install @anthropic-ai/claude-code (`version`, else the latest) into .cache once; skip (saying why) where that
    cannot be done."""
    directory = CLAUDE_DIR if version is None else CLAUDE_DIR.with_name(f"claude-{version}")
    binary = directory / "node_modules" / ".bin" / "claude"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so the real Claude Code CLI cannot be installed for the end-to-end test")
    directory.mkdir(parents=True, exist_ok=True)
    package = "@anthropic-ai/claude-code" + (f"@{version}" if version else "")
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", package],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not binary.exists():
        pytest.skip(f"npm could not install {package}: {result.stderr.strip()[-300:]}")
    return binary


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return install_claude_code()


@pytest.fixture(scope="module")
def claude_bin_on_failure() -> Path:
    return install_claude_code(ON_FAILURE_VERSION)


@dataclass
class Project:
    root: Path
    home: Path
    daemon_socket: Path

    def claude(
        self,
        claude_bin: Path,
        *calls: tuple[str, dict[str, Any]],
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> tuple[Script, list[dict[str, Any]]]:
        """Run `claude -p` once; the fake model makes these tool calls, one per turn, then ends the turn. `env` adds
        to Claude Code's environment (its telemetry settings, say)."""
        script = Script(list(calls))
        with fake_anthropic(script) as url:
            full_env = {
                "PATH": os.environ["PATH"],
                "HOME": str(self.home),
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_API_KEY": "sk-ant-dummy",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "KEYCARDD_SOCKET": str(self.daemon_socket),
                "IS_SANDBOX": "1",
                **(env or {}),
            }
            result = subprocess.run(
                [
                    str(claude_bin),
                    "-p",
                    "do the task",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--allowedTools",
                    "Bash,Read,Write,Edit,mcp__db__drop_table",
                    *extra,
                ],
                cwd=self.root,
                env=full_env,
                capture_output=True,
                text=True,
                timeout=180,
                stdin=subprocess.DEVNULL,
            )
        assert result.returncode == 0, result.stderr[-2000:]
        events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        return script, events


@pytest.fixture
def project(tmp_path: Path, daemon: DaemonProcess, isolated_home: Path) -> Iterator[Project]:
    shim = build_c_shim()
    root = tmp_path / "project"
    (root / ".claude").mkdir(parents=True)
    hooks = {
        "hooks": {
            event: [
                {
                    "matcher": "*",
                    "hooks": [{"type": "command", "command": f"{shim} claude --no-autostart", "timeout": 10}],
                }
            ]
            for event in ("PreToolUse", "UserPromptSubmit")
        }
    }
    (root / ".claude" / "settings.json").write_text(json.dumps(hooks))
    yield Project(root, isolated_home, daemon.socket)


def test_forbidden_bash_is_blocked_and_the_model_sees_why(project: Project, claude_bin: Path) -> None:
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker} && rm -rf ~", "description": "x"}))
    assert not marker.exists()
    assert "keycardd policy 'deny-rm-root-or-home'" in script.tool_result_text()
    assert script.tool_results()[0].get("is_error") is True


def test_permitted_bash_runs(project: Project, claude_bin: Path) -> None:
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker} && echo made-it", "description": "x"}))
    assert marker.exists()
    assert "made-it" in script.tool_result_text()


def test_itl_is_asked_and_blocked_in_print_mode(project: Project, claude_bin: Path) -> None:
    marker = project.root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker} && git push", "description": "x"}))
    assert not marker.exists()
    assert "keycardd policy 'ask-before-push'" in script.tool_result_text()


def test_daemon_down_blocks(project: Project, claude_bin: Path, daemon: DaemonProcess) -> None:
    daemon.stop()
    marker = project.root / "ran"
    script, events = project.claude(claude_bin, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert not marker.exists()
    # The UserPromptSubmit gate fails closed first, so the prompt never reaches the model at all.
    assert script.requests == []
    assert "keycardd is not running" in json.dumps(events)


def test_reading_a_private_key_is_blocked(project: Project, claude_bin: Path) -> None:
    key = project.home / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n")
    script, _ = project.claude(claude_bin, ("Read", {"file_path": str(key)}))
    text = script.tool_result_text()
    assert "deny-private-key-and-credential-files" in text
    assert "secret-key-material" not in text


def test_write_to_env_file_is_blocked_and_normal_writes_pass(project: Project, claude_bin: Path) -> None:
    script, _ = project.claude(claude_bin, ("Write", {"file_path": str(project.root / ".env"), "content": "TOKEN=x\n"}))
    assert not (project.root / ".env").exists()
    assert "deny-private-key-and-credential-files" in script.tool_result_text()
    project.claude(claude_bin, ("Write", {"file_path": str(project.root / "notes.md"), "content": "hello\n"}))
    assert (project.root / "notes.md").read_text() == "hello\n"


def test_edit_goes_through_the_hook(project: Project, claude_bin: Path, daemon: DaemonProcess) -> None:
    target = project.root / "app.py"
    target.write_text("DEBUG = False\n")
    edit = {"file_path": str(target), "old_string": "False", "new_string": "True"}
    project.claude(claude_bin, ("Read", {"file_path": str(target)}), ("Edit", edit))  # Claude reads before editing
    assert target.read_text() == "DEBUG = True\n"
    log = Path(daemon.env["XDG_STATE_HOME"]) / "keycard" / "log" / "decisions.jsonl"
    deadline = time.monotonic() + 10
    while not (log.exists() and '"tool":"edit"' in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["tool"] == "edit" and r["event"] == "PreToolUse" and r["agent"] == "claude-code" for r in records)


def installed_project(root: Path, home: Path, socket: Path, shim: str = "auto") -> Project:
    """A project configured by `keycardctl install claude --project` (exec-form hooks; the compiled shim unless
    `shim` says `python`)."""
    root.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "install", "claude", "--project", str(root), "--shim", shim],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Project(root, home, socket)


@pytest.mark.parametrize("shim", ["auto", "python"])
def test_keycardctl_install_puts_keycardd_in_front_of_claude(
    tmp_path: Path, daemon: DaemonProcess, claude_bin: Path, isolated_home: Path, shim: str
) -> None:
    """`keycardctl install claude --project` blocks a forbidden Bash call, through the compiled shim and through the
    Python fallback's launcher alike."""
    project = installed_project(tmp_path / "installed", isolated_home, daemon.socket, shim)
    root = project.root
    marker = root / "ran"
    script, _ = project.claude(claude_bin, ("Bash", {"command": f"touch {marker}; rm -rf ~/", "description": "x"}))
    assert not marker.exists()
    assert "deny-rm-root-or-home" in script.tool_result_text()
    project.claude(claude_bin, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert marker.exists()


def _mcp_config(project: Project, marker: Path) -> tuple[str, ...]:
    config = {
        "mcpServers": {
            "db": {"command": sys.executable, "args": [str(Path(__file__).parent / "mcp_stub_server.py"), str(marker)]}
        }
    }
    path = project.root / "mcp.json"
    path.write_text(json.dumps(config))
    return ("--mcp-config", str(path))


def test_mcp_tool_calls_go_through_the_policy(
    tmp_path: Path, start_daemon: Callable[..., DaemonProcess], claude_bin: Path, isolated_home: Path
) -> None:
    policy = (
        "permit (principal, action, resource);\n"
        '@id("no-drop") @reason("No dropping tables.")\n'
        'forbid (principal, action, resource == Tool::"mcp__db__drop_table")\n'
        'when { context has mcp_server && context.mcp_server == "db" };\n'
    )
    daemon = start_daemon(policy=policy, socket_name="mcp.sock")
    project = installed_project(tmp_path / "mcp-project", isolated_home, daemon.socket)
    marker = tmp_path / "dropped"
    script, _ = project.claude(
        claude_bin, ("mcp__db__drop_table", {"table": "users"}), extra=_mcp_config(project, marker)
    )
    assert not marker.exists()
    assert "keycardd policy 'no-drop': No dropping tables." in script.tool_result_text()


def test_permitted_mcp_tool_runs(project: Project, claude_bin: Path, tmp_path: Path) -> None:
    marker = tmp_path / "dropped"
    script, _ = project.claude(
        claude_bin, ("mcp__db__drop_table", {"table": "tmp"}), extra=_mcp_config(project, marker)
    )
    assert json.loads(marker.read_text())["arguments"] == {"table": "tmp"}
    assert "table dropped" in script.tool_result_text()


# ---- issue 13: a hook that fails must not let the call run -------------------------------------------------------


def _project_with_hook(root: Path, home: Path, socket: Path, argv: list[str], on_failure: bool) -> Project:
    entry: dict[str, Any] = {"type": "command", "command": argv[0], "args": argv[1:], "timeout": 10}
    if on_failure:
        entry["onFailure"] = "block"
    (root / ".claude").mkdir(parents=True)
    settings = {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [entry]}]}}
    (root / ".claude" / "settings.json").write_text(json.dumps(settings))
    return Project(root, home, socket)


@pytest.mark.parametrize("failure", ["missing", "crashing"])
@pytest.mark.parametrize("on_failure", [True, False], ids=["onFailure-block", "no-onFailure"])
def test_a_failing_shim_blocks_only_with_on_failure_block(
    tmp_path: Path,
    daemon: DaemonProcess,
    claude_bin_on_failure: Path,
    isolated_home: Path,
    failure: str,
    on_failure: bool,
) -> None:
    """Without onFailure the call runs when the shim is gone or crashes (the gap issue 13 names); with it, blocked."""
    shim = tmp_path / "bin" / "keycard-hook"
    if failure == "crashing":
        shim.parent.mkdir()
        shim.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
        shim.chmod(0o755)
    project = _project_with_hook(tmp_path / "p", isolated_home, daemon.socket, [str(shim), "claude"], on_failure)
    marker = project.root / "ran"
    project.claude(claude_bin_on_failure, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert marker.exists() is not on_failure


def test_keycardctl_install_then_deleting_the_shim_still_blocks(
    tmp_path: Path, daemon: DaemonProcess, claude_bin_on_failure: Path, isolated_home: Path
) -> None:
    """The real install on a Claude Code that reads onFailure: an agent that deletes the shim gains nothing."""
    root = tmp_path / "installed"
    root.mkdir()
    env = {**os.environ, "PATH": f"{claude_bin_on_failure.parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "install", "claude", "--project", str(root), "--shim", "c"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "onFailure: block" in result.stdout
    settings = json.loads((root / ".claude" / "settings.json").read_text())
    shim = Path(settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"])
    project = Project(root, isolated_home, daemon.socket)
    marker = root / "ran"
    project.claude(claude_bin_on_failure, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert marker.exists()  # installed and working: ordinary calls run
    marker.unlink()
    shim.unlink()
    project.claude(claude_bin_on_failure, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert not marker.exists()


def _with_system_files(claude_bin: Path, etc: Path, work: Path) -> Path:
    """A `claude` that runs in a private mount namespace where `etc` is laid over /etc (overlayfs): Claude Code reads
    its managed settings only from its fixed system path, and the real /etc is never touched. Skips (saying why)
    where namespaces or overlayfs are not available."""
    mount = 'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && shift 2 && exec "$@"'
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", mount, "sh", str(etc), str(work), "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot lay a test /etc over the real one (unshare + overlayfs): {probe.stderr.strip()[-200:]}")
    wrapper = etc.parent / "claude-with-system-files"
    wrapper.write_text(
        f"#!/bin/sh\nexec unshare -m --propagation private sh -c '{mount}' sh {etc} {work} {claude_bin} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def test_managed_settings_from_keycardctl_are_honoured_over_the_projects_own(
    tmp_path: Path, daemon: DaemonProcess, claude_bin_on_failure: Path, isolated_home: Path
) -> None:
    """`keycardctl install claude --managed` into a throw-away root, which Claude Code then sees at /etc/claude-code
    (in a private mount namespace). The project tries both escapes: `disableAllHooks` in its local settings, and its
    own hook that approves everything. Neither works, and a forbidden call is denied by keycardd."""
    root = tmp_path / "root"
    env = {**os.environ, "PATH": f"{claude_bin_on_failure.parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "install", "claude", "--managed", "--root", str(root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "work").mkdir()
    claude = _with_system_files(claude_bin_on_failure, root / "etc", tmp_path / "work")
    project_root = tmp_path / "project"
    (project_root / ".claude").mkdir(parents=True)
    approver_ran = tmp_path / "approver-ran"
    approver = tmp_path / "approve-all.sh"
    allow = '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"}}'
    approver.write_text(f"#!/bin/sh\ncat >/dev/null\ntouch {approver_ran}\necho '{allow}'\n")
    approver.chmod(0o755)
    own_hook = {"type": "command", "command": str(approver)}
    project_settings = {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [own_hook]}]}}
    (project_root / ".claude" / "settings.json").write_text(json.dumps(project_settings))
    (project_root / ".claude" / "settings.local.json").write_text(json.dumps({"disableAllHooks": True}))
    project = Project(project_root, isolated_home, daemon.socket)
    marker = project_root / "ran"
    script, _ = project.claude(claude, ("Bash", {"command": f"touch {marker} && cat ~/.netrc", "description": "x"}))
    assert not marker.exists()  # the project's disableAllHooks does not reach managed hooks
    assert "keycardd policy 'deny-" in script.tool_result_text()  # the credential rule, through the managed hook
    (project_root / ".claude" / "settings.local.json").unlink()  # now the project's own hook would be live
    project.claude(claude, ("Bash", {"command": f"touch {marker}", "description": "x"}))
    assert marker.exists()  # ordinary work goes on through the managed hook (keycardd has no objection) ...
    assert not approver_ran.exists()  # ... and with allowManagedHooksOnly the project's own hook never runs
