"""Issue 13: the agent keycardd checks cannot switch keycardd off.

Every attack here passed with no objection before the guard (the issue's own first line replaced the whole policy).
The in-process tests use the same `Decider` the daemon runs; the live tests go through the real C and Python shims
to a real daemon and check that the policy on disk is unchanged and that a human's edit still reloads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess
from shims import shims

from keycardd import paths
from keycardd.adapters import Decider, Settings
from keycardd.engine import (
    TOOL_USE,
    CedarRequest,
    Engine,
    EntityUid,
    Outcome,
    PolicySource,
    Verdict,
    default_policy_source,
)
from keycardd.guard import Guard, Location
from keycardd.protocol import DocumentReply, StatusRequest

CORPUS = Path("/work/shared/corpus/benign-commands.jsonl")
OPEN_POLICY = '@id("everything") @approve\npermit (principal, action, resource);\n'
CLOSED_POLICY = '@id("only-reads") permit (principal, action == Action::"Agent::ToolUse", resource == Tool::"read");\n'


def decide(
    tool: str, tool_input: dict[str, Any], *, policy: str | None = None, cwd: str = "/home/u/proj"
) -> tuple[str, str]:
    """(decision, reason) for one Claude Code PreToolUse call under `policy` (default: the embedded default)."""
    source = PolicySource("test.cedar", policy) if policy is not None else default_policy_source()
    payload = {"hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": tool_input, "cwd": cwd}
    answer = DECIDER.decide_hook(Engine.compile([source]), None, "claude", json.dumps(payload).encode(), {})
    assert answer.decision is not None
    return answer.decision.outcome.value, answer.decision.reason


def cursor_decide(event: str, **fields: Any) -> dict[str, Any]:
    payload = {"hook_event_name": event, "conversation_id": "c", "workspace_roots": ["/home/u/proj"], **fields}
    raw = json.dumps(payload).encode()
    answer = DECIDER.decide_hook(Engine.compile([default_policy_source()]), None, "cursor", raw, {})
    result: dict[str, Any] = json.loads(answer.stdout)
    return result


DECIDER = Decider(Settings(principal=EntityUid("User", "dev@example.com")))


def state(path: str) -> str:
    """A path in the state directory as this test's HOME lays it out, spelled with `~`."""
    return "~/.local/state/keycard/" + path


# ---- writes by the file tools ----------------------------------------------------------------------------------

PROTECTED_FILES = [
    state("policy.cedar"),
    state("policy.d/zz-approve-all.cedar"),
    state("zone-policy.json"),
    state("log/decisions.jsonl"),
    "~/.config/keycard/keycard.toml",
    "~/.local/share/keycard/bin/keycard-hook",
    "~/.claude/settings.json",
    "~/.claude/settings.local.json",
    "/home/u/proj/.claude/settings.json",
    ".claude/settings.local.json",
    "/srv/other-repo/.claude/settings.local.json",
    "~/.cursor/hooks.json",
    "/home/u/proj/.cursor/hooks.json",
    "/etc/claude-code/managed-settings.json",
    "/Library/Application Support/ClaudeCode/managed-settings.json",
    "/etc/cursor/hooks.json",
    "~/.config/systemd/user/keycardd.service",
    "~/.config/systemd/user/keycardd.service.d/override.conf",
    "~/Library/LaunchAgents/ai.keycard.keycardd.plist",
    # Codex's and Gemini CLI's hooks, where keycardd's hook is installed for them, and the trust that enables them
    "~/.codex/hooks.json",
    "~/.codex/config.toml",
    "/home/u/proj/.codex/hooks.json",
    "~/.gemini/settings.json",
    "~/.gemini/trustedFolders.json",
    "/home/u/proj/.gemini/settings.json",
]


