"""The condition index is invisible: the indexed engine answers exactly as one unsplit cedarpy PolicySet.

Policies are generated in Cedar's text syntax over shell-like attributes and compiled without schema validation,
so conditions may read attributes the request lacks or holds with another type: forbids that error (which keycardd
denies) are common, not a corner. Requests carry strings, sets, records, numbers and absences in every attribute.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keycardd import engine as engine_module
from keycardd.adapters import claude
from keycardd.adapters.decision import Settings, shell_requests
from keycardd.adapters.payload import decode
from keycardd.engine import (
    TOOL_USE,
    CedarRequest,
    Engine,
    EntityUid,
    Outcome,
    PolicyError,
    PolicyInfo,
    PolicySource,
    default_policy_source,
)
from keycardd.engine_index import WHOLE_BUCKET_FALLBACK, BucketIndex, Guard, policy_guards
from keycardd.shell import analyze

USER = EntityUid("User", "dev@example.com")
ENTITIES = cedarpy.Entities.from_json_str("[]")
TOOLS = ["bash", "write", "read"]
TEXT_ATTRIBUTES = ["program", "command", "file_path", "url"]
SET_ATTRIBUTES = ["args", "via"]
ERRORING_POLICY = re.compile(r"policy `(?P<id>.*?)`")

literals = st.text(alphabet="ab.", max_size=2)
patterns = st.text(alphabet="ab*/", max_size=4).map(lambda p: p.replace("/", "\\*", 1))
"""`like` patterns over a tiny alphabet (so requests hit them), with wildcards and an escaped literal star."""


def _quote(text: str) -> str:
    return json.dumps(text)


def _set(values: list[str]) -> str:
    return "[" + ", ".join(_quote(value) for value in values) + "]"


@st.composite
def atoms(draw: st.DrawFn) -> str:
    text_attr = draw(st.sampled_from([*TEXT_ATTRIBUTES, "rec.name"]))
    set_attr = draw(st.sampled_from(SET_ATTRIBUTES))
    some = draw(st.lists(literals, max_size=3))
    indexable = [
        f"context.{text_attr} == {_quote(draw(literals))}",
        f"{_quote(draw(literals))} == context.{text_attr}",
        f"context.{text_attr} like {_quote(draw(patterns))}",
        f"context.{set_attr}.contains({_quote(draw(literals))})",
        f"context.{set_attr}.containsAny({_set(some)})",
        f"context.{set_attr}.containsAll({_set(some)})",
        f"{_set(some)}.contains(context.{text_attr})",
    ]
    other = [
        f"context has {draw(st.sampled_from([*TEXT_ATTRIBUTES, *SET_ATTRIBUTES, 'rec', 'size']))}",
        f"context.size > {draw(st.integers(-1, 2))}",
        "context.size * 4611686018427387904 > 0",  # overflows (errors) for sizes outside -1..1
        f"context.{text_attr} == context.{draw(st.sampled_from(TEXT_ATTRIBUTES))}",
        f'(if context has program then context.program like "a*" else context.{text_attr} == "a")',
        "true",
    ]
    atom = draw(st.sampled_from(indexable * 2 + indexable[3:6] + other))
    if draw(st.integers(0, 3)) == 0:  # often checked first, as the schema asks for optional attributes
        atom = f"context has {text_attr.split('.')[0]} && {atom}"
    return atom


def expressions() -> st.SearchStrategy[str]:
    """Mostly what policies are written as: disjunctions of conjunctions, sometimes negated or nested."""
    conjunctions = st.lists(atoms(), min_size=1, max_size=2).map(lambda parts: "(" + " && ".join(parts) + ")")
    disjunctions = st.lists(conjunctions, min_size=1, max_size=2).map(lambda parts: "(" + " || ".join(parts) + ")")
    return st.recursive(
        disjunctions,
        lambda inner: st.one_of(
            inner.map(lambda one: f"!{one}"),
            st.tuples(inner, inner).map(lambda pair: f"({pair[0]} && {pair[1]})"),
        ),
        max_leaves=2,
    )


@st.composite
def policy_texts(draw: st.DrawFn, index: int) -> str:
    effect = draw(st.sampled_from(["permit", "forbid"]))
    annotation = draw(st.sampled_from(["", '@itl("sure?") ', "@approve "])) if effect == "permit" else ""
    resource = draw(st.sampled_from(["resource", *(f'resource == Tool::"{tool}"' for tool in TOOLS)]))
    action = draw(st.sampled_from(["action", 'action == Action::"Agent::ToolUse"']))
    clauses = draw(
        st.lists(st.tuples(st.sampled_from(["when", "when", "unless"]), expressions()), min_size=1, max_size=2).map(
            lambda pairs: "".join(f" {kind} {{ {body} }}" for kind, body in pairs)
        )
    )
    if draw(st.integers(0, 7)) == 0:
        clauses = ""  # unconditional
    return f'@id("p{index}") {annotation}{effect} (principal, {action}, {resource}){clauses};'


@st.composite
def policy_sets(draw: st.DrawFn) -> str:
    count = draw(st.integers(3, 12))
    return "\n".join(draw(policy_texts(index)) for index in range(count))


def _values(draw: st.DrawFn, usual: st.SearchStrategy[Any], crossed: st.SearchStrategy[Any]) -> Any:
    """Mostly the attribute's own type; else the other type policies use (a string for a set), or anything."""
    odd = st.one_of(st.integers(-3, 3), st.booleans(), st.fixed_dictionaries({}))
    return draw(st.one_of(usual, usual, crossed, odd))


