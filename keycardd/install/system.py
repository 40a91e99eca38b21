"""Managed mode: keycardd's hooks in the agents' system-wide settings, run through a root-owned shim.

An agent runs as the user, so anything in the user's home is within its reach. Managed mode (`keycardctl install
claude|cursor --managed`, as root) puts the hooks where only root can write:

- Claude Code's managed settings (`/etc/claude-code/managed-settings.json`, macOS `/Library/Application Support/
  ClaudeCode/`, Windows `C:\\Program Files\\ClaudeCode\\`) with `allowManagedHooksOnly`, so user, project and local
  hooks (and their `disableAllHooks`) no longer apply; `disableAllHooks` outside managed settings cannot touch
  managed hooks;
- Cursor's enterprise `hooks.json` (`/etc/cursor/hooks.json`, macOS `/Library/Application Support/Cursor/`,
  Windows `C:\\ProgramData\\Cursor\\`), which runs before team, project and user hooks;
- the shim itself in a root-owned directory (`/usr/local/libexec/keycard`, macOS `/Library/Application Support/
  Keycard`), so the agent cannot replace what the hooks run.

`root` (default `/`) prefixes every path, so the layout can be built and inspected in a throw-away directory.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from keycardd.install.shim import HookCommand, build_c_shim
from keycardd.shim import PYTHON_LAUNCHER

_CLAUDE_DIRS = {
    "darwin": "Library/Application Support/ClaudeCode",
    "win32": "Program Files/ClaudeCode",
}
_CURSOR_DIRS = {
    "darwin": "Library/Application Support/Cursor",
    "win32": "ProgramData/Cursor",
}
_SHIM_DIRS = {"darwin": "Library/Application Support/Keycard"}


def claude_managed_settings(root: Path = Path("/"), platform: str = sys.platform) -> Path:
    return root / _CLAUDE_DIRS.get(platform, "etc/claude-code") / "managed-settings.json"


def cursor_enterprise_hooks(root: Path = Path("/"), platform: str = sys.platform) -> Path:
    return root / _CURSOR_DIRS.get(platform, "etc/cursor") / "hooks.json"


def managed_shim_dir(root: Path = Path("/"), platform: str = sys.platform) -> Path:
    return root / _SHIM_DIRS.get(platform, "usr/local/libexec/keycard")


def install_managed_shim(root: Path, prefer: str = "auto") -> HookCommand:
    """Put the shim in the root-owned directory: the C shim when it builds, else the Python fallback's two files
    (run by the system interpreter, by absolute path)."""
    directory = managed_shim_dir(root)
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    if prefer in ("auto", "c"):
        built = build_c_shim(directory / "keycard-hook")
        if built is not None:
            built.chmod(0o755)
            return HookCommand("c", str(built))
        if prefer == "c":
            raise RuntimeError("the C shim cannot be built: no working C compiler (install cc, or use --shim python)")
    for source in (PYTHON_LAUNCHER, PYTHON_LAUNCHER.with_name("keycard_hook.py")):
        target = directory / source.name
        shutil.copyfile(source, target)
        target.chmod(0o644)
    launcher = directory / PYTHON_LAUNCHER.name
    return HookCommand("python", os.path.realpath(sys.executable), ("-I", "-S", str(launcher)))


def managed_claude_settings(settings: dict[str, object]) -> dict[str, object]:
    """Managed settings that let only managed hooks run (so a user's `disableAllHooks` or own hooks do not apply)."""
    return {**settings, "allowManagedHooksOnly": True}


def not_root_owned(paths: list[Path]) -> list[Path]:
    """Those of `paths` (and their parent directories) that a non-root user could change."""
    found = []
    for path in paths:
        for candidate in (path, path.parent):
            try:
                info = candidate.stat()
            except OSError:
                continue
            if info.st_uid != 0 or info.st_mode & 0o022:
                found.append(candidate)
    return found
