"""Each exported record's shape: an OCSF event as the log body (JSON text), flat attributes for filtering and
joining.

Decisions are OCSF *API Activity* events (category 6 Application Activity, class 6003): an agent's tool call is an
operation an application asks for, and the security control profile's `action_id`/`disposition_id` say what
keycardd's policy made of it. The OCSF AI-agent work (an `ai_operation`-like class) is not released yet; the tool
call's own ids sit where such a class would look for them (`api.request.uid`, `actor.session.uid`) and the agent
names itself as `actor.app_name`. Zone syncs are *Application Lifecycle* events (6002, activity Update).

The flat attributes are the keys a pipeline filters and joins on, named as the agents' own OpenTelemetry events
name them (`session.id`, `prompt.id`, `tool_use_id`: Claude Code's `claude_code.tool_decision` carries them), so a
SIEM joins both on the same keys; everything else (reason, cwd, command, file path, URL, latency, policy sha, zone
version, chain hash) is in the body only. Each attribute costs the export thread ~2 us to encode, in a thread that
shares the GIL with deciding.
Every value comes from the masked decision-log record: nothing here reads the agent's payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from keycardd import __version__
from keycardd.decision_log import DecisionRecord
from keycardd.redact import mask

OCSF_VERSION = "1.5.0"
APPLICATION_ACTIVITY = 6
API_ACTIVITY = 6003
APPLICATION_LIFECYCLE = 6002
ACTIVITY_OTHER = 99
ACTIVITY_UPDATE = 8

SEVERITY_INFORMATIONAL, SEVERITY_LOW, SEVERITY_MEDIUM = 1, 2, 3
OTEL_INFO, OTEL_WARN, OTEL_ERROR = 9, 13, 17
"""OpenTelemetry severity numbers."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one keycardd decision reads in OCSF's security control profile."""

    action_id: int
    action: str
    disposition_id: int
    disposition: str
    severity_id: int
    otel_severity: int


