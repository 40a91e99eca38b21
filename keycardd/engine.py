"""The Cedar engine: policy text in, parsed and indexed `Engine` out, `Verdict`s for requests.

The engine knows nothing of files, agents or sockets (sources hand it text, adapters hand it requests). It parses
each source once into Cedar's JSON form, validates it against the published schema, and splits the policies into
one bucket per (action, resource), so a request only considers the policies whose scope can match it. Within a
bucket, `engine_index` selects the policies whose conditions can match the request's context (a shell command's
program, its text's prefix...), and Cedar evaluates just those, in one cedarpy `PolicySet` per selection, built on
first use and kept (a bounded cache). A 5000-policy set costs milliseconds per request unsplit but a fraction of
that selected; a policy left out can neither match nor fail for the request, so the answers equal the unsplit set's.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import resources
from typing import Any, NamedTuple

import cedarpy

from keycardd.attribute_check import unknown_context_tests
from keycardd.context_projection import ContextAttributes, cedar_context, context_attributes, union
from keycardd.engine_index import BucketIndex, policy_guards

_EMPTY_ENTITIES = cedarpy.Entities.from_json_str("[]")
_ERRORING_POLICY = re.compile(r"policy `(?P<id>.*?)`")
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


class Outcome(StrEnum):
    """What keycardd answers, in increasing strictness (the order shell lines combine in)."""

    ALLOW = "allow"
    """A determining permit carries `@approve`: skip the agent's own permission prompt."""
    NO_OBJECTION = "no_objection"
    """Permitted; the agent's own permission rules still apply."""
    ASK = "ask"
    """A determining permit carries `@itl("prompt")`: a human must approve."""
    DENY = "deny"
    """A determining forbid, or no matching permit."""

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Outcome.ALLOW: 0, Outcome.NO_OBJECTION: 1, Outcome.ASK: 2, Outcome.DENY: 3}


class PolicyError(Exception):
    """A policy source cannot be used; the message names the source, the line and the problem."""


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Policy text and where it came from: a file path, `embedded:default`, or `zone:<set>@<version>`."""

    name: str
    text: str
    published_id: str | None = None
    """The id a zone published this text under (`p1`): its policies without an `@id` are named by it, not by
    Cedar's positional `policyN`, which counts every policy loaded before them and means nothing to the publisher."""


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """What the engine remembers about one policy to explain decisions that it determines."""

    id: str
    effect: str
    source: str
    line: int
    reason: str | None = None
    itl: str | None = None
    approve: bool = False


