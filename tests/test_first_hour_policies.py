"""Issue 19, policies as a newcomer reads them: `explain` names only the policies that decided, a zone's policies
are named by the ids they were published under, and a syntax error is reported on the line where it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess

from keycardd.devzone.server import DevZone
from keycardd.engine import Engine, PolicyError, PolicySource
from keycardd.protocol import DocumentReply, ExplainRequest, HookRequest, HookResult, ReloadRequest, StatusRequest

CATCH_ALL = '@id("everything") permit (principal, action, resource);\n'
NO_RM = (
    '@id("no-rm") @reason("no rm.")\n'
    'forbid (principal, action, resource == Tool::"bash") when { context has program && context.program == "rm" };\n'
)
ASK_PUSH = (
    '@id("ask-push") @itl("Push?")\n'
    'permit (principal, action, resource == Tool::"bash") when { context has program && context.program == "git" };\n'
)
APPROVE_LS = (
    '@id("approve-ls") @approve\n'
    'permit (principal, action, resource == Tool::"bash") when { context has program && context.program == "ls" };\n'
)


def keycardctl(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def bash(command: str) -> str:
    return json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}})


def explain(command: str, policy_file: Path | None = None) -> dict[str, Any]:
    env = {**os.environ, **({"KEYCARD_POLICY_FILE": str(policy_file)} if policy_file else {})}
    result = keycardctl("explain", "--json", stdin=bash(command), env=env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# ---- explain: the policies behind the answer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "decision", "policies"),
    [
        ("rm -rf ~", "deny", ["deny-rm-root-or-home"]),  # before: also default-permit-ordinary-work
        ("ls && git push", "ask", ["ask-before-push"]),  # before: also default-permit-ordinary-work
        ("ls", "no_objection", ["default-permit-ordinary-work"]),
    ],
)
def test_explain_on_the_default_policy_names_only_the_deciding_policies(
    command: str, decision: str, policies: list[str]
) -> None:
    document = explain(command)
    assert (document["decision"], document["policies"]) == (decision, policies)


@pytest.mark.parametrize(
    ("command", "decision", "policies"),
    [
        ("git status && rm x", "deny", ["no-rm"]),
        ("git push", "ask", ["ask-push"]),  # the catch-all permit matched too, but the @itl decided
        ("ls -la", "allow", ["approve-ls"]),
        ("ls && git push", "ask", ["ask-push"]),
        ("cat x", "no_objection", ["everything"]),
    ],
)
def test_explain_with_a_catch_all_permit_names_what_decided(
    tmp_path: Path, command: str, decision: str, policies: list[str]
) -> None:
    policy = tmp_path / "policy.cedar"
    policy.write_text(CATCH_ALL + NO_RM + ASK_PUSH + APPROVE_LS)
    document = explain(command, policy)
    assert (document["decision"], document["policies"]) == (decision, policies)


def test_the_daemon_explains_the_same_deciding_policies(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy=CATCH_ALL + NO_RM)
    with daemon.client() as client:
        reply = client.request(ExplainRequest(agent="claude", payload=bash("ls; rm -rf build").encode()))
    assert isinstance(reply, DocumentReply)
    assert reply.body["daemon"] is True
    assert reply.body["policies"] == ["no-rm"]


# ---- zone policies keep their published ids ----------------------------------------------------------------------

UNNAMED_FORBID_FETCH = 'forbid (principal, action, resource == Tool::"webfetch");'
FETCH = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "WebFetch", "tool_input": {"url": "https://a.io"}})


def _eventually(predicate: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_zone_policy_is_named_by_its_published_id(start_daemon: Callable[..., DaemonProcess]) -> None:
    """Before: the reason said 'policy13' (Cedar's position after the default policy's statements)."""
    with DevZone(zone_id="z1") as zone:
        zone.state.policy_zone.publish("org", {"p1": UNNAMED_FORBID_FETCH})
        env = {"ZONE": "z1", "ISSUER_URL": zone.issuer, "KEYCARD_API_BASE_URL": zone.issuer}
        daemon = start_daemon(env={**env, "KEYCARD_ZONE_POLL_SECONDS": "0.2"})

        def reason() -> str:
            with daemon.client() as client:
                reply = client.request(HookRequest(agent="claude", payload=FETCH.encode()))
            assert isinstance(reply, HookResult)
            output = json.loads(reply.stdout or b"{}").get("hookSpecificOutput", {})
            return str(output.get("permissionDecisionReason", ""))

        _eventually(lambda: reason() != "")
        assert reason().startswith("keycardd policy 'p1': ")
        explained = keycardctl("explain", "--json", stdin=FETCH, env=daemon.env)
        assert json.loads(explained.stdout)["policies"] == ["p1"], explained.stderr
        daemon.stop()
    # The verified cache keeps the ids: a restart with the zone gone names the policy the same way.
    restarted = start_daemon(env=env)
    with restarted.client() as client:
        reply = client.request(ExplainRequest(agent="claude", payload=FETCH.encode()))
    assert isinstance(reply, DocumentReply)
    assert reply.body["policies"] == ["p1"]


def test_published_ids_from_two_sets_never_collide() -> None:
    first = PolicySource("zone:org@v1/p1", UNNAMED_FORBID_FETCH, "p1")
    second = PolicySource("zone:team@v2/p1", 'forbid (principal, action, resource == Tool::"grep");', "p1")
    several = PolicySource("zone:team@v2/p2", "permit (principal, action, resource);\n" * 2, "p2")
    engine = Engine.compile([first, second, several])
    assert list(engine.policies) == ["p1", "zone:team@v2/p1", "p2#1", "p2#2"]


def test_an_id_annotation_wins_over_the_published_id() -> None:
    engine = Engine.compile([PolicySource("zone:org@v1/p1", '@id("mine") ' + UNNAMED_FORBID_FETCH, "p1")])
    assert list(engine.policies) == ["mine"]


# ---- syntax errors at the line where they are --------------------------------------------------------------------

MISSING_SEMICOLON = (
    "permit (principal, action, resource);\n"
    "\n"
    "// the last statement has no `;`\n"
    'forbid (principal, action, resource == Tool::"bash")\n'
    "when {\n"
    "  context has program\n"
    "}\n"
    "\n"
)
UNTERMINATED_STRING = (
    "permit (principal, action, resource);\n"
    'forbid (principal, action, resource == Tool::"bash")\n'
    "when {\n"
    '  context has program && context.program == "rm\n'
    "};\n"
)
DANGLING_AND = (
    "permit (principal, action, resource);\n"
    'forbid (principal, action, resource == Tool::"bash")\n'
    "when {\n"
    "  context has program &&\n"
    "}\n"
    ";\n"
)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            MISSING_SEMICOLON,
            7,
            "unexpected end of input: end the policy with `;` (or close its `}` or `)`)",
        ),  # before: line 4
        (UNTERMINATED_STRING, 4, "invalid token"),  # before: line 2
        (DANGLING_AND, 5, "unexpected token `}`"),  # before: line 2
    ],
    ids=["missing-semicolon", "unterminated-string", "dangling-and"],
)
def test_policy_validate_names_the_line_of_the_error(tmp_path: Path, text: str, line: int, message: str) -> None:
    policy = tmp_path / "p.cedar"
    policy.write_text(text)
    result = keycardctl("policy", "validate", str(policy))
    assert result.returncode != 0
    assert result.stderr.startswith(f"keycardctl: {policy}:{line}: {message}"), result.stderr
    with pytest.raises(PolicyError, match=rf"^p\.cedar:{line}: "):
        Engine.compile([PolicySource("p.cedar", text)])


def test_a_reload_names_the_line_of_a_missing_semicolon(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(policy=CATCH_ALL)
    policy_file = Path(daemon.env["KEYCARD_POLICY_FILE"])
    policy_file.write_text(MISSING_SEMICOLON)
    with daemon.client() as client:
        reply = client.request(ReloadRequest())
        status = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply) and isinstance(status, DocumentReply)
    assert reply.body["reloaded"] is False
    assert reply.body["policy"]["error"].startswith(f"{policy_file}:7: unexpected end of input")
    assert status.body["policy"]["error"] == reply.body["policy"]["error"]
