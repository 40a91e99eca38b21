"""From a normalised tool call to one decision: the agent-neutral middle of the hot path.

A call becomes one Cedar request, or, for a shell line, one request per simple command the line would run plus a
`Tool::"write"` request per file it writes. The line's answer is its strictest part (deny > ask > no objection >
allow), and the reason names the part and the policy that decided it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from keycardd import powershell
from keycardd.adapters.analysis_cache import analyze_line
from keycardd.adapters.payload import absolute_path
from keycardd.canonical import canonical_path, case_insensitive_paths
from keycardd.engine import TOOL_USE, CedarRequest, Engine, EntityUid, Outcome, PolicyInfo, Verdict
from keycardd.guard import Guard
from keycardd.redact import mask
from keycardd.shell import ShellAnalysis


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
    arguments: Mapping[str, Any] | None = None
    """An MCP tool's arguments (and Grep's input, for its `glob`), searched for paths and URLs by
    `keycardd.adapters.facts`; never given to policies as they are."""
    more_facts: tuple[Mapping[str, Any], ...] = ()
    """Further requests for this call, each its context with these attributes replaced: one per further path or
    host, because Cedar cannot `like`-match the members of a set."""
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
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    """The user's home directory, resolved once: `~` and `$HOME` in paths mean this."""
    fold_case: bool = field(default_factory=lambda: case_insensitive_paths(os.environ))
    """Whether file paths are case-folded for policies (the file system ignores case: macOS's and Windows' default)."""
    guard: Guard = field(default_factory=Guard.from_environment)
    """keycardd's self-protection, applied on top of every policy: it can only make an answer stricter."""
    canonical_home: str = field(init=False)
    """`home` as policies see it in `context.home` (canonical, case-folded where paths are): computed once here."""

    def __post_init__(self) -> None:
        home = canonical_path(self.home, cwd="/", home=self.home, fold_case=self.fold_case)
        object.__setattr__(self, "canonical_home", home)


def decide(call: Call, engine: Engine | None, engine_error: str | None, settings: Settings) -> Decision:
    if call.malformed is not None:
        return Decision(Outcome.DENY, f"keycardd denied a malformed hook payload ({call.event}): {call.malformed}", ())
    if engine is None:
        problem = engine_error or "no policy is loaded"
        return Decision(Outcome.DENY, f"keycardd has no valid policy ({problem}); fix the policy file", ())
    if call.parts:
        decisions = [decide(part, engine, engine_error, settings) for part in call.parts]
        deciding = max(decisions, key=lambda decision: decision.outcome.strictness)
        policies = tuple(
            dict.fromkeys(
                pid for decision in decisions if decision.outcome == deciding.outcome for pid in decision.policies
            )
        )
        requests = tuple(request for decision in decisions for request in decision.requests)
        return Decision(deciding.outcome, deciding.reason, policies, requests)
    if call.shell_line is not None and call.tool == "powershell":
        return _decide_powershell(call, engine, settings)
    if call.shell_line is not None:
        return _decide_shell(call, engine, settings)
    guard = settings.guard
    request = guard.mark(CedarRequest(settings.principal, call.action, _tool(call.tool), call.context))
    if not call.more_facts:
        verdict = guard.review(engine.decide_many([request]))[0]
        return Decision(verdict.outcome, verdict.reason, deciding_policies([verdict], engine), (verdict.request,))
    more = [
        guard.mark(CedarRequest(request.principal, request.action, request.resource, {**call.context, **facts}))
        for facts in call.more_facts
    ]
    verdicts = guard.review(engine.decide_many([request, *more]))
    strictest = max(verdicts, key=lambda verdict: verdict.outcome.strictness)
    policies = deciding_policies(verdicts, engine)
    part = strictest.request.context.get("file_path") or strictest.request.context.get("host")
    reason = f"{strictest.reason} (for `{mask(str(part))}`)" if part else strictest.reason  # which of several
    return Decision(strictest.outcome, reason, policies, tuple(v.request for v in verdicts))


