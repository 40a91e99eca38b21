"""keycardctl install|uninstall codex|gemini on real files, with Codex's hook trust checked by the real Codex CLI.

Codex skips an untrusted hook silently and runs the command, so "installed" means "trusted by Codex": the proof is
`codex app-server`'s own `hooks/list`, which reports each hook's `trustStatus` from the same files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from npm_cli import install_npm_cli

from keycardd.install import codex

EXISTING_CONFIG = '# my settings\nmodel = "o3"\n\n[projects."/somewhere"]\ntrust_level = "trusted"\n'
EXISTING_HOOKS = {
    "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/bin/true"}]}]}
}


def keycardctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def codex_hooks(codex_bin: Path, cwd: Path) -> list[dict[str, Any]]:
    """The hooks the real Codex sees for `cwd`, with their trust status (app-server JSON-RPC over stdio)."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "hooks/list", "params": {"cwds": [str(cwd)]}},
    ]
    process = subprocess.Popen(
        [str(codex_bin), "app-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write("".join(json.dumps(request) + "\n" for request in requests))
        process.stdin.flush()
        for line in process.stdout:
            message = json.loads(line)
            if message.get("id") == 2:
                return list(message["result"]["data"][0]["hooks"])
        raise AssertionError("codex app-server ended without answering hooks/list")
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return install_npm_cli("@openai/codex", "codex")


@pytest.fixture
def codex_home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = isolated_home / ".codex"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    return home


def test_codex_install_is_trusted_by_codex_and_uninstall_is_exact(codex_bin: Path, codex_home: Path) -> None:
    (codex_home / "config.toml").write_text(EXISTING_CONFIG)
    (codex_home / "hooks.json").write_text(json.dumps(EXISTING_HOOKS))
    before = codex_hooks(codex_bin, codex_home)
    assert [hook["trustStatus"] for hook in before] == ["untrusted"]  # what Codex does with an unrecorded hook

    result = keycardctl("install", "codex")
    assert result.returncode == 0, result.stderr
    hooks = codex_hooks(codex_bin, codex_home)
    ours = [hook for hook in hooks if "keycard" in hook["command"]]
    assert sorted(hook["eventName"] for hook in ours) == ["permissionRequest", "preToolUse", "userPromptSubmit"]
    assert all(hook["trustStatus"] == "trusted" for hook in ours), ours
    theirs = [hook for hook in hooks if hook["command"] == "/bin/true"]
    assert [hook["trustStatus"] for hook in theirs] == ["untrusted"]  # never trust what is not ours
    config = (codex_home / "config.toml").read_text()
    assert config.startswith(EXISTING_CONFIG)  # comments and layout kept

    assert keycardctl("install", "codex").stdout.count("already up to date") == 1  # idempotent
    assert (codex_home / "config.toml").read_text() == config

    assert keycardctl("uninstall", "codex").returncode == 0
    assert json.loads((codex_home / "hooks.json").read_text()) == EXISTING_HOOKS
    assert (codex_home / "config.toml").read_text() == EXISTING_CONFIG


def test_codex_trust_goes_stale_when_the_hook_changes(codex_bin: Path, codex_home: Path) -> None:
    """doctor's check (`codex.untrusted`) agrees with Codex when someone edits the installed hook."""
    assert keycardctl("install", "codex").returncode == 0
    path = codex_home / "hooks.json"
    document = json.loads(path.read_text())
    config = tomlkit.parse((codex_home / "config.toml").read_text())
    assert codex.untrusted(document, path.resolve(), config) == []
    document["hooks"]["PreToolUse"][0]["hooks"][0]["timeout"] = 11
    path.write_text(json.dumps(document))
    stale = codex.untrusted(document, path.resolve(), config)
    assert stale == [f"{path.resolve()}:pre_tool_use:0:0"]
    statuses = {hook["key"]: hook["trustStatus"] for hook in codex_hooks(codex_bin, codex_home)}
    assert statuses[stale[0]] != "trusted"


def test_codex_project_install(codex_bin: Path, codex_home: Path, tmp_path: Path) -> None:
    """Codex loads a project's hooks only in a project trusted in config.toml: install says so and doctor fails."""
    project = tmp_path / "repo"
    project.mkdir()
    result = keycardctl("install", "codex", "--project", str(project))
    assert result.returncode == 0 and "only once you trust" in result.stdout
    assert codex_hooks(codex_bin, project) == []  # what Codex does with an untrusted project's hooks
    trust = [check for check in json.loads(keycardctl("doctor", "--json", "--project", str(project)).stdout)
             if check["check"] == "codex trust"]  # fmt: skip
    assert [check["ok"] for check in trust] == [False] and "not trusted" in trust[0]["detail"]

    config_path = codex_home / "config.toml"
    config_path.write_text(f'[projects."{project.resolve()}"]\ntrust_level = "trusted"\n\n' + config_path.read_text())
    hooks = codex_hooks(codex_bin, project)
    assert sorted(hook["trustStatus"] for hook in hooks) == ["trusted"] * 3
    document = json.loads((project / ".codex" / "hooks.json").read_text())
    config = tomlkit.parse(config_path.read_text())
    assert codex.untrusted(document, (project / ".codex" / "hooks.json").resolve(), config) == []
    assert keycardctl("uninstall", "codex", "--project", str(project)).returncode == 0
    assert config_path.read_text() == f'[projects."{project.resolve()}"]\ntrust_level = "trusted"\n'
    assert codex_hooks(codex_bin, project) == []


def test_gemini_install_and_exact_uninstall(isolated_home: Path) -> None:
    settings = isolated_home / ".gemini" / "settings.json"
    settings.parent.mkdir()
    existing = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "hooks": {"BeforeTool": [{"matcher": "write_file", "hooks": [{"type": "command", "command": "/bin/true"}]}]},
    }
    settings.write_text(json.dumps(existing))
    assert keycardctl("install", "gemini").returncode == 0
    installed = json.loads(settings.read_text())
    ours = installed["hooks"]["BeforeTool"][1]
    assert ours["matcher"] == ".*"
    assert ours["hooks"][0]["timeout"] == 10_000  # milliseconds
    assert ours["hooks"][0]["command"].endswith(" gemini")
    assert installed["hooks"]["BeforeAgent"][0]["hooks"][0]["name"] == "keycardd"
    assert "already up to date" in keycardctl("install", "gemini").stdout
    assert keycardctl("uninstall", "gemini").returncode == 0
    assert json.loads(settings.read_text()) == existing


def test_doctor_runs_canaries_through_both_hooks_and_catches_an_untrusted_codex_hook(
    codex_home: Path, start_daemon: Any
) -> None:
    start_daemon()
    assert keycardctl("install", "codex").returncode == 0
    assert keycardctl("install", "gemini").returncode == 0
    report = keycardctl("doctor", "--json")
    checks = json.loads(report.stdout)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        by_name.setdefault(check["check"], []).append(check)
    for agent in ("codex", "gemini"):
        canaries = by_name[f"{agent} hook (C shim)"]
        assert [check["ok"] for check in canaries] == [True, True], canaries
        assert {check["detail"].split(":")[0] for check in canaries} == {"forbidden canary", "permitted canary"}
    assert [check["ok"] for check in by_name["codex trust"]] == [True]
    assert report.returncode == 0, report.stdout

    hooks = codex_home / "hooks.json"
    document = json.loads(hooks.read_text())
    document["hooks"]["PreToolUse"][0]["hooks"][0]["command"] += " --timeout-ms 1500"  # edited after install
    hooks.write_text(json.dumps(document))
    report = keycardctl("doctor", "--json")
    trust = [check for check in json.loads(report.stdout) if check["check"] == "codex trust"]
    assert trust[0]["ok"] is False and "untrusted" in trust[0]["detail"] and "unguarded" in trust[0]["detail"]
    assert report.returncode == 1


def test_doctor_says_which_hook_decides_when_cursor_also_runs_claude_hooks(isolated_home: Path) -> None:
    assert keycardctl("install", "claude").returncode == 0
    assert keycardctl("install", "cursor").returncode == 0
    checks = json.loads(keycardctl("doctor", "--json").stdout)
    overlap = [check for check in checks if check["check"] == "cursor and claude hooks"]
    assert len(overlap) == 1 and "decides a call Cursor reports through both once" in overlap[0]["detail"]
    assert keycardctl("uninstall", "cursor").returncode == 0
    checks = json.loads(keycardctl("doctor", "--json").stdout)
    assert not [check for check in checks if check["check"] == "cursor and claude hooks"]


def test_doctor_fails_a_gemini_project_install_in_an_untrusted_folder(isolated_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    assert keycardctl("install", "gemini", "--project", str(project)).returncode == 0

    def trust_checks() -> list[dict[str, Any]]:
        checks = json.loads(keycardctl("doctor", "--json", "--project", str(project)).stdout)
        return [check for check in checks if check["check"] == "gemini folder trust"]

    assert [check["ok"] for check in trust_checks()] == [False]
    rules = isolated_home / ".gemini" / "trustedFolders.json"
    rules.parent.mkdir(exist_ok=True)
    rules.write_text(json.dumps({str(tmp_path): "TRUST_FOLDER", str(project): "DO_NOT_TRUST"}))
    assert [check["ok"] for check in trust_checks()] == [False]  # the longest rule wins, as in Gemini
    rules.write_text(json.dumps({str(tmp_path): "TRUST_FOLDER"}))
    assert [check["ok"] for check in trust_checks()] == [True]
