"""Reading and rewriting agents' JSON config files safely: atomic replace, permissions kept (the version before
keycardd's first change is kept by `originals`, outside the agent's directories)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class ConfigFileError(Exception):
    """The agent's config file exists but cannot be used; nothing was written."""


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path} is not valid JSON (line {exc.lineno}): fix or move it first") from None
    if not isinstance(document, dict):
        raise ConfigFileError(f"{path} does not hold a JSON object")
    return document


def write_json(path: Path, document: dict[str, Any], *, private: bool = False) -> None:
    """Replace `path` atomically, keeping its permissions (0600 whatever they were if `private`: the document holds
    a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o644
    if path.exists():
        mode = path.stat().st_mode & 0o777
    if private:
        mode = 0o600
    replace_file(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"), mode)


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` atomically with `mode`: a temporary file beside it (created 0600), then a rename, so a
    reader sees the old file or the new one, never half of one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
