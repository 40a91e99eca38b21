"""Shadow evaluation: a zone's not-yet-active policy version decides every request beside the active one.

Shadow answers are never enforced. They are computed by a background task from a bounded queue (so they add
nothing to the hot path), differences are logged with the request, both decisions and the deciding policies, and
`status` counts them, so a team can see what activating the version would change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from keycardd.adapters import HookAnswer, Settings
from keycardd.adapters.decision import Decision, decide
from keycardd.policy_store import PolicyStore
from keycardd.redact import mask

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024


class ShadowEvaluator:
    def __init__(self, store: PolicyStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self.evaluated = 0
        self.differences = 0
        self.dropped = 0
        self._send: MemoryObjectSendStream[HookAnswer]
        self._receive: MemoryObjectReceiveStream[HookAnswer]
        self._send, self._receive = anyio.create_memory_object_stream[HookAnswer](QUEUE_SIZE)
        self.on_difference: Callable[[HookAnswer, Decision], None] | None = None
        """Set when telemetry export is configured: each difference is exported too."""

    def submit(self, answer: HookAnswer) -> None:
        if self._store.shadow is None:
            return
        try:
            self._send.send_nowait(answer)
        except anyio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        async with self._receive:
            async for answer in self._receive:
                self.compare(answer)
                await anyio.lowlevel.checkpoint()

    def compare(self, answer: HookAnswer) -> None:
        shadow_engine, active = self._store.shadow, answer.decision
        if shadow_engine is None or active is None:
            return
        shadow = decide(answer.call, shadow_engine, None, self._settings)
        self.evaluated += 1
        if shadow.outcome is active.outcome:
            return
        self.differences += 1
        call = answer.call
        log.warning(
            "shadow difference: %s %s %s: active %s by %s, shadow %s by %s; request %s",
            call.agent,
            call.event,
            call.tool,
            active.outcome.value,
            list(active.policies),
            shadow.outcome.value,
            list(shadow.policies),
            mask(str({key: call.context[key] for key in sorted(call.context)})),
        )
        if self.on_difference is not None:
            self.on_difference(answer, shadow)

    def drain(self) -> dict[str, int]:
        """The counters since the last drain, and reset (a replica reporting to its primary)."""
        counts = {"evaluated": self.evaluated, "differences": self.differences, "dropped": self.dropped}
        self.evaluated = self.differences = self.dropped = 0
        return {key: value for key, value in counts.items() if value}

    def merge(self, counts: dict[str, int]) -> None:
        self.evaluated += counts.get("evaluated", 0)
        self.differences += counts.get("differences", 0)
        self.dropped += counts.get("dropped", 0)

    def status(self) -> dict[str, object]:
        return {
            "active": self._store.shadow is not None,
            "evaluated": self.evaluated,
            "differences": self.differences,
            "dropped": self.dropped,
        }