class EntityUid(NamedTuple):
    """A Cedar entity reference. Passed to cedarpy in its JSON form, which accepts any id (quotes, newlines)."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}::{json.dumps(self.id)}"

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


TOOL_USE = EntityUid("Action", "Agent::ToolUse")
PROMPT_SUBMIT = EntityUid("Action", "Agent::PromptSubmit")
CREDENTIAL_ISSUE = EntityUid("Action", "Agent::CredentialIssue")
_WILDCARD = EntityUid("*", "*")
MAX_SELECTIONS = 256
"""How many selected policy sets are kept (least recently used first out): shell sessions use a few dozen."""
MAX_SELECTED_POLICIES = 4_000
"""And how many policies they may hold together (about 6 KB each in cedarpy): the cache stays under ~25 MB
whatever the policy count. The most recent selection is kept even when it alone is larger."""


@dataclass(frozen=True, slots=True)
class CedarRequest:
    principal: EntityUid
    action: EntityUid
    resource: EntityUid
    context: Mapping[str, Any] = field(default_factory=dict)

    def as_cedar(self, reads: ContextAttributes = None) -> dict[str, Any]:
        """The request as cedarpy takes it; with `reads`, only the context the policies to evaluate can see
        (keycardd.context_projection)."""
        return {
            "principal": self.principal.as_json(),
            "action": self.action.as_json(),
            "resource": self.resource.as_json(),
            "context": cedar_context(self.context, reads),
        }

    def describe(self) -> dict[str, Any]:
        """The request as `explain` shows it: entity references in Cedar syntax."""
        return {
            "principal": str(self.principal),
            "action": str(self.action),
            "resource": str(self.resource),
            "context": dict(self.context),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    policies: tuple[str, ...]
    """The `@id`s (or Cedar ids) of the determining policies."""
    reason: str
    request: CedarRequest


def load_schema_text() -> str:
    return resources.files("keycardd").joinpath("schema.cedarschema").read_text(encoding="utf-8")


def default_policy_source() -> PolicySource:
    text = resources.files("keycardd").joinpath("default_policy.cedar").read_text(encoding="utf-8")
    return PolicySource(name="embedded:default", text=text)


class Engine:
    """An immutable, compiled policy set. Build one with `Engine.compile`; swap whole engines to reload."""

    def __init__(
        self,
        sources: tuple[PolicySource, ...],
        policies: Mapping[str, PolicyInfo],
        statics: Mapping[str, Any],
        sha256: str,
    ) -> None:
        self.sources = sources
        self.policies = policies
        self._texts = {policy_id: json.dumps(body) for policy_id, body in statics.items()}
        for policy_id, text in self._texts.items():
            if not _loads_from_json(text):
                info = policies[policy_id]
                raise PolicyError(f"{info.source}:{info.line}: {_TOO_DEEP}")
        self._buckets = _build_buckets(statics)
        self._reads = {policy_id: context_attributes(body) for policy_id, body in statics.items()}
        self._selections: OrderedDict[frozenset[str], tuple[Any, ContextAttributes]] = OrderedDict()
        self._selected_policies = 0
        self._selections_lock = threading.Lock()  # engines are shared: the loop, worker threads (credentials)
        self._order = {policy_id: index for index, policy_id in enumerate(policies)}
        self.sha256 = sha256
        self.overlay: Engine | None = None
        """A layer that can only make this engine's answers stricter (the managed policy, keycardd/managed.py)."""

    @property
    def count(self) -> int:
        return len(self.policies)

    @classmethod
    def compile(cls, sources: Sequence[PolicySource], schema_text: str | None = None) -> Engine:
        """Parse, validate and index `sources`; raises `PolicyError` naming the source and line of any problem."""
        engine = cls(*parse_policies(sources, schema_text))
        release_free_memory()  # parsing's garbage: the JSON bodies and Cedar's parser state
        return engine

    def evaluate(self, request: CedarRequest) -> Verdict:
        """Decide one request. Never raises on request content: an evaluation failure is a deny."""
        return self.evaluate_many([request])[0]

    def evaluate_many(self, requests: Sequence[CedarRequest]) -> list[Verdict]:
        """Decide several requests (a shell line's parts and its writes) in one Cedar call.

        The call evaluates the union of the policies each request's bucket index selects: a policy selected for
        one request but not another neither matches nor fails for the other, so every answer is unchanged.
        """
        verdicts: list[Verdict | None] = [None] * len(requests)
        selected: set[str] = set()
        pending: list[int] = []
        for index, request in enumerate(requests):
            bucket = self._buckets.get((request.action, request.resource)) or self._buckets.get(
                (request.action, _WILDCARD)
            )
            if bucket is None:
                reason = f"keycardd: no policy applies to {request.action} (default deny)"
                verdicts[index] = Verdict(Outcome.DENY, (), reason, request)
                continue
            selected.update(bucket.candidates(request.context))
            pending.append(index)
        if pending:
            policy_set, reads = self._policy_set(selected)
            try:
                results = cedarpy.is_authorized_batch(
                    [requests[index].as_cedar(reads) for index in pending], policy_set, _EMPTY_ENTITIES
                )
            except (KeyError, ValueError, TypeError) as exc:
                for index in pending:
                    reason = f"keycardd could not evaluate the request: {exc}"
                    verdicts[index] = Verdict(Outcome.DENY, (), reason, requests[index])
            else:
                for index, result in zip(pending, results, strict=True):
                    verdicts[index] = self._verdict(requests[index], result)
        return [verdict for verdict in verdicts if verdict is not None]

    def decide_many(self, requests: Sequence[CedarRequest]) -> list[Verdict]:
        """`evaluate_many`, then the overlay's deny or ask wherever it is stricter."""
        verdicts = self.evaluate_many(requests)
        if self.overlay is None:
            return verdicts
        return tighten(verdicts, self.overlay.evaluate_many(requests))

    def _policy_set(self, policy_ids: Iterable[str]) -> tuple[Any, ContextAttributes]:
        """The cedarpy PolicySet of exactly these policies and the context attributes they read, from the cache or
        built now (and cached)."""
        key = frozenset(policy_ids)
        with self._selections_lock:
            selection = self._selections.get(key)
            if selection is not None:
                self._selections.move_to_end(key)
                return selection
        ordered = sorted(key, key=self._order.__getitem__)
        members = ",".join(f"{json.dumps(pid)}:{self._texts[pid]}" for pid in ordered)
        policy_set = cedarpy.PolicySet.from_json_str(
            f'{{"staticPolicies":{{{members}}},"templates":{{}},"templateLinks":[]}}'
        )
        selection = (policy_set, union(self._reads[pid] for pid in key))
        with self._selections_lock:
            if key not in self._selections:
                self._selections[key] = selection
                self._selected_policies += len(key)
            while len(self._selections) > 1 and (
                len(self._selections) > MAX_SELECTIONS or self._selected_policies > MAX_SELECTED_POLICIES
            ):
                evicted, _ = self._selections.popitem(last=False)
                self._selected_policies -= len(evicted)
        return selection

    def _verdict(self, request: CedarRequest, result: Any) -> Verdict:
        # Cedar reports determining policies in no fixed order; source order makes reasons deterministic.
        determining = tuple(sorted(result.diagnostics.reasons, key=lambda pid: self._order.get(pid, len(self._order))))
        failed_forbids = self._failed_forbids(result.diagnostics.errors)
        if failed_forbids:
            ids = ", ".join(failed_forbids)
            reason = f"keycardd policy {ids} failed to evaluate, so the call is denied (fail closed)"
            return Verdict(Outcome.DENY, failed_forbids, reason, request)
        if not result.allowed:
            if not determining:
                reason = f"keycardd: no policy permits {request.resource} (default deny)"
                return Verdict(Outcome.DENY, (), reason, request)
            return Verdict(Outcome.DENY, determining, self._reason(determining[0], "denied"), request)
        infos = [self.policies[pid] for pid in determining if pid in self.policies]
        asking = next((info for info in infos if info.itl is not None), None)
        if asking is not None:
            reason = self._reason(asking.id, asking.itl or "approval required")
            return Verdict(Outcome.ASK, determining, reason, request)
        approving = next((info for info in infos if info.approve), None)
        if approving is not None:
            return Verdict(Outcome.ALLOW, determining, self._reason(approving.id, "approved"), request)
        return Verdict(Outcome.NO_OBJECTION, determining, self._reason(determining[0], "permitted"), request)

    def _reason(self, policy_id: str, fallback: str) -> str:
        info = self.policies.get(policy_id)
        text = (info.reason or info.itl) if info is not None else None
        return f"keycardd policy {policy_id!r}: {text or fallback}"

    def _failed_forbids(self, errors: Iterable[str]) -> tuple[str, ...]:
        failed = []
        for error in errors:
            match = _ERRORING_POLICY.search(str(error))
            info = self.policies.get(match["id"]) if match else None
            if info is None or info.effect == "forbid":
                failed.append(info.id if info is not None else "<unknown>")
        return tuple(failed)


