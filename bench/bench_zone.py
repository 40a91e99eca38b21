"""Zone sync of 60 policy sets x 30 policies from the dev zone: time to install and requests made.

In-process: a dev zone on loopback and the daemon's `ZoneSync` feeding a `PolicyStore` (the embedded default as
local policy), so the figures are the sync's own: discovery, listing, fetching and verifying 60 attested versions
and 1,800 policies, compiling them with the local policy, and writing the disk cache. Measured at the dev zone's
default page size (2: every list is many pages) and at 100 (one page per list), then an unchanged poll, which
asks every listing page with its ETag and is answered 304. Loopback HTTP on a shared 2-core machine: noisy.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from keycardd.config import KeycardConfig
from keycardd.devzone.server import DevZone
from keycardd.engine import PolicySource
from keycardd.policy_store import LocalSources, PolicyStore
from keycardd.zone.sync import ZoneSync

SETS, PER_SET = 60, 30


def run() -> dict[str, Any]:
    return {f"page_size_{size}": _measure(size) for size in (2, 100)} | {"sets": SETS, "policies_per_set": PER_SET}


def _measure(page_size: int) -> dict[str, Any]:
    with DevZone(zone_id="bench", page_size=page_size) as zone, tempfile.TemporaryDirectory() as scratch:
        forbid = 'forbid (principal, action, resource == Tool::"t-{}-{}");'
        for set_index in range(SETS):
            policies = {f"pol_{set_index:02d}_{index:02d}": forbid.format(set_index, index) for index in range(PER_SET)}
            zone.state.policy_zone.publish(f"set{set_index:02d}", policies)
        config = KeycardConfig(zone_id="bench", issuer_url=zone.issuer, api_base_url=zone.issuer)
        local = LocalSources(policy_file=Path(scratch) / "absent.cedar", policy_dir=None)
        store = PolicyStore(local)
        sync = ZoneSync(config, store, Path(scratch) / "zone-policy.json")
        compile_s: list[float] = []
        install = store.set_zone_policies

        async def timed_install(active: list[PolicySource], shadow: list[PolicySource] | None) -> None:
            started = time.perf_counter()
            await install(active, shadow)
            compile_s.append(time.perf_counter() - started)

        store.set_zone_policies = timed_install  # type: ignore[method-assign]
        started = time.perf_counter()
        assert anyio.run(sync.sync_now) is True
        first_s = time.perf_counter() - started
        first_requests = sync.status_.requests
        assert store.engine is not None and len(sync.status_.policy_sets) == SETS
        policies = store.engine.count
        started = time.perf_counter()
        assert anyio.run(sync.sync_now) is False
        unchanged_s = time.perf_counter() - started
        return {
            "first_sync_s": round(first_s, 2),
            "of_which_compile_and_install_s": round(compile_s[0], 2),
            "first_sync_requests": first_requests,
            "policies_enforced": policies,
            "unchanged_poll_s": round(unchanged_s, 3),
            "unchanged_poll_requests": sync.status_.requests,
        }
