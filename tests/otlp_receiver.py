"""A real OTLP/HTTP logs receiver for tests: decodes each POST to /v1/logs as the official protobuf
`ExportLogsServiceRequest` (from the opentelemetry-proto package) and keeps the records, flattened to plain values.

It can be told to answer 5xx for the next requests, to answer slowly, or to be stopped and started again on the
same port (a collector that is down, then back).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass
class Received:
    """One log record as the collector saw it."""

    resource: dict[str, Any]
    scope: str
    event_name: str
    severity_number: int
    severity_text: str
    time_unix_nano: int
    body: Any
    attributes: dict[str, Any]

    @property
    def ocsf(self) -> dict[str, Any]:
        """The body: the OCSF event, as JSON text."""
        assert isinstance(self.body, str)
        event = json.loads(self.body)
        assert isinstance(event, dict)
        return event


@dataclass
class Receiver:
    port: int = 0
    fail_next: int = 0
    """Answer 500 to this many further requests."""
    delay_s: float = 0.0
    requests: list[int] = field(default_factory=list)
    """The number of records in each request taken (200)."""
    failed: int = 0
    records: list[Received] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    """Every request body taken, as sent: for the secret scans."""
    headers: list[dict[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                        receiver.failed += 1
                if self.path != "/v1/logs" or failing:
                    self.send_response(404 if self.path != "/v1/logs" else 500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = ExportLogsServiceRequest()
                request.ParseFromString(body)
                taken = _flatten(request)
                with receiver._lock:
                    receiver.records += taken
                    receiver.requests.append(len(taken))
                    receiver.raw.append(body)
                    receiver.headers.append(dict(self.headers.items()))
                answer = ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, event_name: str) -> list[Received]:
        with self._lock:
            return [record for record in self.records if record.event_name == event_name]


def _flatten(request: ExportLogsServiceRequest) -> list[Received]:
    taken = []
    for resource_logs in request.resource_logs:
        resource = {item.key: _value(item.value) for item in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                taken.append(
                    Received(
                        resource=resource,
                        scope=scope_logs.scope.name,
                        event_name=record.event_name,
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        time_unix_nano=record.time_unix_nano,
                        body=_value(record.body),
                        attributes={item.key: _value(item.value) for item in record.attributes},
                    )
                )
    return taken


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind)
