"""The signed-in user's tokens, at rest only in the system keyring (via `keyring`).

Service `keycardd:<issuer>`, account `<zone id>`; the value is a small JSON document. Tests and headless machines
choose a backend through keyring's own `PYTHON_KEYRING_BACKEND`.
"""

from __future__ import annotations

import keyring
import keyring.errors
import msgspec

from keycardd.config import KeycardConfig
from keycardd.credentials.errors import NotSignedInError


class UserTokens(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str | None = None
    expires_at: float = 0.0
    email: str | None = None
    subject: str | None = None

    def __repr__(self) -> str:  # never let a token reach a log line or a traceback
        return f"UserTokens(email={self.email!r}, expires_at={self.expires_at})"


class TokenStore:
    def __init__(self, config: KeycardConfig) -> None:
        if not config.issuer_url or not config.zone_id:
            raise NotSignedInError("no Keycard zone is configured: set [zone] id in keycard.toml or ZONE")
        self.service = f"keycardd:{config.issuer_url}"
        self.account = config.zone_id

    def load(self) -> UserTokens:
        try:
            raw = keyring.get_password(self.service, self.account)
        except keyring.errors.KeyringError as exc:
            raise NotSignedInError(f"the system keyring is unavailable ({exc})") from None
        if raw is None:
            raise NotSignedInError(f"not signed in to zone {self.account}: run `keycardctl auth signin`")
        return msgspec.json.decode(raw, type=UserTokens)

    def save(self, tokens: UserTokens) -> None:
        try:
            keyring.set_password(self.service, self.account, msgspec.json.encode(tokens).decode())
        except keyring.errors.KeyringError as exc:
            raise NotSignedInError(f"cannot store tokens in the system keyring ({exc})") from None

    def delete(self) -> bool:
        try:
            keyring.delete_password(self.service, self.account)
        except keyring.errors.PasswordDeleteError:
            return False
        return True