texts = st.one_of(literals, st.text(alphabet="ab.*", max_size=4))
sets = st.lists(literals, max_size=3)


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    context: dict[str, Any] = {"agent": "claude-code", "event": "PreToolUse"}
    for attribute in TEXT_ATTRIBUTES:
        if draw(st.booleans()):
            context[attribute] = _values(draw, texts, sets)
    for attribute in SET_ATTRIBUTES:
        if draw(st.booleans()):
            context[attribute] = _values(draw, sets, texts)
    if draw(st.booleans()):
        context["rec"] = _values(draw, st.fixed_dictionaries({}, optional={"name": literals, "x": literals}), texts)
    if draw(st.booleans()):
        context["size"] = _values(draw, st.integers(-2, 2), texts)
    return context


requests = st.builds(
    lambda tool, context: CedarRequest(USER, TOOL_USE, EntityUid("Tool", tool), context),
    st.sampled_from([*TOOLS, "other"]),
    contexts(),
)


def unvalidated_engine(text: str) -> Engine:
    """Compile without the schema (the daemon validates; this test wants policies that error as well)."""
    statics = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
    bodies = {body["annotations"]["id"]: body for body in statics.values()}
    infos = {
        pid: PolicyInfo(
            id=pid,
            effect=body["effect"],
            source="test",
            line=1,
            itl="sure?" if "itl" in body["annotations"] else None,
            approve="approve" in body["annotations"],
        )
        for pid, body in bodies.items()
    }
    return Engine((PolicySource("test", text),), infos, bodies, "sha")


def unsplit(engine: Engine, text: str) -> Any:
    statics = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
    document = {"staticPolicies": {body["annotations"]["id"]: body for body in statics.values()}}
    return cedarpy.PolicySet.from_json_str(json.dumps({**document, "templates": {}, "templateLinks": []}))


def _failing(result: Any) -> set[str]:
    return {match["id"] for error in result.diagnostics.errors if (match := ERRORING_POLICY.search(str(error)))}


def _selected_set(engine: Engine, request: CedarRequest) -> Any:
    bucket = engine._buckets.get((request.action, request.resource)) or engine._buckets[(request.action, _wildcard())]
    policy_set, _ = engine._policy_set(bucket.candidates(request.context))
    return policy_set


def _wildcard() -> EntityUid:
    return EntityUid("*", "*")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_sets(), st.lists(requests, min_size=1, max_size=3))
def test_indexed_evaluation_equals_one_unsplit_policy_set(text: str, batch: list[CedarRequest]) -> None:
    engine = unvalidated_engine(text)
    whole = unsplit(engine, text)
    expected = [cedarpy.is_authorized(request.as_cedar(), whole, ENTITIES) for request in batch]
    # Same raw answer: decision, determining policies and every policy that errored (permits included).
    for request, want in zip(batch, expected, strict=True):
        got = cedarpy.is_authorized(request.as_cedar(), _selected_set(engine, request), ENTITIES)
        assert got.decision == want.decision
        assert sorted(got.diagnostics.reasons) == sorted(want.diagnostics.reasons)
        assert _failing(got) == _failing(want)
    # Same verdicts through the public API, one by one and batched (one Cedar call over the union of selections).
    wanted = [engine._verdict(request, want) for request, want in zip(batch, expected, strict=True)]
    assert [engine.evaluate(request) for request in batch] == wanted
    assert engine.evaluate_many(batch) == wanted


def _bash(**context: Any) -> CedarRequest:
    return CedarRequest(USER, TOOL_USE, EntityUid("Tool", "bash"), {"agent": "claude-code", "event": "x", **context})


