"""Local policy's say on credentials: `Action::"Agent::CredentialIssue"` on `Resource::"<uri>"`."""

from __future__ import annotations

from collections.abc import Callable

from keycardd.credentials.broker import PolicyCheck
from keycardd.engine import CREDENTIAL_ISSUE, CedarRequest, Engine, EntityUid, Outcome

MAX_REMEMBERED = 4096


def policy_check(engine: Callable[[], Engine | None], principal: EntityUid) -> PolicyCheck:
    """A check that denies unless the active policy permits issuing this credential to this session.

    Answers are remembered per policy (the engine is immutable, so they hold until it is replaced): a cached
    credential must not pay a Cedar evaluation on every request."""

    answers: dict[tuple[str, tuple[str, ...], str | None], str | None] = {}
    answered_by: list[Engine | None] = [None]

    def check(resource: str, scopes: tuple[str, ...], session_id: str | None) -> str | None:
        current = engine()
        if current is None:
            return "keycardd has no valid policy, so it issues no credentials"
        if answered_by[0] is not current:  # a new policy: earlier answers no longer hold
            answers.clear()
            answered_by[0] = current
        key = (resource, scopes, session_id)
        if key not in answers:
            if len(answers) >= MAX_REMEMBERED:
                answers.clear()
            answers[key] = _decide(current, resource, scopes, session_id)
        return answers[key]

    def _decide(current: Engine, resource: str, scopes: tuple[str, ...], session_id: str | None) -> str | None:
        context: dict[str, object] = {
            "resource": resource,
            "scopes": list(scopes),
            "keycard_run": session_id is not None,
        }
        if session_id:
            context["session_id"] = session_id
        request = CedarRequest(principal, CREDENTIAL_ISSUE, EntityUid("Resource", resource), context)
        verdict = current.decide_many([request])[0]  # the managed layer applies to credentials too
        if verdict.outcome is Outcome.DENY:
            return verdict.reason
        if verdict.outcome is Outcome.ASK:
            return f"{verdict.reason} (approval is required, and credential requests cannot be asked about)"
        return None

    return check
