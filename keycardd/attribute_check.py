"""Catching `context has <typo>`: a test for an attribute the schema does not have, which Cedar's validator passes.

The schema is closed, so Cedar's validator rejects `context.progam`, but not `context has progam && context.progam
== "rm"`: `has` on a missing attribute is typed as false, and `&&` stops there, so the policy validates and
silently never matches (a forbid that never fires). This check finds every `context has <attr>` in a policy's
Cedar JSON form and asks the validator itself whether `<attr>` exists in the context of any action the policy's
scope admits; if it exists in none, the policy is refused, naming the attribute.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import cedarpy

ACTIONS = ("Agent::ToolUse", "Agent::PromptSubmit", "Agent::CredentialIssue")


def unknown_context_tests(body: Mapping[str, Any], schema_text: str) -> list[str]:
    """The attributes this policy tests with `context has` that no action it applies to has in its context."""
    actions = _actions(body.get("action") or {})
    unknown = []
    for attribute in sorted(set(_context_has(body.get("conditions") or []))):
        if not any(_has_attribute(schema_text, action, attribute) for action in actions):
            unknown.append(attribute)
    return unknown


def _actions(scope: Mapping[str, Any]) -> tuple[str, ...]:
    if scope.get("op") == "==" and "entity" in scope:
        return (scope["entity"]["id"],)
    if scope.get("op") == "in" and "entities" in scope:
        return tuple(entity["id"] for entity in scope["entities"])
    return ACTIONS


def _context_has(node: Any) -> Iterator[str]:
    """Every attribute named in `context has <attr>` anywhere in a Cedar JSON expression tree."""
    if isinstance(node, dict):
        has = node.get("has")
        if isinstance(has, dict) and has.get("left") == {"Var": "context"} and isinstance(has.get("attr"), str):
            yield has["attr"]
        for value in node.values():
            yield from _context_has(value)
    elif isinstance(node, list):
        for value in node:
            yield from _context_has(value)


@functools.lru_cache(maxsize=8)
def _schema(schema_text: str) -> Any:
    return cedarpy.Schema.from_str(schema_text)


@functools.lru_cache(maxsize=4096)
def _has_attribute(schema_text: str, action: str, attribute: str) -> bool:
    """Does `action`'s context declare `attribute`? Cedar says "not found" for an undeclared one (an optional one
    accessed without `has` is a different error, so the probe tells the two apart)."""
    probe = (
        f"permit (principal, action == Action::{json.dumps(action)}, resource) "
        f"when {{ context[{json.dumps(attribute)}] == context[{json.dumps(attribute)}] }};"
    )
    result = cedarpy.validate_policies(probe, _schema(schema_text))
    return not any("not found" in str(error.error) and "in context" in str(error.error) for error in result.errors)
