"""Issue 19: hooks installed from a checkout start the daemon, and a failed start says it was tried and why.

A checkout's keycardd is in `.venv/bin`, which is on no PATH and not beside the installed shim: `keycardctl install`
records it (`<data dir>/keycard/bin/keycardd`) for the shims. Real installs into the test's throw-away HOME, real
shim subprocesses with an agent's minimal environment, a real daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from shims import PYTHON_LAUNCHER, build_c_shim

from keycardd import paths
from keycardd.client import Client, DaemonUnavailableError
from keycardd.protocol import DocumentReply, StatusRequest

BASH_RM = json.dumps(
    {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf ~"}}
).encode()
SHIMS = {
    "c": lambda: [str(build_c_shim())],
    # as installed hooks run it: the real interpreter (a venv's python resolved), so .venv/bin is not beside it
    "python": lambda: [os.path.realpath(sys.executable), "-I", "-S", str(PYTHON_LAUNCHER)],
}


def agent_env(**extra: str) -> dict[str, str]:
    """What an agent started from a desktop gives its hooks: the test's HOME and runtime dirs, and a PATH without
    the checkout's `.venv/bin` (nor KEYCARDD_BIN)."""
    keep = ("HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "KEYCARDD_SOCKET", "USER", "LANG")
    return {**{name: os.environ[name] for name in keep if name in os.environ}, "PATH": "/usr/bin:/bin", **extra}


def reason(stdout: bytes) -> str:
    return str(json.loads(stdout)["hookSpecificOutput"]["permissionDecisionReason"])


def keycardctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def stop_autostarted() -> Iterator[None]:
    """Stop whatever daemon the test's hooks started (found through its socket)."""
    yield
    try:
        with Client(timeout_s=5) as client:
            reply = client.request(StatusRequest())
    except DaemonUnavailableError:
        return
    assert isinstance(reply, DocumentReply)
    os.kill(int(reply.body["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while paths.socket_path().exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.usefixtures("stop_autostarted")
@pytest.mark.parametrize("kind", ["c", "python"])
def test_hooks_installed_from_a_checkout_start_the_daemon(kind: str, isolated_home: Path) -> None:
    """Before: the installed hook found no keycardd (not beside it, not on PATH) and denied every call."""
    installed = keycardctl("install", "claude", "--shim", kind)
    assert installed.returncode == 0, installed.stderr
    link = isolated_home / ".local" / "share" / "keycard" / "bin" / "keycardd"
    assert os.readlink(link) == str(Path(sys.executable).parent / "keycardd")
    assert f"autostart: {link} -> " in installed.stdout
    settings = json.loads((isolated_home / ".claude" / "settings.json").read_text())
    hook = settings["hooks"]["PreToolUse"][0]["hooks"][0]
    result = subprocess.run(
        [hook["command"], *hook.get("args", []), "--timeout-ms", "20000"],
        input=BASH_RM,
        capture_output=True,
        env=agent_env(),
        timeout=60,
    )
    assert reason(result.stdout).startswith("keycardd policy 'deny-rm-root-or-home'"), result.stderr  # real decision


def test_install_never_replaces_a_file_it_did_not_make(isolated_home: Path) -> None:
    link = isolated_home / ".local" / "share" / "keycard" / "bin" / "keycardd"
    link.parent.mkdir(parents=True)
    link.write_text("#!/bin/sh\n")
    installed = keycardctl("install", "claude", "--shim", "python")
    assert installed.returncode == 0, installed.stderr
    assert not link.is_symlink() and link.read_text() == "#!/bin/sh\n"
    assert f"note: {link} is not keycardd's link and was left as it is" in installed.stdout


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("kind", ["c", "python"])
def test_a_daemon_that_exits_is_named_with_its_status(kind: str, tmp_path: Path) -> None:
    daemon = _script(tmp_path / "keycardd", "echo 'keycardd: a one-sentence failure'; exit 3")
    result = subprocess.run(
        [*SHIMS[kind](), "claude", "--timeout-ms", "20000"],
        input=BASH_RM,
        capture_output=True,
        env=agent_env(KEYCARDD_BIN=str(daemon)),
        timeout=60,
    )
    log = paths.state_dir() / "log" / "autostart.log"
    assert reason(result.stdout) == (
        f"keycardd is not running (nothing listens on {paths.socket_path()}): the hook started {daemon} but it "
        f"exited with status 3 before answering; see {log} (set KEYCARDD_BIN to start another keycardd)"
    )
    assert "a one-sentence failure" in log.read_text()


@pytest.mark.parametrize("kind", ["c", "python"])
def test_a_daemon_that_does_not_answer_in_time_is_named(kind: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    daemon = _script(tmp_path / "keycardd", f"echo $$ > {pid_file}; exec sleep 60")
    try:
        result = subprocess.run(
            [*SHIMS[kind](), "claude", "--timeout-ms", "700"],
            input=BASH_RM,
            capture_output=True,
            env=agent_env(KEYCARDD_BIN=str(daemon)),
            timeout=60,
        )
        text = reason(result.stdout)
        assert text.startswith(f"keycardd is not running (nothing listens on {paths.socket_path()}): the hook ")
        assert f"started {daemon} but it did not answer within 700 ms; see " in text
        assert text.endswith("(set KEYCARDD_BIN to start another keycardd, or raise --timeout-ms)")
    finally:
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.mark.parametrize("kind", ["c", "python"])
def test_no_keycardd_to_start_says_where_it_looked(kind: str, tmp_path: Path, isolated_home: Path) -> None:
    result = subprocess.run(
        [*SHIMS[kind](), "claude"], input=BASH_RM, capture_output=True, env=agent_env(), timeout=60, cwd=tmp_path
    )
    recorded = isolated_home / ".local" / "share" / "keycard" / "bin" / "keycardd"
    assert reason(result.stdout) == (
        f"keycardd is not running (nothing listens on {paths.socket_path()}) and the hook found no keycardd to start "
        f"(not beside it, at {recorded} or on PATH): set KEYCARDD_BIN to keycardd's path, or run `keycardctl "
        "install` again from the keycardd you use"
    )


@pytest.mark.parametrize("kind", ["c", "python"])
def test_a_keycardd_bin_that_is_not_executable_is_named(kind: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-keycardd"
    env = agent_env(KEYCARDD_BIN=str(missing))
    result = subprocess.run([*SHIMS[kind](), "claude"], input=BASH_RM, capture_output=True, env=env, timeout=60)
    assert reason(result.stdout) == (
        f"keycardd is not running (nothing listens on {paths.socket_path()}) and the hook could not start it: "
        f"KEYCARDD_BIN names {missing}, which is not an executable file; set it to keycardd's path"
    )
