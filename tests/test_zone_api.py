"""Zone sync against the Management API's real shapes: pagination at every page size, a 60 x 30 zone, damage
anywhere in any page, and each way of authenticating. Real daemons and a real dev zone over HTTP."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import DaemonProcess
from test_credentials import sign_in
from test_zone import FETCH, GREP, NO_GREP, NO_WEBFETCH, decision, eventually, status

from keycardd.config import KeycardConfig
from keycardd.devzone.policy import PAGE_TAMPERINGS
from keycardd.devzone.server import DevZone
from keycardd.policy_store import LocalSources, PolicyStore
from keycardd.protocol import DocumentReply, ReloadRequest
from keycardd.zone import api
from keycardd.zone.auth import SignedInUser, auth_from_environment
from keycardd.zone.errors import ZoneError
from keycardd.zone.sync import ZoneSync


def filler(set_index: int, count: int) -> dict[str, str]:
    """`count` harmless, distinct policies (each forbids a command nobody runs with one of a few tools nobody calls),
    so that sets span many pages. (`bench zone` measures the worst case for compiling: a tool per policy.)"""
    forbid = (
        'forbid (principal, action, resource == Tool::"unused-{}")\n'
        '  when {{ context has command && context.command == "{}" }};'
    )
    return {
        f"pol_{set_index:02d}_{index:02d}": forbid.format(index % 5, f"never-{set_index}-{index}")
        for index in range(count)
    }


def zone_env(zone: DevZone, **extra: str) -> dict[str, str]:
    env = {"ZONE": zone.state.zone_id, "ISSUER_URL": zone.issuer, "KEYCARD_API_BASE_URL": zone.issuer,
           "KEYCARD_ZONE_POLL_SECONDS": "0.2"}  # fmt: skip
    return {**env, **extra}


def publish_spread(zone: DevZone, sets: int, per_set: int) -> None:
    """`sets` policy sets of `per_set` policies; the webfetch forbid is the very last policy of the last set."""
    for set_index in range(sets):
        policies = filler(set_index, per_set)
        if set_index == sets - 1:
            policies[f"zz_{set_index}"] = NO_WEBFETCH
            del policies[sorted(policies)[0]]
        zone.state.policy_zone.publish(f"set{set_index:02d}", policies)


@pytest.mark.parametrize("page_size", [1, 2, 50])
def test_every_page_of_every_list_is_read(page_size: int, start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="zp", page_size=page_size) as zone:
        publish_spread(zone, sets=5, per_set=7)
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny", 20)
        zone_status = status(daemon)["zone"]
        assert zone_status["last_error"] is None
        published = {
            policy_set.id: (policy_set.active.id, policy_set.active.manifest_sha)
            for policy_set in zone.state.policy_zone.sets.values()
            if policy_set.active is not None
        }
        reported = {entry["id"]: (entry["version_id"], entry["manifest_sha"]) for entry in zone_status["policy_sets"]}
        assert reported == published
        assert all(entry["policies"] == 7 for entry in zone_status["policy_sets"])
        assert len([name for name in status(daemon)["policy"]["sources"] if name.startswith("zone:set")]) == 35


def test_sixty_sets_of_thirty_policies_sync_verify_and_are_enforced(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="zbig") as zone:  # the default page size: 2
        publish_spread(zone, sets=60, per_set=30)
        daemon = start_daemon(env=zone_env(zone, KEYCARD_ZONE_POLL_SECONDS="3600"))
        eventually(lambda: decision(daemon, FETCH) == "deny", 60)
        zone_status = status(daemon)["zone"]
        assert zone_status["last_error"] is None and len(zone_status["policy_sets"]) == 60
        assert sum(entry["policies"] for entry in zone_status["policy_sets"]) == 1800
        # 30 listing pages, then per set its version and 15 pages of policies, plus discovery, JWKS and the bundle
        assert zone_status["requests"] >= 30 + 60 * 16
        assert decision(daemon, GREP) == "no_objection"


@pytest.mark.parametrize("tampering", PAGE_TAMPERINGS)
def test_damage_in_any_page_is_rejected_whole_and_the_last_verified_policy_kept(
    tampering: str, start_daemon: Callable[..., DaemonProcess]
) -> None:
    with DevZone(zone_id="zt") as zone:
        publish_spread(zone, sets=5, per_set=5)  # the set listing spans three pages, each set's policies three
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny", 20)
        before = status(daemon)["zone"]["policy_sets"]
        zone.state.policy_zone.tampering = tampering
        for set_index in range(5):  # new versions everywhere, the grep forbid on the first page of the first set
            first = {"aa_grep": NO_GREP} if set_index == 0 else {}
            zone.state.policy_zone.publish(f"set{set_index:02d}", {**first, **filler(set_index, 6)})
        eventually(lambda: status(daemon)["zone"]["last_error"] is not None, 20)
        zone_status = status(daemon)["zone"]
        paging = ("cursor_loop", "sets_cursor_loop", "sets_duplicate", "no_pagination")
        expected = "pagination" if tampering in paging else "manifest"
        assert zone_status["last_error_reason"] == expected, zone_status["last_error"]
        assert decision(daemon, GREP) == "no_objection"  # nothing of the damaged sync was installed
        assert decision(daemon, FETCH) == "deny"  # the last verified policy is still enforced
        assert zone_status["policy_sets"] == before
        reload = subprocess.run(
            [sys.executable, "-m", "keycardd.cli", "reload"], env=daemon.env, capture_output=True, text=True
        )
        assert reload.returncode != 0
        assert f"zone policy sync was rejected ({expected})" in reload.stderr
        assert "None" not in reload.stderr


def test_a_sync_request_refused_by_the_api_names_status_and_error_body(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="za", require_auth=True) as zone:
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
        zone_status = status(daemon)["zone"]
        assert zone_status["last_error_reason"] == "auth"
        assert "HTTP 401 (unauthorized: a valid bearer token is required)" in zone_status["last_error"]
        assert zone_status["auth"].startswith("none")
        with daemon.client() as client:
            reply = client.request(ReloadRequest())
        assert isinstance(reply, DocumentReply) and reply.body["reloaded"] is False


def test_api_key_is_sent_as_bearer_and_never_shown(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="za", require_auth=True) as zone:
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        key = zone.state.accounts.api_key
        daemon = start_daemon(
            env=zone_env(zone, KEYCARD_API_API_KEY=key, KEYCARD_API_TOKEN="ignored-when-a-key-is-set")
        )
        eventually(lambda: decision(daemon, FETCH) == "deny")
        zone_status = status(daemon)["zone"]
        assert zone_status["auth"] == "bearer token from KEYCARD_API_API_KEY"
        assert key not in json.dumps(status(daemon)) and key not in daemon.log()


def test_service_account_token_is_reused_refreshed_after_a_401_and_never_shown(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="za", require_auth=True) as zone:
        accounts = zone.state.accounts
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        env = zone_env(zone, KEYCARD_API_CLIENT_ID=accounts.client_id, KEYCARD_API_CLIENT_SECRET=accounts.client_secret)
        daemon = start_daemon(env=env)
        eventually(lambda: decision(daemon, FETCH) == "deny")
        eventually(lambda: zone.state.policy_zone.not_modified >= 3)  # several polls on one token
        assert accounts.issued == ["service_account"]
        accounts.revoke_tokens()  # the token dies before its expires_in: the API answers 401 once
        zone.state.policy_zone.publish("org", {"p1": NO_GREP})
        eventually(lambda: decision(daemon, GREP) == "deny")
        assert accounts.issued == ["service_account", "service_account"] and accounts.refused >= 1
        zone_status = status(daemon)["zone"]
        assert zone_status["last_error"] is None
        assert zone_status["auth"] == "service account sa_dev (KEYCARD_API_CLIENT_ID, client credentials)"
        assert accounts.client_secret not in json.dumps(status(daemon)) + daemon.log()


def test_service_account_token_is_refreshed_before_it_expires(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="za", require_auth=True) as zone:
        accounts = zone.state.accounts
        accounts.token_ttl_s = 11  # expires 10 s early: every poll after the first second fetches a new one
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        env = zone_env(zone, KEYCARD_API_CLIENT_ID=accounts.client_id, KEYCARD_API_CLIENT_SECRET=accounts.client_secret)
        daemon = start_daemon(env=env)
        eventually(lambda: len(accounts.issued) >= 3)
        assert accounts.refused == 0  # refreshed early, never after a refusal
        assert status(daemon)["zone"]["last_error"] is None


def test_wrong_service_account_secret_is_a_clear_auth_error(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="za", require_auth=True) as zone:
        env = zone_env(zone, KEYCARD_API_CLIENT_ID="sa_dev", KEYCARD_API_CLIENT_SECRET="wrong-secret")
        daemon = start_daemon(env=env)
        eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
        zone_status = status(daemon)["zone"]
        assert zone_status["last_error_reason"] == "auth"
        assert "the service account token endpoint refused: HTTP 401 (invalid_client:" in zone_status["last_error"]
        assert "wrong-secret" not in json.dumps(status(daemon)) + daemon.log()


def test_half_a_service_account_stops_the_daemon_with_one_sentence(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="za") as zone:
        daemon = start_daemon(env=zone_env(zone, KEYCARD_API_CLIENT_ID="sa_dev"), wait=False)
        assert daemon.process.wait(timeout=15) == 1
        assert "KEYCARD_API_CLIENT_ID is set but KEYCARD_API_CLIENT_SECRET is not" in daemon.log()


def test_signed_in_user_token_is_exchanged_for_an_organisation_token(
    monkeypatch: pytest.MonkeyPatch, start_daemon: Callable[..., DaemonProcess]
) -> None:
    with DevZone(zone_id="z1", require_auth=True) as zone:
        for name, value in zone_env(zone).items():
            monkeypatch.setenv(name, value)
        assert sign_in(zone).returncode == 0
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone, ORG=zone.state.accounts.org_id))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        assert zone.state.accounts.issued == ["organization"]
        assert status(daemon)["zone"]["auth"] == (
            "keycardctl auth signin token, exchanged for an organisation org_dev token"
        )


def test_status_text_shows_each_set_and_the_listing_etag(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="zs") as zone:
        version = zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        text = subprocess.run(
            [sys.executable, "-m", "keycardd.cli", "status"], env=daemon.env, capture_output=True, text=True
        ).stdout
        assert f"active version 1 ({version.id}), 1 policy, manifest_sha {version.manifest_sha}" in text
        assert "policy-sets listing ETag" in text and "auth: none" in text


def test_a_bundle_refused_to_a_service_credential_leaves_the_zone_sets_enforced(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="za", require_auth=True) as zone:
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        zone.state.policy_zone.bundle = {"pol_grep": NO_GREP}  # a user's bundle an API key cannot read
        daemon = start_daemon(env=zone_env(zone, KEYCARD_API_API_KEY=zone.state.accounts.api_key))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        zone_status = status(daemon)["zone"]
        assert zone_status["last_error"] is None and zone_status["bundle"] is None
        assert "HTTP 403 (forbidden: the policy bundle belongs to a user" in zone_status["bundle_note"]
        assert decision(daemon, GREP) == "no_objection"


def test_a_zone_without_etags_is_verified_every_poll_but_compiled_once(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="ze") as zone:
        zone.state.policy_zone.send_etags = False
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        first = status(daemon)["zone"]["last_sync"]
        eventually(lambda: status(daemon)["zone"]["last_sync"] != first, 5)  # polls keep verifying
        assert daemon.log().count("zone policy installed") == 1
        assert zone.state.policy_zone.not_modified == 0
        zone.state.policy_zone.publish("org", {"p1": NO_GREP})
        eventually(lambda: decision(daemon, GREP) == "deny")
        assert daemon.log().count("zone policy installed") == 2


def test_a_rewritten_manifest_entry_with_matching_text_is_rejected(start_daemon: Callable[..., DaemonProcess]) -> None:
    """The attestation and manifest_sha are untouched; only the manifest's own digest shows the entry changed."""
    with DevZone(zone_id="zm") as zone:
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        zone.state.policy_zone.tampering = "manifest_entry"
        zone.state.policy_zone.publish("org", {"p1": NO_WEBFETCH, "p2": NO_GREP})
        eventually(lambda: status(daemon)["zone"]["last_error"] is not None)
        assert status(daemon)["zone"]["last_error"] == "manifest_sha does not match the attested manifest"
        assert decision(daemon, FETCH) == "deny" and decision(daemon, GREP) == "no_objection"


