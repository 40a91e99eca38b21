"""Which policies of a bucket can match a request: an index over the conditions policies actually use.

Teams write most of their rules about one tool (`Tool::"bash"`), so splitting by scope alone leaves hundreds of
policies in one bucket, all evaluated for every shell command. This module reads each policy's condition in Cedar's
JSON form and finds a *guard*: facts about the context, cheap to look up, without one of which the condition is
false without error. A request then needs Cedar to evaluate only the policies whose guard it meets, plus the
*fallback* policies for which no guard was found. Evaluating that subset gives exactly the answer of the whole
bucket: a policy left out is neither satisfied nor erroring for the request, and Cedar's decision, determining
policies and errors depend on nothing else.

A guard is found only where it provably holds (anything else goes to the fallback set):

- a condition is the conjunction of its `when` bodies and negated `unless` bodies, evaluated left to right; the
  first conjunct that is an indexable fact is its guard, provided every conjunct before it is `context has <attr>`
  (which never errors);
- indexable facts: `context.<path> == "literal"`, `["a", "b"].contains(context.<path>)`, `context.<path> like
  "pattern"` with a literal prefix, suffix or inner run, and `context.<path>.contains("x")`, `.containsAny([...])`,
  `.containsAll([...])` over string literals; a disjunction is indexable when every branch is.

A guard on an attribute the request lacks, or holds with an unexpected type, is met: Cedar would error (or the
type check is not this module's to redo), so such policies are always evaluated, unless `context has <attr>` was
checked first (then the condition is simply false).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

AttributePath = tuple[str, ...]
GuardKind = Literal["equals", "prefix", "suffix", "infix", "contains"]


class Guard(NamedTuple):
    """One fact that can make a policy's condition true or erroring; a policy with several needs any one."""

    kind: GuardKind
    path: AttributePath
    """`("program",)` for `context.program`, `("a", "b")` for `context.a.b`."""
    value: str
    checked: bool
    """`context has <path[0]>` is evaluated before the fact: a request without that attribute cannot match."""


def policy_guards(body: Mapping[str, Any]) -> tuple[Guard, ...] | None:
    """The guards of one policy in Cedar's JSON form, or None when it must always be evaluated."""
    chain: list[Any] = []
    try:
        for condition in body.get("conditions") or ():
            if condition.get("kind") == "when":
                chain.extend(_conjuncts(condition.get("body")))
            else:
                chain.append(None)  # `unless`: a negation, never a guard, and it may error
        return _chain_guards(chain, frozenset())
    except RecursionError:  # a condition nested deeper than Python recurses: evaluate it always
        return None


def _conjuncts(expr: Any) -> list[Any]:
    """`a && b && c` as [a, b, c], in Cedar's evaluation order."""
    operands = _operands(expr, "&&")
    if operands is None:
        return [expr]
    return [*_conjuncts(operands.get("left")), *_conjuncts(operands.get("right"))]


def _chain_guards(chain: Iterable[Any], present: frozenset[str]) -> tuple[Guard, ...] | None:
    known = set(present)
    for expr in chain:
        if expr is None:
            return None
        guards = _guards(expr, frozenset(known))
        if guards is not None:
            return guards
        attribute = _context_has(expr)
        if attribute is None:
            return None  # a conjunct that may error comes first: the policy can error whatever follows
        known.add(attribute)
    return None