def tighten(verdicts: Sequence[Verdict], layer: Sequence[Verdict]) -> list[Verdict]:
    """Each verdict, or the layer's verdict for the same request where that is a stricter ask or deny.

    A layer (the guard, the managed policy) only ever adds asks and denies: its baseline permit and its approvals
    never loosen an answer, and its asks never turn a deny into an ask.
    """
    result = []
    for current, layered in zip(verdicts, layer, strict=True):
        stricter = layered.outcome.strictness > current.outcome.strictness
        if layered.outcome in (Outcome.ASK, Outcome.DENY) and stricter:
            result.append(Verdict(layered.outcome, layered.policies, layered.reason, current.request))
        else:
            result.append(current)
    return result


def release_free_memory() -> None:
    """Give freed heap pages back to the system, where the C library allows it (glibc's `malloc_trim`).

    Parsing and validating a policy set allocates and frees tens of MB (Cedar's parser, the JSON document); glibc
    keeps freed pages, so without this a daemon's RSS grows by the peak of every reload (issue 20: +17 MB after one
    1,000-policy reload). Elsewhere (macOS, musl) it does nothing.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _parse_source(source: PolicySource, schema: Any, first_index: int) -> list[tuple[PolicyInfo, Any]]:
    """Parse one source to Cedar JSON and validate it; errors name `source.name` and the statement's line."""
    starts = statement_lines(source.text)
    try:
        document = json.loads(cedarpy.policies_to_json_str(source.text))
    except ValueError as exc:
        hint = ": end the policy with `;` (or close its `}` or `)`)" if str(exc) == _END_OF_INPUT else ""
        raise PolicyError(f"{source.name}:{_locate_parse_error(source.text, starts)}: {exc}{hint}") from None
    except RecursionError:  # Cedar parses it, but its JSON form nests deeper than Python's decoder recurses
        line = _locate_parse_error(source.text, starts, lambda text: json.loads(cedarpy.policies_to_json_str(text)))
        raise PolicyError(f"{source.name}:{line}: {_TOO_DEEP}") from None
    if document.get("templates"):
        raise PolicyError(f"{source.name}: policy templates are not supported")
    validation = cedarpy.validate_policies(source.text, schema)
    if not validation.validation_passed:
        error = validation.errors[0]
        line = _line_of(error.policy_id, starts)
        raise PolicyError(f"{source.name}:{line}: {_strip_policy_prefix(error.error)}")
    parsed: list[tuple[PolicyInfo, Any]] = []
    statics = document.get("staticPolicies", {})
    for cedar_id, body in statics.items():
        annotations: dict[str, str | None] = body.get("annotations") or {}
        line = _line_of(cedar_id, starts)
        policy_id = annotations.get("id") or _unnamed_id(source, cedar_id, len(statics), first_index + len(parsed))
        info = PolicyInfo(
            id=policy_id,
            effect=body["effect"],
            source=source.name,
            line=line,
            reason=annotations.get("reason") or annotations.get("description"),
            itl=(annotations["itl"] or "Approve this action?") if "itl" in annotations else None,
            approve="approve" in annotations,
        )
        if info.effect == "forbid" and (info.itl is not None or info.approve):
            raise PolicyError(f"{source.name}:{line}: @itl and @approve only mean something on a permit")
        parsed.append((info, body))
    return parsed


