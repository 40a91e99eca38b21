"""Shared fixtures: every test runs with a private HOME and state directory, and daemons are real processes on
real Unix sockets in short temporary directories (sun_path is only ~104 bytes)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keycardd.client import Client

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short private directory for sockets (pytest's tmp_path can exceed sun_path)."""
    path = Path(tempfile.mkdtemp(prefix="kc", dir="/tmp"))
    path.chmod(0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real home, state or runtime directories, or the real keyring."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    monkeypatch.setenv("KEYCARDD_SOCKET", str(short_dir / "keycardd.sock"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("USER", "tester")
    # keyring's own switch: a file backend inside the private HOME, never the real keyring
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    for name in (
        "KEYCARD_POLICY_FILE",
        "KEYCARD_POLICY_DIR",
        "KEYCARD_DECISION_LOG",
        "CLI_CONFIG",
        "ZONE",
        "ORG",
        "ISSUER_URL",
        "KEYCARD_ENV",
        "KEYCARD_API_BASE_URL",
        "KEYCARD_API_TOKEN",
        "KEYCARD_API_API_KEY",
        "KEYCARD_API_CLIENT_ID",
        "KEYCARD_API_CLIENT_SECRET",
        "OIDC_CALLBACK_PORT",
        "KEYCARD_RUN",
        "KEYCARD_RUN_SESSION_ID",
        "KEYCARD_SOCKET",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in [name for name in os.environ if name.startswith("OTEL_")]:  # no test exports unless it asks to
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return home


@dataclass
class DaemonProcess:
    """A keycardd started as a real subprocess; `stop()` sends SIGTERM and waits."""

    socket: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, timeout_s: float = 5.0) -> Client:
        return Client(self.socket, timeout_s=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)


def wait_for_socket(path: Path, process: subprocess.Popen[bytes] | None = None, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"keycardd exited early with code {process.returncode}")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            return
        except OSError:
            time.sleep(0.02)
        finally:
            probe.close()
    raise TimeoutError(f"keycardd did not start listening on {path}")


@pytest.fixture
def start_daemon(short_dir: Path, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory: `start_daemon(policy="...", env={...}, args=[...])` starts keycardd and waits until it listens.

    `policy` (text) is written to `$KEYCARD_POLICY_FILE`; without it the daemon runs on the embedded default.
    """
    started: list[DaemonProcess] = []

    def start(
        policy: str | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        socket_name: str = "keycardd.sock",
        wait: bool = True,
    ) -> DaemonProcess:
        socket_path = short_dir / socket_name
        full_env = dict(os.environ)
        if policy is not None:
            policy_file = tmp_path / "policy" / "policy.cedar"
            policy_file.parent.mkdir(exist_ok=True)
            policy_file.write_text(policy)
            full_env["KEYCARD_POLICY_FILE"] = str(policy_file)
        full_env.update(env or {})
        full_env["KEYCARDD_SOCKET"] = str(socket_path)
        log_path = tmp_path / f"daemon-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "keycardd.daemon", *(args or [])],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        daemon = DaemonProcess(socket_path, process, log_path, full_env)
        started.append(daemon)
        if wait:
            wait_for_socket(socket_path, process)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.send_signal(signal.SIGTERM)
            try:
                daemon.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                daemon.process.wait()


@pytest.fixture
def daemon(start_daemon: Callable[..., DaemonProcess]) -> DaemonProcess:
    """A daemon on the embedded default policy."""
    return start_daemon()