def _guards(expr: Any, present: frozenset[str]) -> tuple[Guard, ...] | None:
    """Guards such that, when none is met, `expr` is false without error (None when there are none)."""
    if not isinstance(expr, Mapping) or len(expr) != 1:
        return None
    ((op, args),) = expr.items()
    if not isinstance(args, Mapping):
        return None
    if op == "&&":
        return _chain_guards(_conjuncts(expr), present)
    if op == "||":
        left = _guards(args.get("left"), present)
        right = _guards(args.get("right"), present) if left is not None else None
        return None if left is None or right is None else (*left, *right)
    if op == "==":
        for path_side, value_side in (("left", "right"), ("right", "left")):
            path, value = _context_path(args.get(path_side)), _string(args.get(value_side))
            if path is not None and value is not None:
                return (_guard("equals", path, value, present),)
        return None
    if op == "like":
        path = _context_path(args.get("left"))
        return _like_guard(path, args.get("pattern"), present) if path is not None else None
    if op == "contains":
        path, value = _context_path(args.get("left")), _string(args.get("right"))
        if path is not None and value is not None:
            return (_guard("contains", path, value, present),)
        path, values = _context_path(args.get("right")), _strings(args.get("left"))
        if path is not None and values:
            return tuple(_guard("equals", path, one, present) for one in values)
        return None
    if op in ("containsAny", "containsAll"):
        path, values = _context_path(args.get("left")), _strings(args.get("right"))
        if path is None or not values:
            return None
        if op == "containsAll":
            values = values[:1]  # every element is required, so the first one is
        return tuple(_guard("contains", path, one, present) for one in values)
    return None


def _guard(kind: GuardKind, path: AttributePath, value: str, present: frozenset[str]) -> Guard:
    return Guard(kind, path, value, path[0] in present)


def _like_guard(path: AttributePath, pattern: Any, present: frozenset[str]) -> tuple[Guard, ...] | None:
    """A `like` pattern's most selective literal part: all of it, its prefix, its suffix or its longest inner run."""
    if not isinstance(pattern, list):
        return None
    runs: list[str] = [""]
    for element in pattern:
        if element == "Wildcard":
            runs.append("")
        elif isinstance(element, Mapping) and isinstance(element.get("Literal"), str):
            runs[-1] += element["Literal"]
        else:
            return None
    if len(runs) == 1:
        return (_guard("equals", path, runs[0], present),)
    prefix, suffix = runs[0], runs[-1]
    if prefix or suffix:
        if len(prefix) >= len(suffix):
            return (_guard("prefix", path, prefix, present),)
        return (_guard("suffix", path, suffix, present),)
    inner = max(runs, key=len)
    return (_guard("infix", path, inner, present),) if inner else None


def _operands(expr: Any, op: str) -> Mapping[str, Any] | None:
    if isinstance(expr, Mapping) and len(expr) == 1 and isinstance(expr.get(op), Mapping):
        operands: Mapping[str, Any] = expr[op]
        return operands
    return None


def _context_has(expr: Any) -> str | None:
    """`context has attr` (it never errors): the attribute name."""
    operands = _operands(expr, "has")
    if operands is not None and operands.get("left") == {"Var": "context"} and isinstance(operands.get("attr"), str):
        return str(operands["attr"])
    return None


def _context_path(expr: Any) -> AttributePath | None:
    operands = _operands(expr, ".")
    if operands is None or not isinstance(operands.get("attr"), str):
        return None
    attribute = str(operands["attr"])
    if operands.get("left") == {"Var": "context"}:
        return (attribute,)
    parent = _context_path(operands.get("left"))
    return (*parent, attribute) if parent is not None else None


def _string(expr: Any) -> str | None:
    if isinstance(expr, Mapping) and len(expr) == 1 and isinstance(expr.get("Value"), str):
        return str(expr["Value"])
    return None


def _strings(expr: Any) -> list[str] | None:
    """The elements of a set literal of string literals (None for anything else)."""
    if not isinstance(expr, Mapping) or len(expr) != 1 or not isinstance(expr.get("Set"), list):
        return None
    values = [_string(element) for element in expr["Set"]]
    return None if any(value is None for value in values) else [value for value in values if value is not None]


_ABSENT = object()
WHOLE_BUCKET_FALLBACK = 64
"""A bucket with more fallback policies than this, and more than half fallback, is not indexed."""