def _unnamed_id(source: PolicySource, cedar_id: str, count: int, position: int) -> str:
    """The id of a policy without `@id`: its published id (`p1`, or `p1#2` for the second of several policies
    published as one), else `policy<position>` over all sources."""
    if source.published_id is None:
        return f"policy{position}"
    if count == 1:
        return source.published_id
    match = re.fullmatch(r"policy(\d+)", cedar_id)
    return f"{source.published_id}#{int(match[1]) + 1 if match else cedar_id}"


_TOO_DEEP = (
    "the policy nests too deeply for Cedar's JSON form (a `||` or `&&` chain of more than about 60 terms): "
    "split it into several policies"
)
_SHALLOW = 100
"""Policies whose JSON nests no deeper than this load into a PolicySet (serde_json's limit is 128 levels)."""


def _loads_from_json(body_text: str) -> bool:
    """Whether cedarpy accepts the policy in the JSON document selections are built from (deep ones it refuses).

    Only policies with more than `_SHALLOW` brackets (an upper bound on their nesting) are tried."""
    if body_text.count("{") + body_text.count("[") <= _SHALLOW:
        return True
    try:
        cedarpy.PolicySet.from_json_str(f'{{"staticPolicies":{{"p":{body_text}}},"templates":{{}},"templateLinks":[]}}')
    except ValueError:
        return False
    return True


