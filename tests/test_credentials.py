"""Credentials against the dev zone over real HTTP: sign-in, exchange, caching, refresh, single flight, errors,
`keycardctl run` with its session socket, the policy check on issuance, and no token anywhere it should not be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import DaemonProcess
from hardening_helpers import find_secrets

from keycardd.config import load_config
from keycardd.credentials.broker import CredentialBroker, CredentialDeniedError
from keycardd.credentials.oauth import OAuthError
from keycardd.devzone.server import DevZone

GITHUB = "https://api.github.com"
KEYCARD_TOML = f"""
[zone]
id = "z1"
[[credentials.default]]
env_var = "GH_TOKEN"
resource = "{GITHUB}"
[[credentials.default]]
env_var = "DB_TOKEN"
resource = "urn:acme:db"
"""


@pytest.fixture
def zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DevZone]:
    with DevZone(zone_id="z1") as running:
        (tmp_path / "keycard.toml").write_text(KEYCARD_TOML)
        monkeypatch.setenv("ISSUER_URL", running.issuer)
        monkeypatch.setenv("KEYCARD_API_BASE_URL", running.issuer)
        monkeypatch.setenv("KEYCARD_ZONE_POLL_SECONDS", "3600")
        yield running


def keycardctl(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keycardd.cli", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=timeout,
    )


def start_signin() -> tuple[subprocess.Popen[str], str]:
    """Start `auth signin --no-browser` and return it with the authorization URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "keycardd.cli", "auth", "signin", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = next(line.strip() for line in process.stdout if line.startswith("  http"))
    return process, url


def sign_in(zone: DevZone) -> subprocess.CompletedProcess[str]:
    """Drive `auth signin --no-browser` as a browser would: open the printed URL and follow the redirect."""
    process, url = start_signin()
    assert url.startswith(f"{zone.issuer}/oauth/authorize?")
    page = httpx.get(url, follow_redirects=True, timeout=10)
    assert page.status_code == 200 and b"Signed in" in page.content
    output, errors = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, url + "\n" + output, errors)


def test_signin_whoami_signout(zone: DevZone) -> None:
    result = sign_in(zone)
    assert result.returncode == 0, result.stderr
    assert "signed in to zone z1 as dev@example.com" in result.stdout
    assert "code_challenge_method=S256" in result.stdout and "state=" in result.stdout
    assert keycardctl("auth", "whoami").stdout.startswith("dev@example.com (subject usr_dev) on zone z1")
    assert keycardctl("auth", "signout").returncode == 0
    assert len(zone.state.oauth.revoked) == 2
    whoami = keycardctl("auth", "whoami")
    assert whoami.returncode == 1
    assert "not signed in to zone z1: run `keycardctl auth signin`" in whoami.stderr


def test_signin_rejects_a_forged_state(zone: DevZone) -> None:
    process, url = start_signin()
    callback = httpx.get(url, follow_redirects=False, timeout=10).headers["location"]
    httpx.get(callback.replace("state=", "state=forged"), timeout=10)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "state mismatch" in errors


def test_credential_read_and_info(zone: DevZone) -> None:
    assert sign_in(zone).returncode == 0
    read = keycardctl("credential", "read", GITHUB)
    assert read.returncode == 0, read.stderr
    token = read.stdout.strip()
    assert token.count(".") == 2 and zone.state.oauth.exchanges == [GITHUB]
    info = keycardctl("credential", "info", "--json")
    assert [json.loads(line) for line in info.stdout.splitlines()] == [
        {"env_var": "GH_TOKEN", "resource": GITHUB},
        {"env_var": "DB_TOKEN", "resource": "urn:acme:db"},
    ]


def test_credential_info_with_nothing_configured_says_where_to_add_it(tmp_path: Path) -> None:
    config = tmp_path / "bare.toml"
    config.write_text('[zone]\nid = "z1"\n')
    result = keycardctl("credential", "info", "--json", env={**os.environ, "CLI_CONFIG": str(config)})
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == f"no credentials are configured: add [[credentials.default]] entries to {config}\n"


