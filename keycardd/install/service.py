"""Running keycardd as a user service: systemd units on Linux, a LaunchAgent on macOS.

The unit files ship in the package (`keycardd/install/units/`, linked from `systemd/` and `launchd/` in the
repository); installing renders them with the absolute path of this `keycardd` and hands them to the user's
service manager.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from keycardd.install import http_hook

LABEL = "ai.keycard.keycardd"
UNITS = ("keycardd.socket", "keycardd-http.socket", "keycardd.service")
SOCKETS = ("keycardd.socket", "keycardd-http.socket")
_TEMPLATE_HTTP_LISTEN = "ListenStream=127.0.0.1:47474"
_TEMPLATE_BINARY = "%h/.local/bin/keycardd"


class ServiceError(Exception):
    """The service manager is missing or refused; the message says which command failed and why."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    state: str
    """`running`, `stopped` or `not installed`."""
    report: str
    """What the service manager itself printed."""


_SYSTEMCTL_STATES = {0: "running", 3: "stopped", 4: "not installed"}
"""`systemctl status` exit codes (LSB): 0 active, 3 not running, 4 no such unit; anything else is a failure."""
_LAUNCHCTL_NOT_FOUND = 113


def template(name: str) -> str:
    return resources.files("keycardd.install").joinpath("units", name).read_text(encoding="utf-8")


def keycardd_binary() -> str:
    """The `keycardd` that belongs to this installation (next to this Python), else the one on PATH."""
    beside = Path(sys.executable).parent / "keycardd"
    if beside.exists():
        return str(beside)
    found = shutil.which("keycardd")
    if found is None:
        raise ServiceError("cannot find the keycardd executable: install keycardd so that it is on PATH")
    return found


def render_systemd(binary: str, http_listen: str | None = None) -> dict[str, str]:
    """The units with this `keycardd`, and the http hook port where `keycardctl install --transport http` points
    (`$KEYCARDD_HTTP_HOST`/`$KEYCARDD_HTTP_PORT`, as both use)."""
    if http_listen is None:
        try:
            http_listen = http_hook.url().split("/")[2]
        except ValueError as exc:
            raise ServiceError(f"KEYCARDD_HTTP_PORT: {exc}") from None
    return {
        name: template(name)
        .replace(_TEMPLATE_BINARY, binary)
        .replace(_TEMPLATE_HTTP_LISTEN, f"ListenStream={http_listen}")
        for name in UNITS
    }


def render_launchd(binary: str, log_path: Path) -> bytes:
    document = plistlib.loads(template(f"{LABEL}.plist").encode())
    document["ProgramArguments"][0] = binary
    document["StandardOutPath"] = document["StandardErrorPath"] = str(log_path)
    return plistlib.dumps(document)


