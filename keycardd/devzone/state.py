"""The in-memory state of a local zone, shared by its route modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from keycardd.devzone.keys import ZoneKeys
from keycardd.devzone.oauth import OAuthZone
from keycardd.devzone.policy import PolicyZone


@dataclass
class ZoneState:
    """Everything a running dev zone knows; nothing is persisted."""

    zone_id: str
    issuer: str = ""
    """`http://127.0.0.1:<port>`, set once the server is bound."""
    keys: ZoneKeys = field(default_factory=ZoneKeys)
    policy_zone: PolicyZone = field(init=False)
    oauth: OAuthZone = field(init=False)

    def __post_init__(self) -> None:
        self.policy_zone = PolicyZone(self.zone_id, self.keys)
        self.oauth = OAuthZone(self.issuer, self.keys)
