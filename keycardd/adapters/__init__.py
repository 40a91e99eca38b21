"""Agent adapters: raw hook bytes in, the agent's exact stdout and exit code out, with the decision in between.

    answer = Decider(settings).decide_hook(engine, engine_error, "claude", payload, env)

This is the hot path after the socket: decode, normalise, evaluate, render. It does no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from keycardd.adapters import claude, codex, cursor, gemini, twins
from keycardd.adapters.decision import Call, Decision, Kind, Settings, decide
from keycardd.adapters.facts import with_facts
from keycardd.adapters.payload import Payload, decode
from keycardd.engine import Engine, Outcome

log = logging.getLogger(__name__)

__all__ = ["AGENTS", "Call", "Decider", "Decision", "HookAnswer", "Kind", "Settings", "UnknownAgentError"]

_Parser = Callable[[Payload, dict[str, str]], Call]
_Renderer = Callable[[Call, Decision | None], tuple[bytes, int]]
AGENTS: dict[str, tuple[_Parser, _Renderer]] = {
    "claude": (claude.parse, claude.render),
    "claude-code": (claude.parse, claude.render),
    "cursor": (cursor.parse, cursor.render),
    "codex": (codex.parse, codex.render),
    "gemini": (gemini.parse, gemini.render),
}


class UnknownAgentError(ValueError):
    """The shim named an agent keycardd has no adapter for."""


@dataclass(frozen=True, slots=True)
class HookAnswer:
    stdout: bytes
    exit_code: int
    call: Call
    decision: Decision | None
    """None for events that are observed, not decided."""
    repeated: bool = False
    """True when this answer reuses an earlier decision (Cursor's twin shell events, or a call Cursor also ran
    through Claude Code's hooks): count it once."""


class Decider:
    """Turns hook payloads into answers; holds the little state that spans calls (Cursor's shell dedupe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._dedupe = cursor.ShellDedupe()
        self._twins = twins.TwinDedupe()

    def decide_hook(
        self, engine: Engine | None, engine_error: str | None, agent: str, raw: bytes, env: dict[str, str]
    ) -> HookAnswer:
        try:
            parse, render = AGENTS[agent]
        except KeyError:
            raise UnknownAgentError(f"unknown agent {agent!r} (expected claude, cursor, codex or gemini)") from None
        payload = decode(raw)
        call = with_facts(parse(payload, env), self.settings)
        if call.kind is not Kind.GATE:
            stdout, code = render(call, None)
            return HookAnswer(stdout, code, call, None)
        key = cursor.ShellDedupe.key(call, payload)
        earlier = self._dedupe.get(key) if key is not None else None
        shell_twin = earlier is not None
        twin_key = twins.key(call, env) if earlier is None else None
        if twin_key is not None:
            earlier = self._twins.twin_of(twin_key, call.agent)
        decision = earlier or _decide_failing_closed(call, engine, engine_error, self.settings)
        if key is not None and not shell_twin:
            self._dedupe.put(key, decision)
        if twin_key is not None and earlier is None:
            self._twins.put(twin_key, call.agent, decision)
        stdout, code = render(call, decision)
        return HookAnswer(stdout, code, call, decision, repeated=earlier is not None)


def _decide_failing_closed(call: Call, engine: Engine | None, engine_error: str | None, settings: Settings) -> Decision:
    """`decide`, or a deny when deciding raised: a gate must never be left unanswered, because an http hook whose
    daemon answers 500 lets the call run (on an agent without `onFailure: block`). The bug is logged for a fix."""
    try:
        return decide(call, engine, engine_error, settings)
    except Exception:
        log.exception("internal error deciding a %s call; denied", call.event)
        return Decision(
            Outcome.DENY, "keycardd hit an internal error deciding this call, so it is denied; see its log", ()
        )