@pytest.mark.parametrize("processes", ["1", "2"])
def test_daemon_caches_credentials_across_callers(
    zone: DevZone, start_daemon: Callable[..., DaemonProcess], processes: str
) -> None:
    """With replicas, every credential request is forwarded to the primary: one broker, one cache."""
    assert sign_in(zone).returncode == 0
    daemon = start_daemon(args=["--processes", processes])
    first = keycardctl("credential", "read", GITHUB, env=daemon.env)
    second, *more = [keycardctl("credential", "read", GITHUB, env=daemon.env) for _ in range(6)]
    assert all(result.stdout == first.stdout for result in more)
    assert first.returncode == 0 and first.stdout == second.stdout
    assert zone.state.oauth.exchanges == [GITHUB]  # the second came from the daemon's cache: no network call
    status = json.loads(keycardctl("status", "--json", env=daemon.env).stdout)
    (entry,) = status["credentials"]
    assert entry["resource"] == GITHUB and entry["env_var"] == "GH_TOKEN" and "expires_at" in entry
    text = keycardctl("status", env=daemon.env).stdout
    assert "credentials: 1 cached" in text and f"{GITHUB} as $GH_TOKEN until " in text
    leaks = find_secrets(
        [first.stdout.strip()], texts=[json.dumps(status), text], files=[daemon.log_path, Path(status["log"]["path"])]
    )
    assert leaks == []


def _signed_in_broker(zone: DevZone, **kwargs: object) -> CredentialBroker:
    assert sign_in(zone).returncode == 0
    return CredentialBroker(load_config(), **kwargs)  # type: ignore[arg-type]


def test_fifty_concurrent_requests_share_one_exchange(zone: DevZone) -> None:
    broker = _signed_in_broker(zone)
    zone.state.oauth.faults[GITHUB] = "slow"  # keep the first exchange in flight while the others arrive

    async def main() -> set[str]:
        tokens: set[str] = set()

        async def one() -> None:
            tokens.add((await broker.issue(GITHUB)).token)

        async with anyio.create_task_group() as tasks:
            for _ in range(50):
                tasks.start_soon(one)
        await broker.aclose()
        return tokens

    assert len(anyio.run(main)) == 1
    assert zone.state.oauth.attempts == [GITHUB]


def test_credentials_are_renewed_before_they_expire(zone: DevZone) -> None:
    now = [time.time()]
    broker = _signed_in_broker(zone, clock=lambda: now[0])

    async def main() -> None:
        first = await broker.issue(GITHUB)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(broker.run)
            now[0] += 3600 - 80  # inside the refresh lead, still outside the 30 s margin
            with anyio.fail_after(10):
                while len(zone.state.oauth.exchanges) < 2:
                    await anyio.sleep(0.05)
            renewed = await broker.issue(GITHUB)
            assert renewed.token != first.token
            assert len(zone.state.oauth.exchanges) == 2  # the caller got the renewed one without waiting
            tasks.cancel_scope.cancel()
        await broker.aclose()

    anyio.run(main)


def test_expired_user_token_is_refreshed_and_rotated(zone: DevZone) -> None:
    zone.state.oauth.access_ttl_s = 20  # the user's own access token is already inside the expiry margin
    broker = _signed_in_broker(zone)
    before = set(zone.state.oauth.refresh_tokens)

    async def main() -> None:
        await broker.issue(GITHUB)
        await broker.aclose()

    anyio.run(main)
    assert set(zone.state.oauth.refresh_tokens) != before  # rotated, and the new one stored
    assert keycardctl("credential", "read", "urn:other").returncode == 0  # a new process uses the stored one


@pytest.mark.parametrize(
    ("fault", "attempts", "code"),
    [
        ("access_denied", 1, "access_denied"),
        ("insufficient_authorization", 1, "insufficient_authorization"),
        ("invalid_client", 1, "invalid_client"),
        ("rate_limited", 3, "slow_down"),
        ("server_error", 3, "server_error"),
    ],
)
def test_error_classes(zone: DevZone, fault: str, attempts: int, code: str) -> None:
    broker = _signed_in_broker(zone)
    zone.state.oauth.faults[GITHUB] = fault

    async def main() -> OAuthError:
        try:
            await broker.issue(GITHUB)
        except OAuthError as exc:
            return exc
        finally:
            await broker.aclose()
        raise AssertionError("issued despite the fault")

    error = anyio.run(main)
    assert error.code == code
    assert zone.state.oauth.attempts == [GITHUB] * attempts  # permanent errors are not retried
    read = keycardctl("credential", "read", GITHUB)
    assert read.returncode == 1 and code in read.stderr


