"""Managed policy: a root-owned directory of Cedar files (default `/etc/keycard/policy.d`) that user policy cannot
weaken, for teams whose agents must not reach the rules at all.

Its files are compiled into their own engine, with a baseline permit, and evaluated as a layer after the active
policy (local, `policy.d` and zone): where a managed `forbid` matches, the answer is deny; where a managed `@itl`
permit matches, the answer is at least ask; anywhere else the managed layer has no say. The precise rule: the
answer is the stricter of the active policy's answer and the managed layer's deny or ask. So a user file cannot add
an `@approve` that skips a managed ask or forbid, a managed `@itl` cannot turn a user's deny into an ask, and a
managed `@approve` means nothing (approving is the user policy's job). A managed file that fails to compile keeps
the last good managed set; with none, every gated call is denied, naming the file (fail closed).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from keycardd.engine import Engine, PolicyError, PolicySource

DEFAULT_DIR = Path("/etc/keycard/policy.d")
BASELINE = PolicySource(
    name="embedded:managed-baseline",
    text='@id("managed-baseline")\npermit (principal, action, resource);\n',
)


def managed_policy_dir() -> Path:
    """`$KEYCARD_MANAGED_POLICY_DIR`, else `/etc/keycard/policy.d`."""
    explicit = os.environ.get("KEYCARD_MANAGED_POLICY_DIR")
    return Path(explicit) if explicit else DEFAULT_DIR


def root_owned(path: Path) -> bool:
    """Owned by root and writable by nobody else: what an agent running as the user cannot change."""
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@dataclass
class ManagedPolicy:
    """The managed layer: read with `load()` (off the event loop), handed to engines by `attach()`."""

    directory: Path = field(default_factory=managed_policy_dir)
    engine: Engine | None = None
    sources: tuple[str, ...] = ()

    def load(self) -> None:
        """Re-read the directory; raises `PolicyError` naming the file (the last good set stays)."""
        files = sorted(self.directory.glob("*.cedar")) if self.directory.is_dir() else []
        if not files:
            self.engine, self.sources = None, ()
            return
        sources = [BASELINE]
        for path in files:
            try:
                sources.append(PolicySource(name=str(path), text=path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyError(f"{path}: cannot read the managed policy file ({exc})") from None
        self.engine = Engine.compile(sources)
        self.sources = tuple(str(path) for path in files)

    def attach(self, *engines: Engine | None) -> None:
        for engine in engines:
            if engine is not None:
                engine.overlay = self.engine

    def status(self) -> dict[str, object]:
        return {
            "dir": str(self.directory),
            "sources": list(self.sources),
            "root_owned": root_owned(self.directory) and all(root_owned(Path(name)) for name in self.sources),
        }
