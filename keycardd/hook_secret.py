"""The per-user secret that http hooks present to keycardd: loopback TCP is open to every local user, a 0600 file is
not.

`keycardctl install claude --transport http` creates it (and writes it into the 0600 settings file as a header);
the daemon reads it when its HTTP listener starts. Creating is race-free (`O_EXCL`, 0600 from the first instant), and
an existing secret is kept, so reinstalling never invalidates hooks already written.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from keycardd import paths

HEADER = "authorization"
"""The request header that carries it, as `Bearer <secret>`."""
_BYTES = 32


class HookSecretError(Exception):
    """The secret file exists but cannot be trusted (readable by others, not ours, or empty)."""


def secret_path() -> Path:
    """`$KEYCARDD_HOOK_SECRET_FILE`, else `<state dir>/http-hook.secret`."""
    explicit = os.environ.get("KEYCARDD_HOOK_SECRET_FILE")
    return Path(explicit) if explicit else paths.state_dir() / "http-hook.secret"


def read_secret(path: Path | None = None) -> str | None:
    """The secret, or None when none has been created yet. Refuses a file that others could have read or written."""
    path = path or secret_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HookSecretError(f"cannot read the http hook secret {path}: {exc.strerror}") from None
    with os.fdopen(fd, "r", encoding="ascii") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise HookSecretError(
                f"the http hook secret {path} is readable or writable by others (or not yours): "
                f"delete it and run `keycardctl install claude --transport http` again"
            )
        value = handle.read().strip()
    if not value:
        raise HookSecretError(f"the http hook secret {path} is empty: delete it and install again")
    return value


def ensure_secret(path: Path | None = None) -> str:
    """The existing secret, or a new random one written 0600 (never replacing one another process just wrote)."""
    path = path or secret_path()
    existing = read_secret(path)
    if existing is not None:
        return existing
    paths.ensure_private_dir(path.parent)
    value = secrets.token_urlsafe(_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return ensure_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value