def test_manifest_sha_over_the_entries_alone_is_accepted(start_daemon: Callable[..., DaemonProcess]) -> None:
    with DevZone(zone_id="zf") as zone:
        zone.state.policy_zone.manifest_form = "entries"
        zone.state.policy_zone.publish("org", {"p2": NO_GREP, "p1": NO_WEBFETCH})
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        assert status(daemon)["zone"]["last_error"] is None


def _in_process_sync(zone: DevZone, tmp_path: Path) -> ZoneSync:
    config = KeycardConfig(zone_id=zone.state.zone_id, issuer_url=zone.issuer, api_base_url=zone.issuer)
    store = PolicyStore(LocalSources(policy_file=tmp_path / "absent.cedar", policy_dir=None))
    return ZoneSync(config, store, tmp_path / "zone-policy.json")


def test_a_list_longer_than_the_page_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "MAX_PAGES", 3)
    with DevZone(zone_id="zb", page_size=1) as zone:
        for set_index in range(4):
            zone.state.policy_zone.publish(f"set{set_index}", filler(set_index, 1))
        sync = _in_process_sync(zone, tmp_path)
        with pytest.raises(ZoneError, match="still had more after 3 pages"):
            anyio.run(sync.sync_now)
        assert sync.status()["last_error_reason"] == "pagination" and sync.store.zone_active == ()
        zone.state.policy_zone.page_size = 2  # two pages now: within the bound
        assert anyio.run(sync.sync_now) is True


