"""Attacks on what was merged with the OTLP export, the httptools listener and the install records, by an agent that
runs as the user. Each test here failed before its fix; what held is listed in /work/coord/notes/attack2.md."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketListener
from conftest import DaemonProcess
from otlp_receiver import Receiver
from test_daemon import wait_until
from test_telemetry import claude_read, otel_env, receiver, telemetry
from test_telemetry import decide as decide_daemon

from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, PolicySource
from keycardd.guard import Guard
from keycardd.http_server import HttpHookServer, HttpLimits, bind_http
from keycardd.protocol import DocumentReply, HookRequest, HookResult, Reply, StatusRequest
from keycardd.telemetry.service import STALL_S

__all__ = ["receiver"]  # a fixture, imported for the export process's test

OPEN = PolicySource("open.cedar", '@id("everything") @approve\npermit (principal, action, resource);\n')


def decide(tool: str, tool_input: Any, *, raw: bytes | None = None) -> tuple[str, str]:
    """(decision, reason) for a Claude Code PreToolUse under a policy that approves everything: only the guard or
    the payload checks can refuse."""
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
    payload = {"hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": tool_input, "cwd": "/home/u/proj"}
    answer = decider.decide_hook(Engine.compile([OPEN]), None, "claude", raw or json.dumps(payload).encode(), {})
    assert answer.decision is not None
    return answer.decision.outcome.value, answer.decision.reason


# ---- the guard: a wildcard in a directory component -----------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "ln -sf /tmp/evil ~/.local/share/k*/bin/keycardd",  # the autostart link, repointed
        "ln -sf /tmp/evil ~/.local/share/keycar?/bin/keycardd",
        "ln -sf /tmp/evil ~/.local/*/keycard/bin/keycardd",
        "ln -sf /tmp/evil ~/.*/share/keycard/bin/keycardd",
        "cp /tmp/record.json ~/.local/share/k*/originals/0123.json",  # an install record, rewritten
        "echo '{}' > /srv/*/.claude/settings.local.json",
        "echo '{}' > ./.c[l]aude/settings.local.json",
        "cp /tmp/open.cedar ~/.local/state/*/policy.cedar",
    ],
)
def test_a_wildcard_in_a_directory_does_not_hide_a_protected_file(line: str) -> None:
    decision, reason = decide("Bash", {"command": line})
    assert decision == "deny", reason
    assert "guard-protected-files" in reason


@pytest.mark.parametrize(
    "line",
    [
        "echo KEYCARD_POLICY_FILE=/tmp/open.cedar > ~/.config/environment.d/keycard.conf",
        "echo OTEL_EXPORTER_OTLP_ENDPOINT=https://collector.evil.example > ~/.config/environment.d/otel.conf",
        "cp /tmp/x.conf ~/.config/environment.d/",
    ],
)
def test_the_user_service_environment_is_protected(line: str) -> None:
    """systemd gives ~/.config/environment.d to every user service at its next start: a KEYCARD_POLICY_FILE there
    replaces the policy, an OTEL_* endpoint sends every decision elsewhere."""
    decision, reason = decide("Bash", {"command": line})
    assert decision == "deny", reason


def test_a_path_with_a_nul_byte_is_judged_as_written_and_by_what_comes_before_it() -> None:
    """Before: os.path.realpath raised ValueError on it, out of decide_hook."""
    decision, reason = decide("Write", {"file_path": "~/.claude/settings.json\u0000.txt", "content": "{}"})
    assert decision == "deny", reason
    assert "guard-protected-files" in reason
    payload = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "cwd": "/w\u0000/x"}
    payload["tool_input"] = {"command": "echo {} > .claude/settings.json"}
    assert decide("", None, raw=json.dumps(payload).encode())[0] == "deny"


@pytest.mark.parametrize(
    "line",
    [
        "pkill -STOP -f exporter",  # the export process, stopped: its records held
        "pkill -f telemetry.exporter",
        "kill -STOP $(pgrep -f exporter)",
        "pgrep -f exporter | xargs kill -9",
        "pkill -f .",
    ],
)
def test_a_kill_whose_pattern_selects_keycardds_processes_asks(line: str) -> None:
    """Before: a kill aimed at the export process by a pattern naming no keycard file had no objection."""
    decision, reason = decide("Bash", {"command": line})
    assert decision == "ask", reason
    assert "guard-ask-kill" in reason


@pytest.mark.parametrize("line", ["pkill -f vite", "pkill node", "kill $(pgrep -f 'jest --watch')"])
def test_a_kill_of_other_programs_is_untouched(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "allow"


@pytest.mark.parametrize(
    "line",
    [
        "echo '{\"disableAllHooks\": true}' > /tmp/s.json && claude --settings /tmp/s.json -p 'rm -rf ~/work'",
        "claude --setting-sources '' -p 'rm -rf ~/work'",
        "CLAUDE_CONFIG_DIR=/tmp/empty claude -p 'rm -rf ~/work'",
        "export CODEX_HOME=/tmp/empty; codex exec 'rm -rf ~/work'",
        "codex exec -c features.codex_hooks=false 'rm -rf ~/work'",
        "env HOME=/tmp/h npx @google/gemini-cli -p 'rm -rf ~/work'",
    ],
)
def test_a_nested_agent_started_with_settings_of_its_own_asks(line: str) -> None:
    """Before: a nested agent told to load other settings (with no hooks, or disableAllHooks) ran unchecked."""
    decision, reason = decide("Bash", {"command": line})
    assert decision == "ask", reason
    assert "guard-ask-agent-without-hooks" in reason


@pytest.mark.parametrize("line", ["claude -p 'fix the tests'", "claude -c", "codex exec 'fix'", "HOME=/tmp/h npm test"])
def test_a_nested_agent_with_its_usual_settings_is_untouched(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "allow"


@pytest.mark.parametrize(
    "line",
    [
        "python3 <<'EOF'\nimport os\nopen(os.path.expanduser('~/.claude/settings.json'), 'w').write('{}')\nEOF",
        "echo \"open('/home/u/.claude/settings.local.json', 'w').write('{}')\" | python3",
        "python3 /dev/stdin <<< \"open('/home/u/.codex/hooks.json', 'w')\"",
        'node <<< \'require("fs").writeFileSync(process.env.HOME + "/.cursor/hooks.json", "{}")\'',
    ],
)
def test_a_script_read_from_a_heredoc_or_pipe_that_names_guard_files_is_refused(line: str) -> None:
    """Before: only `python3 -c CODE` was searched for keycard's files; the same code on standard input ran. Python
    read from standard input is now analysed too (its write is denied as the same write in the shell would be); node
    is searched for keycard's files (asked)."""
    decision, reason = decide("Bash", {"command": line})
    assert (decision, reason.split("'")[1]) in {
        ("ask", "guard-ask-script-naming-guard-files"),
        ("deny", "guard-protected-files"),
    }, reason


