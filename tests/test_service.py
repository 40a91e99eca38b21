"""Service integration: the units verify, the plist is valid, keycardctl drives the service manager, and the
daemon speaks systemd's socket activation and readiness protocols."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from keycardd.client import Client, DaemonUnavailableError
from keycardd.install import service
from keycardd.protocol import HookRequest, HookResult, StatusRequest


def test_repository_units_are_the_packaged_ones() -> None:
    for name in service.UNITS:
        assert (REPO / "systemd" / name).read_text() == service.template(name)
    assert (REPO / "launchd" / f"{service.LABEL}.plist").read_text() == service.template(f"{service.LABEL}.plist")


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    binary = tmp_path / "bin" / "keycardd"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    units = service.render_systemd(str(binary))
    assert f"ExecStart={binary} --foreground" in units["keycardd.service"]
    assert "Type=notify" in units["keycardd.service"]
    assert "SocketMode=0600" in units["keycardd.socket"]
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--user", *(str(tmp_path / name) for name in units)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    problems = [line for line in result.stderr.splitlines() if "keycardd" in line]
    assert result.returncode == 0 and problems == [], result.stderr


def test_launchd_plist_is_valid_and_complete(tmp_path: Path) -> None:
    rendered = service.render_launchd("/opt/homebrew/bin/keycardd", tmp_path / "keycardd.log")
    document = plistlib.loads(rendered)
    assert document["Label"] == "ai.keycard.keycardd"
    assert document["ProgramArguments"] == ["/opt/homebrew/bin/keycardd", "--foreground"]
    assert document["RunAtLoad"] is True and document["KeepAlive"] is True
    assert document["StandardErrorPath"] == str(tmp_path / "keycardd.log")
    assert document["Umask"] == 0o077
    plutil = shutil.which("plutil")
    if plutil:
        (tmp_path / "agent.plist").write_bytes(rendered)
        assert subprocess.run([plutil, "-lint", str(tmp_path / "agent.plist")]).returncode == 0


def _fake_tool(directory: Path, name: str, log: Path, exit_code: int = 0) -> None:
    tool = directory / name
    tool.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexit {exit_code}\n')
    tool.chmod(0o755)


def _installed_units(config_home: Path) -> None:
    unit_dir = config_home / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    for name in service.UNITS:
        (unit_dir / name).write_text("[Unit]\n")


def _keycardctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keycardd.cli", *args], capture_output=True, text=True, env=env)


def test_service_install_writes_units_and_enables_the_socket(tmp_path: Path) -> None:
    bin_dir, log = tmp_path / "fakebin", tmp_path / "calls.log"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "systemctl", log)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = _keycardctl("service", "install", env=env)
    assert result.returncode == 0, result.stderr
    unit_dir = tmp_path / "config" / "systemd" / "user"
    service_text = (unit_dir / "keycardd.service").read_text()
    assert f"ExecStart={Path(sys.executable).parent / 'keycardd'} --foreground" in service_text
    assert (unit_dir / "keycardd.socket").exists()
    assert log.read_text().splitlines() == [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now keycardd.socket",
        "systemctl --user enable --now keycardd-http.socket",
    ]
    assert _keycardctl("service", "uninstall", env=env).returncode == 0
    assert not (unit_dir / "keycardd.service").exists()
    assert "systemctl --user disable --now keycardd.socket keycardd-http.socket keycardd.service" in log.read_text()


def test_service_manager_failure_is_one_clear_sentence(tmp_path: Path) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = _keycardctl("service", "start", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "keycardctl: `systemctl --user start keycardd.socket keycardd.service` failed: "
        "Failed to connect to bus: No medium found"
    )


@pytest.mark.parametrize(
    ("exit_code", "returncode", "last_line"),
    [
        (0, 0, "keycardd is running under systemd"),
        (3, 3, "keycardd is stopped under systemd"),
        (4, 3, "keycardd is not installed as a service: run `keycardctl service install`"),
    ],
)
def test_service_status_exit_code_says_whether_it_runs(
    tmp_path: Path, exit_code: int, returncode: int, last_line: str
) -> None:
    bin_dir, log = tmp_path / "fakebin", tmp_path / "calls.log"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "systemctl", log, exit_code)
    _installed_units(tmp_path / "config")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = _keycardctl("service", "status", env=env)
    assert result.returncode == returncode, result.stderr
    assert result.stdout.splitlines()[-1] == last_line
    assert log.read_text() == "systemctl --user status --no-pager keycardd.socket keycardd.service\n"


def test_service_status_without_a_user_bus_is_an_error_not_a_report(tmp_path: Path) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    failing = "#!/bin/sh\necho 'Failed to connect to bus: No such file or directory' >&2\nexit 1\n"
    (bin_dir / "systemctl").write_text(failing)
    (bin_dir / "systemctl").chmod(0o755)
    _installed_units(tmp_path / "config")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = _keycardctl("service", "status", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().endswith("failed: Failed to connect to bus: No such file or directory")


def test_install_without_a_user_bus_says_what_to_do_and_leaves_nothing_behind(tmp_path: Path) -> None:
    bin_dir, log = tmp_path / "fakebin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(
        f"#!/bin/sh\necho \"systemctl $*\" >> {log}\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n"
    )
    (bin_dir / "systemctl").chmod(0o755)
    unit_dir = tmp_path / "config" / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (unit_dir / "other.service").write_text("[Unit]\n")  # not keycardd's: must stay
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = _keycardctl("service", "install", env=env)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0, message
    assert "there is no systemd user session" in message
    assert "loginctl enable-linger" in message and "nothing was installed" in message
    assert sorted(path.name for path in unit_dir.iterdir()) == ["other.service"]


def test_install_that_fails_restores_a_unit_file_it_replaced(tmp_path: Path) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho 'Unit file is masked.' >&2\nexit 1\n")
    (bin_dir / "systemctl").chmod(0o755)
    unit_dir = tmp_path / "config" / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (unit_dir / "keycardd.service").write_text("# the user's own edit\n")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = _keycardctl("service", "install", env=env)
    assert result.returncode == 1
    assert "Unit file is masked." in result.stderr and "nothing was installed" in result.stderr
    assert (unit_dir / "keycardd.service").read_text() == "# the user's own edit\n"
    assert not (unit_dir / "keycardd.socket").exists()


def test_status_after_uninstall_exits_3_even_without_a_user_bus(tmp_path: Path) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert _keycardctl("service", "uninstall", env=env).returncode == 0
    result = _keycardctl("service", "status", env=env)
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines()[-1] == "keycardd is not installed as a service: run `keycardctl service install`"


def test_no_service_manager_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _keycardctl("service", "install", env={**os.environ, "PATH": str(empty)})
    assert result.returncode == 1
    assert "neither systemd (systemctl) nor launchd (launchctl) is available" in result.stderr


def test_socket_activation_and_readiness(tmp_path: Path, short_dir: Path) -> None:
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (Debian package: systemd)")
    notify_path = short_dir / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(20)
    listen = short_dir / "activated.sock"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    env.pop("KEYCARDD_SOCKET", None)
    process = subprocess.Popen(
        [
            activate,
            "-l",
            str(listen),
            "-E",
            "NOTIFY_SOCKET",
            "-E",
            "HOME",
            "-E",
            "XDG_STATE_HOME",
            "-E",
            "PATH",
            sys.executable,
            "-m",
            "keycardd.daemon",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # systemd-socket-activate listens first and starts keycardd on the first connection
        client = None
        for _ in range(200):
            try:
                client = Client(listen, timeout_s=20)
                break
            except DaemonUnavailableError:
                time.sleep(0.05)
        assert client is not None
        with client:
            payload = json.dumps(
                {
                    "hook_event_name": "PreToolUse",
                    "tool_name": "Read",
                    "tool_input": {"file_path": "/home/x/.ssh/id_rsa"},
                }
            ).encode()
            reply = client.request(HookRequest(agent="claude", payload=payload))
            assert isinstance(reply, HookResult)
            assert b'"deny"' in reply.stdout
            status = client.request(StatusRequest())
        assert notify.recv(4096).startswith(b"READY=1")
        assert status.body["socket"] == str(listen)  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(timeout=10)
        notify.close()
