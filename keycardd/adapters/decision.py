"""From a normalised tool call to one decision: the agent-neutral middle of the hot path.

A call becomes one Cedar request, or, for a shell line, one request per simple command the line would run plus a
`Tool::"write"` request per file it writes. The line's answer is its strictest part (deny > ask > no objection >
allow), and the reason names the part and the policy that decided it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from keycardd.adapters.payload import absolute_path
from keycardd.engine import TOOL_USE, CedarRequest, Engine, EntityUid, Outcome, Verdict
from keycardd.redact import mask
from keycardd.shell import ShellAnalysis, analyze


class Kind(Enum):
    """What an event is for keycardd: a gate to decide, an event to observe, or one it does not know."""

    GATE = "gate"
    OBSERVE = "observe"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Call:
    """One agent event, normalised: what the adapters hand to `decide`."""

    agent: str
    event: str
    kind: Kind
    action: EntityUid = TOOL_USE
    tool: str = ""
    """The Cedar resource id: Claude's tool name lowercased, MCP tools verbatim, Cursor tools mapped."""
    context: Mapping[str, Any] = field(default_factory=dict)
    shell_line: str | None = None
    """Set for shell tools: the line is analysed and every simple command decided."""
    malformed: str | None = None
    """Set when a gate's payload cannot be understood; the decision is then a deny saying so."""
    content: str | None = None
    """File content the call would write: never given to policies, logged only as size and sha256."""
    parts: tuple[Call, ...] = ()
    """Set when one tool call touches several resources (a Codex patch edits several files): each part is decided
    and the call gets the strictest answer."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str
    policies: tuple[str, ...]
    requests: tuple[CedarRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """The daemon-wide choices adapters need; built once at start-up."""

    principal: EntityUid
    unparseable: Outcome = Outcome.DENY
    """What a shell line that cannot be analysed (or hides its program) gets: deny, or ask if configured."""


def decide(call: Call, engine: Engine | None, engine_error: str | None, settings: Settings) -> Decision:
    if call.malformed is not None:
        return Decision(Outcome.DENY, f"keycardd denied a malformed hook payload ({call.event}): {call.malformed}", ())
    if engine is None:
        problem = engine_error or "no policy is loaded"
        return Decision(Outcome.DENY, f"keycardd has no valid policy ({problem}); fix the policy file", ())
    if call.parts:
        decisions = [decide(part, engine, engine_error, settings) for part in call.parts]
        strictest = max(decisions, key=lambda decision: decision.outcome.strictness)
        policies = tuple(dict.fromkeys(pid for decision in decisions for pid in decision.policies))
        requests = tuple(request for decision in decisions for request in decision.requests)
        return Decision(strictest.outcome, strictest.reason, policies, requests)
    if call.shell_line is not None:
        return _decide_shell(call, engine, settings)
    verdict = engine.evaluate(CedarRequest(settings.principal, call.action, _tool(call.tool), call.context))
    return Decision(verdict.outcome, verdict.reason, verdict.policies, (verdict.request,))


def _tool(name: str) -> EntityUid:
    return EntityUid("Tool", name)


def _decide_shell(call: Call, engine: Engine, settings: Settings) -> Decision:
    line = call.shell_line or ""
    analysis = analyze(line)
    if analysis.error is not None:
        return Decision(settings.unparseable, f"keycardd could not analyse this shell command: {analysis.error}", ())
    hidden = next((command for command in analysis.commands if command.dynamic), None)
    if hidden is not None:
        reason = f"keycardd cannot tell which program `{hidden.program}` runs before the line runs"
        return Decision(settings.unparseable, reason, ())
    verdicts = engine.evaluate_many(shell_requests(call, analysis, settings.principal))
    if not verdicts:  # an empty line, or only comments and assignments: nothing runs
        empty = CedarRequest(settings.principal, call.action, _tool(call.tool), {**call.context, "command": line})
        verdict = engine.evaluate(empty)
        return Decision(verdict.outcome, verdict.reason, verdict.policies, (verdict.request,))
    strictest = max(verdicts, key=lambda verdict: verdict.outcome.strictness)
    policies = tuple(dict.fromkeys(pid for verdict in verdicts for pid in verdict.policies))
    return Decision(strictest.outcome, _part_reason(strictest), policies, tuple(v.request for v in verdicts))


def shell_requests(call: Call, analysis: ShellAnalysis, principal: EntityUid) -> list[CedarRequest]:
    """One request per simple command (resource: the shell tool) and one `Tool::"write"` per file written."""
    line = call.shell_line or ""
    cwd = str(call.context.get("cwd") or "")
    requests = []
    for command in analysis.commands:
        context = {
            **call.context,
            "command": command.text,
            "program": command.program,
            "args": list(command.args),
            "line": line,
            "writes": [absolute_path(path, cwd) for path in command.writes],
            "assignments": list(command.assignments),
            "via": list(command.via),
        }
        requests.append(CedarRequest(principal, call.action, _tool(call.tool), context))
    for path in analysis.writes:
        context = {**call.context, "file_path": absolute_path(path, cwd), "line": line}
        requests.append(CedarRequest(principal, call.action, _tool("write"), context))
    return requests


def _part_reason(verdict: Verdict) -> str:
    context = verdict.request.context
    part = context.get("command") if "command" in context else f"write to {context.get('file_path')}"
    return f"{verdict.reason} (in `{mask(str(part))}`)"  # the reason reaches logs and the agent: no tokens