def _build_buckets(statics: Mapping[str, Any]) -> dict[tuple[EntityUid, EntityUid], BucketIndex]:
    """One index per (action, resource) that some policy names, plus a wildcard bucket per action.

    Each policy is placed in the buckets its scope admits (`*` stands for every resource no policy names), so
    building costs one step per policy and bucket it lands in rather than per policy and bucket.
    """
    actions: set[EntityUid] = {TOOL_USE, PROMPT_SUBMIT, CREDENTIAL_ISSUE}
    named_resources: set[EntityUid] = set()
    for body in statics.values():
        actions.update(_scope_entities(body["action"]))
        named_resources.update(_scope_entities(body["resource"]))
    resources = [*named_resources, _WILDCARD]
    members: dict[tuple[EntityUid, EntityUid], dict[str, Any]] = {
        (action, resource): {} for action in actions for resource in resources
    }
    for pid, body in statics.items():
        guards = policy_guards(body)
        for action in _admitted(body["action"], actions):
            for resource in _admitted(body["resource"], resources):
                members[(action, resource)][pid] = guards
    return {key: BucketIndex(guards) for key, guards in members.items()}


def _scope_entities(scope: Mapping[str, Any]) -> list[EntityUid]:
    if scope.get("op") == "==" and "entity" in scope:
        return [_entity_uid(scope["entity"])]
    if scope.get("op") == "in" and "entities" in scope:
        return [_entity_uid(entity) for entity in scope["entities"]]
    return []


def _admitted(scope: Mapping[str, Any], universe: Iterable[EntityUid]) -> Iterable[EntityUid]:
    """The entities of `universe` a request could name and match this scope with (`==` or `in` a list of them).

    `All`, `is`, and `in` a group entity admit every entity: correct, just less pruned.
    """
    named = _scope_entities(scope)
    return set(named) if named else universe


def _entity_uid(entity: Mapping[str, str]) -> EntityUid:
    return EntityUid(entity["type"], entity["id"])


def statement_lines(text: str) -> list[int]:
    """The 1-based line on which each top-level policy statement starts (policies end at a top-level `;`).

    Cedar's parser reports neither lines nor positions, so this small scanner, aware of strings and `//` comments,
    maps Cedar's positional policy ids back to lines for error messages.
    """
    starts: list[int] = []
    line = 1
    in_statement = False
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line += 1
        elif char == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif not char.isspace():
            if not in_statement:
                starts.append(line)
                in_statement = True
            if char == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    elif text[i] == "\n":
                        line += 1
                    i += 1
            elif char == ";":
                in_statement = False
        i += 1
    return starts


def _line_of(cedar_id: str, starts: Sequence[int]) -> int:
    match = re.fullmatch(r"policy(\d+)", cedar_id)
    if match and int(match[1]) < len(starts):
        return starts[int(match[1])]
    return 1


def _locate_parse_error(
    text: str, starts: Sequence[int], parse: Callable[[str], object] = cedarpy.policies_to_json_str
) -> int:
    """The line of the first syntax error: the parser itself does not say where, so find the first statement that
    fails to `parse` alone, then the line within it (`_error_line_within`)."""
    lines = text.splitlines(keepends=True)
    bounds = [*starts, len(lines) + 1]
    for index, start in enumerate(starts):
        statement = lines[start - 1 : bounds[index + 1] - 1]
        try:
            parse("".join(statement))
        except (ValueError, RecursionError):
            return start + _error_line_within(statement, parse)
    return starts[-1] if starts else 1


_END_OF_INPUT = "unexpected end of input"


def _error_line_within(statement: Sequence[str], parse: Callable[[str], object]) -> int:
    """The 0-based line of `statement` (a policy that fails to parse) where its error is.

    A statement cut short after any line fails with "unexpected end of input" until the cut takes in the bad
    token, and with another error from then on: the first such cut is the line, found by bisection. When every
    cut ends early, the statement itself does (a missing `;`, an unclosed `{`): the error is on its last line.
    """

    def fails_before_its_end(count: int) -> bool:
        try:
            parse("".join(statement[:count]))
        except ValueError as exc:
            return str(exc) != _END_OF_INPUT
        except RecursionError:
            return True
        return False

    low, high = 1, len(statement)  # the first cut that fails before its end is in [low, high]
    if not fails_before_its_end(high):
        return max((i for i, line in enumerate(statement) if _has_code(line)), default=0)
    while low < high:
        middle = (low + high) // 2
        if fails_before_its_end(middle):
            high = middle
        else:
            low = middle + 1
    return _line_of_token(statement, low - 1, parse)