def test_local_policy_can_refuse_a_credential(zone: DevZone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "policy.cedar"
    policy.write_text(
        'permit (principal, action, resource);\n@id("no-db") @reason("No database tokens.")\n'
        'forbid (principal, action == Action::"Agent::CredentialIssue", resource == Resource::"urn:acme:db");\n'
    )
    monkeypatch.setenv("KEYCARD_POLICY_FILE", str(policy))
    assert sign_in(zone).returncode == 0
    read = keycardctl("credential", "read", "urn:acme:db")
    assert read.returncode == 1
    assert "keycardd policy 'no-db': No database tokens." in read.stderr
    assert zone.state.oauth.attempts == []
    with pytest.raises(CredentialDeniedError):
        from keycardd.credentials.client import CredentialClient

        anyio.run(CredentialClient(load_config()).issue, "urn:acme:db")


CHILD = r"""
import http.client, json, os, socket, sys
class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["KEYCARD_SOCKET"])
def issue(resource):
    connection = UnixConnection("keycard-agent")
    connection.request("POST", "/keycard.agent.v1.AgentService/IssueJWT", json.dumps({"resource": resource,
                       "scopes": ["read"], "workload": "test"}), {"Content-Type": "application/json",
                       "Connect-Protocol-Version": "1"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())
print(json.dumps({"env": {k: os.environ.get(k) for k in ("GH_TOKEN", "DB_TOKEN", "KEYCARD_RUN",
      "KEYCARD_RUN_SESSION_ID", "KEYCARD_ENV", "KEYCARD_SOCKET")}, "issued": issue("https://mcp.example.com"),
      "denied": issue("urn:acme:secret")}))
sys.exit(7)
"""


def test_run_provides_credentials_a_session_socket_and_the_exit_code(
    zone: DevZone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.cedar"
    policy.write_text(
        "permit (principal, action, resource);\n"
        'forbid (principal, action == Action::"Agent::CredentialIssue", resource == Resource::"urn:acme:secret");\n'
    )
    monkeypatch.setenv("KEYCARD_POLICY_FILE", str(policy))
    assert sign_in(zone).returncode == 0
    result = keycardctl("run", "--", sys.executable, "-c", CHILD)
    assert result.returncode == 7, result.stderr
    report = json.loads(result.stdout)
    env = report["env"]
    assert env["KEYCARD_RUN"] == "1" and len(env["KEYCARD_RUN_SESSION_ID"]) == 32
    assert env["KEYCARD_ENV"] == "production"
    assert env["GH_TOKEN"].count(".") == 2 and env["DB_TOKEN"].count(".") == 2
    status, body = report["issued"]
    assert status == 200 and body["token"].count(".") == 2 and body["expiresAt"].endswith("Z")
    status, body = report["denied"]
    assert (status, body["code"]) == (403, "permission_denied")
    assert not Path(env["KEYCARD_SOCKET"]).exists()  # gone with the session
    leaks = find_secrets([env["GH_TOKEN"], env["DB_TOKEN"], report["issued"][1]["token"]], texts=[result.stderr])
    assert leaks == []


def test_run_fails_before_starting_naming_each_missing_credential(zone: DevZone, tmp_path: Path) -> None:
    assert sign_in(zone).returncode == 0
    zone.state.oauth.faults[GITHUB] = "insufficient_authorization"
    zone.state.oauth.faults["urn:acme:db"] = "access_denied"
    marker = tmp_path / "ran"
    result = keycardctl("run", "--", "touch", str(marker))
    assert result.returncode == 1
    assert not marker.exists()
    assert "GH_TOKEN (https://api.github.com): insufficient_authorization, authorize it first" in result.stderr
    assert "DB_TOKEN (urn:acme:db): access_denied" in result.stderr


def test_policy_answers_are_remembered_only_while_the_policy_lasts() -> None:
    from keycardd.credentials.policy import policy_check
    from keycardd.engine import Engine, EntityUid, PolicySource

    permit = Engine.compile([PolicySource("a", "permit (principal, action, resource);")])
    forbid = Engine.compile([PolicySource("b", '@id("no") forbid (principal, action, resource == Resource::"urn:x");')])
    current = [permit]
    check = policy_check(lambda: current[0], EntityUid("User", "u@example.com"))
    assert check("urn:x", (), None) is None
    current[0] = forbid
    assert check("urn:x", (), None) == "keycardd policy 'no': denied"


def test_signin_times_out_cleanly(zone: DevZone) -> None:
    result = keycardctl("auth", "signin", "--no-browser", "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == "keycardctl: sign-in failed: timeout: no sign-in completed within 1 s"


def test_auth_resource_reports_each_resource(zone: DevZone) -> None:
    assert sign_in(zone).returncode == 0
    zone.state.oauth.faults["urn:acme:db"] = "insufficient_authorization"
    result = keycardctl("auth", "resource", GITHUB, "urn:acme:db")
    assert result.returncode == 1
    assert f"ok   {GITHUB}" in result.stdout
    assert "FAIL urn:acme:db: insufficient_authorization" in result.stdout


@pytest.mark.parametrize("fault", ["garbage", "down"])
def test_zone_faults_become_clear_errors(zone: DevZone, fault: str) -> None:
    assert sign_in(zone).returncode == 0
    if fault == "down":
        zone.stop()
    else:
        zone.state.oauth.faults[GITHUB] = "garbage"
    read = keycardctl("credential", "read", GITHUB)
    assert read.returncode == 1
    assert read.stderr.startswith("keycardctl: no credential for https://api.github.com: ")
    assert "Traceback" not in read.stderr


def test_wall_clock_jumps_neither_expire_nor_revive_cached_tokens(
    zone: DevZone, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = _signed_in_broker(zone)

    async def main() -> None:
        first = await broker.issue(GITHUB)
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 7 * 24 * 3600)  # the wall clock leaps a week ahead
        assert (await broker.issue(GITHUB)).token == first.token
        monkeypatch.setattr(time, "time", lambda: real_time() - 7 * 24 * 3600)  # ...and a week back
        assert (await broker.issue(GITHUB)).token == first.token
        await broker.aclose()

    anyio.run(main)
    assert zone.state.oauth.exchanges == [GITHUB]


SIGNAL_CHILD = r"""
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))
print("ready", flush=True)
time.sleep(30)
"""


def test_run_forwards_signals_and_cleans_up(zone: DevZone) -> None:
    assert sign_in(zone).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "keycardd.cli", "run", "--", sys.executable, "-c", SIGNAL_CHILD],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(15)
    assert process.wait(timeout=20) == 42  # the child got SIGTERM and its exit code is the session's


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to try the session socket as another uid")
def test_session_socket_refuses_other_users(zone: DevZone) -> None:
    assert sign_in(zone).returncode == 0
    probe = (
        "import os, socket, sys\n"
        "path = os.environ['KEYCARD_SOCKET']\n"
        "os.chmod(os.path.dirname(path), 0o755); os.chmod(path, 0o666)  # even opened up...\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setgid(65534); os.setuid(65534)\n"
        "    try:  # the refusal may close the connection before the request is even sent\n"
        "        s = socket.socket(socket.AF_UNIX); s.connect(path)\n"
        "        s.sendall(b'POST /keycard.agent.v1.AgentService/IssueJWT HTTP/1.1\\r\\nHost: x\\r\\n"
        'Content-Length: 30\\r\\n\\r\\n{"resource":"urn:acme:db"}    \')\n'
        "        print('got', len(s.recv(1000)), flush=True)\n"
        "    except PermissionError:\n        print('no access', flush=True)  # not the peer check: fail\n"
        "    except OSError:\n        print('got 0', flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    result = keycardctl("run", "--", sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "got 0"  # ...another uid's request is never answered
