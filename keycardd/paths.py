"""Where keycardd keeps its socket, state and policy, resolved the same way by the daemon, the CLI and the shims.

The C and Python shims re-implement `socket_path`; keep the three in step (the conformance tests check it).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

# sun_path is 104 bytes on macOS and 108 on Linux; leave room for the terminating NUL.
_MAX_SOCKET_PATH = 100
MAX_SUN_PATH = 103 if sys.platform == "darwin" else 107
"""The longest socket path the kernel accepts (sun_path less its terminating NUL)."""


class UnsafePathError(Exception):
    """A path keycardd would create or use is unusable or not safely its own; the message is one sentence."""


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


def ensure_private_dir(path: Path, *, parents: bool = True) -> None:
    """Create `path` 0700 (with its parents unless `parents` is False), or check an existing one.

    An existing directory is never chmodded: it may be /tmp or $HOME, shared with everything else the user (and
    others) run. It is used when it is the user's and nobody else can write to it (so nobody can replace what
    keycardd puts there), and refused, with one sentence naming it, otherwise.
    """
    try:
        path.mkdir(parents=parents, mode=0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise UnsafePathError(f"cannot create {path}: {path.parent} does not exist") from None
    except OSError as exc:
        raise UnsafePathError(f"cannot create {path}: {exc.strerror or exc}") from None
    else:
        path.chmod(0o700)  # ours: mkdir's mode was reduced by the umask, and 0700 is what we mean
        return
    check_private_dir(path)


def check_private_dir(path: Path) -> None:
    """Refuse, with one sentence, an existing directory that is not the user's or that others can write to."""
    try:
        info = path.stat()
    except OSError as exc:
        raise UnsafePathError(f"cannot use {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{path} exists and is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafePathError(
            f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()}); keycardd keeps its files only "
            "in a directory of yours"
        )
    if info.st_mode & 0o022:
        raise UnsafePathError(
            f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o}); keycardd keeps its files only in "
            "a directory nobody else can write to (choose another one, or remove the group and other write bits)"
        )


def check_socket_path(path: Path) -> None:
    """Refuse, with one sentence, a socket path the kernel cannot bind (too long for sun_path)."""
    length = len(os.fsencode(path))
    if length > MAX_SUN_PATH:
        raise UnsafePathError(
            f"socket path {path} is too long ({length} bytes; a Unix socket path has at most {MAX_SUN_PATH})"
        )