@pytest.mark.parametrize(
    ("clauses", "context"),
    [
        # An erroring conjunct before the indexed one: the forbid errors whatever the program, so it is evaluated.
        ('when { context.size * 4611686018427387904 > 0 && context.program == "rm" }', {"program": "ls", "size": 4}),
        # The indexed attribute is absent and not checked with `has`: Cedar errors, keycardd denies.
        ('when { context.program == "rm" }', {}),
        # The attribute has an unexpected type: `like` on a set errors, and so does `contains` on a string.
        ('when { context.program like "rm*" }', {"program": ["rm"]}),
        ('when { context.args.contains("-rf") }', {"args": "-rf"}),
        # The guard is in a nested record that is a string here.
        ('when { context.rec.name == "x" }', {"rec": "x"}),
        # The `unless` clause is evaluated after the `when` clause but errors (so the program is not enough).
        (
            'when { context.program like "*" } unless { context.size * 4611686018427387904 > 0 }',
            {"program": "ls", "size": 4},
        ),
        # An `unless` clause written first is evaluated first, and errors here (no `size`).
        ('unless { context.size > 0 } when { context.program == "rm" }', {"program": "ls"}),
        # One branch of a disjunction is not indexable.
        ('when { context.program == "rm" || context.size > 0 }', {"program": "ls", "size": 1}),
        # A like pattern whose star is escaped is a literal star, not a wildcard.
        ('when { context.command like "rm \\*" }', {"command": "rm *"}),
    ],
)
def test_forbids_that_error_or_match_outside_their_guard_are_still_evaluated(
    clauses: str, context: dict[str, Any]
) -> None:
    text = (
        f'@id("allow") permit (principal, action, resource);\n@id("f") forbid (principal, action, resource) {clauses};'
    )
    engine = unvalidated_engine(text)
    request = _bash(**context)
    want = cedarpy.is_authorized(request.as_cedar(), unsplit(engine, text), ENTITIES)
    verdict = engine.evaluate(request)
    assert verdict == engine._verdict(request, want)
    assert verdict.policies == ("f",)


CORPUS = Path(__file__).parent / "data" / "shell_corpus.jsonl"
PROGRAMS = ["git", "npm", "rm", "curl", "python", "make", "docker", "sed", "find", "tar", "ls", "cat", "sudo", "go"]


def shell_heavy_policies(count: int) -> str:
    """Shell policies as teams write them (as bench `shell_heavy_policies`, all on bash): program, command prefix,
    argument, substring, and some without a guard (a negation)."""
    rng = random.Random(count)
    lines = []
    for index in range(count):
        program = rng.choice(PROGRAMS)
        word = rng.choice(["-r", "-f", "--force", "push", "install", "x", "build", f"w{rng.randint(0, 99)}"])
        condition = rng.choice(
            [
                f'context has program && context.program == "{program}"',
                f'context has command && context.command like "{program} {word}*"',
                f'context has args && context.args.contains("{word}")',
                f'context has program && context.program == "{program}" && context has args && '
                f'context.args.contains("{word}")',
                f'context has command && context.command like "*{word}*"',
                f'context has program && !(context.program == "{program}")',
            ]
        )
        effect = rng.choice(["permit", "forbid"])
        annotation = rng.choice(["", '@itl("sure?") ', "@approve "]) if effect == "permit" else ""
        lines.append(
            f'@id("h{index}") {annotation}{effect} (principal, action, resource == Tool::"bash") '
            f"when {{ {condition} }};"
        )
    return "\n".join(lines) + "\n"


def _corpus_batches() -> list[list[CedarRequest]]:
    """Every line of the shell corpus as the daemon asks Cedar about it: one request per command and write."""
    batches = []
    for row in CORPUS.read_text().splitlines():
        line = json.loads(row)["line"]
        payload = {"hook_event_name": "PreToolUse", "cwd": "/w", "tool_name": "Bash", "tool_input": {"command": line}}
        call = claude.parse(decode(json.dumps(payload).encode()), {})
        analysis = analyze(line)
        if analysis.error is None:
            batches.append(shell_requests(call, analysis, Settings(principal=USER)))
    return [batch for batch in batches if batch]


@pytest.mark.parametrize("count", [200, 2000])
def test_real_shell_lines_get_the_unsplit_answer_under_default_and_shell_heavy_policies(count: int) -> None:
    text = default_policy_source().text + shell_heavy_policies(count)
    engine = Engine.compile([PolicySource("mix.cedar", text)])
    whole = unsplit(engine, text)
    for batch in _corpus_batches():
        wanted = [engine._verdict(one, cedarpy.is_authorized(one.as_cedar(), whole, ENTITIES)) for one in batch]
        assert engine.evaluate_many(batch) == wanted


