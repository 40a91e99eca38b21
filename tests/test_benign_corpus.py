"""The shared benign corpus: ordinary agent work must get no objection (or allow) from the default policy.

Every entry goes through the real decision path (payload decoding, the agent's adapter, the shell analysis, the
embedded default policy); a sample also goes through the C shim to a live daemon. A guard that blocks ordinary
work gets switched off, so a false positive here is a bug just as a bypass is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess
from shims import build_c_shim

from keycardd.adapters import Decider, Settings
from keycardd.engine import Engine, EntityUid, default_policy_source

REPO = Path(__file__).resolve().parent.parent
CORPUS_FILE = REPO.parent / "shared" / "corpus" / "benign-commands.jsonl"
"""CI checks out `shared/` beside the clone, as in the development layout."""
ENTRIES: list[dict[str, Any]] = (
    [json.loads(line) for line in CORPUS_FILE.read_text().splitlines() if line.strip()] if CORPUS_FILE.exists() else []
)
ENGINE = Engine.compile([default_policy_source()])
DECIDER = Decider(Settings(principal=EntityUid("User", "dev@example.com")))
ACCEPTED = ("no_objection", "allow")

pytestmark = pytest.mark.skipif(not ENTRIES, reason=f"the shared corpus is not at {CORPUS_FILE}")


def _cases() -> list[Any]:
    return [pytest.param(entry, id=entry["id"]) for entry in ENTRIES]


def test_the_corpus_is_the_expected_one() -> None:
    assert len(ENTRIES) >= 150
    assert len({entry["id"] for entry in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize("entry", _cases())
def test_benign_entry_gets_no_objection(entry: dict[str, Any]) -> None:
    answer = DECIDER.decide_hook(ENGINE, None, entry["agent"], json.dumps(entry["payload"]).encode(), {})
    assert answer.decision is not None
    assert answer.decision.outcome.value in ACCEPTED, (entry["why"], answer.decision.reason)


SAMPLE = [entry for index, entry in enumerate(ENTRIES) if index % 7 == 0 or entry["payload"].get("tool_name") != "Bash"]
"""Every seventh shell entry and every non-shell entry: the live path is slower, the adapters are the same."""


def test_benign_sample_through_the_shim_and_a_live_daemon(daemon: DaemonProcess) -> None:
    shim = build_c_shim()
    refused = []
    for entry in SAMPLE:
        if entry["agent"] != "claude":
            continue
        result = subprocess.run(
            [str(shim), "claude"],
            input=json.dumps(entry["payload"]).encode(),
            capture_output=True,
            env=daemon.env,
            timeout=30,
            check=False,
        )
        # Claude Code's contract: no objection is exit 0 and empty stdout; anything else is an answer
        if result.returncode != 0 or result.stdout.strip():
            refused.append((entry["id"], result.returncode, result.stdout[:200]))
    assert len(SAMPLE) >= 40
    assert refused == []
