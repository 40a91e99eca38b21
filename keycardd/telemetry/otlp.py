"""The one module that imports OpenTelemetry: turns `LogEvent`s into SDK log records and posts them with the
official OTLP/HTTP (protobuf) log exporter. Imported only by the export process (`keycardd.telemetry.exporter`),
never by the daemon (`status` reports `telemetry.sdk_loaded`)."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Sequence

import msgspec
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from keycardd import __version__
from keycardd.telemetry.config import TelemetryConfig
from keycardd.telemetry.ocsf import LogEvent

_encode_json = msgspec.json.Encoder().encode


class OtlpSink:
    """Posts batches of events. The body is the OCSF event as JSON text: one string value, which the encoder
    handles in microseconds where the same event as a nested OTLP map took ~250 us a record; SIEMs parse it as they
    parse OCSF from any other source. `send` blocks (up to the configured timeout, the exporter retrying
    429/502/503/504 inside it) and says whether the collector took the batch."""

    def __init__(self, config: TelemetryConfig, principal: str) -> None:
        self._exporter = OTLPLogExporter(
            endpoint=config.endpoint, headers=dict(config.headers), timeout=config.timeout_s
        )
        self._resource = Resource.create(resource_attributes(config, principal))
        self._scope = InstrumentationScope("keycardd", __version__)

    def send(self, events: Sequence[LogEvent]) -> bool:
        records = [self._record(event) for event in events]
        return self._exporter.export(records) is LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        """Abort the exporter's retry wait and close its connections (another thread may be sending)."""
        self._exporter.shutdown()  # type: ignore[no-untyped-call]

    def _record(self, event: LogEvent) -> ReadableLogRecord:
        record = LogRecord(
            timestamp=event.time_ns,
            observed_timestamp=event.time_ns,
            severity_number=SeverityNumber(event.severity_number),
            severity_text=event.severity_text,
            body=_encode_json(event.body).decode(),
            attributes=event.attributes,  # type: ignore[arg-type]  # flat plain values
            event_name=event.event_name,
        )
        return ReadableLogRecord(record, resource=self._resource, instrumentation_scope=self._scope)


def resource_attributes(config: TelemetryConfig, principal: str) -> dict[str, str]:
    """The resource every record shares: which daemon, on which machine, for whom. OTEL_RESOURCE_ATTRIBUTES and
    the file's `resource_attributes` add to it; keycardd's own keys win, so records cannot be made to name another
    service version or host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return {
        **dict(config.resource_attributes),
        "service.name": config.service_name,
        "service.version": __version__,
        "host.name": socket.gethostname(),
        **({"user.name": user} if user else {}),
        "enduser.id": principal,
    }
