"""Where the active policy comes from, and how it is replaced without ever serving a half-loaded one.

The store reads the local sources (the policy file or, when there is none, the embedded default; plus `*.cedar`
in the policy directory), combines them with zone sources handed over by the zone sync, compiles the result off the
event loop and swaps the new `Engine` in with a single assignment. A source that fails to compile never replaces
the last good engine; the error is kept for `status` and logged. A large set compiles in a child process
(`compiler`), so a reload does not stall the answers. With no good engine at all, `engine` is None and
the adapters deny every gated event, naming the file and the error.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread
from watchfiles import awatch

from keycardd import paths
from keycardd.compiler import compile_engine
from keycardd.engine import Engine, PolicyError, PolicySource, default_policy_source
from keycardd.managed import ManagedPolicy

log = logging.getLogger(__name__)

RELOAD_DEBOUNCE_MS = 50
"""watchfiles' own default debounce is 1.6 s; changes must be live within 1 s."""
WATCH_POLL_MS = 250
"""How long the watcher thread blocks before checking for cancellation (its default, 5 s, delays shutdown)."""
ROOT_POLL_S = 1.0
"""How often to look for a policy directory to appear when none exists yet."""


@dataclass(frozen=True, slots=True)
class LocalSources:
    """The local policy locations this store watches."""

    policy_file: Path
    policy_dir: Path | None

    @classmethod
    def from_environment(cls) -> LocalSources:
        return cls(policy_file=paths.policy_file(), policy_dir=paths.policy_dir())

    def read(self) -> list[PolicySource]:
        """Read every local source; raises `PolicyError` naming the file that cannot be read. A symlink whose
        target is missing or loops is such a file: falling back to the embedded default would drop its forbids."""
        present = self.policy_file.exists() or self.policy_file.is_symlink()
        sources = [_read(self.policy_file)] if present else [default_policy_source()]
        if self.policy_dir is not None and self.policy_dir.is_dir():
            sources.extend(_read(path) for path in sorted(self.policy_dir.glob("*.cedar")))
        return sources

    def watch_roots(self) -> list[Path]:
        """The existing directories to watch: editors and `mv` replace files, so the parent directory is what sees
        it; a symlinked policy file's target directory too (dotfiles); the policy directory's parent until the
        policy directory exists. They change as links and directories do, so the watcher asks again after each
        change."""
        roots = {self.policy_file.parent}
        if self.policy_file.is_symlink():
            roots.add(Path(os.path.realpath(self.policy_file)).parent)
        if self.policy_dir is not None:
            roots.add(self.policy_dir if self.policy_dir.is_dir() else self.policy_dir.parent)
        return sorted(root for root in roots if root.is_dir())

    def is_relevant(self, changed: Path) -> bool:
        """Only policy files (and the policy directory itself) matter: a log in the same directory must not wake
        the watcher."""
        if changed in (self.policy_file, self.policy_dir):
            return True
        if self.policy_file.is_symlink() and changed == Path(os.path.realpath(self.policy_file)):
            return True
        return self.policy_dir is not None and changed.parent == self.policy_dir and changed.suffix == ".cedar"


def _read(path: Path) -> PolicySource:
    """The file's text exactly as stored (no newline translation), so the sha256 `status` shows for it is the one
    `sha256sum` prints."""
    try:
        return PolicySource(name=str(path), text=path.read_bytes().decode("utf-8"))
    except OSError as exc:
        link = f", a symlink to {os.readlink(path)}" if path.is_symlink() else ""
        raise PolicyError(f"{path}: cannot read the policy file{link} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: cannot read the policy file ({exc})") from None