def _line_of_token(statement: Sequence[str], line: int, parse: Callable[[str], object]) -> int:
    """`line`, or the nearest line before it holding the token the error names: Cedar's parser may read one token
    past the bad one before it complains (`&&` then `}` then `;` fails at the `;`'s line, naming the `}`)."""
    try:
        parse("".join(statement[: line + 1]))
    except ValueError as exc:
        named = re.match(r"unexpected token `(.+)`", str(exc))
        if named and named[1] not in statement[line]:
            return next((i for i in range(line - 1, -1, -1) if named[1] in statement[i]), line)
    except RecursionError:
        pass
    return line


def _has_code(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("//")


def _strip_policy_prefix(message: str) -> str:
    return re.sub(r"^for policy `[^`]*`, ", "", message)


MAX_POLICY_BYTES = 8 * 1024 * 1024
"""The most policy text keycardd compiles (all sources together): about 45,000 typical policies. A 50 MB set once
took 15 GB and minutes to compile; a set over a limit is refused and the last good policy stays active."""
MAX_POLICIES = 25_000
"""The most policies keycardd compiles (all sources together)."""


class ParsedPolicies(NamedTuple):
    """Sources parsed and validated, not yet indexed: `Engine(*parsed)` indexes them."""

    sources: tuple[PolicySource, ...]
    policies: dict[str, PolicyInfo]
    statics: dict[str, Any]
    """Each policy's Cedar JSON form, by id."""
    sha256: str


def parse_policies(sources: Sequence[PolicySource], schema_text: str | None = None) -> ParsedPolicies:
    """Parse and validate `sources` within the size limits; raises `PolicyError` naming the source and line."""
    check_policy_size(sources)
    schema_text = schema_text if schema_text is not None else load_schema_text()
    schema = cedarpy.Schema.from_str(schema_text)
    infos: dict[str, PolicyInfo] = {}
    statics: dict[str, Any] = {}
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.text.encode() + b"\0")
        for parsed_info, body in _parse_source(source, schema, first_index=len(infos)):
            info = parsed_info
            if info.id in infos and source.published_id is not None and "id" not in (body.get("annotations") or {}):
                # Two policy sets may publish the same policy: the later one is named by its source as well.
                info = replace(info, id=f"{source.name}{info.id[len(source.published_id) :]}")
            if info.id in infos:
                other = infos[info.id]
                raise PolicyError(
                    f"{source.name}:{info.line}: duplicate policy id {info.id!r} (also at {other.source}:{other.line})"
                )
            for attribute in unknown_context_tests(body, schema_text):
                raise PolicyError(
                    f"{source.name}:{info.line}: `context has {attribute}` is never true: no action this policy "
                    f"applies to has a context attribute `{attribute}` (a typo?)"
                )
            infos[info.id] = info
            statics[info.id] = body
        if len(infos) > MAX_POLICIES:
            raise PolicyError(
                f"{_names_of(sources)}: more than the {MAX_POLICIES:,} policies keycardd compiles "
                f"({len(infos):,} up to {source.name})"
            )
    return ParsedPolicies(tuple(sources), infos, statics, digest.hexdigest())


def check_policy_size(sources: Sequence[PolicySource]) -> None:
    """Refuse more than `MAX_POLICY_BYTES` of policy text before any of it is parsed."""
    size = sum(len(source.text.encode("utf-8", "surrogatepass")) for source in sources)
    if size > MAX_POLICY_BYTES:
        raise PolicyError(
            f"{_names_of(sources)}: {size:,} bytes of policy, more than the {MAX_POLICY_BYTES:,} keycardd compiles"
        )


def _names_of(sources: Sequence[PolicySource]) -> str:
    return ", ".join(source.name for source in sources) or "policy"
