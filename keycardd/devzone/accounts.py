"""Who may call the dev zone's Management API, with the credentials Keycard's SDKs use.

- an API key, sent as `Authorization: Bearer` (keycard-ts `apiKey`, `KEYCARD_API_API_KEY`);
- a service account: `POST /service-account-token`, `grant_type=client_credentials` with HTTP Basic, answering
  `{access_token, token_type, expires_in}` (keycard-python `_oauth2.OAuth2ClientCredentials`);
- a signed-in user: `POST /organizations/{organization_id}/token` with the user's zone access token as bearer,
  answering `TokenResponse {access_token, token_type, expires_in}` (keycard-ts `Organizations.exchangeToken`).

With `required` off (the default for tests that do not care) anonymous calls are served too; `keycardctl dev zone`
turns it on. A refused call answers 401 with the API's `Error {message, code, status}` body. The per-user policy
bundle wants a user's token (keycard-python `resources/policy_bundle.py`: "the zone-issued resource-scoped token"),
so with `required` on an API key or a service account is answered 403 there.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any


def _secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


@dataclass
class ApiAccounts:
    required: bool = False
    api_key: str = field(default_factory=lambda: _secret("kc_dev_"))
    client_id: str = "sa_dev"
    client_secret: str = field(default_factory=lambda: _secret("sa_secret_"))
    org_id: str = "org_dev"
    token_ttl_s: int = 3600
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Issued bearer tokens -> (kind, expiry on the wall clock)."""
    issued: list[str] = field(default_factory=list)
    """`service_account` or `organization` for every token issued, in order (tests count refreshes)."""
    refused: int = 0
    """How many API calls were refused with 401."""

    def allows(self, authorization: str | None) -> bool:
        allowed = not self.required or self.kind_of(authorization) is not None
        self.refused += not allowed
        return allowed

    def kind_of(self, authorization: str | None) -> str | None:
        """`api_key`, `service_account` or `organization` for a live credential, else None."""
        token = (authorization or "").removeprefix("Bearer ")
        if token == self.api_key:
            return "api_key"
        kind, expires_at = self.tokens.get(token, ("", 0.0))
        return kind if expires_at > time.time() else None

    def client_credentials(self, authorization: str | None, form: dict[str, str]) -> dict[str, Any] | None:
        """A service-account token, or None when the Basic credentials or the grant are wrong."""
        try:
            decoded = base64.b64decode((authorization or "").removeprefix("Basic "), validate=True).decode()
        except ValueError:
            return None
        if decoded != f"{self.client_id}:{self.client_secret}" or form.get("grant_type") != "client_credentials":
            return None
        return self._issue("service_account")

    def organization_token(self) -> dict[str, Any]:
        return self._issue("organization")

    def _issue(self, kind: str) -> dict[str, Any]:
        token = _secret("kc_at_")
        self.tokens[token] = (kind, time.time() + self.token_ttl_s)
        self.issued.append(kind)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s}

    def revoke_tokens(self) -> None:
        """Every issued token stops working (an expiry the client did not see coming: it must get a new one)."""
        self.tokens.clear()


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The Management API's `Error` schema (terraform-provider-keycard api/openapi.yaml: message, code, status)."""
    return {"message": message, "code": code, "status": status}