def deciding_policies(verdicts: Sequence[Verdict], engine: Engine) -> tuple[str, ...]:
    """The policies behind a call's answer: those of the requests that gave the strictest outcome, in order.

    Cedar's determining policies of a permitted request are every permit that matched, so a catch-all permit is
    among them on every ask; and the other requests of a shell line (or of a call naming several paths) answered
    otherwise. Neither decided the answer: an ask names its `@itl` permits, an allow its `@approve` permits, a deny
    its forbids. Layer policies (the guard, managed policy) are not in `engine` and are kept as they are.
    """
    outcome = max(verdicts, key=lambda verdict: verdict.outcome.strictness).outcome
    wanted: Callable[[PolicyInfo], bool] | None = _ANNOTATION_THAT_DECIDES.get(outcome)
    deciding: dict[str, None] = {}
    for verdict in verdicts:
        if verdict.outcome != outcome:
            continue
        for pid in verdict.policies:
            info = engine.policies.get(pid)
            if wanted is None or info is None or wanted(info):
                deciding[pid] = None
    return tuple(deciding)


_ANNOTATION_THAT_DECIDES: dict[Outcome, Callable[[PolicyInfo], bool]] = {
    Outcome.ASK: lambda info: info.itl is not None,
    Outcome.ALLOW: lambda info: info.approve,
}


def _tool(name: str) -> EntityUid:
    return EntityUid("Tool", name)


SHELL_ANALYSIS_TIME_LIMIT_S = 1.0
"""A line whose analysis takes longer (64 KiB of words on a loaded machine) is unparseable: within the hook's 2 s."""
MAX_SHELL_REQUESTS = 2000
"""More Cedar requests than this for one line (commands plus their paths) make it unparseable: bounded cost."""


def _decide_shell(call: Call, engine: Engine, settings: Settings) -> Decision:
    line = call.shell_line or ""
    cwd = str(call.context.get("cwd") or "")
    analysis = analyze_line(
        line, cwd=cwd, home=settings.home, fold_case=settings.fold_case, time_limit_s=SHELL_ANALYSIS_TIME_LIMIT_S
    )
    if analysis.error is not None:
        return Decision(settings.unparseable, f"keycardd could not analyse this shell command: {analysis.error}", ())
    hidden = next((c for c in analysis.commands if c.dynamic and "script" not in c.unknowns), None)
    if hidden is not None:
        reason = f"keycardd cannot tell which program `{mask(hidden.program)}` runs before the line runs"
        return Decision(settings.unparseable, reason, ())
    parts = _shell_parts(call, analysis, settings)
    requests = settings.guard.mark_all([request for request, _ in parts])
    if len(requests) > MAX_SHELL_REQUESTS:
        reason = f"keycardd could not analyse this shell command: it names more than {MAX_SHELL_REQUESTS} paths"
        return Decision(settings.unparseable, reason, ())
    verdicts = settings.guard.review(engine.decide_many(requests))
    if not verdicts:  # an empty line, or only comments and assignments: nothing runs
        empty = CedarRequest(settings.principal, call.action, _tool(call.tool), {**call.context, "command": line})
        verdict = engine.decide_many([empty])[0]
        return Decision(verdict.outcome, verdict.reason, deciding_policies([verdict], engine), (verdict.request,))
    index = max(range(len(verdicts)), key=lambda i: verdicts[i].outcome.strictness)
    strictest = verdicts[index]
    policies = deciding_policies(verdicts, engine)
    reason = f"{strictest.reason} (in `{mask(parts[index][1])}`)"  # the reason reaches logs and the agent: no tokens
    return Decision(strictest.outcome, reason, policies, tuple(v.request for v in verdicts))