def test_credentials_are_chosen_in_the_documented_order() -> None:
    config = KeycardConfig(zone_id="z", issuer_url="https://z.keycard.cloud", org_id="org_1")

    async def user_token() -> str:
        return "user"

    everything = {"KEYCARD_API_API_KEY": "k", "KEYCARD_API_CLIENT_ID": "id", "KEYCARD_API_CLIENT_SECRET": "s",
                  "KEYCARD_API_TOKEN": "t"}  # fmt: skip
    chosen = []
    for dropped in ("KEYCARD_API_API_KEY", "KEYCARD_API_CLIENT_ID", "KEYCARD_API_TOKEN", "user"):
        chosen.append(auth_from_environment(everything, config, user_token if dropped != "user" else None).describe())
        everything = {key: value for key, value in everything.items() if not key.startswith(dropped)}
        if dropped == "KEYCARD_API_CLIENT_ID":
            everything.pop("KEYCARD_API_CLIENT_SECRET")
    assert chosen == [
        "bearer token from KEYCARD_API_API_KEY",
        "service account id (KEYCARD_API_CLIENT_ID, client credentials)",
        "bearer token from KEYCARD_API_TOKEN",
        "none",
    ]
    signed_in = auth_from_environment({}, config, user_token)
    assert signed_in.describe() == "keycardctl auth signin token, exchanged for an organisation org_1 token"
    assert (
        isinstance(signed_in, SignedInUser)
        and signed_in.exchange_url == "https://api.keycard.ai/organizations/org_1/token"
    )


