"""OTLP export of decisions, end to end: the real daemon exports to a real OTLP/HTTP receiver started here, which
decodes the official protobuf `ExportLogsServiceRequest`. Decisions must never wait for the collector."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DaemonProcess
from hardening_helpers import find_secrets
from otlp_receiver import Receiver
from test_daemon import hook, status, wait_until
from test_http_hooks import free_port
from test_processes import start_with_a_replica
from test_secrets import PAYLOADS, SECRETS
from test_zone import FETCH, GREP, NO_GREP, NO_WEBFETCH, zone_env

from keycardd.client import Client
from keycardd.config import ConfigError
from keycardd.decision_log import DecisionLog
from keycardd.devzone.server import DevZone
from keycardd.telemetry.config import telemetry_config

POLICY = """
@id("no-secrets") @reason("secrets stay where they are")
forbid (principal, action, resource) when { context has file_path && context.file_path like "*/secrets/*" };
@id("approved-docs") @approve
permit (principal, action, resource) when { context has file_path && context.file_path like "/work/docs/*" };
@id("ask-ops") @itl("ops files need a human")
permit (principal, action, resource) when { context has file_path && context.file_path like "/work/ops/*" };
@id("all") permit (principal, action, resource);
"""
PROMPT_ID = "550e8400-e29b-41d4-a716-446655440000"


def claude_read(path: str, tool_use_id: str = "toolu_01A2B3C4D5E6F7G8H9") -> bytes:
    return json.dumps(
        {
            "session_id": "sess-claude",
            "prompt_id": PROMPT_ID,
            "cwd": "/work",
            "hook_event_name": "PreToolUse",
            "tool_name": "Read",
            "tool_input": {"file_path": path},
            "tool_use_id": tool_use_id,
        }
    ).encode()


AGENT_READS: dict[str, dict[str, Any]] = {
    "claude": json.loads(claude_read("/work/secrets/a")),
    "cursor": {
        "conversation_id": "conv-cursor",
        "generation_id": "gen-cursor",
        "hook_event_name": "beforeReadFile",
        "workspace_roots": ["/work"],
        "file_path": "/work/secrets/a",
        "content": "x",
    },
    "codex": {
        "session_id": "sess-codex",
        "turn_id": "turn-codex",
        "cwd": "/work",
        "hook_event_name": "PreToolUse",
        "model": "m",
        "tool_name": "Read",
        "tool_input": {"file_path": "/work/secrets/a"},
        "tool_use_id": "call-codex",
    },
    "gemini": {
        "session_id": "sess-gemini",
        "cwd": "/work",
        "hook_event_name": "BeforeTool",
        "timestamp": "2026-01-01T00:00:00Z",
        "tool_name": "read_file",
        "tool_input": {"file_path": "/work/secrets/a"},
    },
}
AGENT_IDS = {
    "claude": ("sess-claude", "toolu_01A2B3C4D5E6F7G8H9", PROMPT_ID),
    "cursor": ("conv-cursor", None, "gen-cursor"),
    "codex": ("sess-codex", "call-codex", "turn-codex"),
    "gemini": ("sess-gemini", None, None),
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def otel_env(receiver: Receiver, **more: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "2000", **more}


def decide(daemon: DaemonProcess, payload: bytes, agent: str = "claude") -> None:
    with daemon.client() as client:
        hook(client, payload, agent)


def telemetry(daemon: DaemonProcess) -> dict[str, Any]:
    document = status(daemon)["telemetry"]
    assert isinstance(document, dict)
    return document


def test_without_an_endpoint_nothing_is_exported_and_the_sdk_is_not_loaded(daemon: DaemonProcess) -> None:
    decide(daemon, claude_read("/work/secrets/a"))
    assert telemetry(daemon) == {"enabled": False, "sdk_loaded": False}


def test_every_decision_kind_is_one_record_with_its_attributes(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    expected = {
        "/work/secrets/a": ("deny", ["no-secrets"], 2, 2),
        "/work/ops/run.sh": ("ask", ["ask-ops"], 0, 23),
        "/work/docs/guide.md": ("allow", ["approved-docs"], 1, 1),
        "/work/src/main.py": ("no_objection", ["all"], 1, 16),
    }
    for index, path in enumerate(expected):
        decide(daemon, claude_read(path, tool_use_id=f"toolu_{index}"))
    wait_until(lambda: len(receiver.of("keycardd.decision")) == len(expected))
    policy_sha = status(daemon)["policy"]["sha256"]  # type: ignore[index]
    for record in receiver.of("keycardd.decision"):
        attributes, details = record.attributes, record.ocsf["unmapped"]["keycard"]
        decision, policies, action_id, disposition_id = expected[details["file_path"]]
        assert attributes["keycard.decision"] == decision
        assert attributes["keycard.policies"] == policies
        assert attributes["keycard.agent"] == "claude-code"
        assert attributes["keycard.event"] == "PreToolUse"
        assert attributes["keycard.tool"] == "read"
        assert details["cwd"] == "/work"
        assert attributes["keycard.principal"] == status(daemon)["principal"]
        assert details["latency_us"] > 0
        assert details["prompt_id"] == PROMPT_ID
        assert attributes["session.id"] == "sess-claude"
        assert attributes["prompt.id"] == PROMPT_ID
        assert attributes["tool_use_id"].startswith("toolu_")
        assert attributes["ocsf.class_uid"] == 6003
        body = record.ocsf
        assert (body["class_uid"], body["category_uid"], body["type_uid"]) == (6003, 6, 600399)
        assert (body["action_id"], body["disposition_id"]) == (action_id, disposition_id)
        assert body["api"]["request"]["uid"] == attributes["tool_use_id"]
        assert body["actor"]["session"]["uid"] == "sess-claude"
        assert body["policy"]["uid"] == policy_sha
        assert record.resource["service.name"] == "keycardd"
        assert record.resource["host.name"]
        assert record.resource["enduser.id"] == attributes["keycard.principal"]
        assert "service.version" in record.resource
    deny = next(r for r in receiver.of("keycardd.decision") if r.attributes["keycard.decision"] == "deny")
    assert "secrets stay where they are" in deny.ocsf["message"]
    assert deny.severity_text == "DENIED"


def test_each_agent_is_exported_with_its_correlation_ids(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    for agent, payload in AGENT_READS.items():
        decide(daemon, json.dumps(payload).encode(), agent)
    wait_until(lambda: len(receiver.of("keycardd.decision")) == len(AGENT_READS))
    by_agent = {
        record.attributes["keycard.agent"].removesuffix("-code"): record for record in receiver.of("keycardd.decision")
    }
    assert by_agent.keys() == AGENT_READS.keys()
    for agent, (session, tool_use_id, prompt_id) in AGENT_IDS.items():
        attributes = by_agent[agent].attributes
        assert attributes["keycard.decision"] == "deny", agent
        assert by_agent[agent].ocsf["unmapped"]["keycard"]["file_path"] == "/work/secrets/a", agent
        assert attributes.get("session.id") == session, agent
        assert attributes.get("tool_use_id") == tool_use_id, agent
        assert attributes.get("prompt.id") == prompt_id, agent


def test_the_exported_record_matches_the_local_log_record(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    line = "curl -H 'Authorization: Bearer abcdefgh12345678' https://example.com/x?token=s3cr3t && ls"
    payload = {"session_id": "s", "cwd": "/work", "hook_event_name": "PreToolUse", "tool_name": "Bash"}
    decide(daemon, json.dumps({**payload, "tool_input": {"command": line}, "tool_use_id": "toolu_x"}).encode())
    wait_until(lambda: len(receiver.of("keycardd.decision")) == 1)
    log_path = Path(status(daemon)["log"]["path"])  # type: ignore[index]
    wait_until(lambda: log_path.exists() and log_path.read_text().strip() != "")
    logged = json.loads(log_path.read_text().splitlines()[-1])
    exported = receiver.of("keycardd.decision")[0]
    details = exported.ocsf["unmapped"]["keycard"]
    assert "[MASKED]" in logged["command"]
    assert details["command"] == logged["command"]
    assert exported.ocsf["metadata"]["uid"] == exported.attributes["keycard.record.id"] == logged["id"]
    assert exported.attributes["tool_use_id"] == logged["tool_use_id"] == "toolu_x"
    assert exported.ocsf["policy"]["uid"] == logged["policy_sha256"]
    assert exported.attributes["keycard.log.seq"] == details["seq"] == logged["seq"]
    assert details["prev"] == logged["prev"]


def test_records_are_batched_several_to_a_request(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    with daemon.client() as client:
        for index in range(50):
            hook(client, claude_read(f"/work/src/{index}.py"))
    wait_until(lambda: telemetry(daemon)["exported"] == 50)
    assert len(receiver.of("keycardd.decision")) == 50
    assert max(receiver.requests) > 1
    assert len(receiver.requests) < 50


def test_a_collector_answering_5xx_is_retried(start_daemon: Callable[..., DaemonProcess], receiver: Receiver) -> None:
    receiver.fail_next = 2
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    decide(daemon, claude_read("/work/secrets/a"))
    wait_until(lambda: telemetry(daemon)["exported"] == 1, timeout_s=30)
    assert len(receiver.of("keycardd.decision")) == 1
    assert receiver.failed == 2
    document = telemetry(daemon)
    assert document["retries"] == 2
    assert document["failed_requests"] == 2
    assert (document["exported"], document["dropped"]) == (1, 0)


def test_a_collector_down_then_back_gets_the_records_and_decisions_never_wait(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    port = free_port()
    down = Receiver(port=port)  # not started yet: nothing listens on the port
    daemon = start_daemon(policy=POLICY, env=otel_env(down))
    with daemon.client(timeout_s=2.0) as client:  # a decision that waited on the exporter would time out
        for index in range(20):
            hook(client, claude_read(f"/work/secrets/{index}"))
    assert status(daemon)["decisions"]["deny"] == 20  # type: ignore[index]
    wait_until(lambda: telemetry(daemon)["failed_requests"] >= 1, timeout_s=20)
    down.start()
    try:
        wait_until(lambda: telemetry(daemon)["exported"] + telemetry(daemon)["dropped"] == 20, timeout_s=60)
        assert len(down.of("keycardd.decision")) == telemetry(daemon)["exported"]
        assert telemetry(daemon)["exported"] == 20  # the retries outlast a short outage
    finally:
        down.stop()


def test_a_slow_collector_does_not_slow_decisions_and_the_queue_is_bounded(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver, tmp_path: Path
) -> None:
    receiver.delay_s = 1.5  # under the 2 s export timeout: every request is taken, slowly
    config = tmp_path / "keycard.toml"
    config.write_text("[telemetry]\nqueue_size = 10\n")
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver), args=["--config", str(config)])
    with Client(daemon.socket, timeout_s=1.0) as client:
        for index in range(200):
            hook(client, claude_read(f"/work/src/{index}.py"))
    document = telemetry(daemon)
    assert document["queue_size"] == 10
    assert document["queued"] <= 10
    wait_until(lambda: telemetry(daemon)["exported"] + telemetry(daemon)["dropped"] == 200, timeout_s=60)
    assert telemetry(daemon)["dropped"] > 0
    assert len(receiver.of("keycardd.decision")) == telemetry(daemon)["exported"]


def test_shutdown_flushes_what_is_queued(start_daemon: Callable[..., DaemonProcess], receiver: Receiver) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    for index in range(5):
        decide(daemon, claude_read(f"/work/src/{index}.py"))
    assert daemon.stop(signal.SIGTERM) == 0
    assert len(receiver.of("keycardd.decision")) == 5


def test_headers_resource_attributes_and_service_name_from_the_environment(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    env = otel_env(
        receiver,
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=k%3Dv,x-team=sec",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod,host.name=spoofed",
        OTEL_SERVICE_NAME="keycardd-laptops",
    )
    daemon = start_daemon(policy=POLICY, env=env)
    decide(daemon, claude_read("/work/secrets/a"))
    wait_until(lambda: len(receiver.of("keycardd.decision")) == 1)
    assert receiver.headers[0]["x-api-key"] == "k=v"
    assert receiver.headers[0]["x-team"] == "sec"
    resource = receiver.records[0].resource
    assert resource["deployment.environment"] == "prod"
    assert resource["service.name"] == "keycardd-laptops"
    assert resource["host.name"] != "spoofed"
    document = telemetry(daemon)
    assert document["headers"] == ["x-api-key", "x-team"]  # names only: header values are credentials
    assert "k=v" not in json.dumps(document)


def test_config_from_keycard_toml(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver, tmp_path: Path
) -> None:
    config = tmp_path / "keycard.toml"
    config.write_text(
        f'[telemetry]\nlogs_endpoint = "{receiver.endpoint}/v1/logs"\ntimeout_ms = 2000\n'
        '[telemetry.headers]\nauthorization = "Bearer fleet-token"\n'
        '[telemetry.resource_attributes]\n"deployment.environment" = "staging"\n'
    )
    daemon = start_daemon(policy=POLICY, args=["--config", str(config)])
    decide(daemon, claude_read("/work/secrets/a"))
    wait_until(lambda: len(receiver.of("keycardd.decision")) == 1)
    assert receiver.headers[0]["authorization"] == "Bearer fleet-token"
    assert receiver.records[0].resource["deployment.environment"] == "staging"
    assert telemetry(daemon)["source"] == str(config)


@pytest.mark.parametrize(
    ("env", "table", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "", "OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "", "http/protobuf only"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "no-equals-sign"}, "", "OTEL_EXPORTER_OTLP_HEADERS must be"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "", "OTEL_EXPORTER_OTLP_TIMEOUT must be a whole number"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318"}, "", "must be an https:// URL"),
        ({}, 'endpoint = "https://c.example"\nqueue_sise = 5\n', "unknown field `queue_sise`"),
    ],
)
def test_bad_telemetry_config_stops_the_daemon_with_one_clear_error(
    env: dict[str, str], table: str, message: str, tmp_path: Path, receiver: Receiver
) -> None:
    config = tmp_path / "keycard.toml"
    config.write_text("[telemetry]\n" + table)
    full_env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **env} if env else dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.daemon", "--config", str(config)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("keycardd: "), result.stderr
    assert message in errors[0]


def test_no_secret_reaches_the_collector(start_daemon: Callable[..., DaemonProcess], receiver: Receiver) -> None:
    daemon = start_daemon(env=otel_env(receiver))
    for agent, payload in PAYLOADS:
        decide(daemon, json.dumps(payload).encode(), agent)
    planted = {
        "session_id": "s",
        "prompt_id": f"p-{SECRETS[0]}",
        "cwd": f"/work/{SECRETS[1]}",
        "hook_event_name": "PreToolUse",
        "tool_name": "Read",
        "tool_input": {"file_path": f"/work/{SECRETS[2]}.txt"},
        "tool_use_id": f"toolu_{SECRETS[3]}",
    }
    decide(daemon, json.dumps(planted).encode())
    wait_until(lambda: len(receiver.of("keycardd.decision")) == len(PAYLOADS) + 1)
    texts = [body.decode("latin-1") for body in receiver.raw]
    texts += [json.dumps([record.ocsf, record.attributes, record.resource]) for record in receiver.records]
    assert find_secrets(SECRETS, texts=texts) == []
    assert any("[MASKED]" in record.ocsf["unmapped"]["keycard"].get("command", "") for record in receiver.records)


def test_zone_syncs_and_shadow_differences_are_records_too(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    with DevZone(zone_id="z1") as zone:
        policies = zone.state.policy_zone
        policies.publish("org", {"p1": NO_WEBFETCH})
        policies.set_shadow(policies.publish("org", {"p1": NO_WEBFETCH, "p2": NO_GREP}, activate=False))
        daemon = start_daemon(env={**zone_env(zone), **otel_env(receiver)})
        wait_until(lambda: status(daemon)["shadow"]["active"] is True)  # type: ignore[index]
        decide(daemon, FETCH.encode())
        decide(daemon, GREP.encode())  # the shadow version forbids grep: a difference, not enforced
        wait_until(lambda: len(receiver.of("keycardd.shadow_difference")) == 1)
        wait_until(lambda: len(receiver.of("keycardd.decision")) == 2)
        synced = receiver.of("keycardd.zone_sync")
        assert synced[0].attributes["keycard.zone.changed"] is True
        assert synced[0].attributes["keycard.zone.version"] == "org@v1"
        assert synced[0].attributes["keycard.zone.id"] == "z1"
        assert synced[0].ocsf["class_uid"] == 6002
        fetch = next(r for r in receiver.of("keycardd.decision") if r.attributes["keycard.tool"] == "webfetch")
        assert fetch.attributes["keycard.decision"] == "deny"
        assert fetch.ocsf["policy"]["version"] == "org@v1"
        assert fetch.ocsf["unmapped"]["keycard"]["url"] == "https://a.io"
        difference = receiver.of("keycardd.shadow_difference")[0]
        assert difference.attributes["keycard.decision"] == "no_objection"
        assert difference.attributes["keycard.shadow.decision"] == "deny"
        assert difference.attributes["keycard.shadow.policies"] == ["zone-no-grep"]
        assert difference.ocsf["action_id"] == 3  # Observed: nothing was enforced differently

        policies.tampering = "signature"
        policies.publish("org", {"p1": NO_GREP})
        wait_until(lambda: any("keycard.zone.error" in r.attributes for r in receiver.of("keycardd.zone_sync")))
        failed = next(r for r in receiver.of("keycardd.zone_sync") if "keycard.zone.error" in r.attributes)
        assert failed.ocsf["status"] == "Failure"
        assert failed.attributes["keycard.zone.error_reason"]
        assert failed.severity_text == "ERROR"


def test_keycardctl_status_shows_the_export_and_its_drops(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    decide(daemon, claude_read("/work/secrets/a"))
    wait_until(lambda: telemetry(daemon)["exported"] == 1)
    shown = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "status"], capture_output=True, text=True, env=daemon.env
    )
    line = next(line for line in shown.stdout.splitlines() if line.startswith("telemetry:"))
    assert f"OTLP to {receiver.endpoint}/v1/logs: 1 exported, 0 dropped" in line


def test_replicas_decisions_are_exported_by_the_primary(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon, _replica = start_with_a_replica(start_daemon, policy=POLICY, env=otel_env(receiver))
    for index in range(40):  # one connection each: the kernel spreads them over both processes
        decide(daemon, claude_read(f"/work/src/{index}.py", tool_use_id=f"toolu_{index}"))
    wait_until(lambda: telemetry(daemon)["exported"] == 40, timeout_s=30)
    exported = {record.attributes["tool_use_id"] for record in receiver.of("keycardd.decision")}
    assert exported == {f"toolu_{index}" for index in range(40)}
    assert sorted(record.attributes["keycard.log.seq"] for record in receiver.of("keycardd.decision")) == list(
        range(1, 41)
    )


@pytest.mark.anyio
async def test_records_the_disk_refuses_are_exported_all_the_same(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    decision_log = DecisionLog(blocker / "decisions.jsonl")
    exported: list[bytes] = []
    decision_log.export = lambda lines, records: exported.append(lines)
    await decision_log.append_encoded(b'{"id":"a"}\n{"id":"b"}\n', 2)
    assert decision_log.dropped == 2
    assert [json.loads(line) for line in b"".join(exported).splitlines()] == [{"id": "a"}, {"id": "b"}]


@pytest.mark.parametrize(
    ("env", "table", "endpoint"),
    [
        ({}, None, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example:4318/"}, None, "https://c.example:4318/v1/logs"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example:4318",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example/ingest",
            },
            None,
            "https://logs.example/ingest",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example", "OTEL_SDK_DISABLED": "true"}, None, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example", "OTEL_LOGS_EXPORTER": "none"}, None, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example", "OTEL_LOGS_EXPORTER": "console,otlp"},
            None,
            "https://c.example/v1/logs",
        ),
        ({}, {"endpoint": "https://file.example"}, "https://file.example/v1/logs"),
        ({}, {"endpoint": "https://file.example", "enabled": False}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://env.example"},
            {"endpoint": "https://file.example"},
            "https://env.example/v1/logs",
        ),
        ({}, {"logs_endpoint": "http://localhost:4318/v1/logs"}, "http://localhost:4318/v1/logs"),
    ],
)
def test_where_records_go(env: dict[str, str], table: dict[str, object] | None, endpoint: str | None) -> None:
    config = telemetry_config(table, "/etc/keycard.toml" if table else None, env)
    assert (config.endpoint if config else None) == endpoint


def test_a_token_in_the_endpoint_is_never_shown() -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    config = telemetry_config(
        None, None, {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"https://c.example/v1/logs?token={token}"}
    )
    assert config is not None
    assert token not in json.dumps(config.describe())
    with pytest.raises(ConfigError) as refused:
        telemetry_config(None, None, {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://c.example/v1/logs?token={token}"})
    assert token not in str(refused.value)


def test_the_sdk_lives_in_the_export_process_not_in_the_daemon(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    decide(daemon, claude_read("/work/secrets/a"))
    wait_until(lambda: telemetry(daemon)["exported"] == 1)
    document = telemetry(daemon)
    assert document["sdk_loaded"] is False
    assert Path(f"/proc/{document['pid']}/cmdline").read_bytes().split(b"\0")[1:3] == [
        b"-m",
        b"keycardd.telemetry.exporter",
    ]


def test_an_export_process_that_dies_is_replaced_and_every_record_is_exported_or_counted(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    killed = telemetry(daemon)["pid"]
    os.kill(killed, signal.SIGKILL)  # an agent can: it is not the daemon
    wait_until(lambda: telemetry(daemon)["restarts"] == 1)
    assert str(telemetry(daemon)["last_error"]).startswith("the export process exited")
    for index in range(5):  # while no export process runs
        decide(daemon, claude_read(f"/work/src/{index}.py"))
    wait_until(lambda: telemetry(daemon)["pid"] not in (killed, None) and _running(telemetry(daemon)["pid"]))
    decide(daemon, claude_read("/work/src/after.py"))
    wait_until(
        lambda: any(
            r.ocsf["unmapped"]["keycard"]["file_path"] == "/work/src/after.py" for r in receiver.of("keycardd.decision")
        )
    )
    wait_until(lambda: telemetry(daemon)["exported"] + telemetry(daemon)["dropped"] == 6)  # none lost silently
    assert status(daemon)["decisions"]["no_objection"] == 6  # type: ignore[index]


def test_the_export_process_ends_with_the_daemon_even_when_it_is_killed(
    start_daemon: Callable[..., DaemonProcess], receiver: Receiver
) -> None:
    daemon = start_daemon(policy=POLICY, env=otel_env(receiver))
    decide(daemon, claude_read("/work/src/a.py"))
    pid = telemetry(daemon)["pid"]
    daemon.stop(signal.SIGKILL)
    wait_until(lambda: not _running(pid), timeout_s=20)  # its input ends: it flushes and exits


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
