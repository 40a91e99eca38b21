"""End to end with the real Codex CLI and Gemini CLI (from npm), offline against scripted fake model servers.

`keycardctl install codex|gemini` writes the hooks (and Codex's trust) into a private HOME exactly as a user would
get them; the CLI then runs one scripted shell call, its hook runs the installed shim, the shim asks a real keycardd
on one Cedar policy, and the test checks what happened on disk and what the model was told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess
from fake_models import Script, fake_model
from npm_cli import install_npm_cli

pytestmark = pytest.mark.e2e

POLICY = """
@id("base") permit (principal, action, resource);
@id("no-rm") @reason("keycardd e2e: rm is not allowed here")
forbid (principal, action, resource == Tool::"bash") when { context has program && context.program == "rm" };
@id("no-secrets") @reason("keycardd e2e: secret files stay untouched")
forbid (principal, action, resource) when { context has file_path && context.file_path like "*secret*" };
@id("ask-touch") @itl("Creating files with touch needs a human")
permit (principal, action, resource == Tool::"bash") when { context has program && context.program == "touch" };
"""


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return install_npm_cli("@openai/codex", "codex")


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    return install_npm_cli("@google/gemini-cli", "gemini")


def keycardctl_install(agent: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "install", agent], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "XDG_DATA_HOME", "KEYCARDD_SOCKET")}
    env.update(HOME=str(home), KEYCARD_HOOK_NO_AUTOSTART="1", **extra)  # "daemon down" must stay down
    env.update(XDG_RUNTIME_DIR=os.environ["XDG_RUNTIME_DIR"], XDG_STATE_HOME=os.environ["XDG_STATE_HOME"])
    return env


def run_codex(codex_bin: Path, home: Path, project: Path, command: str) -> tuple[Script, str]:
    script = Script([("exec_command", {"cmd": command})])
    with fake_model(script, "responses") as url:
        config = home / ".codex" / "config.toml"
        provider = (
            'model = "gpt-5"\nmodel_provider = "fake"\n\n[model_providers.fake]\nname = "fake"\n'
            f'base_url = "{url}/v1"\nwire_api = "responses"\nenv_key = "FAKE_OPENAI_KEY"\n'
            "request_max_retries = 0\nstream_max_retries = 0\n"
        )
        installed = config.read_text() if config.exists() else ""  # keycardctl's trust tables: no top-level keys
        if installed.startswith(provider[:20]):  # a second run in one test: drop the previous run's provider
            installed = installed[installed.index("[hooks") :]
        config.write_text(provider + "\n" + installed)
        result = subprocess.run(
            [
                str(codex_bin),
                "exec",
                "--skip-git-repo-check",
                "--json",
                "--dangerously-bypass-approvals-and-sandbox",
                "go",
            ],
            cwd=project,
            env=agent_env(home, CODEX_HOME=str(home / ".codex"), FAKE_OPENAI_KEY="sk-dummy"),
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
    return script, result.stdout + result.stderr


def run_gemini(
    gemini_bin: Path,
    home: Path,
    project: Path,
    command: str,
    call: tuple[str, dict[str, Any]] | None = None,
    trust_by_env: bool = True,
) -> tuple[Script, str]:
    script = Script([call or ("run_shell_command", {"command": command})])
    with fake_model(script, "gemini") as url:
        env = agent_env(home, GEMINI_API_KEY="dummy", GOOGLE_GEMINI_BASE_URL=url)
        if trust_by_env:
            env["GEMINI_CLI_TRUST_WORKSPACE"] = "true"
        result = subprocess.run(
            [str(gemini_bin), "-p", "go", "--yolo", "--output-format", "json", "-m", "gemini-2.5-flash"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
    return script, result.stdout + result.stderr


@pytest.fixture
def codex_setup(isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    (isolated_home / ".codex").mkdir()
    monkeypatch.setenv("CODEX_HOME", str(isolated_home / ".codex"))
    keycardctl_install("codex")
    project = tmp_path / "codex-project"
    project.mkdir()
    return isolated_home, project


@pytest.fixture
def gemini_setup(isolated_home: Path, tmp_path: Path) -> tuple[Path, Path]:
    (isolated_home / ".gemini").mkdir()
    (isolated_home / ".gemini" / "settings.json").write_text('{"security":{"auth":{"selectedType":"gemini-api-key"}}}')
    keycardctl_install("gemini")
    project = tmp_path / "gemini-project"
    project.mkdir()
    return isolated_home, project


AGENTS = ["codex", "gemini"]


def run(agent: str, request: pytest.FixtureRequest, command: str, *, model_reached: bool = True) -> tuple[Script, Path]:
    home, project = request.getfixturevalue(f"{agent}_setup")
    binary = request.getfixturevalue(f"{agent}_bin")
    runner: Callable[..., tuple[Script, str]] = run_codex if agent == "codex" else run_gemini
    (project / "victim").mkdir(exist_ok=True)
    script, output = runner(binary, home, project, command)
    if model_reached:
        assert script.turns == 1, f"the fake model never got to make its tool call: {output[-3000:]}"
    request.node.agent_output = output
    return script, project


@pytest.mark.parametrize("agent", AGENTS)
def test_forbidden_shell_command_is_blocked_with_the_policy_reason(
    agent: str, request: pytest.FixtureRequest, start_daemon: Callable[..., DaemonProcess]
) -> None:
    start_daemon(policy=POLICY)
    script, project = run(agent, request, "rm -rf victim")
    assert (project / "victim").is_dir()
    assert "keycardd e2e: rm is not allowed here" in script.told()


@pytest.mark.parametrize("agent", AGENTS)
def test_permitted_shell_command_runs(
    agent: str, request: pytest.FixtureRequest, start_daemon: Callable[..., DaemonProcess]
) -> None:
    start_daemon(policy=POLICY)
    script, project = run(agent, request, "echo guarded > out.txt")
    assert (project / "out.txt").read_text() == "guarded\n"
    assert "keycardd policy" not in script.told() and "keycardd is not running" not in script.told()


@pytest.mark.parametrize("agent", AGENTS)
def test_daemon_down_blocks(agent: str, request: pytest.FixtureRequest, isolated_home: Path) -> None:
    """The prompt gate fails closed first, so the model is never even asked; nothing runs either way."""
    script, project = run(agent, request, "echo unguarded > out.txt", model_reached=False)
    assert not (project / "out.txt").exists()
    assert script.turns == 0
    if agent == "gemini":  # Codex ends the blocked turn without printing the reason; Gemini shows it
        assert "keycardd is not running" in request.node.agent_output


@pytest.mark.parametrize("agent", AGENTS)
def test_ask_becomes_a_deny_that_explains_itself(
    agent: str, request: pytest.FixtureRequest, start_daemon: Callable[..., DaemonProcess]
) -> None:
    start_daemon(policy=POLICY)
    script, project = run(agent, request, "touch asked.txt")
    assert not (project / "asked.txt").exists()
    told = script.told()
    assert "Creating files with touch needs a human" in told
    assert "hooks cannot ask" in told


def test_codex_apply_patch_to_a_forbidden_file_is_blocked(
    request: pytest.FixtureRequest, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Codex applies a model's `apply_patch` heredoc itself (hook tool `Bash`): the file is decided as a write."""
    start_daemon(policy=POLICY)
    patch = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: secret.txt\n+leaked\n*** End Patch\nEOF\n"
    script, project = run("codex", request, patch)
    assert not (project / "secret.txt").exists()
    assert "keycardd e2e: secret files stay untouched" in script.told()
    script, project = run("codex", request, patch.replace("secret.txt", "notes.txt"))
    assert (project / "notes.txt").read_text() == "leaked\n"