OUTCOMES: Mapping[str, Outcome] = {
    "allow": Outcome(1, "Allowed", 1, "Allowed", SEVERITY_INFORMATIONAL, OTEL_INFO),
    "no_objection": Outcome(1, "Allowed", 16, "No Action", SEVERITY_INFORMATIONAL, OTEL_INFO),
    "ask": Outcome(0, "Unknown", 23, "Challenge", SEVERITY_LOW, OTEL_INFO),
    "deny": Outcome(2, "Denied", 2, "Blocked", SEVERITY_MEDIUM, OTEL_WARN),
    "observed": Outcome(3, "Observed", 17, "Logged", SEVERITY_INFORMATIONAL, OTEL_INFO),
}
"""`ask` hands the call to the user (OCSF: no action yet, disposition Challenge); `no_objection` lets the agent's own
permission flow go on (Allowed, No Action); `observed` events are logged, not decided."""
SEVERITY_NAMES = {SEVERITY_INFORMATIONAL: "Informational", SEVERITY_LOW: "Low", SEVERITY_MEDIUM: "Medium"}


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One record to export, before any OpenTelemetry type is involved."""

    event_name: str
    time_ns: int
    severity_number: int
    severity_text: str
    body: dict[str, object]
    attributes: dict[str, object]
    """Flat values: text, numbers, booleans and lists of text (what OTLP attributes hold)."""


def decision_event(record: DecisionRecord, principal: str) -> LogEvent:
    """A decision-log record as an OCSF API Activity event."""
    outcome = OUTCOMES.get(record.decision, OUTCOMES["observed"])
    time_ns = _time_ns(record.time)
    details = {
        key: value
        for key, value in {
            "decision": record.decision,
            "policies": record.policies,
            "latency_us": record.latency_us,
            "cwd": record.cwd,
            "command": record.command,
            "file_path": record.file_path,
            "url": record.url,
            "content_size": record.content_size,
            "content_sha256": record.content_sha256,
            "prompt_id": record.prompt_id,
            "repeated": record.repeated or None,
            "seq": record.seq,
            "prev": record.prev,
        }.items()
        if value is not None
    }
    body: dict[str, object] = {
        **_classification(APPLICATION_ACTIVITY, "Application Activity", API_ACTIVITY, "API Activity"),
        "activity_id": ACTIVITY_OTHER,
        "activity_name": record.event,
        "type_uid": API_ACTIVITY * 100 + ACTIVITY_OTHER,
        "type_name": "API Activity: Other",
        "time": time_ns // 1_000_000,
        "severity_id": outcome.severity_id,
        "severity": SEVERITY_NAMES[outcome.severity_id],
        "status_id": 1,
        "status": "Success",
        "action_id": outcome.action_id,
        "action": outcome.action,
        "disposition_id": outcome.disposition_id,
        "disposition": outcome.disposition,
        "metadata": _metadata(record.id, "decisions", correlation=record.tool_use_id),
        "actor": _compact(
            {
                "app_name": record.agent,
                "user": {"uid": principal},
                "session": _compact({"uid": record.session_id}),
            }
        ),
        "api": _compact({"operation": record.tool, "request": _compact({"uid": record.tool_use_id})}),
        "policy": _compact({"uid": record.policy_sha256, "version": record.zone_version, "name": _names(record)}),
        "duration": round(record.latency_us / 1000),
        "unmapped": {"keycard": details},
    }
    if record.reason:
        body["message"] = record.reason
    attributes = _compact(
        {
            "keycard.decision": record.decision,
            "keycard.policies": record.policies,
            "keycard.agent": record.agent,
            "keycard.event": record.event,
            "keycard.tool": record.tool,
            "keycard.principal": principal,
            "keycard.record.id": record.id,
            "keycard.log.seq": record.seq,
            "session.id": record.session_id,
            "tool_use_id": record.tool_use_id,
            "prompt.id": record.prompt_id,
            **_ocsf_attributes(body),
        }
    )
    return LogEvent("keycardd.decision", time_ns, outcome.otel_severity, outcome.action.upper(), body, attributes)


def shadow_event(record: DecisionRecord, principal: str, shadow_decision: str, shadow_policies: list[str]) -> LogEvent:
    """A shadow difference: the request as logged (masked), the active decision, and what the zone's shadow
    version would have decided. The OCSF action is Observed: nothing was enforced differently."""
    event = decision_event(record, principal)
    shadow = {"decision": shadow_decision, "policies": shadow_policies}
    body = {
        **event.body,
        "action_id": 3,
        "action": "Observed",
        "disposition_id": 15,
        "disposition": "Detected",
        "message": f"shadow policy would {shadow_decision} where active policy decided {record.decision}",
        "unmapped": {"keycard": {**_details(event.body), "shadow": shadow}},
    }
    attributes = {
        **event.attributes,
        "keycard.shadow.decision": shadow_decision,
        "keycard.shadow.policies": shadow_policies,
        **_ocsf_attributes(body),
    }
    return LogEvent("keycardd.shadow_difference", event.time_ns, OTEL_WARN, "DETECTED", body, attributes)


def zone_sync_event(
    *, time_ns: int, zone_id: str, version: str | None, changed: bool, error: str | None, reason: str | None
) -> LogEvent:
    """One zone policy sync: its result (installed new policy, unchanged, or failed and why)."""
    failed = error is not None
    body: dict[str, object] = {
        **_classification(
            APPLICATION_LIFECYCLE, "Application Activity", APPLICATION_LIFECYCLE, "Application Lifecycle"
        ),
        "activity_id": ACTIVITY_UPDATE,
        "activity_name": "Update",
        "type_uid": APPLICATION_LIFECYCLE * 100 + ACTIVITY_UPDATE,
        "type_name": "Application Lifecycle: Update",
        "time": time_ns // 1_000_000,
        "severity_id": SEVERITY_MEDIUM if failed else SEVERITY_INFORMATIONAL,
        "severity": SEVERITY_NAMES[SEVERITY_MEDIUM if failed else SEVERITY_INFORMATIONAL],
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "message": mask(error) if error else ("zone policy installed" if changed else "zone policy unchanged"),
        "metadata": _metadata(None, "zone_sync"),
        "app": _compact({"name": "keycard zone policy", "uid": zone_id, "version": version}),
        "unmapped": {"keycard": _compact({"changed": changed, "error_reason": reason})},
    }
    attributes = _compact(
        {
            "keycard.zone.id": zone_id,
            "keycard.zone.version": version,
            "keycard.zone.changed": changed,
            "keycard.zone.error": mask(error) if error else None,
            "keycard.zone.error_reason": reason,
            **_ocsf_attributes(body),
        }
    )
    return LogEvent(
        "keycardd.zone_sync",
        time_ns,
        OTEL_ERROR if failed else OTEL_INFO,
        "ERROR" if failed else "INFO",
        body,
        attributes,
    )


def _classification(category_uid: int, category: str, class_uid: int, class_name: str) -> dict[str, object]:
    return {"category_uid": category_uid, "category_name": category, "class_uid": class_uid, "class_name": class_name}


def _metadata(uid: str | None, log_name: str, correlation: str | None = None) -> dict[str, object]:
    product = {"name": "keycardd", "vendor_name": "keycardd", "version": __version__}
    return _compact(
        {
            "version": OCSF_VERSION,
            "product": product,
            "log_name": log_name,
            "uid": uid,
            "correlation_uid": correlation,
            "profiles": ["security_control"],
        }
    )


def _ocsf_attributes(body: Mapping[str, object]) -> dict[str, object]:
    """The OCSF ids a pipeline routes on, as flat attributes too: no need to parse the body for them."""
    keys = ("class_uid", "action_id", "disposition_id")
    return {f"ocsf.{key}": value for key in keys if isinstance(value := body.get(key), int)}


def _details(body: Mapping[str, object]) -> dict[str, object]:
    unmapped = body.get("unmapped")
    keycard = unmapped.get("keycard") if isinstance(unmapped, dict) else None
    return dict(keycard) if isinstance(keycard, dict) else {}


def _names(record: DecisionRecord) -> str | None:
    return ", ".join(record.policies) if record.policies else None


def _compact(values: Mapping[str, object]) -> dict[str, object]:
    """Drop absent values and empty objects: OTLP attributes cannot be null."""
    return {key: value for key, value in values.items() if value is not None and value != {}}


def _time_ns(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1e9)
    except ValueError:
        return 0
