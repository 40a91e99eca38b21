"""Shared pieces of the hardening suites: secret scanning and process memory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def find_secrets(secrets: Iterable[str], *, texts: Iterable[str | bytes] = (), files: Iterable[Path] = ()) -> list[str]:
    """Where any of `secrets` occurs: in the given texts (hook output, status, exception text) or files (logs)."""
    found = []
    needles = [secret for secret in secrets if secret]
    for index, text in enumerate(texts):
        value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        found.extend(f"text #{index}: {secret[:6]}..." for secret in needles if secret in value)
    for path in files:
        if path.is_file():
            value = path.read_text(errors="replace")
            found.extend(f"{path}: {secret[:6]}..." for secret in needles if secret in value)
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")
