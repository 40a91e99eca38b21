"""What an agent's config file was before keycardd first changed it, so that uninstall puts back exactly that.

`install` records, once per file, its original bytes and mode (or that it did not exist) together with its
*residue*: the file's content with keycardd's entries taken out again, as `uninstall` computes it. `uninstall`
restores the original (the exact bytes, or no file at all) when what is left after removing keycardd's entries
equals that residue, i.e. when nobody changed anything else since. When something else did change, uninstall writes
the file without keycardd's entries as before and keeps the record, so a later uninstall that again leaves exactly
the residue still restores. Comparing residues rather than bytes matters: install + uninstall must not leave
`{"version": 1, "hooks": {}}` behind in a Cursor `hooks.json` that did not exist.

A file that already held keycardd's entries when first recorded has no known pristine state and is not recorded.
Records live in keycardd's data directory (0700, each 0600: an agent's settings can hold tokens), never beside the
agent's file, so nothing is left in the agent's directories after uninstall.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from keycardd import paths
from keycardd.install.config_file import replace_file
from keycardd.install.shim import data_dir


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return data_dir() / "originals" / f"{key}.json"


def remember(path: Path, residue: str) -> None:
    """Record `path` as it is now (before keycardd writes it), unless a record exists already.

    `residue` is the file's content after this install with keycardd's entries removed again, serialised the way
    `restore` will be given it.
    """
    record = _record_path(path)
    if record.exists():
        return
    try:
        original: bytes | None = path.read_bytes()
        mode: int | None = path.stat().st_mode & 0o777
    except FileNotFoundError:
        original, mode = None, None
    created = [str(directory) for directory in path.resolve().parents if not directory.exists()]
    document = {
        "path": str(path.resolve()),
        "original": None if original is None else base64.b64encode(original).decode("ascii"),
        "mode": mode,
        "created_dirs": created,
        "residue": residue,
    }
    paths.ensure_private_dir(record.parent)
    replace_file(record, json.dumps(document).encode("utf-8"), 0o600)


def restore(path: Path, residue: str) -> bool:
    """Put `path` back as it was before keycardd first changed it, if `residue` (its content without keycardd's
    entries) is what install left; True when it did (the file is then deleted, with the directories install created
    for it while they are empty, or holds the original bytes and mode)."""
    record = _record_path(path)
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    if not isinstance(document, dict) or document.get("residue") != residue:
        return False
    if document.get("original") is None:
        path.unlink(missing_ok=True)
        for directory in document.get("created_dirs") or []:  # innermost first; one holding anything else stays
            try:
                Path(directory).rmdir()
            except OSError:
                break
    else:
        replace_file(path, base64.b64decode(document["original"]), int(document.get("mode") or 0o644))
    record.unlink()
    return True