@pytest.mark.parametrize(
    "line",
    ["cat ~/.claude/settings.json | python3 -m json.tool", "python3 - <<'EOF'\nprint(1)\nEOF", "jq . x | node t.js"],
)
def test_scripts_on_stdin_that_name_nothing_of_keycards_are_untouched(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "allow"


@pytest.mark.parametrize(
    "line",
    [
        "echo 'export KEYCARDD_SOCKET=/tmp/fake.sock' >> ~/.bashrc",  # the next session's hooks ask another daemon
        "echo 'export KEYCARDD_BIN=/tmp/evil' >> ~/.zshenv",  # ... or autostart another program
        "printf 'set -x KEYCARD_POLICY_FILE /tmp/open.cedar' > ~/.config/fish/conf.d/k.fish",
    ],
)
def test_a_change_to_a_shell_startup_file_asks(line: str) -> None:
    """Before: no objection, and the next agent started from a shell ran its hooks with those variables."""
    decision, reason = decide("Bash", {"command": line})
    assert decision == "ask", reason
    assert "guard-ask-shell-startup-file" in reason


@pytest.mark.parametrize("line", ["cat ~/.bashrc", "source ~/.profile", "echo x > ~/dotfiles/.bashrc"])
def test_reading_startup_files_or_a_dotfiles_copy_is_untouched(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "allow"


@pytest.mark.parametrize(
    "line", ["ls src/*/x.py", "cat */package.json", "rm -rf build/*/tmp", "cat .[a-z]*rc", "ls a/*/*/*/*"]
)
def test_ordinary_wildcards_are_untouched(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "allow"


# ---- the other agents' file tools ------------------------------------------------------------------------------

SETTINGS = "~/.claude/settings.json"


def agent_decision(agent: str, payload: dict[str, Any]) -> str:
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
    answer = decider.decide_hook(Engine.compile([OPEN]), None, agent, json.dumps(payload).encode(), {})
    assert answer.decision is not None
    return answer.decision.outcome.value


def test_codex_apply_patch_with_the_patch_as_its_argument_is_decided_per_file() -> None:
    """Codex's shell has an `apply_patch` that applies its first argument: not only the heredoc form."""
    patch = f"*** Begin Patch\n*** Update File: {SETTINGS}\n@@\n-a\n+b\n*** End Patch"
    for command in (f"apply_patch '{patch}'", ["apply_patch", patch]):
        payload = {"session_id": "s", "cwd": "/w", "hook_event_name": "PreToolUse", "tool_name": "Bash"}
        assert agent_decision("codex", {**payload, "tool_input": {"command": command}}) == "deny", command


def test_a_cursor_tool_of_unknown_shape_meets_the_guard() -> None:
    payload = {"hook_event_name": "preToolUse", "conversation_id": "c", "workspace_roots": ["/w"]}
    edit = {"tool_name": "EditNotebook", "tool_input": {"target_notebook": SETTINGS, "new_string": "x"}}
    assert agent_decision("cursor", {**payload, **edit}) == "deny"


def test_a_gemini_tool_of_unknown_shape_meets_the_guard() -> None:
    payload = {"session_id": "s", "cwd": "/w", "hook_event_name": "BeforeTool", "timestamp": "t"}
    edit = {"tool_name": "smart_edit", "tool_input": {"file_path": SETTINGS, "old_string": "a", "new_string": "b"}}
    assert agent_decision("gemini", {**payload, **edit}) in ("ask", "deny")


# ---- odd payloads: a deny, never a crash ------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_tool_input_is_a_malformed_payload_deny(depth: int) -> None:
    """Before: msgspec's RecursionError escaped decide_hook; over http that was a 500, which lets the call run on a
    Claude Code without `onFailure: block`."""
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    raw = b'{"hook_event_name":"PreToolUse","tool_name":"mcp__x__write","tool_input":' + nested + b"}"
    decision, reason = decide("", None, raw=raw)
    assert decision == "deny"
    assert "nested too deeply" in reason


def test_a_deeply_nested_hook_over_the_socket_is_denied_and_the_daemon_keeps_serving(daemon: DaemonProcess) -> None:
    nested = b"[" * 50_000 + b"]" * 50_000
    raw = b'{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls","x":' + nested + b"}}"
    with daemon.client() as client:
        reply = client.request(HookRequest(agent="claude", payload=raw))
        assert isinstance(reply, HookResult)
        answer = json.loads(reply.stdout)["hookSpecificOutput"]
        assert answer["permissionDecision"] == "deny"
        assert isinstance(client.request(StatusRequest()), DocumentReply)
    assert daemon.process.poll() is None


# ---- the http listener: headers that would be a guess ---------------------------------------------------------

SECRET = b"s3cret-for-attacks"
AUTH = b"Authorization: Bearer " + SECRET + b"\r\n"
BODY = b'{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}'
decided: list[HookRequest] = []


async def _decide(hook: HookRequest) -> Reply:
    decided.append(hook)
    return HookResult(stdout=b'{"decided":true}')


@asynccontextmanager
async def serving() -> AsyncIterator[int]:
    server = HttpHookServer(_decide, SECRET.decode(), HttpLimits(read_timeout_s=2, idle_timeout_s=2))
    sock = bind_http("127.0.0.1", 0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, await SocketListener.from_socket(sock))
        yield sock.getsockname()[1]
        server.shutdown()


async def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, close our side, and read everything the listener answers."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        await stream.send_eof()
        received = b""
        with anyio.fail_after(5):
            while True:
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return received


def post(headers: bytes, body: bytes = BODY, version: bytes = b"HTTP/1.1", length: bool = True) -> bytes:
    framing = b"Content-Length: %d\r\n" % len(body) if length else b""
    return (
        (b"POST /hooks/claude " + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n" + headers + framing)
        + b"\r\n"
        + body
    )


CHUNKED = b"%x\r\n%s\r\n0\r\n" % (len(BODY), BODY)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (post(b"Authorization: Bearer wrong\r\n" + AUTH), b"400"),  # which one counts would be a guess
        (post(AUTH + b"Content-Type: text/plain\r\n"), b"400"),
        (post(AUTH + b"X-Keycard-Canary: a\r\nX-Keycard-Canary: b\r\n"), b"400"),
        # a chunked body's trailer is not a header: it arrives after the head was checked
        (post(b"Transfer-Encoding: chunked\r\n", CHUNKED + AUTH + b"\r\n", length=False), b"401"),
        (post(AUTH, version=b"HTTP/2.0"), b"505"),
    ],
)
async def test_ambiguous_or_late_headers_are_refused(request_bytes: bytes, status: bytes) -> None:
    decided.clear()
    async with serving() as port:
        response = await exchange(port, request_bytes)
    assert response.startswith(b"HTTP/1.1 " + status + b" "), response
    assert decided == []


@pytest.mark.anyio
async def test_a_chunked_request_with_one_of_each_header_is_served() -> None:
    decided.clear()
    async with serving() as port:
        response = await exchange(port, post(AUTH + b"Transfer-Encoding: chunked\r\n", CHUNKED + b"\r\n", length=False))
    assert response.startswith(b"HTTP/1.1 200 "), response
    assert [hook.payload for hook in decided] == [BODY]


# ---- the export process: its credentials stay out of what the agent can read -----------------------------------


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/<pid>/environ")
def test_the_export_processs_environment_holds_no_otlp_headers(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    """Before: the export process inherited OTEL_EXPORTER_OTLP_HEADERS (and the daemon's Keycard API secret), and any
    process of the user (`cat /proc/$(pgrep -f telemetry.exporter)/environ`) read them from it."""
    secret = "x-api-key=sk-otlp-9f8e7d6c5b4a"
    zone_secret = {"KEYCARD_API_CLIENT_SECRET": "kc-client-secret-1a2b3c4d"}
    daemon = start_daemon(env={**otel_env(receiver, OTEL_EXPORTER_OTLP_HEADERS=secret), **zone_secret})
    decide_daemon(daemon, claude_read("/work/a"))
    wait_until(lambda: len(receiver.of("keycardd.decision")) == 1)
    assert receiver.headers[0]["x-api-key"] == "sk-otlp-9f8e7d6c5b4a"  # the export still carries it
    pid = telemetry(daemon)["pid"]
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes()
    except PermissionError:  # not dumpable (keycardd/process_privacy.py): only root reads it at all
        return
    assert b"sk-otlp-9f8e7d6c5b4a" not in environment
    assert b"kc-client-secret-1a2b3c4d" not in environment
    assert b"OTEL_EXPORTER_OTLP_ENDPOINT" in environment  # the rest of the environment is passed on


def test_a_stopped_export_process_is_replaced_and_said_so(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    """Before: `kill -STOP` on the export process (a Bash line naming no keycard file: `pkill -STOP -f exporter`)
    held every later record while status showed it running with no error."""
    daemon = start_daemon(env=otel_env(receiver))
    stopped = telemetry(daemon)["pid"]
    os.kill(stopped, signal.SIGSTOP)
    wait_until(lambda: telemetry(daemon)["pid"] not in (stopped, None), timeout_s=STALL_S * 3)
    document = telemetry(daemon)
    assert document["restarts"] >= 1
    assert "no report" in document["last_error"]
    decide_daemon(daemon, claude_read("/work/b"))
    wait_until(lambda: len(receiver.of("keycardd.decision")) >= 1)  # the replacement exports


def test_the_keycardd_the_hooks_autostart_is_protected_where_it_lives(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keycardctl install` from a checkout links <data dir>/keycard/bin/keycardd to that checkout's .venv, which may
    not be the running daemon's installation: before, a Write to the linked program (or its environment) was fine,
    and the next autostart ran it."""
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    environment = tmp_path / "checkout" / ".venv"
    program = environment / "bin" / "keycardd"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    (environment / "pyvenv.cfg").write_text("home = /usr/bin\n")
    link = isolated_home / ".local" / "share" / "keycard" / "bin" / "keycardd"
    link.parent.mkdir(parents=True)
    link.symlink_to(program)
    decider = Decider(Settings(principal=EntityUid("User", "dev@example.com"), guard=Guard.from_environment()))
    site = environment / "lib" / "python3.12" / "site-packages" / "keycardd" / "daemon.py"
    for path in (program, site):
        payload = {"hook_event_name": "PreToolUse", "tool_name": "Write", "cwd": str(tmp_path)}
        payload["tool_input"] = {"file_path": str(path), "content": "import os; os.system('evil')"}
        answer = decider.decide_hook(Engine.compile([OPEN]), None, "claude", json.dumps(payload).encode(), {})
        assert answer.decision is not None and answer.decision.outcome.value == "deny", (path, answer.decision)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_DUMPABLE) is Linux's")
def test_keep_private_makes_the_process_non_dumpable() -> None:
    """A non-dumpable process's /proc/<pid>/environ is root's to read: OTEL_EXPORTER_OTLP_HEADERS or a zone client
    secret in the daemon's environment is then out of the agent's `cat /proc/<pid>/environ`."""
    probe = (
        "import ctypes; from keycardd.process_privacy import keep_private; assert keep_private(); "
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every process's environment")
def test_the_daemons_environment_is_not_readable_by_the_users_other_processes(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = start_daemon(env={"KEYCARD_API_CLIENT_SECRET": "zone-secret-for-test"})
    with pytest.raises(PermissionError):
        Path(f"/proc/{daemon.process.pid}/environ").read_bytes()


# ---- writes the shell analysis did not know: in-place and output options, files named inside an archive or patch -


@pytest.mark.parametrize(
    "line",
    [
        "yq -i '.hooks = {}' ~/.claude/settings.json",  # yq is analysed as a reader, like jq; -i edits in place
        "openssl enc -d -in /tmp/x -out ~/.claude/settings.json",  # openssl is a reader; -out writes
        "cd ~ && tar xf /tmp/dotfiles.tar",  # extracts into the directory cd chose: the analysis has no path for it
        "cd ~/.claude && patch -p0 < /tmp/p",
        "git -C ~ apply /tmp/p",
    ],
)
def test_writes_into_protected_places_the_analysis_now_sees(line: str) -> None:
    assert decide("Bash", {"command": line})[0] in ("deny", "ask")


@pytest.mark.parametrize(
    "line",
    [
        "tar xzf /tmp/release.tgz",  # into the project: nothing protected is there
        "unzip -o /tmp/assets.zip",
        "patch -p1 < /tmp/fix.patch",
        "git checkout -b feature && git pull && git stash pop",
        "git apply --check ~/p.diff",
        "git -C vendor/lib reset --hard",
        "yq '.hooks' ~/.claude/settings.json",  # reading is not changing
        "openssl enc -d -in /tmp/x -out build/x",
        "tar tf ~/backup.tar",  # listing extracts nothing
    ],
)
def test_the_same_programs_working_in_the_project_pass(line: str) -> None:
    assert decide("Bash", {"command": line})[0] == "allow"
