"""keycardd's exported decisions join the real Claude Code's own OpenTelemetry events (issue 18).

Claude Code (`CLAUDE_CODE_ENABLE_TELEMETRY=1`, `OTEL_LOGS_EXPORTER=otlp`) and keycardd export to one OTLP/HTTP
receiver, as both would to an organisation's collector. For each tool call, Claude Code's `claude_code.tool_decision`
and keycardd's `keycardd.decision` must carry the same `tool_use_id`, `session.id` and `prompt.id`: the keys the
README's collector recipe tells a security team to join on. The names are read off what Claude Code sends, not off
its documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import DaemonProcess
from otlp_receiver import Received, Receiver
from test_claude_e2e import Project
from test_claude_http_e2e import claude_bin, install_http
from test_daemon import wait_until
from test_http_hooks import free_port, wait_for_port

pytestmark = pytest.mark.e2e

__all__ = ["claude_bin"]  # the pinned Claude Code of the http suite (onFailure on http hooks)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def claude_telemetry(receiver: Receiver) -> dict[str, str]:
    """Claude Code's own settings for exporting its events, pointed at the same collector as keycardd."""
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_LOGS_EXPORT_INTERVAL": "200",
    }


def by_tool_use_id(records: list[Received]) -> dict[str, Received]:
    return {str(record.attributes["tool_use_id"]): record for record in records if "tool_use_id" in record.attributes}


def claude_events(receiver: Receiver, name: str) -> list[Received]:
    """Claude Code's events of one kind: it names them in the body (and `event.name`), not in the record's
    event_name field as keycardd does."""
    return [record for record in receiver.records if record.body == f"claude_code.{name}"]


def test_keycardd_decisions_join_claude_codes_tool_decisions(
    tmp_path: Path,
    start_daemon: Callable[..., DaemonProcess],
    isolated_home: Path,
    claude_bin: Path,
    receiver: Receiver,
) -> None:
    port = free_port()
    root = tmp_path / "project"
    install_http(root, port)
    daemon = start_daemon(
        args=["--http-port", str(port)],
        socket_name="otel.sock",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
    )
    wait_for_port(port, daemon.process)
    project = Project(root, isolated_home, tmp_path / "no-such.sock")
    marker = root / "ran"
    project.claude(
        claude_bin,
        ("Bash", {"command": f"touch {marker}", "description": "x"}),
        ("Bash", {"command": "rm -rf ~", "description": "x"}),
        env=claude_telemetry(receiver),
    )
    assert marker.exists()

    def gates() -> dict[str, Received]:
        return by_tool_use_id(
            [r for r in receiver.of("keycardd.decision") if r.attributes["keycard.event"] == "PreToolUse"]
        )

    wait_until(
        lambda: len(gates()) == 2 and set(gates()) <= set(by_tool_use_id(claude_events(receiver, "tool_decision")))
    )
    theirs = by_tool_use_id(claude_events(receiver, "tool_decision"))
    decisions: dict[str, tuple[str, str]] = {}
    for tool_use_id, record in gates().items():
        claude_event = theirs[tool_use_id]
        for key in ("session.id", "prompt.id"):
            assert record.attributes[key] == claude_event.attributes[key], key
        command = record.ocsf["unmapped"]["keycard"]["command"]
        decisions[command] = (record.attributes["keycard.decision"], claude_event.attributes["decision"])
    # what keycardd decided, and what Claude Code then recorded for the same call
    assert decisions == {f"touch {marker}": ("no_objection", "accept"), "rm -rf ~": ("deny", "reject")}