@pytest.mark.parametrize("path", PROTECTED_FILES)
@pytest.mark.parametrize("tool", ["Write", "Edit", "MultiEdit"])
def test_file_tools_cannot_write_protected_files(tool: str, path: str) -> None:
    tool_input = {"file_path": path, "content": "{}", "old_string": "a", "new_string": "b", "edits": []}
    decision, reason = decide(tool, tool_input)
    assert decision == "deny", reason
    assert "guard-protected-files" in reason


def test_package_and_environment_files_are_protected() -> None:
    import cedarpy

    import keycardd

    for path in (keycardd.__file__, cedarpy.__file__):
        assert decide("Write", {"file_path": path, "content": "x"})[0] == "deny", path
    assert decide("NotebookEdit", {"notebook_path": keycardd.__file__, "new_source": "x"})[0] == "deny"


@pytest.mark.parametrize("path", PROTECTED_FILES[:3])
def test_reading_protected_files_is_still_fine(path: str) -> None:
    assert decide("Read", {"file_path": path}) == (
        "no_objection",
        "keycardd policy 'default-permit-ordinary-work': permitted",
    )


def test_ordinary_files_are_not_touched_by_the_guard() -> None:
    for path in ("/home/u/proj/src/app.py", "/home/u/proj/.claude/commands/review.md", "/home/u/proj/claude.json"):
        assert decide("Write", {"file_path": path, "content": "x"})[0] == "no_objection", path


# ---- shell spellings -------------------------------------------------------------------------------------------

SHELL_WRITES = [
    "echo 'permit(principal,action,resource);' > ~/.local/state/keycard/policy.cedar",
    "printf '@approve\\npermit(principal,action,resource);' >> ~/.local/state/keycard/policy.d/x.cedar",
    "echo '{\"disableAllHooks\": true}' > .claude/settings.local.json",
    "echo '{}' > ~/.cursor/hooks.json",
    "cat /tmp/evil.json | tee ~/.claude/settings.json",
    "echo x > $HOME/.claude/settings.json",
    "echo x > ${HOME}/.config/keycard/keycard.toml",
    "echo '{}' > ~/.codex/hooks.json",
    "sed -i /keycard/d ~/.codex/config.toml",
    "echo '{}' > .gemini/settings.json",
    "rm -rf ~/.gemini",
    # the attack pass: a redirect target split by IFS, cp's target directory option, a clone into the hooks dir
    "echo {} > ~/.claude/settings.json${IFS}",
    "cp -t ~/.claude evil.json",
    "git clone https://x.example/r ~/.claude",
    "cd ~ && git clone git@x.example:x/.claude.git",
    "echo x > ~/.claude/$f",
]


SHELL_SPELLINGS = [
    "cd ~/.local/state/keycard && echo 'permit(principal,action,resource);' > policy.cedar",
    "cp /tmp/open.cedar ~/.local/state/keycard/policy.cedar",
    "cp /tmp/open.cedar ~/.local/state/keycard/policy.d/",
    "mv /tmp/open.cedar ~/.local/state/keycard/policy.cedar",
    "mv ~/.local/state/keycard/policy.cedar /tmp/gone",
    "rm ~/.local/state/keycard/policy.cedar",
    "rm -rf ~/.local/state/keycard",
    "rm -rf ~/.local/state",
    "ln -sf /tmp/open.cedar ~/.local/state/keycard/policy.cedar",
    "sed -i 's/forbid/permit/' ~/.local/state/keycard/policy.cedar",
    "truncate -s 0 ~/.local/state/keycard/policy.cedar",
    "install -m 644 /tmp/open.cedar ~/.local/state/keycard/policy.cedar",
    "chmod 000 ~/.local/state/keycard/policy.cedar",
    "dd if=/tmp/open.cedar of=$HOME/.local/state/keycard/policy.cedar",
    "cp /bin/true ~/.local/share/keycard/bin/keycard-hook",
    "rm .claude/settings.json",
    "mv ~/.claude ~/.claude.off",
    "rm -rf .cursor",
    "cp /tmp/evil.json ./.claude/settings.local.json",
    "find ~/.local/state/keycard -name '*.cedar' -delete",
    "ln -s ~/.local/state/keycard/policy.cedar p.cedar",  # then Write p.cedar: through the link
    "ln ~/.local/state/keycard/policy.cedar p.cedar",  # a hard link: the same file under another name
    "tar xf /tmp/evil.tar -C ~",
    "unzip -o /tmp/evil.zip -d ~",
    "rsync -a /tmp/evil/ ~/",
    "cp -r /tmp/evil/.claude ~",
    "cp -al ~/.claude /tmp/linked",  # hard links to every file in it
    "cp --link ~/.claude/settings.json x.json",
]


