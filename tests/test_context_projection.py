"""Cedar sees only the context attributes the evaluated policies read, and every answer stays what it was.

Each comparison decides the same requests twice with one engine: as keycardd does now, and with the whole context
handed to cedarpy as a dict (what it did before `keycardd.context_projection`), so a difference in outcome,
determining policies, reason or the request kept for the log fails the test.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shell_lines import SEED, attack_lines, corpus_lines
from test_engine_index import policy_sets, requests, unvalidated_engine
from test_shell_attacks import BENIGN, POLICY_DENIES

from keycardd import engine as engine_module
from keycardd.adapters import Decider, Settings
from keycardd.context_projection import cedar_context, context_attributes
from keycardd.engine import CedarRequest, Engine, EntityUid, PolicySource, default_policy_source

USER = EntityUid("User", "dev@example.com")


def _whole(context: Mapping[str, Any], _reads: Any) -> dict[str, Any]:
    return dict(context)


@contextmanager
def unprojected() -> Iterator[None]:
    """The engine as it was: the whole context, encoded by cedarpy."""
    with mock.patch.object(engine_module, "cedar_context", _whole):
        yield


def _body(text: str) -> Any:
    from cedarpy import policies_to_json_str

    (body,) = json.loads(policies_to_json_str(text))["staticPolicies"].values()
    return body


def test_a_policy_reads_the_attributes_it_names_and_the_whole_context_when_it_uses_it() -> None:
    reads = context_attributes(
        _body('forbid (principal, action, resource) when { context has a && context.b.c == "x" && context["d"] };')
    )
    assert reads == {"a", "b", "d"}
    assert context_attributes(_body("permit (principal, action, resource);")) == frozenset()
    assert context_attributes(_body("forbid (principal, action, resource) when { context == {} };")) is None
    nested = 'forbid (principal, action, resource) when { { "r": context }.r has a };'
    assert context_attributes(_body(nested)) is None


def test_only_plain_unread_attributes_are_left_out() -> None:
    context = {"a": "x", "b": ["y"], "c": 1, "odd": "\udc80", "big": 1 << 70, "f": 1.5, "rec": {"__entity": {}}}
    kept = {"a": "x", "odd": "\udc80", "big": 1 << 70, "f": 1.5, "rec": {"__entity": {}}}
    assert cedar_context(context, frozenset({"a"})) == kept  # not all plain: a dict, for cedarpy to encode
    assert json.loads(cedar_context({"a": "é", "b": [True, 2], "c": "z"}, frozenset({"a", "b"}))) == {
        "a": "é",
        "b": [True, 2],
    }
    assert cedar_context({"a": "x", "__entity": "y"}, frozenset()) == {"__entity": "y"}  # an escape: kept, as a dict
    assert json.loads(cedar_context({"a": "x"}, None)) == {"a": "x"}


odd_values = st.one_of(
    st.text(max_size=3),
    st.sampled_from(["\udc80", "é", 1 << 64, -(1 << 63), (1 << 63) - 1, 1.5, float("nan"), None, {"__entity": {}}]),
    st.lists(st.one_of(st.text(max_size=2), st.integers(), st.just("\ud800")), max_size=2),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy_sets(),
    st.lists(st.tuples(requests, st.dictionaries(st.sampled_from(["x", "size", "y", "__z"]), odd_values)), max_size=3),
    st.booleans(),
)
def test_projected_answers_equal_whole_context_answers(
    text: str, batch: list[tuple[CedarRequest, dict[str, Any]]], reads_whole_context: bool
) -> None:
    if reads_whole_context:
        text += '\n@id("whole") forbid (principal, action, resource) when { context == {"agent": "x"} };'
    engine = unvalidated_engine(text)
    extended = [CedarRequest(r.principal, r.action, r.resource, {**r.context, **extra}) for r, extra in batch]
    with unprojected():
        want = engine.evaluate_many(extended)
        want_one = [engine.evaluate(request) for request in extended]
    assert engine.evaluate_many(extended) == want
    assert [engine.evaluate(request) for request in extended] == want_one


SHELL_LINES = sorted(
    {line for _, line in attack_lines(random.Random(SEED), per_template=1)}
    | {line for _, line in corpus_lines()}
    | set(BENIGN)
    | set(POLICY_DENIES)
)


def _payloads() -> list[bytes]:
    shell = [
        {"hook_event_name": "PreToolUse", "cwd": "/home/dev/app", "tool_name": "Bash", "tool_input": {"command": line}}
        for line in SHELL_LINES
    ]
    files = [
        {"hook_event_name": "PreToolUse", "cwd": "/home/dev/app", "tool_name": tool, "tool_input": tool_input}
        for tool, tool_input in [
            ("Read", {"file_path": "~/.ssh/id_rsa"}),
            ("Write", {"file_path": "/home/dev/.claude/settings.json", "content": "{}"}),
            ("Edit", {"file_path": "src/app.py", "old_string": "a", "new_string": "b"}),
            ("WebFetch", {"url": "http://169.254.169.254/latest", "prompt": "x"}),
            ("Grep", {"pattern": "x", "path": "~", "glob": "**/credentials"}),
            ("mcp__fs__read", {"path": "/etc/shadow", "nested": {"url": "https://evil.example"}}),
        ]
    ]
    return [json.dumps(payload).encode() for payload in shell + files]


NO_RM = '@id("no-rm") forbid (principal, action, resource) when { context has program && context.program == "rm" };'


@pytest.mark.parametrize("extra", ["", NO_RM], ids=["default", "default-and-one-more"])
def test_the_attack_and_benign_corpora_get_the_same_decisions(extra: str) -> None:
    engine = Engine.compile([default_policy_source(), PolicySource("extra.cedar", extra)])
    settings = Settings(principal=USER, home="/home/dev", fold_case=False)
    payloads = _payloads()
    assert len(payloads) > 300
    with unprojected():
        decider = Decider(settings)
        want = [decider.decide_hook(engine, None, "claude", payload, {}) for payload in payloads]
    decider = Decider(settings)
    got = [decider.decide_hook(engine, None, "claude", payload, {}) for payload in payloads]
    for payload, one, other in zip(payloads, got, want, strict=True):
        assert (one.stdout, one.exit_code, one.decision) == (other.stdout, other.exit_code, other.decision), payload
