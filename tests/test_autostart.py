"""Issue 13: the daemon a hook starts cannot be steered by the project the agent is in.

Both real shims start a real keycardd: it runs from `/`, never reads the project's keycard.toml, holds none of the
hook's descriptors, a burst of hook calls starts it once, and when it cannot start the deny names its log.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from shims import Shim, shims

from keycardd import paths
from keycardd.client import Client, DaemonUnavailableError
from keycardd.protocol import DocumentReply, StatusRequest

KEYCARDD = Path(sys.executable).parent / "keycardd"
BASH_RM = json.dumps(
    {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf /"}}
).encode()
PROJECT_TOML = '[zone]\nid = "attacker-zone"\n'


def _reason(stdout: bytes) -> str:
    return str(json.loads(stdout)["hookSpecificOutput"]["permissionDecisionReason"])


def _status() -> dict[str, Any]:
    with Client(timeout_s=5) as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    return reply.body


@pytest.fixture
def stop_autostarted() -> Iterator[None]:
    """Stop whatever daemon the test's shims started (found through its socket)."""
    yield
    try:
        pid = int(_status()["pid"])
    except DaemonUnavailableError:  # nothing started, or it already stopped
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while paths.socket_path().exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.usefixtures("stop_autostarted")
@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_autostarted_daemon_ignores_the_projects_keycard_toml_and_runs_from_root(shim: Shim, tmp_path: Path) -> None:
    """Before: the daemon took the agent's cwd and its keycard.toml (a cloned repository chose the zone)."""
    project = tmp_path / "cloned-repo"
    project.mkdir()
    (project / "keycard.toml").write_text(PROJECT_TOML)
    result = subprocess.run(
        [*shim.argv_prefix, "claude", "--timeout-ms", "15000"],
        input=BASH_RM,
        capture_output=True,
        cwd=project,
        env={**os.environ, "KEYCARDD_BIN": str(KEYCARDD)},
        timeout=60,
    )
    assert _reason(result.stdout).startswith("keycardd policy 'deny-rm-root-or-home'")  # a real decision
    status = _status()
    assert "zone" not in status
    if os.geteuid() == 0:  # the daemon is not dumpable (keycardd/process_privacy.py): only root reads its /proc
        assert os.readlink(f"/proc/{status['pid']}/cwd") == "/"


@pytest.mark.usefixtures("stop_autostarted")
@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_autostarted_daemon_reads_the_user_config_dir(shim: Shim, isolated_home: Path) -> None:
    user_config = isolated_home / ".config" / "keycard" / "keycard.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text('environment = "staging"\n')
    env = {**os.environ, "KEYCARDD_BIN": str(KEYCARDD)}
    result = shim.run("claude", BASH_RM, "--timeout-ms", "15000", env=env)
    assert _reason(result.stdout).startswith("keycardd policy")
    assert str(user_config) in _status()["guard"]["protected"] or any(
        str(user_config).startswith(path) for path in _status()["guard"]["protected"]
    )


@pytest.mark.usefixtures("stop_autostarted")
@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_autostarted_daemon_holds_none_of_the_hooks_descriptors(shim: Shim) -> None:
    """Before: a descriptor the agent left open (here a pipe) stayed open in the daemon for its whole life."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [*shim.argv_prefix, "claude", "--timeout-ms", "15000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "KEYCARDD_BIN": str(KEYCARDD)},
            pass_fds=(write_end,),
        )
        os.close(write_end)
        stdout, _ = process.communicate(BASH_RM, timeout=60)
        assert _reason(stdout).startswith("keycardd policy")
        ready, _, _ = select.select([read_end], [], [], 5)
        assert ready and os.read(read_end, 1) == b"", "the daemon still holds the hook's pipe"
    finally:
        os.close(read_end)


@pytest.mark.usefixtures("stop_autostarted")
@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_a_burst_of_hook_calls_starts_one_daemon(shim: Shim, tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    wrapper = tmp_path / "keycardd"
    wrapper.write_text(f'#!/bin/sh\necho $$ >> {starts}\nexec {KEYCARDD} "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "KEYCARDD_BIN": str(wrapper)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: shim.run("claude", BASH_RM, "--timeout-ms", "20000", env=env), range(8)))
    assert all(_reason(result.stdout).startswith("keycardd policy") for result in results)
    assert len(starts.read_text().split()) == 1


@pytest.mark.parametrize("shim", shims(), ids=lambda shim: shim.name)
def test_a_daemon_that_cannot_start_is_named_with_its_log(shim: Shim, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("not toml = = =\n")
    env = {**os.environ, "KEYCARDD_BIN": str(KEYCARDD), "CLI_CONFIG": str(broken)}
    result = shim.run("claude", BASH_RM, "--timeout-ms", "4000", env=env)
    reason = _reason(result.stdout)
    log = paths.state_dir() / "log" / "autostart.log"
    assert f"the hook started {KEYCARDD} but it exited with status " in reason  # before: "did not answer in time"
    assert reason.endswith(f"before answering; see {log} (set KEYCARDD_BIN to start another keycardd)")
    assert str(broken) in log.read_text()  # the daemon's own one-sentence error
    assert oct(log.stat().st_mode & 0o777) == "0o600"