def _decide_powershell(call: Call, engine: Engine, settings: Settings) -> Decision:
    """A PowerShell line, judged like a bash line: every command it runs, each path it names (keycardd.powershell)."""
    line = call.shell_line or ""
    analysis = powershell.analyze(line)
    if analysis.error is not None:
        return Decision(
            settings.unparseable, f"keycardd could not analyse this PowerShell command: {analysis.error}", ()
        )
    if analysis.hidden is not None:
        reason = f"keycardd cannot see the code this PowerShell command runs: {mask(analysis.hidden)}"
        return Decision(settings.unparseable, reason, ())
    contexts = powershell.request_contexts(
        analysis, call.context, line, home=settings.home, fold_case=settings.fold_case
    )
    if len(contexts) > MAX_SHELL_REQUESTS:
        reason = f"keycardd could not analyse this PowerShell command: it names more than {MAX_SHELL_REQUESTS} paths"
        return Decision(settings.unparseable, reason, ())
    if not contexts:  # only comments, assignments or expressions: no command runs
        contexts = [("powershell", {**call.context, "command": line}, line)]
    requests = settings.guard.mark_all(
        [CedarRequest(settings.principal, call.action, _tool(tool), context) for tool, context, _ in contexts]
    )
    verdicts = settings.guard.review(engine.decide_many(requests))
    index = max(range(len(verdicts)), key=lambda i: verdicts[i].outcome.strictness)
    strictest = verdicts[index]
    policies = deciding_policies(verdicts, engine)
    reason = f"{strictest.reason} (in `{mask(contexts[index][2])}`)"
    return Decision(strictest.outcome, reason, policies, tuple(v.request for v in verdicts))


def shell_requests(call: Call, analysis: ShellAnalysis, settings: Settings) -> list[CedarRequest]:
    """The Cedar requests for an analysed line (the attributes are described in keycardd/schema.cedarschema).

    One request per simple command (resource: the shell tool); one more per distinct path it names, with
    `file_path` and `access` (Cedar cannot `like`-match the members of a set); one `Tool::"write"` per file the
    line writes. The whole `line` is on the first request only, so the requests' size stays linear in the line.
    """
    return [request for request, _ in _shell_parts(call, analysis, settings)]


def _shell_parts(call: Call, analysis: ShellAnalysis, settings: Settings) -> list[tuple[CedarRequest, str]]:
    """`shell_requests`, each with the part of the line a reason names (the command, or the file written)."""
    principal, resource = settings.principal, _tool(call.tool)
    base = {key: value for key, value in call.context.items() if key != "command"}  # the line: one copy, below
    cwd = str(call.context.get("cwd") or "")
    home = settings.canonical_home
    project = canonical_path(cwd, cwd="/", home=settings.home, fold_case=settings.fold_case) if cwd[:1] == "/" else None
    requests: list[tuple[CedarRequest, str]] = []
    written: dict[str, None] = {}
    for index, command in enumerate(analysis.commands):
        facts: dict[str, Any] = {
            "program": command.program,
            "via": list(command.via),
            "unknowns": sorted(command.unknowns),
            "flags": list(command.flags),
            "home": home,
            "stdin_from": list(command.stdin_from),
            "deletes_recursively": command.deletes_recursively,
            "spawns_itself": command.spawns_itself,
            "hosts": list(command.hosts),
        }
        if command.subcommand is not None:
            facts["subcommand"] = command.subcommand
        context = {
            **base,
            **facts,
            "command": command.text,
            "args": list(command.args),
            "writes": [absolute_path(path, cwd) for path in command.writes],
            "assignments": list(command.assignments),
            "paths": list(command.paths),
        }
        if index == 0:
            context["line"] = call.shell_line or ""
        requests.append((CedarRequest(principal, call.action, resource, context), command.text))
        for path, access in command.accesses:
            covers_home = path in ("/", home) or home.startswith(path.rstrip("/") + "/")
            covers_cwd = project is not None and (path == project or project.startswith(path.rstrip("/") + "/"))
            per_path = {**base, **facts, "file_path": path, "access": access, "covers_home": covers_home,
                        "covers_cwd": covers_cwd}  # fmt: skip
            requests.append((CedarRequest(principal, call.action, resource, per_path), command.text))
            if access == "write":
                written[path] = None
    for path in written:
        request = CedarRequest(principal, call.action, _tool("write"), {**base, "file_path": path})
        requests.append((request, f"write to {path}"))
    return requests
