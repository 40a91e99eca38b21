"""Zone policy over real HTTP against the dev zone: sync, ETags, activation, shadow, tampering, offline."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess

from keycardd.devzone.server import DevZone
from keycardd.protocol import DocumentReply, HookRequest, HookResult, ReloadRequest, StatusRequest

NO_WEBFETCH = (
    '@id("zone-no-webfetch") @reason("The org forbids web fetches.")\n'
    'forbid (principal, action, resource == Tool::"webfetch");'
)
NO_GREP = '@id("zone-no-grep") @reason("The org forbids grep.")\nforbid (principal, action, resource == Tool::"grep");'
FETCH = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "WebFetch", "tool_input": {"url": "https://a.io"}})
GREP = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Grep", "tool_input": {"pattern": "x"}})


@pytest.fixture
def zone() -> Iterator[DevZone]:
    with DevZone(zone_id="z1") as running:
        yield running


def zone_env(zone: DevZone) -> dict[str, str]:
    return {
        "ZONE": "z1",
        "ISSUER_URL": zone.issuer,
        "KEYCARD_API_BASE_URL": zone.issuer,
        "KEYCARD_ZONE_POLL_SECONDS": "0.2",
    }


def decision(daemon: DaemonProcess, payload: str) -> str:
    with daemon.client() as client:
        reply = client.request(HookRequest(agent="claude", payload=payload.encode()))
    assert isinstance(reply, HookResult)
    return json.loads(reply.stdout)["hookSpecificOutput"]["permissionDecision"] if reply.stdout else "no_objection"


def status(daemon: DaemonProcess) -> dict[str, Any]:
    with daemon.client() as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    return reply.body


def eventually(predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_zone_policy_reaches_replica_processes(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
    daemon = start_daemon(env=zone_env(zone), args=["--processes", "2"])
    eventually(lambda: "[replica" in daemon.log() and "INFO serving" in daemon.log(), 15)
    eventually(lambda: decision(daemon, FETCH) == "deny")
    daemon.process.send_signal(signal.SIGSTOP)  # only the replica can answer now
    try:
        assert decision(daemon, FETCH) == "deny"
        assert decision(daemon, GREP) == "no_objection"
    finally:
        daemon.process.send_signal(signal.SIGCONT)


def test_first_sync_enforces_zone_policy_beside_local_policy(
    zone: DevZone, start_daemon: Callable[..., DaemonProcess]
) -> None:
    zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, FETCH) == "deny")
    zone_status = status(daemon)["zone"]
    assert zone_status["version"] == "org@v1" and zone_status["last_error"] is None
    assert "zone:org@v1/p1" in status(daemon)["policy"]["sources"]
    assert decision(daemon, GREP) == "no_objection"  # the embedded default still applies beside it
    text = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "status"], env=daemon.env, capture_output=True, text=True, check=True
    ).stdout
    (zone_line,) = [line for line in text.splitlines() if line.startswith("zone:")]
    assert "policy version org@v1, last synced " in zone_line and "last error" not in zone_line


def test_unchanged_zone_answers_304(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: zone.state.policy_zone.not_modified >= 2)
    assert status(daemon)["zone"]["etag"]


def test_new_version_is_live_within_a_poll(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, FETCH) == "deny")
    zone.state.policy_zone.publish("org", {"p1": NO_GREP})
    eventually(lambda: decision(daemon, GREP) == "deny", timeout_s=3)
    assert decision(daemon, FETCH) == "no_objection"
    assert status(daemon)["zone"]["version"] == "org@v2"


def test_shadow_version_is_compared_never_enforced(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    policies = zone.state.policy_zone
    policies.publish("org", {"p1": NO_WEBFETCH})
    shadow = policies.publish("org", {"p1": NO_WEBFETCH, "p2": NO_GREP}, activate=False)
    policies.set_shadow(shadow)
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: status(daemon)["shadow"]["active"] is True)
    assert decision(daemon, GREP) == "no_objection"  # the shadow forbids it; only the active version is enforced
    eventually(lambda: status(daemon)["shadow"]["differences"] >= 1)
    eventually(lambda: "shadow difference" in daemon.log())
    assert "zone-no-grep" in daemon.log()


@pytest.mark.parametrize("tampering", ["signature", "unknown_kid", "manifest_sha", "content", "zone"])
def test_tampered_version_is_rejected_whole_and_last_good_kept(
    zone: DevZone, start_daemon: Callable[..., DaemonProcess], tampering: str
) -> None:
    policies = zone.state.policy_zone
    policies.publish("org", {"p1": NO_WEBFETCH})
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, FETCH) == "deny")
    policies.tampering = tampering
    policies.publish("org", {"p1": NO_GREP})  # a new version arrives, tampered
    eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
    assert decision(daemon, FETCH) == "deny"  # last good still enforced
    assert decision(daemon, GREP) == "no_objection"
    assert status(daemon)["zone"]["version"] == "org@v1"
    assert "keeping the last verified policy" in daemon.log()
    with daemon.client() as client:
        reply = client.request(ReloadRequest())
    assert isinstance(reply, DocumentReply) and reply.body["reloaded"] is False


def test_rotated_key_is_fetched_once(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, FETCH) == "deny")
    zone.state.keys.rotate()
    zone.state.policy_zone.publish("org", {"p1": NO_GREP})  # signed with a kid the daemon has not seen yet
    eventually(lambda: decision(daemon, GREP) == "deny")
    assert status(daemon)["zone"]["last_error"] is None


def test_zone_unreachable_at_start_uses_the_disk_cache(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="z1") as zone:
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        env = zone_env(zone)
        first = start_daemon(env=env)
        eventually(lambda: decision(first, FETCH) == "deny")
        first.stop()
    cache = Path(first.env["XDG_STATE_HOME"]) / "keycard" / "zone-policy.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    offline = start_daemon(env=env)  # the zone is gone now
    assert decision(offline, FETCH) == "deny"
    zone_status = status(offline)["zone"]
    assert zone_status["from_cache"] is True
    eventually(lambda: status(offline)["zone"]["last_error"] is not None)
    assert "unreachable" in status(offline)["zone"]["last_error"]


def test_zone_down_mid_run_keeps_enforcing(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="z1") as zone:
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny")
    eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
    assert decision(daemon, FETCH) == "deny"


NO_READ = (
    '@id("bundle-no-read") @reason("My bundle forbids reads.")\nforbid (principal, action, resource == Tool::"read");'
)
READ = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": {"file_path": "/w/a.txt"}})


def test_user_bundle_is_verified_and_enforced(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    zone.state.policy_zone.bundle = {"pol_read": NO_READ}
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, READ) == "deny")
    assert "zone:bundle/pol_read" in status(daemon)["policy"]["sources"]
    eventually(lambda: zone.state.policy_zone.not_modified >= 2)  # the bundle is polled with If-None-Match too
    zone.state.policy_zone.bundle = None  # the user's bundle is deleted: the zone answers 404
    eventually(lambda: decision(daemon, READ) == "no_objection")


@pytest.mark.parametrize(
    ("tampering", "reason"),
    [
        ("bundle_sha", "does not match its sha256"),
        ("bundle_digest", "digest does not match the ETag"),
        ("bundle_traversal", "unexpected path"),
        ("bundle_duplicate", "twice"),
        ("bundle_link", "link or special file"),
        ("bundle_bomb", "more than 64 MiB"),
    ],
)
def test_bad_bundles_are_rejected_whole(
    zone: DevZone, start_daemon: Callable[..., DaemonProcess], tampering: str, reason: str
) -> None:
    zone.state.policy_zone.bundle = {"pol_read": NO_READ}
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, READ) == "deny")
    zone.state.policy_zone.tampering = tampering
    zone.state.policy_zone.bundle = {"pol_read": NO_READ, "pol_grep": NO_GREP}
    eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
    assert reason in status(daemon)["zone"]["last_error"]
    assert decision(daemon, READ) == "deny"  # the last verified bundle stays
    assert decision(daemon, GREP) == "no_objection"


def test_admin_surface_drives_the_zone_over_http(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    import httpx

    published = httpx.post(f"{zone.issuer}/admin/publish", json={"set": "org", "policies": {"p1": NO_WEBFETCH}}).json()
    daemon = start_daemon(env=zone_env(zone))
    eventually(lambda: decision(daemon, FETCH) == "deny")
    draft = httpx.post(
        f"{zone.issuer}/admin/publish", json={"set": "org", "policies": {"p1": NO_GREP}, "activate": False}
    ).json()
    assert httpx.post(f"{zone.issuer}/admin/activate", json={"version_id": draft["version_id"]}).json() == {"ok": True}
    eventually(lambda: decision(daemon, GREP) == "deny")
    assert published["version"] == 1 and draft["version"] == 2
    assert httpx.post(f"{zone.issuer}/admin/nonsense", json={}).status_code == 404


def test_issuer_mismatch_is_rejected(zone: DevZone, start_daemon: Callable[..., DaemonProcess]) -> None:
    zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
    zone.state.issuer = "http://127.0.0.1:1"  # the metadata now names another issuer
    env = zone_env(zone)
    env["ISSUER_URL"] = f"http://127.0.0.1:{zone.port}"
    daemon = start_daemon(env=env)
    eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
    assert "names issuer" in status(daemon)["zone"]["last_error"]
    assert decision(daemon, FETCH) == "no_objection"


def test_bad_zone_configuration_is_one_clear_error(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = start_daemon(env={"ZONE": "z1", "ISSUER_URL": "http://zone.example.com"}, wait=False)
    assert daemon.process.wait(timeout=15) == 1
    assert "must be an https:// URL (plain http only on loopback)" in daemon.log()