def test_a_shell_command_selects_a_few_of_hundreds_of_shell_policies() -> None:
    text = "\n".join(
        f'@id("p{i}") forbid (principal, action, resource == Tool::"bash") when {{ context has command && '
        f'context.command like "w{i} *" }};\n@id("q{i}") permit (principal, action, resource == Tool::"bash") '
        f'when {{ context has program && ["w{i}", "v{i}"].contains(context.program) }};'
        for i in range(400)
    )
    bucket = Engine.compile([PolicySource("heavy.cedar", text)])._buckets[(TOOL_USE, EntityUid("Tool", "bash"))]
    assert len(bucket.members) == 800
    context = {"agent": "claude-code", "event": "PreToolUse", "command": "w7 push", "program": "w7", "args": ["push"]}
    assert bucket.candidates(context) == {"p7", "q7"}


def test_a_bucket_of_mostly_unguarded_policies_is_evaluated_whole() -> None:
    guards = {f"p{i}": None for i in range(WHOLE_BUCKET_FALLBACK + 1)}
    guards["indexed"] = (Guard("equals", ("program",), "rm", checked=True),)
    bucket = BucketIndex(guards)
    assert bucket.candidates({"program": "ls"}) == bucket.members
    assert BucketIndex({"indexed": guards["indexed"]}).candidates({"program": "ls"}) == set()


def test_the_selection_cache_is_bounded_and_keeps_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "MAX_SELECTED_POLICIES", 10)
    text = "\n".join(
        f'@id("p{i}") forbid (principal, action, resource) when {{ context has program && context.program == "p{i}" }};'
        for i in range(30)
    )
    engine = Engine.compile([PolicySource("t.cedar", text)])
    large = engine._policy_set([f"p{i}" for i in range(20)])  # alone over the bound: kept, as the newest
    assert engine._policy_set([f"p{i}" for i in range(20)]) is large
    for i in range(30):
        assert engine.evaluate(_bash(program=f"p{i}")).policies == (f"p{i}",)
        assert engine._selected_policies <= 10
    assert engine._selected_policies == sum(len(key) for key in engine._selections)


def test_a_context_whose_keys_are_not_strings_selects_every_policy() -> None:
    # json.dumps turns the key 1 into "1": the policy matches in Cedar though the index would not find "1".
    text = '@id("f") forbid (principal, action, resource) when { context has "1" && context["1"] == "x" };'
    engine = unvalidated_engine(text)
    request = CedarRequest(USER, TOOL_USE, EntityUid("Tool", "bash"), {1: "x"})
    assert engine.evaluate(request).policies == ("f",)


def test_a_condition_nested_deeper_than_python_recurses_is_always_evaluated() -> None:
    def equals(i: int) -> dict[str, Any]:
        return {"==": {"left": {".": {"left": {"Var": "context"}, "attr": "program"}}, "right": {"Value": f"p{i}"}}}

    condition = equals(0)
    for i in range(1, 3000):
        condition = {"||": {"left": condition, "right": equals(i)}}
    assert policy_guards({"conditions": [{"kind": "when", "body": condition}]}) is None
    shallow = {"||": {"left": equals(0), "right": equals(1)}}
    assert policy_guards({"conditions": [{"kind": "when", "body": shallow}]}) is not None


def test_a_long_disjunction_is_indexed_or_rejected_at_load_never_a_crash() -> None:
    def policy(terms: int) -> str:
        condition = " || ".join(f'context.program == "p{i}"' for i in range(terms))
        return f'@id("f") forbid (principal, action, resource) when {{ context has program && ({condition}) }};'

    engine = compile_text("permit (principal, action, resource);\n" + policy(50))
    assert "f" not in engine._buckets[(TOOL_USE, EntityUid("*", "*"))].fallback
    assert engine.evaluate(_bash(program="p49")).policies == ("f",)
    assert engine.evaluate(_bash(program="p50")).outcome is not Outcome.DENY
    # Cedar parses longer chains, but its JSON form (which selections are built from) refuses them: a load error
    # that names the line, not a deny of every request later, nor a crash of the reload (ValueError, RecursionError).
    for terms in (70, 1200):
        with pytest.raises(PolicyError, match=r"test.cedar:2: .*nests too deeply"):
            compile_text("permit (principal, action, resource);\n" + policy(terms))


def compile_text(text: str) -> Engine:
    return Engine.compile([PolicySource("test.cedar", text)])
