"""The decision core: in-daemon decision latency by policy count, socket round trip, throughput, reload, RSS.

Targets (issue 2): p50 <= 100 us at 100 policies and <= 1 ms at 5000; >= 5,000 decisions/s at 64 clients;
RSS <= 60 MB with 1000 policies; reload live <= 1 s with zero failed requests during the swap.

Throughput is measured twice: one process (`throughput`, the default daemon, whose RSS is the one reported) and
`keycardd --processes 2` (`throughput_processes_2`), the setting for many concurrent agents, which the 64-client
target is checked against: one process decides on one core (cedarpy holds the GIL). Kept connections each send
the `PAYLOADS` mix in turn, multiplexed by a few `bench/_load_client.py` processes (see there why); connections
per request are one client process each, as hook shims are.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import cedarpy

from bench._harness import daemon, keep_alive_load, percentiles, run_clients, synthetic_policies
from keycardd import protocol
from keycardd.adapters import Decider, Settings
from keycardd.client import Client
from keycardd.engine import Engine, EntityUid, PolicySource
from keycardd.protocol import DocumentReply, HookRequest, HookResult, StatusRequest

PAYLOADS = [
    json.dumps({"hook_event_name": "PreToolUse", "session_id": "s", "cwd": "/w", "tool_name": tool, "tool_input": ti})
    for tool, ti in [
        ("Read", {"file_path": "/w/src/w17/app.py"}),
        ("Write", {"file_path": "/w/w4/out.txt", "content": "hello"}),
        ("WebFetch", {"url": "https://example.com", "prompt": "x"}),
        ("mcp__server3__tool3", {"q": 1}),
        ("Grep", {"pattern": "TODO", "path": "/w"}),
    ]
]
BASH_PAYLOAD = json.dumps(
    {
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "git status && npm test"},
    }
).encode()

CLIENT_SCRIPT = """
import socket, struct, sys, time
frame = sys.stdin.buffer.read()
start_at = float(sys.argv[2])
while time.time() < start_at:
    time.sleep(0.001)
header = bytearray(4)
for _ in range(int(sys.argv[1])):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[3])
    sock.sendall(frame)
    view = memoryview(header)
    while view:
        view = view[sock.recv_into(view):]
    remaining = struct.unpack(">I", header)[0]
    while remaining:
        remaining -= len(sock.recv(remaining))
    sock.close()
