"""Issue 19: a newcomer's first hour, scripted. The README's quick start, every command exactly as it is written,
in a fresh copy of the checkout, with a throw-away HOME.

The copy holds the checkout's tracked files (`git ls-files`, from the work tree, so uncommitted changes are walked
too) and nothing built: `make run` creates its own `.venv`, installs keycardd into it and builds the shim, as on a
fresh clone. What it shares with this machine: `python3` and `cc` from the PATH, and pip's cache and settings
(`PIP_CACHE_DIR`, so the packages are not downloaded again). Claude Code is a stand-in on the PATH that only answers
`claude --version` (a recent one, so `install` gives the gates `onFailure` and `doctor` passes): the hooks are run
by the walk itself, as Claude Code would run them. HOME, the XDG directories and the socket are the
test's own (conftest's isolated_home). The daemon is stopped as Ctrl-C stops it, and the copy is deleted.

`make test` itself is not walked: this test is part of it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from readme_quick_start import REPO, quick_start_blocks

from keycardd import paths

SERVE_TIMEOUT_S = 300
"""`make run` builds the venv first: about 20-40 s with pip's cache on this machine, more under load."""


def copy_tracked_files(source: Path, target: Path) -> None:
    """What a clone of `source` would hold, with its uncommitted changes: every tracked file, links as links."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=source, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        origin, copy = source / name, target / name
        if not origin.exists() and not origin.is_symlink():  # deleted in the work tree, not yet committed
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            copy.symlink_to(os.readlink(origin))
        else:
            shutil.copy2(origin, copy)


def pip_cache_dir() -> str | None:
    """The user's pip cache (found from the real home: the test's HOME is a throw-away one)."""
    if os.environ.get("PIP_CACHE_DIR"):
        return os.environ["PIP_CACHE_DIR"]
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path(real_home) / ".cache") / "pip"
    return str(cache) if cache.is_dir() else None


def newcomer_env(tools: Path) -> dict[str, str]:
    """The test's isolated environment as a newcomer's shell: no virtualenv active, this checkout's venv off the
    PATH, the real `python3` first (a pyenv shim would look for its versions under the throw-away HOME), and
    `tools` (the Claude Code stand-in)."""
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "XDG_DATA_HOME", "PYTHONPATH")}
    outer_venv = str(Path(sys.executable).parent)
    interpreter = str(Path(os.path.realpath(sys.executable)).parent)
    rest = [directory for directory in env.get("PATH", "").split(os.pathsep) if directory != outer_venv]
    env["PATH"] = os.pathsep.join([str(tools), interpreter, *rest])
    cache = pip_cache_dir()
    if cache is not None:
        env["PIP_CACHE_DIR"] = cache
    return env


def wait_until_served(make: subprocess.Popen[bytes], socket: Path, log: Path) -> float:
    started = time.monotonic()
    while not socket.exists():
        assert make.poll() is None, f"`make run` exited with {make.returncode}:\n{log.read_text(errors='replace')}"
        assert time.monotonic() - started < SERVE_TIMEOUT_S, f"keycardd did not serve:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    return time.monotonic() - started


def check(command: str, result: subprocess.CompletedProcess[str], home: Path) -> None:
    """What each quick-start command must have done (besides exiting 0)."""
    words = command.split()
    settings = home / ".claude" / "settings.json"
    if words[1:2] == ["status"]:
        assert "keycardd " in result.stdout and "embedded:default" in result.stdout
    elif words[1:3] == ["install", "claude"]:
        assert "keycard-hook" in settings.read_text()
    elif words[1:2] == ["doctor"]:
        assert "canary" in result.stdout
    elif words[0] == "echo":
        output = json.loads(result.stdout)["hookSpecificOutput"]
        assert output["permissionDecision"] == "deny"
        assert output["permissionDecisionReason"].startswith("keycardd policy 'deny-rm-root-or-home'")
    elif words[1:3] == ["uninstall", "claude"]:
        assert not settings.exists()  # the fresh HOME had none: uninstall leaves it as install found it
    else:
        raise AssertionError(f"the walk does not know what `{command}` must do: add it to check()")


def stop(make: subprocess.Popen[bytes], sig: int) -> None:
    """Signal `make run`'s process group (make and keycardd), as Ctrl-C in its terminal does."""
    if make.poll() is None:
        os.killpg(make.pid, sig)


def test_a_newcomer_walks_the_quick_start(tmp_path: Path, isolated_home: Path) -> None:
    server_block, client_block = quick_start_blocks()
    clone = tmp_path / "keycardd"
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "claude").write_text("#!/bin/sh\necho '2.1.330 (Claude Code)'\n")
    (tools / "claude").chmod(0o755)
    env = newcomer_env(tools)
    timings: dict[str, float] = {}
    started = time.monotonic()
    copy_tracked_files(REPO, clone)
    assert not (clone / ".venv").exists() and not (clone / "hooks" / "keycard-hook").exists()
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        make = subprocess.Popen(
            ["bash", "-c", server_block[0]],
            cwd=clone,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        timings["make run until keycardd serves"] = wait_until_served(make, paths.socket_path(), log)
        for command in client_block:
            begun = time.monotonic()
            result = subprocess.run(
                ["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True, timeout=120
            )
            timings[command.split("|")[-1].strip()[:60]] = time.monotonic() - begun
            assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            check(command, result, isolated_home)
        stop(make, signal.SIGINT)
        assert make.wait(timeout=30) in (0, 2, -signal.SIGINT, 128 + signal.SIGINT), log.read_text()
        assert not paths.socket_path().exists(), "keycardd left its socket behind"
    finally:
        stop(make, signal.SIGTERM)
        try:
            make.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop(make, signal.SIGKILL)
            make.wait()
        shutil.rmtree(clone, ignore_errors=True)
    timings["whole walk"] = time.monotonic() - started
    print("\n".join(f"{seconds:7.1f} s  {step}" for step, seconds in timings.items()))
