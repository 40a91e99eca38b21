"""Where keycardd keeps its socket, state and policy, resolved the same way by the daemon, the CLI and the shims.

The C and Python shims re-implement `socket_path`; keep the three in step (the conformance tests check it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# sun_path is 104 bytes on macOS and 108 on Linux; leave room for the terminating NUL.
_MAX_SOCKET_PATH = 100


def state_dir() -> Path:
    """Keycard's state directory: `${XDG_STATE_HOME:-~/.local/state}/keycard` (the path Keycard's CLI uses)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "keycard"


def socket_path() -> Path:
    """The daemon socket: `$KEYCARDD_SOCKET`, else `$XDG_RUNTIME_DIR/keycard/`, else the state directory.

    On macOS there is no XDG_RUNTIME_DIR and home directories can be long, so a path that would not fit in
    `sun_path` falls back to `/tmp/keycard-<uid>/keycardd.sock` (the directory is still created 0700).
    """
    explicit = os.environ.get("KEYCARDD_SOCKET")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(runtime) / "keycard" / "keycardd.sock" if runtime else state_dir() / "keycardd.sock"
    if sys.platform == "darwin" and len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        path = Path(f"/tmp/keycard-{os.getuid()}/keycardd.sock")  # noqa: S108 - 0700 dir, owner-checked
    return path


def policy_file() -> Path:
    """The local policy file: `$KEYCARD_POLICY_FILE`, else `<state dir>/policy.cedar` (Keycard's path)."""
    explicit = os.environ.get("KEYCARD_POLICY_FILE")
    return Path(explicit) if explicit else state_dir() / "policy.cedar"


def policy_dir() -> Path | None:
    """An optional directory of extra `*.cedar` files: `$KEYCARD_POLICY_DIR`, else `<state dir>/policy.d`."""
    explicit = os.environ.get("KEYCARD_POLICY_DIR")
    return Path(explicit) if explicit else state_dir() / "policy.d"


def decision_log_path() -> Path:
    """The JSONL decision log: `$KEYCARD_DECISION_LOG`, else `<state dir>/log/decisions.jsonl`.

    It has its own directory so that its constant appends do not wake the policy watcher on the state directory.
    """
    explicit = os.environ.get("KEYCARD_DECISION_LOG")
    return Path(explicit) if explicit else state_dir() / "log" / "decisions.jsonl"


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) and make the leaf 0700, refusing a directory owned by someone else."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()})")
    if info.st_mode & 0o077:
        path.chmod(0o700)