class PolicyStore:
    """Holds the active engine (and the shadow engine, when a zone publishes one) and replaces them atomically."""

    def __init__(self, local: LocalSources, managed: ManagedPolicy | None = None) -> None:
        self.local = local
        self.managed = managed if managed is not None else ManagedPolicy()
        self.engine: Engine | None = None
        self.shadow: Engine | None = None
        self.error: str | None = None
        self.loaded_at: str | None = None
        self.zone_active: tuple[PolicySource, ...] = ()
        self.zone_shadow: tuple[PolicySource, ...] | None = None
        self._lock = anyio.Lock()

    async def reload(self) -> bool:
        """Re-read local sources and recompile; returns False (keeping the last good engine) on any error."""
        async with self._lock:
            try:
                await anyio.to_thread.run_sync(self.managed.load)
                local = await anyio.to_thread.run_sync(self.local.read)
                first = self.engine is None  # nobody is waiting for answers yet: no child process needed
                engine = await compile_engine([*local, *self.zone_active], in_process=first)
                shadow = None
                if self.zone_shadow is not None:
                    shadow = await compile_engine([*local, *self.zone_shadow], in_process=first)
            except PolicyError as exc:
                self.error = str(exc)
                if self.engine is None:
                    log.error("policy rejected and no earlier policy to keep, so gated calls are denied: %s", exc)
                else:
                    log.error("policy rejected, keeping the last good policy: %s", exc)
                return False
            self._install(engine, shadow)
            return True

    async def set_zone_policies(self, active: Sequence[PolicySource], shadow: Sequence[PolicySource] | None) -> None:
        """Install verified zone sources beside the local ones; raises `PolicyError` and keeps the old on failure.

        The zone sync calls this only with sources whose signatures it has verified. Local and zone policies form
        one Cedar policy set, so a `forbid` in either wins over a `permit` in the other.
        """
        async with self._lock:
            local = await anyio.to_thread.run_sync(self.local.read)
            engine = await compile_engine([*local, *active])
            shadow_engine = await compile_engine([*local, *shadow]) if shadow is not None else None
            self.zone_active = tuple(active)
            self.zone_shadow = tuple(shadow) if shadow is not None else None
            self._install(engine, shadow_engine)

    def _install(self, engine: Engine, shadow: Engine | None) -> None:
        self.managed.attach(engine, shadow)
        self.engine, self.shadow = engine, shadow
        self.error = None
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        log.info("policy loaded: %d policies from %s (sha256 %s)", engine.count, _names(engine), engine.sha256[:12])

    async def watch(self) -> None:
        """Reload whenever a local source changes; runs until cancelled (a task in the daemon's task group).

        The watcher sees nothing until it runs, and it starts after the daemon has loaded the policy and taken
        the socket: once it runs (its first event or idle tick), whatever changed in between is caught up on. When
        the directories to watch change (policy.d created, a symlink pointed elsewhere) it starts again on the new
        ones, catching up the same way."""
        while True:
            roots = self.local.watch_roots()
            if not roots:
                log.warning("no policy directory exists yet; watching for one to appear")
                while not self.local.watch_roots():
                    await anyio.sleep(ROOT_POLL_S)
                await self.reload()
                continue
            watcher = awatch(
                *roots,
                watch_filter=lambda _, changed: self.local.is_relevant(Path(changed)),
                debounce=RELOAD_DEBOUNCE_MS,
                step=RELOAD_DEBOUNCE_MS,
                rust_timeout=WATCH_POLL_MS,
                yield_on_timeout=True,
                recursive=False,
                ignore_permission_denied=True,
            )
            caught_up = False
            async with contextlib.aclosing(watcher):
                async for changes in watcher:
                    if changes:
                        await self.reload()
                    elif not caught_up:
                        await self._catch_up()
                    caught_up = True
                    if self.local.watch_roots() != roots:
                        break
                else:
                    return

    async def _catch_up(self) -> None:
        """Reload if the local sources differ from the active policy's (changed before the watcher ran)."""
        try:
            local: list[PolicySource] | None = await anyio.to_thread.run_sync(self.local.read)
        except PolicyError:
            local = None
        engine = self.engine
        if local is None or engine is None or engine.sources != (*local, *self.zone_active):
            await self.reload()

    def status(self) -> dict[str, object]:
        engine = self.engine
        return {
            "sources": [source.name for source in engine.sources] if engine else [],
            "sha256": engine.sha256 if engine else None,
            "source_sha256": {source.name: _sha256(source) for source in engine.sources} if engine else {},
            "count": engine.count if engine else 0,
            "loaded_at": self.loaded_at,
            "error": self.error,
            "managed": self.managed.status(),
        }


def _sha256(source: PolicySource) -> str:
    """One source's own digest, as `sha256sum FILE` prints it (the set's `sha256` also covers the names)."""
    return hashlib.sha256(source.text.encode("utf-8")).hexdigest()


def _names(engine: Engine) -> str:
    return ", ".join(source.name for source in engine.sources)