def test_gemini_write_file_to_a_forbidden_file_is_blocked(
    gemini_setup: tuple[Path, Path], gemini_bin: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Gemini's file tools reach the same `Tool::"write"` resource and `file_path` as Claude Code's Write."""
    start_daemon(policy=POLICY)
    home, project = gemini_setup
    call = ("write_file", {"file_path": "secret.txt", "content": "leaked"})
    script, output = run_gemini(gemini_bin, home, project, "", call)
    assert script.turns == 1, output[-2000:]
    assert not (project / "secret.txt").exists()
    assert "keycardd e2e: secret files stay untouched" in script.told()
    call = ("write_file", {"file_path": "notes.txt", "content": "fine"})
    script, output = run_gemini(gemini_bin, home, project, "", call)
    assert (project / "notes.txt").read_text() == "fine"


def test_gemini_project_install_guards_a_folder_trusted_in_trusted_folders_json(
    isolated_home: Path, tmp_path: Path, gemini_bin: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """A project install runs where Gemini trusts the folder the way doctor reads it (trustedFolders.json)."""
    start_daemon(policy=POLICY)
    (isolated_home / ".gemini").mkdir()
    (isolated_home / ".gemini" / "settings.json").write_text('{"security":{"auth":{"selectedType":"gemini-api-key"}}}')
    project = tmp_path / "trusted-project"
    project.mkdir()
    (project / "victim").mkdir()
    (isolated_home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "install", "gemini", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    script, output = run_gemini(gemini_bin, isolated_home, project, "rm -rf victim", trust_by_env=False)
    assert script.turns == 1, output[-2000:]
    assert (project / "victim").is_dir()
    assert "keycardd e2e: rm is not allowed here" in script.told()