def test_an_error_body_echoing_the_credential_sent_never_shows_it() -> None:
    basic = base64.b64encode(b"sa_dev:s3cret-value").decode()
    sent = httpx.Request(
        "POST", "https://api.example/service-account-token", headers={"Authorization": f"Basic {basic}"}
    )
    echoed = httpx.Response(401, json={"code": "invalid_client", "message": f"s3cret-value / {basic}"}, request=sent)
    assert api.describe_error(echoed) == "HTTP 401 (invalid_client: [redacted] / [redacted])"
    sent = httpx.Request("GET", "https://api.example/zones", headers={"Authorization": "Bearer kc_live_token"})
    assert "kc_live_token" not in api.describe_error(httpx.Response(403, text="no: kc_live_token", request=sent))


def test_a_change_on_the_last_listing_page_is_seen_while_the_first_answers_304(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    with DevZone(zone_id="zl") as zone:  # five sets, newest first, two per page: set00 is alone on the third page
        publish_spread(zone, sets=5, per_set=2)
        daemon = start_daemon(env=zone_env(zone))
        eventually(lambda: decision(daemon, FETCH) == "deny")
        eventually(lambda: zone.state.policy_zone.not_modified >= 6)  # whole polls answered 304, page by page
        zone.state.policy_zone.publish("set00", {"aa_grep": NO_GREP})
        eventually(lambda: decision(daemon, GREP) == "deny")
        assert status(daemon)["zone"]["last_error"] is None
