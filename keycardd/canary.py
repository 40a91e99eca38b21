"""Doctor's canary calls: real hook calls through the installed hooks, told apart from the agents' own.

`keycardctl doctor` runs every installed hook with a forbidden and a permitted canary payload, to prove the hook
answers as the policy says. Those are not an agent's decisions, so they must not move the decision counts or the
latency figures. doctor asks the daemon for a canary token (`CanaryRequest`, on the private Unix socket: same uid
only) and passes it to the hook in `KEYCARD_CANARY` (the shims forward it; an http hook's doctor POST sends it as
`X-Keycard-Canary`, behind the hook secret). A call that carries a token this daemon issued in the last few minutes
is decided exactly like any other (the token is taken out of the environment before deciding, so it can never
change a decision), is not counted in `status` and is logged with `"canary": true`. Only doctor's own canary
payloads, byte for byte, can be so marked: an agent that got hold of a token and started a nested agent with it
(`KEYCARD_CANARY=<token> claude -p ...`) would otherwise have had that agent's calls left out of the counts and the
shadow evaluation.

Logged rather than dropped, for the audit: the decision log stays a complete record of what was decided, and a token
that leaked (doctor's environment is the user's) could only relabel calls as canaries, never hide them. A value that
is not a live token is ignored: the call counts as the agent's, so setting `KEYCARD_CANARY` in an agent's
environment gains nothing.
"""

from __future__ import annotations

import functools
import hmac
import json
import secrets
import time

ENV = "KEYCARD_CANARY"
"""The environment variable (shim path) and env key (daemon side) that carries the token."""
HEADER = "X-Keycard-Canary"
"""The same for doctor's http hook canaries."""
LIFETIME_S = 300.0
"""Long enough for one doctor run through every installed hook (each canary may wait on a 15 s hook)."""
_LIVE_MAX = 16


class CanaryTokens:
    """The tokens this daemon issued and that have not expired (a handful: one per doctor run)."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    def issue(self) -> str:
        now = time.monotonic()
        self._expiry = {token: expiry for token, expiry in self._expiry.items() if expiry > now}
        while len(self._expiry) >= _LIVE_MAX:
            del self._expiry[next(iter(self._expiry))]
        token = secrets.token_urlsafe(24)
        self._expiry[token] = now + LIFETIME_S
        return token

    def valid(self, token: str) -> bool:
        now = time.monotonic()
        return any(
            hmac.compare_digest(token.encode(), live.encode()) and expiry > now for live, expiry in self._expiry.items()
        )


def is_canary_payload(raw: bytes) -> bool:
    """Whether `raw` is one of the payloads doctor sends as canaries, as doctor encodes them."""
    return raw in _canary_payloads()


@functools.cache
def _canary_payloads() -> frozenset[bytes]:
    from keycardd.install.doctor import CANARIES  # noqa: PLC0415 - loaded on the first canary only

    return frozenset(json.dumps(payload).encode() for entries in CANARIES.values() for _, payload in entries)
