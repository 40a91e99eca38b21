"""OTLP export's cost to deciding: decision p50 and throughput with export on vs off, in the same run.

Target (issue 18): export on is within 10% of export off, for the round trip p50 and for throughput. The
collector is a local OTLP/HTTP receiver in its own process that decodes every request (the official protobuf) and
counts records, so the run also shows every decision arrived. Export off and on alternate (off, on, ... ROUNDS
times) and each figure is the best of its runs, so drift on a shared machine does not land on one side only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

from bench._harness import daemon, free_port, synthetic_policies
from bench.bench_core import _round_trip, _throughput
from keycardd.client import Client
from keycardd.protocol import DocumentReply, StatusRequest

RECEIVER = """
import sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
count = 0
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        request = ExportLogsServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        count += sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
CLIENTS = 8
ROUNDS = 3
REQUESTS_PER_CLIENT = 1500


def _received(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as answer:
        return int(answer.read())


def _status(socket_path: Any) -> dict[str, Any]:
    with Client(socket_path) as client:
        reply = client.request(StatusRequest())
    assert isinstance(reply, DocumentReply)
    return reply.body


def _measure(export: bool, port: int) -> dict[str, Any]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"} if export else {}
    with daemon(synthetic_policies(100), extra_env=env) as bench_daemon:
        round_trip = _round_trip(bench_daemon.socket)
        throughput = _throughput(bench_daemon.socket, CLIENTS, REQUESTS_PER_CLIENT)
        status = _status(bench_daemon.socket)
        if export:  # wait for the export to catch up: the figures must include its whole cost
            deadline = time.monotonic() + 60
            while _status(bench_daemon.socket)["telemetry"]["queued"] and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2)
            status = _status(bench_daemon.socket)
        return {
            "round_trip_p50_us": round_trip["p50_us"],
            "round_trip_p99_us": round_trip["p99_us"],
            "daemon_p50_us": status["latency_us"]["p50"],
            "per_s": throughput["per_s"],
            "errors": throughput["errors"],
            "decisions": sum(status["decisions"].values()),
            "telemetry": {
                key: status["telemetry"].get(key) for key in ("exported", "dropped", "retries", "sdk_loaded")
            },
            "rss_mb": bench_daemon.rss_mb(),
        }


def run() -> dict[str, Any]:
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _received(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for _ in range(ROUNDS):
            for mode in ("off", "on"):
                before = _received(port)
                result = _measure(mode == "on", port)
                result["received_by_collector"] = _received(port) - before
                runs[mode].append(result)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    best = {
        mode: {
            "round_trip_p50_us": min(r["round_trip_p50_us"] for r in results),
            "round_trip_p99_us": min(r["round_trip_p99_us"] for r in results),
            "daemon_p50_us": min(r["daemon_p50_us"] for r in results),
            "per_s": max(r["per_s"] for r in results),
        }
        for mode, results in runs.items()
    }
    return {
        "runs": runs,
        "best": best,
        "ratio_on_vs_off": {
            "round_trip_p50": round(best["on"]["round_trip_p50_us"] / best["off"]["round_trip_p50_us"], 3),
            "round_trip_p99": round(best["on"]["round_trip_p99_us"] / best["off"]["round_trip_p99_us"], 3),
            "daemon_p50": round(best["on"]["daemon_p50_us"] / best["off"]["daemon_p50_us"], 3),
            "throughput": round(best["on"]["per_s"] / best["off"]["per_s"], 3),
        },
        "target": "on within 10% of off: p50 ratio <= 1.10, throughput ratio >= 0.90",
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
