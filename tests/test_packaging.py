"""The release artefacts: `python -m build` makes an sdist and a wheel, and the wheel alone, installed into a fresh
virtualenv, gives working keycardd, keycardctl and shims."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, wait_for_socket

PACKAGED = (
    "keycardd/shim/keycard-hook.c",
    "keycardd/shim/keycard_hook.py",
    "keycardd/shim/keycard-hook.py",
    "keycardd/schema.cedarschema",
    "keycardd/default_policy.cedar",
    "keycardd/install/units/keycardd.service",
    "keycardd/install/units/keycardd.socket",
    "keycardd/install/units/keycardd-http.socket",
    "keycardd/install/units/ai.keycard.keycardd.plist",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "-o", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


def test_sdist_and_wheel_carry_the_shims_schema_and_units(dist: Path) -> None:
    (wheel,) = dist.glob("keycardd-*.whl")
    (sdist,) = dist.glob("keycardd-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_names = set(archive.namelist())
        entry_points = archive.read(next(n for n in wheel_names if n.endswith("entry_points.txt"))).decode()
    with tarfile.open(sdist) as archive:
        sdist_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in PACKAGED:
        assert name in wheel_names
        assert name in sdist_names
    assert "keycardd = keycardd.daemon:main" in entry_points
    assert "keycardctl = keycardd.cli:main" in entry_points


@pytest.fixture(scope="module")
def fresh_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtualenv with only the wheel installed; its dependencies come from the test environment (offline)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (wheel,) = dist.glob("keycardd-*.whl")
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    yield venv


def test_wheel_gives_working_commands(fresh_venv: Path, tmp_path: Path, short_dir: Path) -> None:
    bin_dir = fresh_venv / "bin"
    assert subprocess.run([bin_dir / "keycardd", "--version"], capture_output=True, text=True).stdout.startswith(
        "keycardd "
    )
    claude = tmp_path / "claude-bin" / "claude"  # a Claude Code that reads onFailure, so doctor can pass
    claude.parent.mkdir()
    claude.write_text("#!/bin/sh\necho '2.1.330 (Claude Code)'\n")
    claude.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{claude.parent}:/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "data")}
    project = tmp_path / "project"
    project.mkdir()
    install = subprocess.run(
        [bin_dir / "keycardctl", "install", "claude", "--project", str(project)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert install.returncode == 0, install.stderr
    assert "[C shim]" in install.stdout  # compiled from the C source inside the wheel
    assert (tmp_path / "data" / "keycard" / "bin" / "keycard-hook").exists()

    daemon = subprocess.Popen([bin_dir / "keycardd"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(Path(env["KEYCARDD_SOCKET"]), daemon)
        settings = json.loads((project / ".claude" / "settings.json").read_text())
        hook = settings["hooks"]["PreToolUse"][0]["hooks"][0]
        payload = json.dumps(
            {
                "hook_event_name": "PreToolUse",
                "tool_name": "Read",
                "tool_input": {"file_path": "/home/me/.aws/credentials"},
            }
        )
        result = subprocess.run([hook["command"], *hook["args"]], input=payload.encode(), capture_output=True, env=env)
        assert json.loads(result.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
        doctor = subprocess.run(
            [bin_dir / "keycardctl", "doctor", "--project", str(project)], capture_output=True, text=True, env=env
        )
        assert doctor.returncode == 0, doctor.stdout
        assert "claude hook (C shim): forbidden canary: deny" in doctor.stdout
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_wheel_falls_back_to_the_python_shim_without_a_compiler(fresh_venv: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv / "bin"
    no_cc = tmp_path / "bin"
    no_cc.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{no_cc}",
        "CC": str(tmp_path / "missing-cc"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [bin_dir / "keycardctl", "install", "cursor", "--project", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Python fallback shim (no working C compiler was found)" in result.stdout