@pytest.mark.parametrize("line", SHELL_WRITES)
def test_shell_writes_to_protected_files_are_denied(line: str) -> None:
    decision, reason = decide("Bash", {"command": line})
    assert decision == "deny", reason


@pytest.mark.parametrize("line", SHELL_SPELLINGS)
def test_every_shell_spelling_of_a_change_is_refused(line: str) -> None:
    """Per-path shell requests: each path a command names, with how it touches it (`file_path`, `access`)."""
    decision, reason = decide("Bash", {"command": line})
    assert decision == "deny", reason
    assert "guard-protected-files" in reason


@pytest.mark.parametrize("line", ["true && echo x > ~/.claude/settings.json", "true || echo x > ~/.cursor/hooks.json"])
def test_a_redirect_after_a_list_is_seen(line: str) -> None:
    """tree-sitter puts `> f` on the whole list in `a && b > f`; the write must still be seen."""
    assert decide("Bash", {"command": line})[0] == "deny"


# ---- stopping keycardd asks ------------------------------------------------------------------------------------

STOPPING = [
    "keycardctl uninstall claude",
    "keycardctl uninstall cursor --project .",
    "keycardctl install claude --shim python",
    "keycardctl service stop",
    "keycardctl service uninstall",
    "systemctl --user stop keycardd",
    "systemctl --user stop keycardd.socket keycardd.service",
    "systemctl --user disable --now keycardd.socket",
    "systemctl --user mask keycardd.service",
    "systemctl --user kill keycardd",
    "systemctl --user set-environment KEYCARD_POLICY_FILE=/tmp/open.cedar",
    "launchctl bootout gui/501/ai.keycard.keycardd",
    "launchctl unload ~/Library/LaunchAgents/ai.keycard.keycardd.plist",
    "pkill keycardd",
    "pkill -f keycardd.daemon",
    "killall keycardd",
    "killall python3",
    "kill -9 -1",
    "kill $(pgrep keycardd)",
    "sudo pkill -9 keycardd",
    "vim ~/.claude/settings.json",
    'cd "$(dirname ~/.claude/settings.json)" && rm settings.json',
    "git clone https://example.com/x ~/.local/state/keycard/policy.d/x",
    "pgrep keycardd | xargs kill",  # the pids come from elsewhere; the line names keycardd
    "HOME=/tmp; rm ~/.claude/settings.json",  # the path is only known at run time; the name is protected
    "rm ~/.claude/settings.js*",  # a wildcard that can match a protected file
    "rm ~/.claude/*",
    "pip uninstall -y keycardd",
    "pipx uninstall keycardd",
    "uv tool uninstall keycardd",
    "brew uninstall keycardd",
    "python3 -m pip install --force-reinstall ./evil-keycardd",
    "python3 -c \"open('/home/u/.local/state/keycard/policy.cedar','w').write('permit(principal,action,resource);')\"",
    "node -e \"require('fs').writeFileSync(process.env.HOME+'/.claude/settings.json','{}')\"",
]


@pytest.mark.parametrize("line", STOPPING)
def test_stopping_or_removing_keycardd_asks(line: str) -> None:
    decision, reason = decide("Bash", {"command": line})
    assert decision in ("ask", "deny"), reason
    # node code that writes files is unseen code to keycardd (deny-unseen-code), which is stricter than the guard's ask
    assert decision == "ask" or "guard" in reason or "deny-unseen-code" in reason


