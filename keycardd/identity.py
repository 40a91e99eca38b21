"""Who the principal is: `User::"<email>"` for every request the daemon decides.

Resolved once at start-up (never on the request path): the signed-in user's email when keycardctl has stored one,
else `git config user.email`, else `$USER@<hostname>`.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess

from keycardd import paths


def resolve_principal_email() -> str:
    signed_in = paths.state_dir() / "whoami"
    try:
        email = signed_in.read_text(encoding="utf-8").strip()
    except OSError:
        email = ""
    if email:
        return email
    try:
        result = subprocess.run(
            ["git", "config", "--get", "user.email"], capture_output=True, text=True, timeout=2, check=False
        )
        email = result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    if email:
        return email
    user = os.environ.get("USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"
