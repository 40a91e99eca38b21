"""The `hooks` map that Claude Code, Codex and Gemini CLI share: `{event: [{matcher?, hooks: [hook, ...]}, ...]}`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


def without_hooks(document: dict[str, Any], ours: Callable[[Any], bool]) -> dict[str, Any]:
    """A copy of `document` without the hooks `ours` claims; groups and events left empty by that are removed, and
    everything else (other tools' hooks, unknown shapes, groups that were empty already) is kept as it was."""
    result = copy.deepcopy(document)
    hooks = result.get("hooks")
    if not isinstance(hooks, dict):
        return result
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            if not (isinstance(group, dict) and isinstance(group.get("hooks"), list)):
                kept.append(group)
                continue
            remaining = [hook for hook in group["hooks"] if not ours(hook)]
            if remaining or not group["hooks"]:  # drop only groups that held nothing but the removed hooks
                kept.append({**group, "hooks": remaining})
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks:
        del result["hooks"]
    return result
