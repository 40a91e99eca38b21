"""Remembered shell analyses: the same decisions as fresh ones, and a new policy applies to remembered lines at once."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from shell_lines import SEED, attack_lines, corpus_lines
from test_shell_attacks import ASKS, BENIGN, POLICY_DENIES

from keycardd.adapters import Decider, Settings, analysis_cache
from keycardd.engine import Engine, EntityUid, Outcome, PolicySource, default_policy_source
from keycardd.shell import analyze

USER = EntityUid("User", "dev@example.com")
HOME = "/home/dev"
SHARED_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "benign-commands.jsonl"
ENGINE = Engine.compile([default_policy_source()])


def _corpus_lines() -> list[str]:
    """The soundness corpus (attack templates filled with payloads, agents' real lines, fuzz finds), the attack
    test's lines and the shared benign corpus's shell commands."""
    lines = {line for _, line in attack_lines(random.Random(SEED), per_template=2)}
    lines |= {line for _, line in corpus_lines()} | set(BENIGN) | set(POLICY_DENIES) | set(ASKS)
    if SHARED_CORPUS.exists():
        for row in SHARED_CORPUS.read_text().splitlines():
            tool_input = json.loads(row)["payload"].get("tool_input") or {}
            if isinstance(tool_input.get("command"), str):
                lines.add(tool_input["command"])
    return sorted(lines)


LINES = _corpus_lines()


def _payload(line: str, cwd: str = "/home/dev/app") -> bytes:
    payload = {"hook_event_name": "PreToolUse", "cwd": cwd, "tool_name": "Bash", "tool_input": {"command": line}}
    return json.dumps(payload).encode()


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    analysis_cache.clear()
    yield
    analysis_cache.clear()


def test_remembered_analyses_give_the_decisions_fresh_ones_give() -> None:
    assert len(LINES) > 1000
    settings = Settings(principal=USER, home=HOME, fold_case=False)
    remembered = 0
    for line in LINES:
        analysis_cache.clear()
        fresh = Decider(settings).decide_hook(ENGINE, None, "claude", _payload(line), {})
        hits = analysis_cache._analyzed.cache_info().hits
        again = Decider(settings).decide_hook(ENGINE, None, "claude", _payload(line), {})
        remembered += analysis_cache._analyzed.cache_info().hits - hits
        assert (again.stdout, again.decision) == (fresh.stdout, fresh.decision), line
    assert remembered > len(LINES) // 2  # most lines are analysable, and those came from the cache


def test_a_remembered_analysis_is_the_fresh_one_for_the_same_place_only() -> None:
    first = analysis_cache.analyze_line("rm -rf build", cwd="/a", home=HOME, fold_case=False, time_limit_s=1.0)
    again = analysis_cache.analyze_line("rm -rf build", cwd="/a", home=HOME, fold_case=False, time_limit_s=1.0)
    elsewhere = analysis_cache.analyze_line("rm -rf build", cwd="/b", home=HOME, fold_case=False, time_limit_s=1.0)
    folded = analysis_cache.analyze_line("cat ~/X", cwd="/a", home=HOME, fold_case=True, time_limit_s=1.0)
    assert again is first
    assert first == analyze("rm -rf build", cwd="/a", home=HOME)
    assert elsewhere == analyze("rm -rf build", cwd="/b", home=HOME) != first
    assert folded == analyze("cat ~/X", cwd="/a", home=HOME, fold_case=True)
    assert folded != analysis_cache.analyze_line("cat ~/X", cwd="/a", home=HOME, fold_case=False, time_limit_s=1.0)


def test_a_new_policy_decides_a_remembered_line() -> None:
    settings = Settings(principal=USER, home=HOME, fold_case=False)
    decider = Decider(settings)
    permissive = Engine.compile([PolicySource("p.cedar", "permit (principal, action, resource);")])
    assert decider.decide_hook(permissive, None, "claude", _payload("git push origin main"), {}).decision.outcome is (
        Outcome.NO_OBJECTION
    )
    reloaded = Engine.compile(
        [
            PolicySource(
                "p.cedar",
                "permit (principal, action, resource);\n"
                '@id("no-push") forbid (principal, action, resource) when '
                '{ context has subcommand && context.subcommand == "push" };',
            )
        ]
    )
    hits = analysis_cache._analyzed.cache_info().hits
    decision = decider.decide_hook(reloaded, None, "claude", _payload("git push origin main"), {}).decision
    assert analysis_cache._analyzed.cache_info().hits == hits + 1  # the line was remembered, the policy was not
    assert decision is not None
    assert (decision.outcome, decision.policies) == (Outcome.DENY, ("no-push",))


def test_refused_and_long_lines_are_not_remembered() -> None:
    refused = analysis_cache.analyze_line("echo $((", cwd="/a", home=HOME, fold_case=False, time_limit_s=1.0)
    assert refused.error is not None
    long_line = "echo " + "x" * analysis_cache.MAX_CACHED_LINE
    assert analysis_cache.analyze_line(long_line, cwd="/a", home=HOME, fold_case=False, time_limit_s=1.0).error is None
    assert analysis_cache._analyzed.cache_info().currsize == 0
