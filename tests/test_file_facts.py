"""File tools, MCP arguments and URLs: canonical facts, and the default policy's protections on them.

The attacks below went through the default policy as `no_objection` before canonical facts (checked against the
parent commit's tree): a second spelling of a key file, a path under an argument name no rule looked at, a
numeric spelling of the metadata address. They only use the public decision path, so the same file runs on both.
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
from shims import build_c_shim

from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, default_policy_source

ENGINE = Engine.compile([default_policy_source()])
CWD = "/work/proj"


def claude(tool: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"hook_event_name": "PreToolUse", "cwd": CWD, "tool_name": tool, "tool_input": tool_input}


def cursor_mcp(tool_input: dict[str, Any]) -> dict[str, Any]:
    return {
        "hook_event_name": "beforeMCPExecution",
        "workspace_roots": [CWD],
        "server_name": "filesystem",
        "tool_name": "read_file",
        "tool_input": json.dumps(tool_input),
    }


def decide(payload: dict[str, Any], agent: str = "claude") -> str:
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
    answer = decider.decide_hook(ENGINE, None, agent, json.dumps(payload).encode(), {})
    assert answer.decision is not None
    return answer.decision.outcome.value


def home() -> str:
    return os.environ["HOME"]


ATTACKS: list[tuple[str, str, dict[str, Any]]] = [
    # (id, agent, payload); `~` is the test's private HOME
    ("windows key, upper case", "claude", claude("Read", {"file_path": "C:\\Users\\U\\.ssh\\ID_RSA"})),
    ("key with a custom name", "claude", claude("Read", {"file_path": "~/.ssh/github_deploy"})),
    ("windows trailing dot", "claude", claude("Read", {"file_path": "C:\\proj\\.env."})),
    ("windows data stream", "claude", claude("Read", {"file_path": "C:\\proj\\.env::$DATA"})),
    ("env file variant", "claude", claude("Read", {"file_path": ".env.development"})),
    (
        "env file of another tool",
        "claude",
        claude("Edit", {"file_path": ".envrc", "old_string": "a", "new_string": "b"}),
    ),
    ("tls private key", "claude", claude("Read", {"file_path": "certs/server.key"})),
    ("gh token", "claude", claude("Read", {"file_path": "~/.config/gh/hosts.yml"})),
    ("aws sso cache", "claude", claude("Read", {"file_path": "~/.aws/sso/cache/abc.json"})),
    ("grep inside ~/.ssh", "claude", claude("Grep", {"pattern": ".", "path": "~/.ssh", "output_mode": "content"})),
    ("grep inside ~/.aws", "claude", claude("Grep", {"pattern": "aws_secret", "path": "$HOME/.aws"})),
    ("mcp file key", "claude", claude("mcp__fs__read_file", {"file": "~/.aws/credentials"})),
    ("mcp path list", "claude", claude("mcp__fs__read_multiple_files", {"paths": ["README.md", "~/.ssh/id_ed25519"]})),
    ("mcp nested path", "claude", claude("mcp__fs__copy", {"options": {"from": {"source": ".env"}}})),
    ("mcp camelCase key", "claude", claude("mcp__fs__open", {"targetFile": "../proj/.env"})),
    ("mcp file uri", "claude", claude("mcp__docs__fetch", {"uri": "file:///etc/../root/.ssh/id_rsa"})),
    ("mcp absolute under any key", "claude", claude("mcp__x__y", {"q": "/root/.aws/credentials"})),
    ("mcp metadata url", "claude", claude("mcp__fetch__fetch", {"url": "http://0xA9FEA9FE/latest/meta-data/"})),
    ("mcp metadata in a list", "claude", claude("mcp__fetch__many", {"links": ["http://2852039166/"]})),
    ("webfetch decimal", "claude", claude("WebFetch", {"url": "http://2852039166/latest/", "prompt": "x"})),
    ("webfetch hex", "claude", claude("WebFetch", {"url": "http://0xa9.0xfe.0xa9.0xfe/", "prompt": "x"})),
    ("webfetch octal", "claude", claude("WebFetch", {"url": "http://0251.0376.0251.0376/", "prompt": "x"})),
    ("webfetch short", "claude", claude("WebFetch", {"url": "http://169.254.43518/", "prompt": "x"})),
    ("webfetch mapped v6", "claude", claude("WebFetch", {"url": "http://[::ffff:a9fe:a9fe]/", "prompt": "x"})),
    ("webfetch upper case", "claude", claude("WebFetch", {"url": "http://METADATA.GOOGLE.INTERNAL./", "prompt": "x"})),
    ("webfetch percent", "claude", claude("WebFetch", {"url": "http://169.254.169.%32%35%34/", "prompt": "x"})),
    ("webfetch EKS pod identity", "claude", claude("WebFetch", {"url": "http://169.254.170.23/v1/", "prompt": "x"})),
    ("webfetch GCP v6", "claude", claude("WebFetch", {"url": "http://[fd20:ce::254]/", "prompt": "x"})),
    (
        "webfetch fullwidth",
        "claude",
        claude(
            "WebFetch",
            {
                "url": "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/",
                "prompt": "x",
            },
        ),
    ),
    (
        "grep glob into credentials",
        "claude",
        claude("Grep", {"pattern": "AKIA", "path": "~", "glob": "**/credentials"}),
    ),
    ("grep glob for env files", "claude", claude("Grep", {"pattern": "KEY", "glob": "**/.env"})),
    ("grep glob for keys", "claude", claude("Grep", {"pattern": "PRIVATE", "path": "~", "glob": "*.pem"})),
    ("mcp path under a url key", "claude", claude("mcp__docs__open", {"uri": "~/.ssh/id_rsa"})),
    ("mcp json in a string", "claude", claude("mcp__x__call", {"args": '{"path": "~/.aws/credentials"}'})),
    (
        "authorized_keys back door",
        "claude",
        claude("Edit", {"file_path": "~/.ssh/authorized_keys", "old_string": "", "new_string": "ssh-ed25519 AAAA x"}),
    ),
    ("cursor mcp path", "cursor", cursor_mcp({"path": "~/.ssh/id_rsa"})),
    ("cursor mcp url", "cursor", cursor_mcp({"url": "http://[::ffff:169.254.169.254]/"})),
]


@pytest.mark.parametrize(("agent", "payload"), [pytest.param(a, p, id=i) for i, a, p in ATTACKS])
def test_attack_is_denied(agent: str, payload: dict[str, Any]) -> None:
    assert decide(payload, agent) == "deny"


CASE_ATTACKS = [
    claude("Read", {"file_path": "~/.SSH/ID_RSA"}),
    claude("Write", {"file_path": "~/.Aws/Credentials", "content": "x"}),
    claude("Read", {"file_path": "/PROJ/.ENV"}),
    {"hook_event_name": "beforeReadFile", "file_path": "~/.SSH/id_ed25519", "workspace_roots": [CWD]},
]


@pytest.mark.parametrize("payload", CASE_ATTACKS)
def test_case_spellings_are_denied_where_the_disk_ignores_case(
    payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYCARDD_CASE_INSENSITIVE_PATHS", "1")
    agent = "cursor" if payload["hook_event_name"] == "beforeReadFile" else "claude"
    assert decide(payload, agent) == "deny"


@pytest.mark.parametrize(
    "payload",
    [
        claude("Read", {"file_path": "~/.ssh/id_rsa.pub"}),
        claude("Read", {"file_path": "~/.ssh/known_hosts"}),
        claude("Read", {"file_path": "~/.ssh/config"}),
        claude("Read", {"file_path": ".env.example"}),
        claude("Write", {"file_path": ".env.sample", "content": "A=\n"}),
        claude("Read", {"file_path": "src/auth/keys.py"}),
        claude("Read", {"file_path": "docs/environment.md"}),
        claude("Read", {"file_path": "~/.gitconfig"}),
        claude("Grep", {"pattern": "TODO", "path": "src"}),
        claude("Grep", {"pattern": "useEffect", "glob": "*.tsx", "path": "src"}),
        claude("Read", {"file_path": "~/.ssh/authorized_keys"}),
        claude("Grep", {"pattern": "~/.ssh/id_rsa", "path": "docs"}),  # searching for the text is not reading it
        claude("Glob", {"pattern": "**/*.pem", "path": "."}),  # lists names, reads nothing
        claude("WebFetch", {"url": "https://docs.python.org/3/library/ipaddress.html", "prompt": "x"}),
        claude("WebFetch", {"url": "http://169.254.169.254.example.com/", "prompt": "x"}),
        claude("mcp__context7__get-library-docs", {"context7CompatibleLibraryID": "/vercel/next.js"}),
        claude("mcp__fs__read_file", {"path": "README.md"}),
        claude("mcp__notes__write", {"text": "see ~/.ssh/id_rsa\nfor the key"}),  # text, not a path
        cursor_mcp({"path": "src/main.py"}),
    ],
)
def test_ordinary_file_and_web_work_passes(payload: dict[str, Any]) -> None:
    agent = "cursor" if payload["hook_event_name"] == "beforeMCPExecution" else "claude"
    assert decide(payload, agent) in ("no_objection", "allow")


def test_case_is_kept_where_the_disk_respects_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYCARDD_CASE_INSENSITIVE_PATHS", "0")
    # on ext4, ~/.SSH/ID_RSA is not the key; a policy that names `/Work/*` still matches `/Work/x`
    assert decide(claude("Read", {"file_path": "~/.SSH/ID_RSA"})) == "no_objection"


def test_policies_see_canonical_paths_and_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYCARDD_CASE_INSENSITIVE_PATHS", "1")
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
    payload = claude("mcp__fs__copy", {"source": "~//Notes/../A.txt", "destination": "B.TXT", "url": "http://0x7f.1/"})
    answer = decider.decide_hook(ENGINE, None, "claude", json.dumps(payload).encode(), {})
    assert answer.decision is not None
    contexts = [request.context for request in answer.decision.requests]
    folded_home = home().lower()
    assert [context.get("file_path") for context in contexts] == [f"{folded_home}/a.txt", "/work/proj/b.txt"]
    assert {context.get("host") for context in contexts} == {"127.0.0.1"}
    assert all(context["home"] == folded_home for context in contexts)


def test_arguments_too_large_to_search_are_refused() -> None:
    deep: dict[str, Any] = {"path": "x"}
    for _ in range(20):
        deep = {"child": deep}
    assert decide(claude("mcp__x__deep", deep)) == "deny"
    wide = {"items": [f"item {index}" for index in range(5000)]}
    assert decide(claude("mcp__x__wide", wide)) == "deny"


def test_attacks_through_the_shim_and_a_live_daemon(daemon: DaemonProcess) -> None:
    shim = build_c_shim()
    for _, agent, payload in ATTACKS[::4]:
        result = subprocess.run(
            [str(shim), agent],
            input=json.dumps(payload).encode(),
            capture_output=True,
            env=daemon.env,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0
        answer = json.loads(result.stdout)
        if agent == "claude":
            assert answer["hookSpecificOutput"]["permissionDecision"] == "deny", payload
        else:
            assert answer["permission"] == "deny", payload


def test_the_daemon_folds_case_when_configured(start_daemon: Callable[..., DaemonProcess]) -> None:
    shim = build_c_shim()
    attack = json.dumps(claude("Read", {"file_path": "~/.SSH/ID_RSA"})).encode()
    for setting, expected in (("1", "deny"), ("0", None)):
        daemon = start_daemon(env={"KEYCARDD_CASE_INSENSITIVE_PATHS": setting}, socket_name=f"fold{setting}.sock")
        result = subprocess.run(
            [str(shim), "claude"], input=attack, capture_output=True, env=daemon.env, timeout=30, check=False
        )
        assert result.returncode == 0
        if expected is None:
            assert result.stdout == b""  # case-sensitive disk: ~/.SSH/ID_RSA is another file
        else:
            assert json.loads(result.stdout)["hookSpecificOutput"]["permissionDecision"] == expected
        daemon.stop()


def test_the_daemon_refuses_to_start_on_a_bad_case_setting(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(env={"KEYCARDD_CASE_INSENSITIVE_PATHS": "maybe"}, wait=False)
    assert daemon.process.wait(timeout=30) != 0
    assert "KEYCARDD_CASE_INSENSITIVE_PATHS must be 1 or 0" in daemon.log()


@pytest.mark.parametrize(
    ("tool", "tool_input", "expected"),
    [
        (
            "Write",
            {"file_path": "~/.local/state/keycard/policy.cedar", "content": "permit (principal, action, resource);"},
            "deny",
        ),
        ("Edit", {"file_path": "~/.claude/settings.json", "old_string": '"hooks"', "new_string": '"x"'}, "deny"),
        ("Write", {"file_path": ".claude/settings.local.json", "content": "{}"}, "deny"),
        ("Edit", {"file_path": "keycard.toml", "old_string": "zone", "new_string": "zone"}, "ask"),
        ("Bash", {"command": "echo '{}' > ~/.claude/settings.json"}, "deny"),
        ("Bash", {"command": "rm -f ~/.local/state/keycard/policy.d/team.cedar"}, "deny"),
        ("PowerShell", {"command": "Set-Content ~/.cursor/hooks.json '{}'"}, "deny"),
    ],
)
def test_changing_the_guard_asks_a_human(tool: str, tool_input: dict[str, Any], expected: str) -> None:
    """The default policy asks; where keycardd's guard (issue 13, keycardd/guard_policy.cedar) protects the file, the
    stricter answer, deny, wins."""
    assert decide(claude(tool, tool_input)) == expected


@pytest.mark.parametrize(
    "payload",
    [
        claude("Read", {"file_path": "/proc/self/environ"}),
        claude("Bash", {"command": "cat /proc/1234/environ"}),
        claude("PowerShell", {"command": "Get-Content /proc/self/environ"}),
    ],
)
def test_process_environments_are_credentials(payload: dict[str, Any]) -> None:
    assert decide(payload) == "deny"


def test_reading_the_hook_settings_is_ordinary() -> None:
    assert decide(claude("Read", {"file_path": "~/.claude/settings.json"})) == "no_objection"


def test_the_reason_names_the_path_that_decided() -> None:
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
    payload = claude("mcp__fs__read_multiple_files", {"paths": ["README.md", "/root/.ssh/id_ed25519", "b.txt"]})
    answer = decider.decide_hook(ENGINE, None, "claude", json.dumps(payload).encode(), {})
    assert answer.decision is not None
    assert answer.decision.reason.endswith("(for `/root/.ssh/id_ed25519`)")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cat .env", "deny"),
        ("cat ~/.aws/config", "deny"),
        ("cat ~/.npmrc", "deny"),
        ("cat ~/.pgpass", "deny"),
        ("cat certs/server.pem", "deny"),
        ("cat tls/server.key", "deny"),
        ("cat ~/.ssh/id_rsa.pub ~/.ssh/id_rsa", "deny"),  # `.pub` exempts its own path, not the line
        ("cp .env.production /tmp/x", "deny"),
        ("cat ~/.ssh/id_rsa.pub", "no_objection"),
        ("cat .env.example", "no_objection"),
        ("cp .env.sample .env.example", "no_objection"),
    ],
)
def test_the_credential_rule_covers_shell_reads_path_by_path(line: str, expected: str) -> None:
    assert decide(claude("Bash", {"command": line})) == expected


@pytest.mark.parametrize("tool", ["StrReplace", "TabWrite", "Write"])
def test_cursor_file_tools_meet_the_same_rules(tool: str) -> None:
    def cursor(path: str) -> dict[str, Any]:
        return {
            "hook_event_name": "preToolUse",
            "workspace_roots": [CWD],
            "tool_name": tool,
            "tool_input": {"file_path": path, "old_string": "a", "new_string": "b", "content": "x"},
        }

    assert decide(cursor("~/.ssh/authorized_keys"), "cursor") == "deny"
    assert decide(cursor(".env.production"), "cursor") == "deny"
    assert decide(cursor("~/.cursor/hooks.json"), "cursor") == "deny"  # keycardd's guard (issue 13)
    assert decide(cursor("src/main.ts"), "cursor") == "no_objection"


def test_keycardctl_says_what_is_wrong_with_a_bad_case_setting(tmp_path: Path) -> None:
    request = tmp_path / "read.json"
    request.write_text(json.dumps(claude("Read", {"file_path": "~/.SSH/ID_RSA"})))
    env = {**os.environ, "KEYCARDD_CASE_INSENSITIVE_PATHS": "maybe"}
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "explain", "--agent", "claude", str(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "keycardctl: KEYCARDD_CASE_INSENSITIVE_PATHS must be 1 or 0, got 'maybe'"
