"""install, uninstall and --dry-run as a newcomer runs them in a fresh HOME: a dry run writes and compiles nothing,
uninstall with nothing installed says so, and install then uninstall leaves each agent's files exactly as found."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

AGENTS = ("claude", "cursor", "codex", "gemini")
AGENT_DIRS = {"claude": ".claude", "cursor": ".cursor", "codex": ".codex", "gemini": ".gemini"}


def keycardctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (content) and directory (None) under `root`."""
    return {str(path.relative_to(root)): (path.read_bytes() if path.is_file() else None) for path in root.rglob("*")}


def logging_compiler(directory: Path) -> tuple[Path, Path]:
    """A `cc` that only records that it was called (and fails, so nothing would be built either way)."""
    log = directory / "cc-called.log"
    stub = directory / "cc-stub"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')
    stub.chmod(0o755)
    return stub, log


@pytest.mark.parametrize("agent", AGENTS)
def test_dry_run_compiles_nothing_and_writes_nothing(agent: str, isolated_home: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    stub, log = logging_compiler(tools)
    before = tree(isolated_home)
    result = keycardctl("install", agent, "--dry-run", env={**os.environ, "CC": str(stub)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hooks"], "the dry run prints the file it would write"
    assert not log.exists(), f"--dry-run invoked the compiler: {log.read_text()}"
    assert tree(isolated_home) == before


def test_http_dry_run_creates_no_secret_and_prints_none(isolated_home: Path) -> None:
    before = tree(isolated_home)
    result = keycardctl("install", "claude", "--transport", "http", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert tree(isolated_home) == before
    assert "<the secret in " in result.stdout


@pytest.mark.parametrize("agent", AGENTS)
def test_uninstall_with_nothing_installed_says_so_in_one_sentence(agent: str, isolated_home: Path) -> None:
    result = keycardctl("uninstall", agent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "nothing to uninstall" in lines[0], result.stdout
    assert "up to date" not in result.stdout
    assert not (isolated_home / AGENT_DIRS[agent]).exists()


@pytest.mark.parametrize("agent", AGENTS)
def test_install_then_uninstall_in_a_fresh_home_leaves_no_agent_file(agent: str, isolated_home: Path) -> None:
    installed = keycardctl("install", agent, "--shim", "python")
    assert installed.returncode == 0, installed.stderr
    assert (isolated_home / AGENT_DIRS[agent]).is_dir()
    removed = keycardctl("uninstall", agent)
    assert removed.returncode == 0, removed.stderr
    assert not (isolated_home / AGENT_DIRS[agent]).exists(), tree(isolated_home / AGENT_DIRS[agent])
    assert not list(isolated_home.rglob("*keycardd-backup*"))


EXISTING = {
    "claude": (
        ".claude/settings.json",
        '{"model":"opus",\n "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x"}]}]}}',
    ),
    "cursor": (".cursor/hooks.json", '{ "version": 1, "hooks": { "stop": [ { "command": "notify" } ] } }'),
    "codex": (".codex/hooks.json", '{"hooks":{}}'),
    "gemini": (".gemini/settings.json", '{"theme": "dark"}'),
}


@pytest.mark.parametrize("agent", AGENTS)
def test_install_then_uninstall_restores_an_existing_file_byte_for_byte(agent: str, isolated_home: Path) -> None:
    relative, text = EXISTING[agent]
    config = isolated_home / relative
    config.parent.mkdir(parents=True)
    config.write_text(text)  # compact, odd spacing, no final newline: what a JSON rewrite would change
    config.chmod(0o640)
    codex_toml = isolated_home / ".codex" / "config.toml"
    if agent == "codex":
        codex_toml.write_text('# my settings\nmodel = "o3"   # aligned comment\n')
    before = tree(isolated_home / AGENT_DIRS[agent])

    assert keycardctl("install", agent, "--shim", "python").returncode == 0
    assert config.read_text() != text
    removed = keycardctl("uninstall", agent)
    assert removed.returncode == 0, removed.stderr
    assert tree(isolated_home / AGENT_DIRS[agent]) == before
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_uninstall_keeps_what_the_user_changed_since_install(isolated_home: Path) -> None:
    assert keycardctl("install", "cursor", "--shim", "python").returncode == 0
    hooks = isolated_home / ".cursor" / "hooks.json"
    document = json.loads(hooks.read_text())
    document["hooks"]["afterAgentResponse"] = [{"command": "my-logger"}]
    hooks.write_text(json.dumps(document))
    assert keycardctl("uninstall", "cursor").returncode == 0
    assert json.loads(hooks.read_text()) == {"version": 1, "hooks": {"afterAgentResponse": [{"command": "my-logger"}]}}


def test_reinstalling_keeps_the_original_to_restore(isolated_home: Path) -> None:
    for _ in range(2):
        assert keycardctl("install", "claude", "--shim", "python").returncode == 0
    assert keycardctl("uninstall", "claude").returncode == 0
    assert not (isolated_home / ".claude").exists()
