"""keycardctl status, reload and decisions: what the daemon is doing and what it decided."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from keycardd import decision_chain, paths
from keycardd.cli._common import CliError, Subcommands, count_of, print_json
from keycardd.cli._daemon import DaemonUnavailableError, ask_daemon
from keycardd.protocol import ReloadRequest, StatusRequest


def register(commands: Subcommands) -> None:
    status = commands.add_parser("status", help="show the daemon's state, policy and decision counts")
    status.add_argument("--json", action="store_true", help="print the stable JSON document")
    status.set_defaults(handler=_status)

    reload = commands.add_parser("reload", help="re-read the policy (and sync the zone) now")
    reload.set_defaults(handler=_reload)

    decisions = commands.add_parser("decisions", help="show recent decisions from the decision log")
    decisions.add_argument("-n", "--lines", type=int, default=20, help="how many recent decisions (default 20)")
    decisions.add_argument("--follow", "-f", action="store_true", help="keep printing new decisions")
    decisions.add_argument("--json", action="store_true", help="print the JSON lines as logged")
    decisions.add_argument(
        "--verify", action="store_true", help="check the log's hash chain and report the first break (exit 1)"
    )
    decisions.set_defaults(handler=_decisions)


def _not_running(exc: DaemonUnavailableError) -> CliError:
    """The one sentence every daemon command gives when nothing answers: what happened, and how to start it."""
    return CliError(f"{exc}; start it with `keycardd` or `keycardctl service start`")


def _status(args: argparse.Namespace) -> int:
    try:
        document = ask_daemon(StatusRequest())
    except DaemonUnavailableError as exc:
        raise _not_running(exc) from None
    if args.json:
        print_json(document)
        return 0
    policy, latency = document["policy"], document["latency_us"]
    decisions = document["decisions"]
    print(f"keycardd {document['version']} (pid {document['pid']}, up {document['uptime_s']:.0f} s)")
    print(f"socket:    {document['socket']}")
    print(f"principal: {document.get('principal', '?')}")
    if policy["sha256"] is None:
        print("policy:    none active, so gated calls are denied")
    else:
        count = count_of(policy["count"], "policy", "policies")
        print(f"policy:    {count} from {', '.join(policy['sources'])}")
        print(f"           sha256 {policy['sha256']} (the set), loaded {policy['loaded_at']}")
        for name, digest in (policy.get("source_sha256") or {}).items():
            if not name.startswith(("embedded:", "zone:")):  # files, as `sha256sum FILE` prints them (zone sets: below)
                print(f"           {digest}  {name}")
    if policy["error"]:
        print(f"  ERROR:   {policy['error']}")
    print("decisions: " + ", ".join(f"{key} {value}" for key, value in decisions.items()))
    for agent, counts in (document.get("decisions_by_agent") or {}).items():
        print(f"  {agent}: " + ", ".join(f"{key} {value}" for key, value in counts.items()))
    print(f"latency:   {_latency_text(latency)}")
    processes = document.get("processes", 1)
    if processes > 1:
        print(f"processes: {processes} deciding (the primary and {count_of(processes - 1, 'replica')})")
    if "http" in document:
        print(f"http:      {_http_text(document['http'])}")
    print(f"log:       {document['log']['path']} ({document['log']['dropped']} dropped)")
    print(f"shadow:    {_shadow_text(document['shadow'])}")
    if "telemetry" in document:
        print(f"telemetry: {_telemetry_text(document['telemetry'])}")
    if "zone" in document:
        print(f"zone:      {_zone_text(document['zone'])}")
        for line in _zone_details(document["zone"]):
            print(f"           {line}")
    if "credentials" in document:
        cached = document["credentials"]
        print(f"credentials: {len(cached) or 'none'} cached")
        for entry in cached:
            env_var = f" as ${entry['env_var']}" if entry.get("env_var") else ""
            print(f"           {entry['resource']}{env_var} until {entry['expires_at']}")
    return 1 if policy["error"] else 0


def _latency_text(latency: dict[str, Any]) -> str:
    if latency["p50"] is None:
        return "no decisions yet"
    return f"p50 {latency['p50']} us, p99 {latency['p99']} us"


def _http_text(http: dict[str, Any]) -> str:
    owner = "" if http["uid_check"] else ", secret only (no owner check on this system)"
    return (
        f"hooks on {http['listening']}: {http['served']} answered, {http['refused']} refused as not yours, "
        f"{http['rejected']} bad requests{owner}"
    )


def _shadow_text(shadow: dict[str, Any]) -> str:
    if not shadow["active"]:
        return "off (no shadow policy set)"
    return f"{shadow['evaluated']} evaluated, {shadow['differences']} differences, {shadow['dropped']} dropped"


def _telemetry_text(telemetry: dict[str, Any]) -> str:
    if not telemetry["enabled"]:
        return "off (no OTLP endpoint configured)"
    text = (
        f"OTLP to {telemetry['endpoint']}: {telemetry['exported']} exported, {telemetry['dropped']} dropped, "
        f"{telemetry['queued']} queued, {telemetry['retries']} retries"
    )
    return text + (f"; last error: {telemetry['last_error']}" if telemetry.get("last_error") else "")


def _zone_text(zone: dict[str, Any]) -> str:
    version = f"policy version {zone['version']}" if zone.get("version") else "no policy synced yet"
    text = f"{zone['zone_id']} at {zone['source']}: {version}"
    if zone.get("last_sync"):
        text += f", last synced {zone['last_sync']}"
    if zone.get("from_cache"):
        text += " (from the local cache)"
    if zone.get("last_error"):
        text += f"; last error ({zone.get('last_error_reason') or 'zone'}): {zone['last_error']}"
    return text


def _zone_details(zone: dict[str, Any]) -> list[str]:
    """Authentication, each verified policy set and the bundle: what to match against what the zone published."""
    lines = [f"auth: {zone['auth']}"] if zone.get("auth") else []
    if zone.get("etag"):
        lines.append(f"policy-sets listing ETag {zone['etag']}")
    for entry in zone.get("policy_sets") or []:
        lines.append(
            f"set {entry['name']} ({entry['id']}) {entry['mode']} version {entry['version']} ({entry['version_id']}),"
            f" {count_of(entry['policies'], 'policy', 'policies')}, manifest_sha {entry['manifest_sha']}"
        )
    if zone.get("bundle"):
        lines.append(f"user bundle ETag {zone['bundle']['etag']} (digest {zone['bundle']['digest']})")
    return lines


def _reload(args: argparse.Namespace) -> int:
    try:
        document = ask_daemon(ReloadRequest())
    except DaemonUnavailableError as exc:
        raise _not_running(exc) from None
    policy, zone = document["policy"], document.get("zone") or {}
    if not document["reloaded"]:
        if policy["error"]:
            raise CliError(f"the policy was rejected and the last good one stays active: {policy['error']}")
        reason = zone.get("last_error_reason") or "zone"
        raise CliError(
            f"the zone policy sync was rejected ({reason}) and the last verified zone policy stays active: "
            f"{zone.get('last_error') or 'no reason recorded'}"
        )
    print(f"reloaded: {count_of(policy['count'], 'policy', 'policies')} (sha256 {policy['sha256'][:12]})")
    return 0


def _decisions(args: argparse.Namespace) -> int:
    path = paths.decision_log_path()
    if args.verify:
        return _verify(path)
    if not path.exists() and not args.follow:
        raise CliError(f"no decisions logged yet ({path} does not exist)")
    for line in _tail(path, args.lines):
        _print_decision(line, args.json)
    if args.follow:
        _follow(path, args.json)
    return 0


def _verify(path: Path) -> int:
    """Check the chain over the current file and the rotated ones it continues."""
    head = _running_head(path)
    verdict = decision_chain.verify(decision_chain.log_files(path), head)
    if verdict.first_break is not None:
        print(f"decision log chain broken at {verdict.first_break}", file=sys.stderr)
        return 1
    unchained = f" ({verdict.unchained} older records written before the chain)" if verdict.unchained else ""
    print(f"decision log intact: {count_of(verdict.records - verdict.unchained, 'record', 'records')}{unchained}")
    if head is None:
        print("the end of the log was not checked: no running keycardd has written to it yet")
    return 0


def _running_head(path: Path) -> decision_chain.ChainHead | None:
    """The running daemon's last record, when it writes this log: the file alone cannot show lines cut from its
    end."""
    try:
        log = ask_daemon(StatusRequest())["log"]
    except (DaemonUnavailableError, CliError):
        return None
    if log.get("path") != str(path) or not isinstance(log.get("seq"), int):
        return None
    return decision_chain.ChainHead(log["seq"], str(log["head"]))


def _tail(path: Path, count: int) -> deque[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return deque(handle, maxlen=max(count, 0))
    except FileNotFoundError:
        return deque()


def _follow(path: Path, as_json: bool) -> None:
    position = path.stat().st_size if path.exists() else 0
    try:
        while True:
            time.sleep(0.2)
            if not path.exists():
                continue
            size = path.stat().st_size
            if size < position:  # rotated
                position = 0
            with path.open(encoding="utf-8", errors="replace") as handle:
                handle.seek(position)
                for line in handle:
                    _print_decision(line, as_json)
                position = handle.tell()
    except KeyboardInterrupt:
        return


def _print_decision(line: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        return
    try:
        record: dict[str, Any] = json.loads(line)
    except ValueError:
        return
    what = record.get("command") or record.get("file_path") or record.get("url") or ""
    marker = " (doctor canary)" if record.get("canary") else ""
    print(
        f"{record.get('time', '?')} {record.get('decision', '?'):<12} {record.get('agent', '?')} "
        f"{record.get('event', '?')} {record.get('tool', '')} {what}".rstrip()
        + marker
    )
    if record.get("reason") and record.get("decision") in ("deny", "ask"):
        print(f"    {record['reason']}")
    sys.stdout.flush()