"""
"""A client that opens a connection per request, as the hook shims do (one pre-encoded frame, replies read and
dropped). Kept connections use `bench/_load_client.py`, which multiplexes many from a few processes."""


def _decision_latency(count: int) -> dict[str, Any]:
    engine = Engine.compile([PolicySource("bench.cedar", synthetic_policies(count))])
    decider = Decider(Settings(principal=EntityUid("User", "bench@example.com")))
    payloads = [payload.encode() for payload in PAYLOADS]
    for payload in payloads * 50:
        decider.decide_hook(engine, None, "claude", payload, {})
    samples = []
    for _ in range(400):
        for payload in payloads:
            started = time.perf_counter()
            decider.decide_hook(engine, None, "claude", payload, {})
            samples.append(time.perf_counter() - started)
    return percentiles(samples)


def _unsplit_latency(count: int) -> dict[str, Any]:
    """The same requests against one unsplit PolicySet: what the per-tool index saves."""
    policy_set = cedarpy.PolicySet.from_str(synthetic_policies(count))
    entities = cedarpy.Entities.from_json_str("[]")
    request = {
        "principal": {"type": "User", "id": "bench@example.com"},
        "action": {"type": "Action", "id": "Agent::ToolUse"},
        "resource": {"type": "Tool", "id": "read"},
        "context": {"agent": "claude-code", "event": "PreToolUse", "file_path": "/w/src/w17/app.py"},
    }
    samples = []
    for _ in range(200):
        started = time.perf_counter()
        cedarpy.is_authorized(request, policy_set, entities)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def _round_trip(socket_path: Any) -> dict[str, Any]:
    payload = PAYLOADS[0].encode()
    with Client(socket_path) as client:
        for _ in range(300):
            client.request(HookRequest(agent="claude", payload=payload))
        samples = []
        for _ in range(3000):
            started = time.perf_counter()
            client.request(HookRequest(agent="claude", payload=payload))
            samples.append(time.perf_counter() - started)
    return percentiles(samples)


def _throughput(socket_path: Any, clients: int, requests_per_client: int, *, fresh: bool = False) -> dict[str, Any]:
    """Kept connections: `_harness.keep_alive_load` with the payload mix; a connection per request (`fresh`, as the
    hook shims do): one client process per connection, each sending a Read."""
    if not fresh:
        frames = [protocol.encode(HookRequest(agent="claude", payload=payload.encode())) for payload in PAYLOADS]
        load = keep_alive_load("frame", str(socket_path), frames, clients, requests_per_client)
        return {**load, "connection": "persistent"}
    frame = protocol.encode(HookRequest(agent="claude", payload=PAYLOADS[0].encode()))
    start_at = time.time() + 2.0 + clients * 0.05
    command = [sys.executable, "-I", "-S", "-c", CLIENT_SCRIPT, str(requests_per_client), repr(start_at)]
    load = run_clients([[*command, str(socket_path)]] * clients, frame, start_at, clients * requests_per_client)
    return {"clients": clients, "connection": "per request", **load}


def _reload(bench_daemon: Any, count: int) -> dict[str, Any]:
    """Replace the policy file under load; time until the new sha is live, and count failed requests meanwhile."""
    failures = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal failures
        with Client(bench_daemon.socket) as client:
            while not stop.is_set():
                reply = client.request(HookRequest(agent="claude", payload=PAYLOADS[0].encode()))
                if not isinstance(reply, HookResult):
                    failures += 1

    def sha() -> str:
        with Client(bench_daemon.socket) as client:
            reply = client.request(StatusRequest())
        assert isinstance(reply, DocumentReply)
        return str(reply.body["policy"]["sha256"])

    worker = threading.Thread(target=hammer)
    worker.start()
    before = sha()
    replacement = bench_daemon.policy_file.with_suffix(".new")
    replacement.write_text(synthetic_policies(count, seed=99))
    started = time.perf_counter()
    replacement.replace(bench_daemon.policy_file)
    while sha() == before:
        time.sleep(0.005)
    live_s = time.perf_counter() - started
    stop.set()
    worker.join()
    return {"policies": count, "live_ms": round(live_s * 1000, 1), "failed_requests": failures}


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"decision_latency": {}, "unsplit_latency": {}}
    for count in (10, 100, 1000, 5000):
        results["decision_latency"][str(count)] = _decision_latency(count)
    results["unsplit_latency"]["5000"] = _unsplit_latency(5000)
    compile_s = []
    for count in (100, 1000, 5000):
        started = time.perf_counter()
        Engine.compile([PolicySource("bench.cedar", synthetic_policies(count))])
        compile_s.append({"policies": count, "ms": round((time.perf_counter() - started) * 1000, 1)})
    results["compile"] = compile_s

    with daemon(synthetic_policies(1000)) as bench_daemon:
        results["round_trip_persistent"] = _round_trip(bench_daemon.socket)
        results["rss_mb_1000_policies"] = bench_daemon.rss_mb()
        results["throughput"] = [_throughput(bench_daemon.socket, n, 3000 // n if n < 64 else 100) for n in (1, 8, 64)]
        results["throughput"].append(_throughput(bench_daemon.socket, 64, 100, fresh=True))
        results["reload"] = _reload(bench_daemon, 1000)
        with Client(bench_daemon.socket) as client:
            for _ in range(200):
                client.request(HookRequest(agent="claude", payload=BASH_PAYLOAD))
            reply = client.request(StatusRequest())
        assert isinstance(reply, DocumentReply)
        results["daemon_reported_latency_us"] = reply.body["latency_us"]
        results["rss_mb_after_load"] = bench_daemon.rss_mb()
    with daemon(synthetic_policies(1000), args=["--processes", "2"]) as bench_daemon:
        time.sleep(3)  # the replica loads the policy itself after the primary starts listening
        results["throughput_processes_2"] = [_throughput(bench_daemon.socket, n, 9600 // n) for n in (8, 64)]
        results["throughput_processes_2"].append(_throughput(bench_daemon.socket, 64, 100, fresh=True))
    at100 = results["decision_latency"]["100"]["p50_us"]
    at5000 = results["decision_latency"]["5000"]["p50_us"]
    results["targets"] = {
        "p50_at_100_le_100us": at100 <= 100,
        "p50_at_5000_le_1ms": at5000 <= 1000,
        "throughput_64_ge_5000": results["throughput_processes_2"][1]["per_s"] >= 5000,
        "rss_1000_le_60mb": results["rss_mb_1000_policies"] <= 60,
        "reload_le_1s_no_failures": results["reload"]["live_ms"] <= 1000 and results["reload"]["failed_requests"] == 0,
    }
    return results
