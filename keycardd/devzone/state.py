"""The in-memory state of a local zone, shared by its route modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from keycardd.devzone.accounts import ApiAccounts
from keycardd.devzone.keys import ZoneKeys
from keycardd.devzone.oauth import OAuthZone
from keycardd.devzone.pages import DEFAULT_PAGE_SIZE
from keycardd.devzone.policy import PolicyZone


@dataclass
class ZoneState:
    """Everything a running dev zone knows; nothing is persisted."""

    zone_id: str
    issuer: str = ""
    """`http://127.0.0.1:<port>`, set once the server is bound."""
    page_size: int = DEFAULT_PAGE_SIZE
    keys: ZoneKeys = field(default_factory=ZoneKeys)
    accounts: ApiAccounts = field(default_factory=ApiAccounts)
    policy_zone: PolicyZone = field(init=False)
    oauth: OAuthZone = field(init=False)

    def __post_init__(self) -> None:
        self.policy_zone = PolicyZone(self.zone_id, self.keys, self.page_size)
        self.oauth = OAuthZone(self.issuer, self.keys)
