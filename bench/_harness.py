"""Helpers shared by the benchmarks: percentiles, a throwaway daemon, synthetic policy sets."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p99 in microseconds."""
    ordered = sorted(samples_s)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6  # noqa: E731
    return {"p50_us": round(pick(0.50), 1), "p99_us": round(pick(0.99), 1), "n": len(ordered)}


@dataclass
class BenchDaemon:
    socket: Path
    process: subprocess.Popen[bytes]
    policy_file: Path
    state: Path

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")


@contextmanager
def daemon(
    policy: str | None = None, args: Sequence[str] = (), extra_env: Mapping[str, str] | None = None
) -> Iterator[BenchDaemon]:
    """A keycardd subprocess in a private temporary state directory (`args`: extra command-line arguments,
    `extra_env`: extra environment variables)."""
    root = Path(tempfile.mkdtemp(prefix="kcb", dir="/tmp"))
    root.chmod(0o700)
    policy_file = root / "policy.cedar"
    if policy is not None:
        policy_file.write_text(policy)
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(root / "state"),
        "KEYCARDD_SOCKET": str(root / "d.sock"),
        "KEYCARD_POLICY_FILE": str(policy_file),
        "KEYCARD_POLICY_DIR": str(root / "policy.d"),
        "KEYCARDD_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    process = subprocess.Popen([sys.executable, "-m", "keycardd.daemon", *args], env=env, stdin=subprocess.DEVNULL)
    sock = root / "d.sock"
    deadline = time.monotonic() + 60
    while True:
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(sock))
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("benchmark daemon did not start") from None
            time.sleep(0.02)
        finally:
            probe.close()
    try:
        yield BenchDaemon(sock, process, policy_file, root / "state")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def synthetic_policies(count: int, seed: int = 1) -> str:
    """`count` policies shaped like real guard policies: per-tool permits and forbids with command/path conditions.

    Tools are drawn from 50 names, so each tool's bucket holds about count/50 policies, as in a large org policy.
    """
    rng = random.Random(seed)
    tools = ["bash", "read", "write", "edit", "glob", "grep", "webfetch", "websearch", "agent"] + [
        f"mcp__server{i}__tool{i}" for i in range(41)
    ]
    lines = ['@id("base") permit (principal, action, resource);']
    for index in range(count - 1):
        tool = rng.choice(tools)
        word = f"w{rng.randint(0, 10_000)}"
        if tool == "bash":
            condition = f'context has command && context.command like "{word} *"'
        elif tool in ("read", "write", "edit"):
            condition = f'context has file_path && context.file_path like "*/{word}/*"'
        else:
            condition = f'context has session_id && context.session_id == "{word}"'
        effect = "forbid" if rng.random() < 0.5 else "permit"
        lines.append(
            f'@id("p{index}") {effect} (principal, action == Action::"Agent::ToolUse", resource == Tool::"{tool}") '
            f"when {{ {condition} }};"
        )
    return "\n".join(lines) + "\n"


SHELL_PROGRAMS = [
    "git", "npm", "pnpm", "yarn", "cargo", "go", "python", "python3", "pip", "node", "make", "docker", "kubectl",
    "terraform", "aws", "gcloud", "curl", "wget", "ssh", "scp", "rsync", "rm", "mv", "cp", "chmod", "chown", "sudo",
    "tar", "zip", "unzip", "sed", "awk", "grep", "find", "xargs", "ls", "cat", "echo", "psql", "mysql", "redis-cli",
    "helm", "brew", "apt-get", "systemctl", "kill", "pkill", "dd", "mkfs", "mount", "nc", "openssl", "gpg", "env",
    "bash", "sh", "jq", "yq", "gh", "bun",
]  # fmt: skip
"""Programs the shell-heavy policy set writes rules about (plus random words, as a large org's set does)."""


def shell_heavy_policies(count: int, seed: int = 1) -> str:
    """`count` policies of which one in eight target `Tool::"bash"`, as teams write them (issue 20).

    The shell policies test the program (`context.program == "git"`), a command prefix (`context.command like
    "git push*"`), an argument (`context.args.contains("--force")`), the three combined, or a substring of the
    command (`context.command like "*w12*"`); the other seven in eight are spread over the other tools as in
    `synthetic_policies`. Programs come from a list of real ones and random words, so a real command meets a few.
    """
    rng = random.Random(seed)
    spread = synthetic_policies(count * 2, seed=seed).splitlines()[1:]
    others = [line for line in spread if 'Tool::"bash"' not in line]
    lines = ['@id("base") permit (principal, action, resource);']
    for index in range(count - 1):
        if index % 8:
            lines.append(others[index].replace('@id("p', '@id("s', 1))
            continue
        program = rng.choice(SHELL_PROGRAMS) if rng.random() < 0.3 else f"w{rng.randint(0, 10_000)}"
        word = f"w{rng.randint(0, 10_000)}"
        condition = rng.choice(
            [
                f'context has program && context.program == "{program}"',
                f'context has command && context.command like "{program} {word}*"',
                f'context has args && context.args.contains("--{word}")',
                f'context has program && context.program == "{program}" && context has args && '
                f'context.args.contains("--{word}")',
                f'context has command && context.command like "*{word}*"',
            ]
        )
        effect = "forbid" if rng.random() < 0.5 else "permit"
        lines.append(
            f'@id("b{index}") {effect} (principal, action == Action::"Agent::ToolUse", resource == Tool::"bash") '
            f"when {{ {condition} }};"
        )
    return "\n".join(lines) + "\n"


LOAD_CLIENT = Path(__file__).resolve().parent / "_load_client.py"
LOAD_PROCESSES = 4
"""Client processes for a concurrent load: enough to keep both cores' daemon processes busy, few enough that
starting and scheduling them costs the machine little (each multiplexes its share of the connections)."""


def keep_alive_load(
    kind: str, address: str, requests: Sequence[bytes], clients: int, per_client: int
) -> dict[str, int]:
    """`clients` keep-alive connections sending `per_client` requests each, from `bench/_load_client.py` processes
    (`kind`: `http` to a loopback port, `frame` to a Unix socket), all starting at once; decisions per second."""
    processes = min(clients, LOAD_PROCESSES)
    shares = [clients // processes + (1 if index < clients % processes else 0) for index in range(processes)]
    start_at = time.time() + 2.0 + clients * 0.01
    mix = b"".join(len(request).to_bytes(4, "big") + request for request in requests)
    commands = [
        [sys.executable, "-I", "-S", str(LOAD_CLIENT), kind, address, str(share), str(per_client), repr(start_at)]
        for share in shares
    ]
    return {"clients": clients, **run_clients(commands, mix, start_at, clients * per_client)}


def run_clients(commands: Sequence[list[str]], data: bytes, start_at: float, total: int) -> dict[str, int]:
    """Start a client process per command, each given `data` on stdin (they wait for `start_at` to begin), and wait
    for all of them: `total` decisions, the clients that failed, and decisions per second since `start_at`."""
    started = [subprocess.Popen(command, stdin=subprocess.PIPE) for command in commands]
    for process in started:
        assert process.stdin is not None
        process.stdin.write(data)
        process.stdin.close()
    codes = [process.wait(timeout=600) for process in started]
    elapsed = time.time() - start_at
    return {"decisions": total, "errors": sum(1 for code in codes if code), "per_s": round(total / elapsed)}