@dataclass(slots=True)
class _PathIndex:
    """The guards on one attribute path, by kind; each entry lists the policies it selects."""

    path: AttributePath
    equals: dict[str, list[str]] = field(default_factory=dict)
    prefixes: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    suffixes: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    infixes: dict[str, list[str]] = field(default_factory=dict)
    contains: dict[str, list[str]] = field(default_factory=dict)
    on_text: set[str] = field(default_factory=set)
    """Policies with a string guard here: all of them when the value is not a string."""
    on_set: set[str] = field(default_factory=set)
    """Policies with a set guard here: all of them when the value is not a set of strings."""
    unchecked: set[str] = field(default_factory=set)
    """Policies that reach the path without `context has` first: they error when its first attribute is absent."""

    def add(self, guard: Guard, policy_id: str) -> None:
        if guard.kind == "contains":
            self.contains.setdefault(guard.value, []).append(policy_id)
            self.on_set.add(policy_id)
        else:
            if guard.kind == "equals":
                table = self.equals
            elif guard.kind == "infix":
                table = self.infixes
            else:
                by_length = self.prefixes if guard.kind == "prefix" else self.suffixes
                table = by_length.setdefault(len(guard.value), {})
            table.setdefault(guard.value, []).append(policy_id)
            self.on_text.add(policy_id)
        if not guard.checked:
            self.unchecked.add(policy_id)

    def collect(self, context: Mapping[str, Any], into: set[str]) -> None:
        """Add the policies whose guard on this path the context meets."""
        value = context.get(self.path[0], _ABSENT)
        if value is _ABSENT:
            into.update(self.unchecked)
            return
        for attribute in self.path[1:]:
            if not isinstance(value, Mapping) or attribute not in value or _has_escape(value):
                into.update(self.on_text, self.on_set)
                return
            value = value[attribute]
        if isinstance(value, str):
            self._collect_text(value, into)
            into.update(self.on_set)  # a set operation on a string errors
        elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            for item in value:
                into.update(self.contains.get(item, ()))
            into.update(self.on_text)
        else:
            into.update(self.on_text, self.on_set)

    def _collect_text(self, value: str, into: set[str]) -> None:
        into.update(self.equals.get(value, ()))
        for length, table in self.prefixes.items():
            into.update(table.get(value[:length], ()))
        for length, table in self.suffixes.items():
            if length <= len(value):
                into.update(table.get(value[-length:], ()))
        for run, policies in self.infixes.items():
            if run in value:
                into.update(policies)


def _has_escape(record: Mapping[Any, Any]) -> bool:
    """Whether Cedar may not see this mapping as the record it looks like: `{"__entity": ...}`, `{"__extn": ...}`
    are entities and extension values, and a key that is not a string (`1`) reaches Cedar as another (`"1"`)."""
    return any(not isinstance(key, str) or key.startswith("__") for key in record)


class BucketIndex:
    """The policies of one (action, resource) bucket, indexed by guard; built once per policy set, read-only after."""

    __slots__ = ("_all", "_fallback", "_paths")

    def __init__(self, guards: Mapping[str, tuple[Guard, ...] | None]) -> None:
        self._all = frozenset(guards)
        self._fallback = frozenset(policy_id for policy_id, found in guards.items() if found is None)
        self._paths: dict[AttributePath, _PathIndex] = {}
        if len(self._fallback) > WHOLE_BUCKET_FALLBACK and len(self._fallback) * 2 > len(self._all):
            # Mostly conditions without a guard: selecting would save little and vary a large selection with every
            # request (each a PolicySet to build and cache), so the bucket is evaluated whole, as one set.
            self._fallback = self._all
            return
        for policy_id, found in guards.items():
            for guard in found or ():
                path_index = self._paths.get(guard.path)
                if path_index is None:
                    path_index = self._paths[guard.path] = _PathIndex(guard.path)
                path_index.add(guard, policy_id)

    @property
    def members(self) -> frozenset[str]:
        return self._all

    @property
    def fallback(self) -> frozenset[str]:
        return self._fallback

    def candidates(self, context: Any) -> frozenset[str] | set[str]:
        """The policies Cedar must evaluate for a request with this context (a superset of those that match)."""
        if not isinstance(context, Mapping) or _has_escape(context):
            return self._all
        if not self._paths:
            return self._fallback
        selected = set(self._fallback)
        for path_index in self._paths.values():
            path_index.collect(context, selected)
        return selected
