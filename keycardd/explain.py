"""`explain`: the full story of one decision (the Cedar requests, the deciding policies, the reason), shared by
the daemon's `explain` request and `keycardctl explain` running in-process when no daemon is up."""

from __future__ import annotations

import difflib
from typing import Any

from keycardd.adapters import AGENTS, Decider, Settings, UnknownAgentError
from keycardd.engine import Engine
from keycardd.redact import MASK, mask


def explain(
    engine: Engine | None,
    engine_error: str | None,
    settings: Settings,
    *,
    agent: str,
    payload: bytes,
    env: dict[str, str],
) -> dict[str, Any]:
    """Decide `payload` without counting, logging or remembering it; keys follow decision-semantics.md."""
    if agent not in AGENTS:
        raise UnknownAgentError(f"unknown agent {agent!r} (expected claude, cursor, codex or gemini)")
    answer = Decider(settings).decide_hook(engine, engine_error, agent, payload, env)
    call, decision = answer.call, answer.decision
    document: dict[str, Any] = {
        "agent": call.agent,
        "event": call.event,
        "tool": call.tool,
        "decision": decision.outcome.value if decision else None,
        "reason": decision.reason if decision else f"{call.event} is not a gate: it is observed, never blocked",
        "policies": list(decision.policies) if decision else [],
        "output": {"stdout": answer.stdout.decode("utf-8", "replace"), "exit_code": answer.exit_code},
    }
    secrets = _secrets_in(payload.decode("utf-8", "replace"))
    requests = [_masked(request.describe(), secrets) for request in decision.requests] if decision else []
    if len(requests) == 1:
        document["request"] = requests[0]
    else:
        document["requests"] = requests
    return document


def _secrets_in(text: str) -> list[str]:
    """The parts of `text` that masking replaces: the analysis splits a line into words, paths and hosts, where a
    password alone (`deploy:PASS` without the `-u` before it) no longer looks like one, so each is masked by value."""
    matcher = difflib.SequenceMatcher(None, text, mask(text), autojunk=False)
    found = {text[i1:i2] for op, i1, i2, _, _ in matcher.get_opcodes() if op in ("replace", "delete") and i2 - i1 >= 4}
    return sorted(found, key=len, reverse=True)


def _masked(value: Any, secrets: list[str]) -> Any:
    """`value` with every string masked (tokens, and the secrets found in the payload)."""
    if isinstance(value, str):
        masked = mask(value)
        for secret in secrets:
            masked = masked.replace(secret, MASK)
        return masked
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, secrets) for item in value]
    return value
