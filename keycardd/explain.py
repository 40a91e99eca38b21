"""`explain`: the full story of one decision (the Cedar requests, the deciding policies, the reason), shared by
the daemon's `explain` request and `keycardctl explain` running in-process when no daemon is up."""

from __future__ import annotations

from typing import Any

from keycardd.adapters import AGENTS, Decider, Settings, UnknownAgentError
from keycardd.engine import Engine


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
    requests = [request.describe() for request in decision.requests] if decision else []
    if len(requests) == 1:
        document["request"] = requests[0]
    else:
        document["requests"] = requests
    return document
