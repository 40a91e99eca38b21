"""The in-memory state of a local zone, shared by its policy and OAuth route modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ZoneState:
    """Everything a running dev zone knows. Route modules read and mutate it; nothing is persisted."""

    zone_id: str
    issuer: str
    """`http://127.0.0.1:<port>`; set once the server is bound."""
    keys: Any
    """A `keycardd.devzone.keys.ZoneKeys`: the signing keys and the JWKS they publish."""
    policy: dict[str, Any] = field(default_factory=dict)
    """Owned by `keycardd.devzone.policy`: policy sets, versions, bundle, tamper switches."""
    oauth: dict[str, Any] = field(default_factory=dict)
    """Owned by `keycardd.devzone.oauth`: clients, users, codes, refresh tokens, fault switches, counters."""
