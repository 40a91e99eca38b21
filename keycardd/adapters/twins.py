"""One decision for a call Cursor reports twice: through its own keycardd hook and through Claude Code's.

Cursor also runs the hooks in `.claude/settings*.json` (its "third-party hooks"), so with both `keycardctl install
cursor` and `install claude` one shell command or file read reaches keycardd once as a Cursor event and once as a
Claude Code event (recognisable by the `CURSOR_VERSION` Cursor puts in every hook's environment). `TwinDedupe`
remembers recent decisions of both by what they act on, and the second of a pair reuses the first one's decision:
it is decided and counted once, and both hooks give the same answer (Cursor's own takes precedence anyway). A pair
whose keys differ is simply decided twice, which is what happened before: the failure mode is harmless.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from keycardd.adapters import cursor
from keycardd.adapters.decision import Call, Decision

_Key = tuple[str, str, str]


def key(call: Call, env: dict[str, str]) -> _Key | None:
    """(resource, cwd, what it acts on) for a Cursor call or a Claude Code call that Cursor ran; else None."""
    ran_by_cursor = call.agent == cursor.AGENT or (call.agent == "claude-code" and bool(env.get("CURSOR_VERSION")))
    if not ran_by_cursor:
        return None
    target = call.shell_line if call.shell_line is not None else call.context.get("file_path")
    if not isinstance(target, str) or call.parts or call.malformed is not None:
        return None
    return (call.tool, str(call.context.get("cwd") or ""), target)


class TwinDedupe:
    """Recent (agent, decision) by twin key; an entry answers only a call from the *other* agent, within `ttl_s`."""

    def __init__(self, capacity: int = 512, ttl_s: float = 30.0) -> None:
        self._entries: OrderedDict[_Key, tuple[float, str, Decision]] = OrderedDict()
        self._capacity = capacity
        self._ttl_s = ttl_s

    def twin_of(self, twin_key: _Key, agent: str) -> Decision | None:
        entry = self._entries.get(twin_key)
        if entry is None or entry[1] == agent or time.monotonic() - entry[0] > self._ttl_s:
            return None
        del self._entries[twin_key]  # a pair is two calls: a third is decided afresh
        return entry[2]

    def put(self, twin_key: _Key, agent: str, decision: Decision) -> None:
        self._entries[twin_key] = (time.monotonic(), agent, decision)
        self._entries.move_to_end(twin_key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
