"""The Cedar engine: annotations to outcomes, reasons, load errors, and bucketed evaluation equal to unsplit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cedarpy
import pytest

from keycardd.engine import (
    TOOL_USE,
    CedarRequest,
    Engine,
    EntityUid,
    Outcome,
    PolicyError,
    PolicySource,
    default_policy_source,
    load_schema_text,
)

USER = EntityUid("User", "dev@example.com")


def request(tool: str, **context: object) -> CedarRequest:
    return CedarRequest(
        USER, TOOL_USE, EntityUid("Tool", tool), {"agent": "claude-code", "event": "PreToolUse", **context}
    )


def compile_text(text: str, name: str = "test.cedar") -> Engine:
    return Engine.compile([PolicySource(name, text)])


ANNOTATED = """
@id("permit-all")
permit (principal, action, resource);

@id("ask-bash") @itl("Run this shell command?")
permit (principal, action == Action::"Agent::ToolUse", resource == Tool::"bash");

@id("approve-read") @approve
permit (principal, action == Action::"Agent::ToolUse", resource == Tool::"read");

@id("no-webfetch") @reason("No web access from agents.")
forbid (principal, action == Action::"Agent::ToolUse", resource == Tool::"webfetch");
"""


@pytest.mark.parametrize(
    ("tool", "outcome", "policy"),
    [
        ("webfetch", Outcome.DENY, "no-webfetch"),
        ("bash", Outcome.ASK, "ask-bash"),
        ("read", Outcome.ALLOW, "approve-read"),
        ("glob", Outcome.NO_OBJECTION, "permit-all"),
    ],
)
def test_annotations_decide_the_outcome(tool: str, outcome: Outcome, policy: str) -> None:
    verdict = compile_text(ANNOTATED).evaluate(request(tool))
    assert verdict.outcome is outcome
    assert policy in verdict.policies
    assert policy in verdict.reason


def test_reason_carries_the_reason_annotation() -> None:
    verdict = compile_text(ANNOTATED).evaluate(request("webfetch"))
    assert verdict.reason == "keycardd policy 'no-webfetch': No web access from agents."


def test_no_matching_permit_is_a_deny_that_says_so() -> None:
    engine = compile_text('permit (principal, action, resource == Tool::"read");')
    verdict = engine.evaluate(request("bash"))
    assert verdict.outcome is Outcome.DENY
    assert verdict.policies == ()
    assert "no policy permits" in verdict.reason


def test_policies_without_id_are_named_by_position() -> None:
    engine = compile_text('permit (principal, action, resource);\nforbid (principal, action, resource == Tool::"x");')
    assert engine.evaluate(request("x")).policies == ("policy1",)


def test_ask_wins_over_approve() -> None:
    engine = compile_text(
        '@approve permit (principal, action, resource);\n@itl("sure?") permit (principal, action, resource);'
    )
    assert engine.evaluate(request("bash")).outcome is Outcome.ASK


def test_parse_error_names_file_and_line() -> None:
    text = (
        "permit (principal, action, resource);\n\n// a comment; with a semicolon\n"
        "forbid (principal,\n action, resource) when { x };\n"
    )
    with pytest.raises(PolicyError, match=r"^bad\.cedar:5: invalid variable: x"):  # where `x` is, not line 4
        compile_text(text, "bad.cedar")


def test_schema_error_names_file_line_and_attribute() -> None:
    text = (
        'permit (principal, action, resource);\n@id("typo")\n'
        'permit (principal, action, resource) when { context.comand == "ls" };'
    )
    with pytest.raises(PolicyError, match=r"^p\.cedar:2: .*comand"):
        compile_text(text, "p.cedar")


def test_duplicate_ids_are_rejected_with_both_places() -> None:
    with pytest.raises(PolicyError, match=r"b\.cedar:1: duplicate policy id 'x' \(also at a\.cedar:1\)"):
        Engine.compile(
            [
                PolicySource("a.cedar", '@id("x") permit (principal, action, resource);'),
                PolicySource("b.cedar", '@id("x") permit (principal, action, resource);'),
            ]
        )


def test_itl_on_forbid_is_rejected() -> None:
    with pytest.raises(PolicyError, match="only mean something on a permit"):
        compile_text('@itl("x") forbid (principal, action, resource);')


def test_forbid_that_fails_to_evaluate_denies() -> None:
    engine = compile_text(
        "permit (principal, action, resource);\n"
        '@id("big-writes") forbid (principal, action, resource)\n'
        "  when { context has content_size && context.content_size * 4611686018427387904 > 0 };"
    )
    verdict = engine.evaluate(request("write", content_size=4))  # overflows: Cedar skips the policy
    assert verdict.outcome is Outcome.DENY
    assert verdict.policies == ("big-writes",)
    assert "failed to evaluate" in verdict.reason
    assert engine.evaluate(request("write")).outcome is Outcome.NO_OBJECTION


def _random_policies(rng: random.Random, count: int, tools: list[str]) -> str:
    lines = []
    for index in range(count):
        effect = rng.choice(["permit", "permit", "forbid"])
        scope = rng.choice(["resource", f'resource == Tool::"{rng.choice(tools)}"', "resource is Tool"])
        action = rng.choice(
            [
                "action",
                'action == Action::"Agent::ToolUse"',
                'action == Action::"Agent::PromptSubmit"',
                'action in [Action::"Agent::ToolUse", Action::"Agent::PromptSubmit"]',
            ]
        )
        condition = rng.choice(["", f' when {{ context has command && context.command like "*{rng.randint(0, 9)}*" }}'])
        annotation = rng.choice(["", '@itl("?") ', "@approve "]) if effect == "permit" else ""
        lines.append(f'@id("p{index}") {annotation}{effect} (principal, {action}, {scope}){condition};')
    return "\n".join(lines)


def test_bucketed_evaluation_equals_the_unsplit_policy_set() -> None:
    rng = random.Random(7)
    tools = [f"tool{i}" for i in range(12)]
    text = _random_policies(rng, 400, tools)
    engine = compile_text(text)
    parsed = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
    statics = {f"p{i}": parsed[f"policy{i}"] for i in range(400)}
    unsplit = cedarpy.PolicySet.from_json_str(
        json.dumps({"staticPolicies": statics, "templates": {}, "templateLinks": []})
    )
    entities = cedarpy.Entities.from_json_str("[]")
    for _ in range(300):
        tool = rng.choice([*tools, "unnamed-tool"])
        req = request(tool, command=str(rng.randint(0, 99)))
        expected = cedarpy.is_authorized(req.as_cedar(), unsplit, entities)
        verdict = engine.evaluate(req)
        assert (verdict.outcome is not Outcome.DENY) == expected.allowed
        if expected.diagnostics.reasons:
            assert set(verdict.policies) == set(expected.diagnostics.reasons)


def test_batched_requests_for_different_resources_equal_one_by_one() -> None:
    rng = random.Random(11)
    tools = ["bash", "write", "read", "grep"]
    engine = compile_text(_random_policies(rng, 200, tools))
    for _ in range(100):
        batch = [request(rng.choice(tools), command=str(rng.randint(0, 99))) for _ in range(rng.randint(1, 5))]
        assert engine.evaluate_many(batch) == [engine.evaluate(one) for one in batch]


def test_default_policy_is_valid_and_embedded() -> None:
    engine = Engine.compile([default_policy_source()])
    assert engine.sources[0].name == "embedded:default"
    assert engine.count >= 10


@pytest.mark.parametrize(
    ("tool", "context", "outcome"),
    [
        # Shell contexts carry the analysis' facts (keycardd.shell): per-path requests have file_path and access.
        ("bash", {"program": "rm", "file_path": "/", "access": "delete", "covers_home": True}, Outcome.DENY),
        ("bash", {"program": "rm", "file_path": "/home/dev", "access": "delete", "covers_home": True}, Outcome.DENY),
        ("bash", {"program": "rm", "file_path": "/usr", "access": "delete", "covers_home": False}, Outcome.DENY),
        (
            "bash",
            {"program": "rm", "file_path": "/home/dev/app/build", "access": "delete", "covers_home": False},
            Outcome.NO_OBJECTION,
        ),
        (
            "bash",
            {
                "program": "rm",
                "args": ["-rf", "$X"],
                "flags": ["-rf", "-r", "-f"],
                "unknowns": ["args"],
                "deletes_recursively": True,
            },
            Outcome.DENY,
        ),
        (
            "bash",
            {"command": "mkfs.ext4 /dev/sda1", "program": "mkfs.ext4", "args": ["/dev/sda1"]},
            Outcome.DENY,
        ),
        ("bash", {"program": "dd", "file_path": "/dev/sda", "access": "write"}, Outcome.DENY),
        ("bash", {"program": "dd", "file_path": "/dev/null", "access": "write"}, Outcome.NO_OBJECTION),
        (
            "bash",
            {"command": "sh", "program": "sh", "args": [], "unknowns": ["script"], "stdin_from": ["curl"]},
            Outcome.DENY,
        ),
        (
            "bash",
            {"program": "git", "args": ["push", "origin", "main"], "subcommand": "push", "flags": []},
            Outcome.ASK,
        ),
        (
            "bash",
            {"program": "git", "args": ["stash", "push", "-m", "wip"], "subcommand": "stash", "flags": ["-m"]},
            Outcome.NO_OBJECTION,
        ),
        ("bash", {"command": "npm publish", "program": "npm", "args": ["publish"]}, Outcome.ASK),
        (
            "bash",
            {"program": "git", "args": ["reset", "--hard"], "subcommand": "reset", "flags": ["--hard"]},
            Outcome.ASK,
        ),
        (
            "bash",
            {"program": "git", "args": ["clean", "-xdf"], "subcommand": "clean", "flags": ["-xdf", "-x", "-d", "-f"]},
            Outcome.ASK,
        ),
        (
            "bash",
            {
                "command": "cat /home/dev/.aws/credentials",
                "program": "cat",
                "args": ["/home/dev/.aws/credentials"],
                "file_path": "/home/dev/.aws/credentials",
                "access": "read",
            },
            Outcome.DENY,
        ),
        (
            "bash",
            {
                "command": "curl http://169.254.169.254/latest",
                "program": "curl",
                "args": ["http://169.254.169.254/latest"],
                "hosts": ["169.254.169.254"],
            },
            Outcome.DENY,
        ),
        ("bash", {"command": "pytest -q", "program": "pytest", "args": ["-q"]}, Outcome.NO_OBJECTION),
        ("read", {"file_path": "/home/dev/.ssh/id_ed25519"}, Outcome.DENY),
        ("read", {"file_path": "/home/dev/.ssh/id_ed25519.pub"}, Outcome.NO_OBJECTION),
        ("write", {"file_path": "/home/dev/app/.env"}, Outcome.DENY),
        ("write", {"file_path": "/dev/sda"}, Outcome.DENY),
        ("edit", {"file_path": "/home/dev/app/src/main.py"}, Outcome.NO_OBJECTION),
        ("webfetch", {"url": "http://0xA9FEA9FE/latest/meta-data/iam/", "host": "169.254.169.254"}, Outcome.DENY),
        ("webfetch", {"url": "https://docs.python.org/3/"}, Outcome.NO_OBJECTION),
        ("mcp__github__merge_pull_request", {}, Outcome.NO_OBJECTION),
    ],
)
def test_default_policy_decisions(tool: str, context: dict[str, object], outcome: Outcome) -> None:
    engine = Engine.compile([default_policy_source()])
    context = {"line": context.get("command", ""), **context}
    assert engine.evaluate(request(tool, **context)).outcome is outcome


def test_readme_publishes_the_schema_the_engine_validates_against() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    published = readme.split("```cedarschema\n", 1)[1].split("```", 1)[0]
    assert published == load_schema_text()