@dataclass(frozen=True)
class Manager:
    """One of the two service managers keycardd knows."""

    kind: str

    @classmethod
    def detect(cls) -> Manager:
        if sys.platform == "darwin" and shutil.which("launchctl"):
            return cls("launchd")
        if shutil.which("systemctl"):
            return cls("systemd")
        raise ServiceError(
            "neither systemd (systemctl) nor launchd (launchctl) is available: run `keycardd` yourself, "
            "or let the hook shim start it on first use"
        )

    def paths(self) -> list[Path]:
        """Where this manager's files for keycardd live."""
        if self.kind == "systemd":
            unit_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
            return [unit_dir / name for name in UNITS]
        return [Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"]

    def files(self) -> dict[Path, bytes]:
        binary = keycardd_binary()
        if self.kind == "systemd":
            rendered = render_systemd(binary)
            return {path: rendered[path.name].encode() for path in self.paths()}
        log_path = Path.home() / "Library" / "Logs" / "keycardd.log"
        return {path: render_launchd(binary, log_path) for path in self.paths()}

    def install(self) -> list[Path]:
        """Write the unit files and enable them; if the manager refuses, put every file back as it was."""
        files = self.files()
        previous = {path: path.read_bytes() if path.exists() else None for path in files}
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        try:
            if self.kind == "systemd":
                self._run("systemctl", "--user", "daemon-reload")
                self._run("systemctl", "--user", "enable", "--now", "keycardd.socket")
                # Best effort: a port another user already holds must not stop the Unix socket (doctor reports it).
                self._run("systemctl", "--user", "enable", "--now", "keycardd-http.socket", check=False)
            else:
                self._run("launchctl", "bootstrap", f"gui/{os.getuid()}", str(next(iter(files))))
        except ServiceError as exc:
            _restore(previous)
            raise ServiceError(f"{_explain(self.kind, str(exc))}; nothing was installed") from None
        return list(files)

    def uninstall(self) -> list[Path]:
        files = self.paths()
        if self.kind == "systemd":
            self._run("systemctl", "--user", "disable", "--now", *SOCKETS, "keycardd.service", check=False)
        else:
            self._run("launchctl", "bootout", f"gui/{os.getuid()}/{LABEL}", check=False)
        removed = [path for path in files if path.exists()]
        for path in removed:
            path.unlink()
        if self.kind == "systemd":
            self._run("systemctl", "--user", "daemon-reload", check=False)
        return removed

    def start(self) -> None:
        if self.kind == "systemd":
            self._run("systemctl", "--user", "start", "keycardd.socket", "keycardd.service")
        else:
            self._run("launchctl", "kickstart", f"gui/{os.getuid()}/{LABEL}")

    def stop(self) -> None:
        if self.kind == "systemd":
            self._run("systemctl", "--user", "stop", "keycardd.service")
        else:
            self._run("launchctl", "kill", "SIGTERM", f"gui/{os.getuid()}/{LABEL}")

    def status(self) -> ServiceStatus:
        """The service's state; a manager that cannot be asked (no user bus, say) is a `ServiceError`.

        With none of keycardd's unit files on disk the answer is `not installed` without asking the manager, so
        `status` after `uninstall` exits 3 even where there is no user bus to ask.
        """
        if not any(path.exists() for path in self.paths()):
            return ServiceStatus("not installed", "")
        argv: tuple[str, ...]
        if self.kind == "systemd":
            argv = ("systemctl", "--user", "status", "--no-pager", "keycardd.socket", "keycardd.service")
            result = self._call(*argv)
            state = _SYSTEMCTL_STATES.get(result.returncode)
        else:
            argv = ("launchctl", "print", f"gui/{os.getuid()}/{LABEL}")
            result = self._call(*argv)
            loaded = "running" if "state = running" in result.stdout else "stopped"
            state = {0: loaded, _LAUNCHCTL_NOT_FOUND: "not installed"}.get(result.returncode)
        if state is None:
            raise ServiceError(_failure(argv, result))
        return ServiceStatus(state, result.stdout + result.stderr)

    @classmethod
    def _run(cls, *argv: str, check: bool = True) -> str:
        result = cls._call(*argv)
        if check and result.returncode != 0:
            raise ServiceError(_failure(argv, result))
        return result.stdout + result.stderr

    @staticmethod
    def _call(*argv: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"`{' '.join(argv)}` could not run: {exc}") from None


_NO_USER_BUS = "Failed to connect to bus"


def _explain(kind: str, failure: str) -> str:
    """A manager failure, with what to do instead when the cause is that there is no user service manager."""
    if kind == "systemd" and _NO_USER_BUS in failure:
        return (
            f"there is no systemd user session to install into ({failure}): run `loginctl enable-linger $USER` "
            "and log in again, or run `keycardd` yourself, or let the hook shim start it on first use"
        )
    return failure


def _restore(previous: dict[Path, bytes | None]) -> None:
    """Put files back as they were before an install that failed half-way."""
    for path, content in previous.items():
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(content)


def _failure(argv: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> str:
    reason = (result.stderr or result.stdout).strip().splitlines()
    return f"`{' '.join(argv)}` failed: {reason[-1] if reason else f'exit {result.returncode}'}"