@pytest.mark.parametrize("line", ["Stop-Process -Name keycardd", "spps -Name python3", "taskkill /IM keycardd.exe /F"])
def test_powershell_stopping_keycardd_asks(line: str) -> None:
    assert decide("PowerShell", {"command": line})[0] == "ask"


def test_killing_the_daemon_by_its_pid_asks() -> None:
    guard = Guard([], pids=[4242])
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com"), guard=guard))
    engine = Engine.compile([default_policy_source()])
    for line, expected in (("kill -9 4242", "ask"), ("kill -TERM 4242", "ask"), ("kill 4243", "no_objection")):
        payload = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": line}}
        answer = decider.decide_hook(engine, None, "claude", json.dumps(payload).encode(), {})
        assert answer.decision is not None and answer.decision.outcome.value == expected, line


@pytest.mark.parametrize(
    "line",
    [
        "keycardctl status",
        "keycardctl doctor",
        "systemctl --user status keycardd",
        "kill 48213",
        "pkill -f 'node server.js'",
        "pip install requests",
        "npm install",
        "rm -rf build/*",
        "rm *.pyc",
        "lsof -ti:3000 | xargs kill",
    ],
)
def test_looking_at_keycardd_is_fine(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "no_objection"


# ---- the guard only ever makes answers stricter ----------------------------------------------------------------


def test_a_users_approve_everything_policy_cannot_outvote_the_guard() -> None:
    assert decide("Write", {"file_path": state("policy.cedar"), "content": "x"}, policy=OPEN_POLICY)[0] == "deny"
    assert decide("Bash", {"command": "keycardctl uninstall claude"}, policy=OPEN_POLICY)[0] == "ask"
    assert decide("Write", {"file_path": "/home/u/proj/a.py", "content": "x"}, policy=OPEN_POLICY)[0] == "allow"


def test_the_guards_asks_never_turn_a_users_deny_into_an_ask() -> None:
    for line in ("keycardctl uninstall claude", "pkill keycardd", "systemctl --user stop keycardd"):
        decision, reason = decide("Bash", {"command": line}, policy=CLOSED_POLICY)
        assert decision == "deny", reason
        assert "default deny" in reason


def test_a_user_policy_sees_the_guard_facts() -> None:
    stricter = (
        OPEN_POLICY + '@id("no-reading-guarded") forbid (principal, action, resource) when { context has guard };\n'
    )
    assert decide("Read", {"file_path": state("policy.cedar")}, policy=stricter)[0] == "deny"


def test_cursor_tools_are_guarded_too() -> None:
    for tool in ("Write", "Delete", "Edit"):
        answer = cursor_decide(
            "preToolUse", tool_name=tool, tool_input={"file_path": "/home/u/proj/.cursor/hooks.json"}
        )
        assert answer["permission"] == "deny", (tool, answer)
    shell = cursor_decide("beforeShellExecution", command="echo '{}' > .cursor/hooks.json", cwd="/home/u/proj")
    assert shell["permission"] == "deny"


def test_benign_corpus_is_untouched_by_the_guard() -> None:
    """Ordinary work must not meet the guard: no corpus call is decided by a guard policy."""
    engine = Engine.compile([default_policy_source()])
    for line in CORPUS.read_text().splitlines():
        entry = json.loads(line)
        answer = DECIDER.decide_hook(engine, None, entry["agent"], json.dumps(entry["payload"]).encode(), {})
        if answer.decision is not None:
            assert not any(p.startswith("guard-") for p in answer.decision.policies), entry["id"]


def test_protected_locations_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "elsewhere" / "team.cedar"
    monkeypatch.setenv("KEYCARD_POLICY_FILE", str(policy))
    guard = Guard.from_environment()
    assert guard.protects(str(policy), "write") == "keycard policy"
    assert guard.protects(str(tmp_path / "elsewhere"), "delete") == "keycard policy"  # a parent: rm -rf, mv
    assert guard.protects(str(tmp_path / "elsewhere"), "read") is None
    assert guard.protects(str(paths.state_dir().parent), "delete") is not None
    assert guard.protects(str(tmp_path / "unrelated.txt"), "write") is None


def test_a_change_through_a_symbolic_link_is_judged_where_it_leads(isolated_home: Path, tmp_path: Path) -> None:
    """Before: `ln -s ~/.claude x` (or any link made earlier) and then a Write to `x/settings.json` passed."""
    (isolated_home / ".claude").mkdir()
    link = tmp_path / "project" / "x"
    link.parent.mkdir()
    link.symlink_to(isolated_home / ".claude")
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
    engine = Engine.compile([default_policy_source()])
    for tool, field in (("Write", "file_path"), ("Read", "file_path")):
        payload = {
            "hook_event_name": "PreToolUse",
            "tool_name": tool,
            "tool_input": {field: str(link / "settings.json")},
        }
        answer = decider.decide_hook(engine, None, "claude", json.dumps(payload).encode(), {})
        assert answer.decision is not None
        assert answer.decision.outcome.value == ("deny" if tool == "Write" else "no_objection"), tool


def test_case_folded_paths_are_matched_on_case_insensitive_systems() -> None:
    guard = Guard([Location("/Users/u/.local/state/keycard", "keycard state")], fold_case=True)
    assert guard.protects("/users/U/.Local/State/Keycard/policy.cedar", "write") == "keycard state"
    assert guard.protects("/x/.CLAUDE/Settings.Local.json", "write") == "Claude Code hook settings"


# ---- live: the real shims against a real daemon ----------------------------------------------------------------


def _hook(payload: dict[str, Any]) -> bytes:
    return json.dumps({"session_id": "s", "hook_event_name": "PreToolUse", **payload}).encode()


def _permission(stdout: bytes) -> str:
    if not stdout:
        return "no_objection"
    return str(json.loads(stdout)["hookSpecificOutput"]["permissionDecision"])


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    with daemon.client() as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    return reply.body


@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_live_self_disabling_calls_are_refused_and_the_policy_stays(
    shim: Any, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    policy_file = paths.state_dir() / "policy.cedar"
    policy_file.parent.mkdir(parents=True, exist_ok=True)
    original = default_policy_source().text
    policy_file.write_text(original)
    daemon = start_daemon()
    project = tmp_path / "project"
    project.mkdir()
    attacks = [
        ("Bash", {"command": f"echo 'permit(principal,action,resource);' > {policy_file}"}, "deny"),
        (
            "Bash",
            {"command": "echo '@approve permit(principal,action,resource);' > ~/.local/state/keycard/policy.d/a.cedar"},
            "deny",
        ),
        ("Write", {"file_path": str(policy_file), "content": "permit(principal,action,resource);"}, "deny"),
        (
            "Edit",
            {"file_path": str(project / ".claude" / "settings.local.json"), "old_string": "{", "new_string": "{"},
            "deny",
        ),
        ("Bash", {"command": "echo '{\"disableAllHooks\":true}' > .claude/settings.local.json"}, "deny"),
        ("Bash", {"command": f"cp /bin/true {paths.state_dir()}/policy.d/a.cedar"}, "deny"),
        ("Bash", {"command": f"ln -sf /dev/null {policy_file}"}, "deny"),
        ("Bash", {"command": f"sed -i 's/forbid/permit/' {policy_file}"}, "deny"),
        ("Bash", {"command": "rm -rf ~/.local/state/keycard"}, "deny"),
        ("Bash", {"command": "keycardctl uninstall claude"}, "ask"),
        ("Bash", {"command": "systemctl --user stop keycardd"}, "ask"),
        ("Bash", {"command": "pkill keycardd"}, "ask"),
    ]
    for tool, tool_input, expected in attacks:
        payload = _hook({"tool_name": tool, "tool_input": tool_input, "cwd": str(project)})
        result = shim.run("claude", payload, env=daemon.env)
        assert result.returncode == 0, result.stderr
        assert _permission(result.stdout) == expected, (tool, tool_input, result.stdout)
    assert policy_file.read_text() == original
    assert not (paths.state_dir() / "policy.d").exists()
    assert daemon.process.poll() is None

    # A human edits the policy outside the agent: it is live within a second, and the guard still holds.
    before = _status(daemon)["policy"]["sha256"]
    no_make = (
        '@id("no-make") forbid (principal, action, resource) when { context has program && context.program == "make" };'
    )
    policy_file.write_text(f"{original}\n{no_make}\n")
    deadline = time.monotonic() + 5
    while _status(daemon)["policy"]["sha256"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    make = _hook({"tool_name": "Bash", "tool_input": {"command": "make test"}, "cwd": str(project)})
    assert _permission(shim.run("claude", make, env=daemon.env).stdout) == "deny"
    write = _hook({"tool_name": "Write", "tool_input": {"file_path": str(policy_file), "content": "x"}})
    assert _permission(shim.run("claude", write, env=daemon.env).stdout) == "deny"
    assert "guard" in _status(daemon)


@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
@pytest.mark.parametrize("event", ["beforeSomethingNew", "preWebFetch"])
def test_shims_deny_an_unknown_cursor_gate_when_keycardd_cannot_answer(shim: Any, event: str) -> None:
    """Before: with no daemon the shims answered `{}` to an unknown before*/pre* event (the daemon, `allow`)."""
    payload = json.dumps({"hook_event_name": event, "conversation_id": "c", "file_path": "/x"}).encode()
    result = shim.run("cursor", payload, "--no-autostart")
    assert result.returncode == 0
    answer = json.loads(result.stdout)
    assert answer["permission"] == "deny" and answer["continue"] is False
    assert "keycardd is not running" in answer["agent_message"]
    observed = json.dumps({"hook_event_name": "afterSomethingNew", "conversation_id": "c"}).encode()
    assert json.loads(shim.run("cursor", observed, "--no-autostart").stdout) == {}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("find ~ -name settings.json -path '*claude*' -exec cp /dev/null {} \\;", "ask"),
        ("find ~/work -path '*/.claude/*' -delete", "ask"),
        ("find . -name '*.json' -exec cat {} +", "no_objection"),
        ("find . -name settings.json", "no_objection"),  # only listed
        ("shopt -s cdable_vars; d=~/.claude; cd d && echo {} > settings.json", "ask"),  # cd follows $d
    ],
)
def test_guard_files_reached_indirectly_ask(line: str, expected: str) -> None:
    """-exec's program sees only `{}` (the names find's tests select are the files it changes); with cdable_vars
    `cd d` goes where $d points: the working directory is unknown and the name is all there is."""
    assert decide("Bash", {"command": line})[0] == expected


@pytest.mark.parametrize(
    ("args", "writes", "expected"),
    [
        (["settings.json"], [], "ask"),
        (["-rf", ".claude"], [], "ask"),
        (["policy.d/open.cedar"], [], "ask"),
        ([], ["/unknown/settings.local.json"], "ask"),
        (["notes.txt"], [], "no_objection"),
    ],
)
def test_a_protected_name_in_a_directory_known_only_at_run_time_asks(
    args: list[str], writes: list[str], expected: str
) -> None:
    """`cd "$(dirname ~/.claude/settings.json)" && rm settings.json`: the analysis cannot place the path (unknown
    cwd), so the name is all there is to go on."""
    guard = Guard([])
    context = {"program": "rm", "command": "rm", "args": args, "writes": writes, "unknowns": ["cwd"]}
    request = CedarRequest(EntityUid("User", "u"), TOOL_USE, EntityUid("Tool", "bash"), context)
    baseline = Verdict(Outcome.NO_OBJECTION, (), "permitted", guard.mark(request))
    assert guard.review([baseline])[0].outcome.value == expected
    known = {**context, "unknowns": []}
    assert "guard" not in guard.mark(replace(request, context=known)).context
