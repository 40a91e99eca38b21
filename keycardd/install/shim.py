"""Which hook command to install: the compiled C shim where a compiler exists, else the Python fallback.

The C source ships inside the package, so a wheel install compiles it once into Keycard's data directory
(`${XDG_DATA_HOME:-~/.local/share}/keycard/bin/keycard-hook`). Hook commands are always absolute paths: a bare
`python3` or a relative script is how hooks end up exiting 127 (Claude Code: "let it run") or 2 ("block").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from keycardd.shim import C_SOURCE, PYTHON_LAUNCHER

SHIM_NAMES = ("keycard-hook", "keycard_hook.py")
"""How keycardd recognises its own hook entries in agent configs (the last path component of the command)."""


@dataclass(frozen=True, slots=True)
class HookCommand:
    """An executable plus the arguments before the agent name."""

    kind: str
    """`c` or `python`."""
    executable: str
    prefix: tuple[str, ...] = ()

    def argv(self, agent: str) -> list[str]:
        return [self.executable, *self.prefix, agent]


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "keycard"


def compiled_shim_path() -> Path:
    return data_dir() / "bin" / "keycard-hook"


def recorded_daemon_path() -> Path:
    """Where install records the keycardd that ran it, for the shims' autostart (keycard_hook.recorded_daemon)."""
    return data_dir() / "bin" / "keycardd"


def record_daemon() -> Path | None:
    """Link `recorded_daemon_path()` to the keycardd installed beside this interpreter, so that hooks installed from
    a checkout (whose keycardd is in `.venv/bin`, on no PATH) can start it; as `$KEYCARDD_BIN` would, but without
    the agent's environment. Returns the keycardd linked, or None when there is none, or something that is not
    such a link is in the way (it is never replaced)."""
    daemon = Path(sys.executable).parent / "keycardd"  # not resolved: a virtualenv's python is a link out of it
    if not os.access(daemon, os.X_OK):
        return None
    link = recorded_daemon_path()
    if link.is_symlink() and os.readlink(link) == str(daemon):
        return daemon
    if link.exists() and not link.is_symlink():
        return None
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(".keycardd.link.tmp")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(daemon)
    temporary.replace(link)
    return daemon


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _up_to_date(target: Path) -> bool:
    return target.exists() and target.stat().st_mtime >= C_SOURCE.stat().st_mtime


def build_c_shim(target: Path | None = None) -> Path | None:
    """Compile the packaged C shim if needed; None when there is no compiler (or it fails)."""
    target = target or compiled_shim_path()
    if _up_to_date(target):
        return target
    compiler = _compiler()
    if compiler is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    try:
        result = subprocess.run(
            [compiler, "-O2", "-std=c99", "-o", str(temporary), str(C_SOURCE)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):  # $CC names nothing runnable: use the Python fallback
        return None
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        return None
    temporary.replace(target)
    return target


def hook_command(prefer: str = "auto") -> HookCommand:
    """The command to install: `prefer` is `auto` (C when it builds), `c` or `python`."""
    if prefer in ("auto", "c"):
        built = build_c_shim()
        if built is not None:
            return HookCommand("c", str(built))
        if prefer == "c":
            raise RuntimeError("the C shim cannot be built: no working C compiler (install cc, or use --shim python)")
    return HookCommand("python", os.path.realpath(sys.executable), ("-I", "-S", str(PYTHON_LAUNCHER)))


def planned_hook_command(prefer: str = "auto", shim_dir: Path | None = None) -> HookCommand:
    """The command `hook_command` (or, with the managed `shim_dir`, `install_managed_shim`) would install, found
    without compiling or writing anything, for `--dry-run`: the C shim when it is built already or a compiler is
    there to build it."""
    target = shim_dir / "keycard-hook" if shim_dir else compiled_shim_path()
    launcher = shim_dir / PYTHON_LAUNCHER.name if shim_dir else PYTHON_LAUNCHER
    if prefer in ("auto", "c") and (_up_to_date(target) or _compiler() is not None):
        return HookCommand("c", str(target))
    if prefer == "c":
        raise RuntimeError("the C shim cannot be built: no working C compiler (install cc, or use --shim python)")
    return HookCommand("python", os.path.realpath(sys.executable), ("-I", "-S", str(launcher)))


def is_keycardd_command(command: str, args: list[str] | tuple[str, ...] = ()) -> bool:
    """Is this hook entry one of ours? (Used by uninstall and doctor, so other hooks are never touched.)"""
    return any(name in word for word in (command, *args) for name in SHIM_NAMES)
