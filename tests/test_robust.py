"""Hostile input and ordinary faults (issue 14): no frame, file or load stops keycardd, and it touches nothing it
does not own. Every test drives the real daemon process over its socket, with raw frames where the point is what a
client that is not our shim can send."""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec
import pytest
from anyio.abc import SocketListener
from conftest import REPO, DaemonProcess, wait_for_socket
from hardening_helpers import find_secrets, rss_kib
from test_daemon import deny_reason, hook, read_payload, status, wait_until
from test_processes import alive, start_with_a_replica

from keycardd import engine, protocol
from keycardd.adapters import Decider, Settings
from keycardd.client import Client, DaemonUnavailableError
from keycardd.compiler import IN_PROCESS_BYTES, compile_engine
from keycardd.engine import MAX_POLICY_BYTES, Engine, EntityUid, PolicyError, PolicySource
from keycardd.install import service
from keycardd.protocol import DocumentReply, ErrorReply, ReloadRequest, StatusRequest
from keycardd.server import SocketServer, bind_socket

sys.path.insert(0, str(REPO))  # the reload benchmark doubles as the stress run
from bench._harness import synthetic_policies
from bench.bench_reload import reload_stall

NESTED_DEPTH = 1000


def nested_frame(depth: int = NESTED_DEPTH) -> bytes:
    """A 3 KB request whose first key's value is a map nested `depth` deep: msgspec recurses to skip it, and a
    RecursionError (not a DecodeError) comes out."""
    body = b"\x82\xa1a" + b"\x81\xa1a" * depth + b"\xc0" + b"\xa4type\xa4hook"
    return struct.pack(">I", len(body)) + body


def send_raw(path: object, frame: bytes, timeout_s: float = 5.0) -> bytes:
    """Send one raw frame and return everything the daemon answers before it closes the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(frame)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def reply_of(raw: bytes) -> protocol.Reply:
    (length,) = struct.unpack(">I", raw[:4])
    return protocol.decode_reply(raw[4 : 4 + length])


def test_deeply_nested_frame_gets_an_error_and_the_daemon_keeps_serving(daemon: DaemonProcess) -> None:
    reply = reply_of(send_raw(daemon.socket, nested_frame()))
    assert isinstance(reply, ErrorReply)
    assert "nested" in reply.message or "malformed" in reply.message
    assert daemon.process.poll() is None
    assert status(daemon)["pid"] == daemon.process.pid


def test_nested_frames_reaching_a_replica_kill_neither_process(start_daemon: Callable[..., DaemonProcess]) -> None:
    daemon, replica = start_with_a_replica(start_daemon)
    for _ in range(24):  # connections are spread over both processes: some of these reach the replica
        assert isinstance(reply_of(send_raw(daemon.socket, nested_frame())), ErrorReply)
    assert daemon.process.poll() is None
    assert alive(replica)
    assert status(daemon)["processes"] == 2


@pytest.mark.anyio
async def test_an_answer_that_cannot_be_encoded_ends_one_connection_not_the_server(short_dir: Path) -> None:
    """A handler bug (a value msgspec cannot encode) is an error reply on that connection; the next one is served."""

    async def handler(request: protocol.Request) -> protocol.Reply:
        if isinstance(request, StatusRequest):
            return DocumentReply(body={"unencodable": object()})
        return DocumentReply(body={"ok": True})

    server = SocketServer(handler)
    listener = await SocketListener.from_socket(bind_socket(short_dir / "s.sock"))

    def ask(request: protocol.Request) -> protocol.Reply:
        with Client(short_dir / "s.sock", timeout_s=5) as client:
            return client.request(request)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, listener)
        assert isinstance(await anyio.to_thread.run_sync(ask, StatusRequest()), ErrorReply)
        assert await anyio.to_thread.run_sync(ask, ReloadRequest()) == DocumentReply(body={"ok": True})
        server.shutdown()


def start_with_fd_limit(short_dir: Path, tmp_path: Path, soft: int, hard: int) -> DaemonProcess:
    """keycardd started with these RLIMIT_NOFILE limits."""
    env = {**os.environ, "KEYCARDD_SOCKET": str(short_dir / "limited.sock")}
    log_path = tmp_path / "limited.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "keycardd.daemon"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limit,  # noqa: PLW1509 - only setrlimit, before exec
        )
    wait_for_socket(short_dir / "limited.sock", process)
    return DaemonProcess(short_dir / "limited.sock", process, log_path, env)


@pytest.mark.parametrize(
    ("flood", "nofile"),
    [pytest.param(400, 128, id="fast"), pytest.param(3000, 256, id="stress", marks=pytest.mark.slow)],
)
def test_idle_connection_flood_beyond_the_fd_limit_does_not_stop_the_daemon(
    short_dir: Path, tmp_path: Path, flood: int, nofile: int
) -> None:
    """More idle connections than the daemon has descriptors, while calls go on: the longest-idle connections are
    closed, every call is answered."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, flood + 256)), hard))  # the test's own
    daemon = start_with_fd_limit(short_dir, tmp_path, nofile, nofile)  # raising the soft limit cannot help
    idle: list[socket.socket] = []
    answered: list[bool] = []
    stop = threading.Event()

    def calls() -> None:
        while not stop.is_set():
            try:
                client = daemon.client(timeout_s=10)
            except DaemonUnavailableError:  # EAGAIN: the backlog is full of the flood for a moment; try again
                time.sleep(0.001)
                continue
            with client:
                answered.append(deny_reason(hook(client, read_payload("/etc/hosts"))) is None)

    caller = threading.Thread(target=calls)
    caller.start()
    try:
        deadline = time.monotonic() + 60
        while len(idle) < flood and time.monotonic() < deadline:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(daemon.socket))
            except BlockingIOError:  # the listen backlog is full for a moment: the daemon is making room
                sock.close()
                time.sleep(0.001)
                continue
            idle.append(sock)
        assert len(idle) == flood
        stop.set()
        caller.join()
        for _ in range(3):
            with daemon.client(timeout_s=10) as client:
                assert deny_reason(hook(client, read_payload("/etc/hosts"))) is None
        assert daemon.process.poll() is None
        assert answered and all(answered)
        print(f"\n{len(idle)} idle connections under a {nofile}-descriptor limit; {len(answered)} calls answered")
    finally:
        stop.set()
        for sock in idle:
            sock.close()
        daemon.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_soft_descriptor_limit_is_raised_to_the_hard_limit(short_dir: Path, tmp_path: Path) -> None:
    hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    daemon = start_with_fd_limit(short_dir, tmp_path, 256, hard)
    try:
        limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
        assert int(soft) == hard
    finally:
        daemon.stop()


def run_daemon(socket_path: Path | str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    """keycardd run to completion (it is expected to refuse to start)."""
    env = {**os.environ, "KEYCARDD_SOCKET": str(socket_path)}
    return subprocess.run(
        [sys.executable, "-m", "keycardd.daemon"], env=env, capture_output=True, text=True, timeout=timeout_s
    )


def assert_one_sentence(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """The process failed with exactly one `keycardd: ...` sentence on stderr (besides log lines), no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith("keycardd: ")]
    assert len(message) == 1, result.stderr
    assert "None" not in message[0]
    for fragment in fragments:
        assert fragment in message[0], message[0]


def test_a_shared_sticky_directory_is_refused_and_left_as_it_was(short_dir: Path) -> None:
    """KEYCARDD_SOCKET=/tmp/x.sock once turned /tmp into drwx------: a shared directory is refused untouched."""
    shared = short_dir / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    result = run_daemon(shared / "k.sock")
    assert_one_sentence(result, str(shared), "writable by others")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert not (shared / "k.sock").exists()


def test_an_existing_private_enough_directory_is_used_without_chmod(
    start_daemon: Callable[..., DaemonProcess], short_dir: Path
) -> None:
    """A directory of ours that others may read but not write (like $HOME) keeps its mode; the socket is 0600."""
    home_like = short_dir / "home"
    home_like.mkdir()
    home_like.chmod(0o755)
    daemon = start_daemon(socket_name="home/k.sock")
    assert stat.S_IMODE(home_like.stat().st_mode) == 0o755
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600


def test_a_directory_keycardd_creates_is_private(start_daemon: Callable[..., DaemonProcess], short_dir: Path) -> None:
    daemon = start_daemon(socket_name="fresh/k.sock")
    assert stat.S_IMODE((short_dir / "fresh").stat().st_mode) == 0o700
    assert status(daemon)["pid"] == daemon.process.pid


def test_a_regular_file_at_the_socket_path_is_never_deleted(short_dir: Path) -> None:
    victim = short_dir / "k.sock"
    victim.write_text("someone's data\n")
    result = run_daemon(victim)
    assert_one_sentence(result, str(victim), "not a socket")
    assert victim.read_text() == "someone's data\n"


@pytest.mark.parametrize(
    ("make_path", "fragment"),
    [
        pytest.param(lambda d: d / ("x" * 120) / "k.sock", "too long", id="too-long"),
        pytest.param(lambda d: Path("/proc/keycardd-test/k.sock"), "/proc/keycardd-test", id="proc"),
        pytest.param(lambda d: d / "missing" / "parent" / "k.sock", "does not exist", id="missing-parent"),
    ],
)
def test_a_bad_socket_path_is_one_sentence_for_daemon_status_and_doctor(
    short_dir: Path, make_path: Callable[[Path], Path], fragment: str
) -> None:
    path = make_path(short_dir)
    assert_one_sentence(run_daemon(path), fragment)
    env = {**os.environ, "KEYCARDD_SOCKET": str(path)}
    for command in (["status"], ["doctor"]):
        result = subprocess.run(
            [sys.executable, "-m", "keycardd.cli", *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert "(None)" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


PERMIT_ALL = '@id("all") permit (principal, action, resource);\n'
FORBID_LS = (
    '@id("no-ls") forbid (principal, action, resource) when { context has program && context.program == "ls" };\n'
)


def bash(command: str) -> bytes:
    return json.dumps(
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "session_id": "s", "tool_input": {"command": command}}
    ).encode()


def test_a_policy_set_over_the_size_limit_is_refused_and_the_last_good_stays(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """A 50 MB policy once took 15 GB and minutes; over MAX_POLICY_BYTES it is refused before Cedar sees it."""
    daemon = start_daemon(policy=PERMIT_ALL + FORBID_LS)
    policy = Path(daemon.env["KEYCARD_POLICY_FILE"])
    line = "// " + "x" * 1020 + "\n"
    policy.write_text(PERMIT_ALL + line * (MAX_POLICY_BYTES // len(line) + 1))
    wait_until(lambda: status(daemon)["policy"]["error"] is not None, timeout_s=20)  # type: ignore[index]
    error = str(status(daemon)["policy"]["error"])  # type: ignore[index]
    assert str(policy) in error and f"{MAX_POLICY_BYTES:,}" in error
    with daemon.client() as client:
        assert "no-ls" in (deny_reason(hook(client, bash("ls /"))) or "")  # still the last good policy


def test_a_policy_set_over_the_count_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "MAX_POLICIES", 3)
    text = "".join(f'@id("p{index}") permit (principal, action, resource);\n' for index in range(4))
    with pytest.raises(PolicyError, match="more than the 3 policies"):
        Engine.compile([PolicySource("big.cedar", text)])


@pytest.mark.anyio
async def test_a_large_set_compiled_in_a_child_process_equals_the_in_process_compile() -> None:
    """The child-process path (used for sets over IN_PROCESS_BYTES) hands back exactly what Engine.compile builds."""
    sources = [PolicySource("big.cedar", synthetic_policies(2000)), PolicySource("extra.cedar", FORBID_LS)]
    assert sum(len(source.text) for source in sources) > IN_PROCESS_BYTES
    direct = Engine.compile(sources)
    via_worker = await compile_engine(sources)
    assert via_worker.sha256 == direct.sha256
    assert via_worker.policies == direct.policies
    decider = Decider(Settings(principal=EntityUid("User", "a@example.com")))
    for command in ("ls /", "w17 --version", "w4000 x", "git status"):
        answers = [decider.decide_hook(e, None, "claude", bash(command), {}).stdout for e in (direct, via_worker)]
        assert answers[0] == answers[1]


@pytest.mark.anyio
async def test_an_invalid_large_set_fails_in_the_child_with_the_file_and_line() -> None:
    text = synthetic_policies(2000) + "permit (principal, action, resource) when { context.nope == 1 };\n"
    assert len(text) > IN_PROCESS_BYTES
    with pytest.raises(PolicyError, match=r"^big\.cedar:2001: "):
        await compile_engine([PolicySource("big.cedar", text)])


@pytest.mark.slow
@pytest.mark.parametrize("count", [5000, 20_000])
def test_stress_reload_under_continuous_calls(count: int) -> None:
    """`make stress`: replace 100 policies by `count` under back-to-back calls; prints the slowest call."""
    result = reload_stall(count)
    print(f"\nreload of {count} policies under load: {json.dumps(result)}")
    assert result["failed_calls"] == 0
    assert result["during_reload"]["calls"] > 0


def policy_count(daemon: DaemonProcess) -> int:
    return int(status(daemon)["policy"]["count"])  # type: ignore[index]


def test_a_policy_dir_created_after_start_is_watched_with_every_later_file(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    policy_dir = tmp_path / "policy" / "policy.d"
    daemon = start_daemon(policy=PERMIT_ALL, env={"KEYCARD_POLICY_DIR": str(policy_dir)})
    assert policy_count(daemon) == 1
    policy_dir.mkdir()
    (policy_dir / "a.cedar").write_text(FORBID_LS)
    wait_until(lambda: policy_count(daemon) == 2, timeout_s=10)
    (policy_dir / "b.cedar").write_text('@id("no-rm") forbid (principal, action, resource == Tool::"bash");\n')
    wait_until(lambda: policy_count(daemon) == 3, timeout_s=10)


def test_edits_to_the_target_of_a_symlinked_policy_file_are_noticed(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "keycard.cedar"
    target.write_text(PERMIT_ALL)
    link = tmp_path / "linked" / "policy.cedar"
    link.parent.mkdir()
    link.symlink_to(target)
    daemon = start_daemon(env={"KEYCARD_POLICY_FILE": str(link)})
    assert policy_count(daemon) == 1
    with target.open("a") as handle:  # edited in place, as editors with backupcopy=yes do
        handle.write(FORBID_LS)
    wait_until(lambda: policy_count(daemon) == 2, timeout_s=10)
    with daemon.client() as client:
        assert "no-ls" in (deny_reason(hook(client, bash("ls"))) or "")


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_broken_policy_symlink_is_an_error_and_the_last_good_policy_stays(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path, kind: str
) -> None:
    """Never a silent fall back to the embedded default (which would drop the user's forbids)."""
    target = tmp_path / "keycard.cedar"
    target.write_text(PERMIT_ALL + FORBID_LS)
    link = tmp_path / "linked" / "policy.cedar"
    link.parent.mkdir()
    link.symlink_to(target)
    daemon = start_daemon(env={"KEYCARD_POLICY_FILE": str(link)})
    assert policy_count(daemon) == 2
    replacement = link.with_name("new-link")
    replacement.symlink_to(tmp_path / "missing.cedar" if kind == "dangling" else replacement)
    replacement.replace(link)
    wait_until(lambda: status(daemon)["policy"]["error"] is not None, timeout_s=10)  # type: ignore[index]
    policy = status(daemon)["policy"]
    assert str(link) in policy["error"]  # type: ignore[index]
    assert policy["sources"] == [str(link)]  # type: ignore[index]
    with daemon.client() as client:
        assert "no-ls" in (deny_reason(hook(client, bash("ls"))) or "")


def test_the_watcher_ignores_other_files_in_the_policy_directory(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """A decision log beside the policy file must not wake the watcher (once: '1 change detected', forever)."""
    log_file = tmp_path / "policy" / "decisions.jsonl"
    daemon = start_daemon(policy=PERMIT_ALL, env={"KEYCARD_DECISION_LOG": str(log_file)})
    with daemon.client() as client:
        for _ in range(20):
            hook(client, bash("git status"))
    wait_until(lambda: log_file.exists() and log_file.stat().st_size > 0, timeout_s=10)
    time.sleep(0.3)  # past the watcher's 50 ms debounce: the log's changes and the next ones are separate batches
    (tmp_path / "policy" / "notes.txt").write_text("not a policy\n")
    time.sleep(0.3)
    Path(daemon.env["KEYCARD_POLICY_FILE"]).write_text(PERMIT_ALL + FORBID_LS)  # a real change still reloads
    wait_until(lambda: policy_count(daemon) == 2, timeout_s=10)
    # watchfiles logs "N change(s) detected" for each batch that passes the filter: only the policy file's
    assert daemon.log().count(" detected") == 1, daemon.log()
    assert daemon.log().count("policy loaded") == 2


TYPO = (
    '@id("no-rm") forbid (principal, action, resource == Tool::"bash")\n'
    '  when { context has progam && context.progam == "rm" };\n'
)


def test_a_context_attribute_typo_behind_has_is_a_validation_error(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """Cedar's validator passes `context has progam && context.progam == "rm"` (the forbid silently never fires)."""
    daemon = start_daemon(policy=PERMIT_ALL + FORBID_LS)
    policy = Path(daemon.env["KEYCARD_POLICY_FILE"])
    policy.write_text(PERMIT_ALL + "\n" + TYPO)
    wait_until(lambda: status(daemon)["policy"]["error"] is not None, timeout_s=10)  # type: ignore[index]
    error = str(status(daemon)["policy"]["error"])  # type: ignore[index]
    assert error.startswith(f"{policy}:3: ") and "progam" in error
    assert "progam" in daemon.log()
    typo_file = tmp_path / "typo.cedar"
    typo_file.write_text(TYPO)
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "policy", "validate", str(typo_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{typo_file}:1: `context has progam` is never true" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        'permit (principal, action, resource) when { context has program && context.program == "rm" };',
        "permit (principal, action, resource) when { context has scopes };",  # the credential action has it
        "forbid (principal, action, resource) unless { context has cwd };",
    ],
)
def test_declared_context_attributes_pass_the_typo_check(text: str) -> None:
    assert Engine.compile([PolicySource("ok.cedar", text)]).count == 1


def test_a_full_log_keeps_whole_lines_and_counts_every_dropped_record(short_dir: Path, tmp_path: Path) -> None:
    """Under a file size limit (a full disk), os.write returns short: once that cut a record mid-line, merged the
    next into it and lost the rest of the batch silently."""
    log_file = tmp_path / "log" / "decisions.jsonl"
    env = {**os.environ, "KEYCARDD_SOCKET": str(short_dir / "full.sock"), "KEYCARD_DECISION_LOG": str(log_file)}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    process = subprocess.Popen(
        [sys.executable, "-m", "keycardd.daemon"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # not a regular file, so the limit does not apply to the daemon's own log
        stderr=subprocess.DEVNULL,
        preexec_fn=limit,  # noqa: PLW1509 - only setrlimit, before exec
    )
    daemon = DaemonProcess(short_dir / "full.sock", process, tmp_path / "unused.log", env)
    try:
        wait_for_socket(daemon.socket, process)
        calls = 0
        for batch in range(8):  # separate batches: the log's writer gathers for 50 ms
            with daemon.client() as client:
                for index in range(15):
                    hook(client, bash(f"echo batch {batch} call {index} {'x' * 200}"))
                    calls += 1
            time.sleep(0.2)

        def accounted() -> int:  # records written whole plus records counted as dropped
            dropped = int(status(daemon)["log"]["dropped"])  # type: ignore[index]
            return dropped + len(log_file.read_bytes().splitlines())

        wait_until(lambda: accounted() >= calls)
        lines = log_file.read_bytes().splitlines()
        assert log_file.read_bytes().endswith(b"\n")
        for line in lines:
            json.loads(line)  # every line a whole record
        dropped = int(status(daemon)["log"]["dropped"])  # type: ignore[index]
        assert dropped > 0
        assert len(lines) + dropped == calls
        longest = max(len(line) + 1 for line in lines)
        assert log_file.stat().st_size > 20_000 - longest  # records were dropped only once the log was full
    finally:
        daemon.stop()


MYSQL, CURL, DOCKER, SSHPASS = "S3cr3tMysqlPw", "CurlPassw0rd", "D0ckerPassw0rd", "SshPassw0rd"
COOKIE = "C00kieSessi0nValue"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
STRIPE = "sk_live_" + "51H8xYzAbCdEfGhIjKlMnOpQr"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
QUERY_KEY, QUERY_SIG = "QueryKeyValue123", "SigValue456789"
PATH_TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
ISSUE_14_SECRETS = [MYSQL, CURL, DOCKER, SSHPASS, COOKIE, GOOGLE, STRIPE, AWS_SECRET, QUERY_KEY, QUERY_SIG, PATH_TOKEN]
ASK_CURL = '@id("ask-curl") @itl("Let this curl run?") permit (principal, action, resource == Tool::"bash")\n'
ASK_CURL += '  when { context has program && context.program == "curl" };\n'
NO_MYSQL = (
    '@id("no-db") forbid (principal, action, resource) when { context has program && context.program == "mysql" };\n'
)


def test_issue_14_secrets_never_reach_the_log_status_or_answers(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    log_file = tmp_path / "decisions.jsonl"
    daemon = start_daemon(policy=PERMIT_ALL + ASK_CURL + NO_MYSQL, env={"KEYCARD_DECISION_LOG": str(log_file)})
    commands = [
        f"mysql -uroot -p{MYSQL} prod",
        f"curl -u alice:{CURL} https://api.example.com/",
        f"docker login -u bob -p {DOCKER} registry.example.com",
        f"sshpass -p {SSHPASS} ssh deploy@host",
        f"curl -H 'Cookie: session={COOKIE}' https://example.com/",
        f"curl 'https://maps.example.com/v1?key={GOOGLE}'",
        f"curl https://api.stripe.com/v1/charges -u {STRIPE}:",
        f"echo {AWS_SECRET} > creds",
        f"curl 'https://bucket.example.com/f?key={QUERY_KEY}&sig={QUERY_SIG}'",
    ]
    outputs: list[str | bytes] = []
    with daemon.client() as client:
        for command in commands:
            outputs.append(hook(client, bash(command)).stdout)
        write = {
            "hook_event_name": "PreToolUse",
            "tool_name": "Write",
            "session_id": "s",
            "tool_input": {"file_path": f"/w/.cache/{PATH_TOKEN}/token.json", "content": "{}"},
        }
        outputs.append(hook(client, json.dumps(write).encode()).stdout)
    assert any(b"Let this curl run?" in output for output in outputs if isinstance(output, bytes))  # asks happened
    wait_until(lambda: log_file.exists() and len(log_file.read_text().splitlines()) >= len(commands) + 1)
    outputs.append(json.dumps(status(daemon)))
    assert find_secrets(ISSUE_14_SECRETS, texts=outputs, files=[log_file, daemon.log_path]) == []
    assert "[MASKED]" in log_file.read_text()


def test_keycard_toml_typos_are_reported_naming_the_file(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    config = tmp_path / "keycard.toml"
    config.write_text('environment = "production"\nzonee_id = "z"\n[zonee]\nid = "z1"\n[org]\nidd = "o1"\n')
    daemon = start_daemon(args=["--config", str(config)])
    log = daemon.log()
    for problem in ("unknown section [zonee]", "unknown key 'zonee_id'", "unknown key org.idd"):
        assert f"{config}: {problem} (ignored)" in log, log
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "auth", "whoami", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"{config}: unknown section [zonee] (ignored)" in result.stderr


def test_a_bad_value_in_keycard_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "keycard.toml"
    config.write_text('environment = "moon"\n')
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.daemon", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert_one_sentence(result, str(config), "unknown environment 'moon'")


# Structure-aware frame fuzzing against the real daemon: requests shaped like the protocol's (real type tags and
# field names, values of every MessagePack type, maps and arrays nested up to thousands deep, bytes flipped,
# frames cut short), each on its own connection as a hostile client would send them.

FIELDS = ["type", "agent", "payload", "env", "resource", "scopes", "session_id", "decisions", "log_lines", "ready"]
TAGS = ["hook", "status", "explain", "reload", "credential", "replica_report", "nope", ""]


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice([10, 100, 1000, 5000, 20_000])
    if rng.random() < 0.5:
        return b"\x91" * depth + b"\xc0"  # [[[...nil...]]]
    return b"\x81\xa1k" * depth + b"\xc0"  # {"k": {"k": ...}}


def _value(rng: random.Random, depth: int = 0) -> bytes:
    encode = msgspec.msgpack.encode
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return encode(
            rng.choice(
                [
                    "claude",
                    "cursor",
                    "",
                    "x" * rng.randrange(300),
                    "\udc80".encode("utf-8", "surrogatepass").decode("latin-1"),
                ]
            )
        )
    if kind == 1:
        return encode(rng.randbytes(rng.randrange(200)))
    if kind == 2:
        return encode(rng.choice([0, -1, 2**63 - 1, -(2**63), 2**64 - 1]))
    if kind == 3:
        return encode(rng.choice([0.0, -1.5, float("inf"), float("nan")]))
    if kind == 4:
        return encode(rng.choice([True, False, None]))
    if kind == 5:
        return b"\xc1"  # never used: invalid
    if kind == 6:
        return bytes([0xD4, rng.randrange(256), rng.randrange(256)])  # fixext 1
    if kind == 7:
        return encode(
            json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}}).encode()
        )
    if kind == 8:
        return _nested(rng)
    if kind == 9:
        items = [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
        return bytes([0x90 | len(items)]) + b"".join(items)
    keys = [encode(rng.choice(FIELDS)) for _ in range(rng.randrange(4))]
    return bytes([0x80 | len(keys)]) + b"".join(key + _value(rng, depth + 1) for key in keys)


def fuzzed_frame(rng: random.Random) -> bytes:
    """One hostile frame: a request-shaped map, sometimes mutated, cut short or with a lying length prefix."""
    encode = msgspec.msgpack.encode
    fields = [(encode("type"), encode(rng.choice(TAGS)))] if rng.random() < 0.9 else []
    for _ in range(rng.randrange(5)):
        fields.append((encode(rng.choice(FIELDS)), _value(rng)))
    rng.shuffle(fields)
    count = len(fields)
    header = bytes([0x80 | count]) if count < 16 else b"\xde" + struct.pack(">H", count)
    body = bytearray(header + b"".join(key + value for key, value in fields))
    mutation = rng.random()
    if mutation < 0.1 and body:
        for _ in range(rng.randrange(1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    elif mutation < 0.15:
        del body[rng.randrange(len(body) + 1) :]
    body = bytes(body[: protocol.MAX_FRAME])
    length = len(body) if rng.random() < 0.97 else rng.choice([0, len(body) + 1, protocol.MAX_FRAME + 1])
    return struct.pack(">I", length) + body


def fuzz_daemon(daemon: DaemonProcess, count: int, seed: int = 14) -> dict[str, int]:
    """Send `count` fuzzed frames, each on its own connection (4 at a time); every answer must be a valid reply
    frame, and the daemon must keep serving."""
    replies = {"error": 0, "other": 0, "closed": 0, "reset": 0}

    def one(index: int) -> str:
        rng = random.Random(seed * 1_000_003 + index)
        try:
            raw = send_raw(daemon.socket, fuzzed_frame(rng), timeout_s=30)
        except (ConnectionResetError, BrokenPipeError):
            return "reset"  # refused on its length prefix and closed while the rest was still being sent
        if not raw:
            return "closed"  # a length prefix that promised more than was sent: nothing to answer
        return "error" if isinstance(reply_of(raw), ErrorReply) else "other"

    with ThreadPoolExecutor(max_workers=4) as pool:
        for kind in pool.map(one, range(count), chunksize=64):
            replies[kind] += 1
    assert daemon.process.poll() is None
    assert status(daemon)["pid"] == daemon.process.pid
    return replies


def test_structure_aware_fuzzed_frames_fast(daemon: DaemonProcess) -> None:
    replies = fuzz_daemon(daemon, 500)
    assert replies["error"] > 0 and replies["other"] > 0  # both rejected and served requests were reached


@pytest.mark.slow
def test_stress_100k_structure_aware_fuzzed_frames(daemon: DaemonProcess) -> None:
    """`make stress`: 10^5 fuzzed frames (KEYCARDD_FRAME_FUZZ scales them) through the real daemon."""
    count = int(os.environ.get("KEYCARDD_FRAME_FUZZ", "100000"))
    before = rss_kib(daemon.process.pid)
    replies = fuzz_daemon(daemon, count)
    grown = rss_kib(daemon.process.pid) - before
    print(f"\n{count} fuzzed frames: {replies}; RSS grew {grown} KiB")
    assert grown < 64 * 1024


def test_a_record_cut_off_earlier_does_not_swallow_the_next(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    log_file = tmp_path / "decisions.jsonl"
    log_file.write_bytes(b'{"id":"whole"}\n{"id":"cut off by a cra')  # a crash mid-write, before this daemon
    daemon = start_daemon(env={"KEYCARD_DECISION_LOG": str(log_file)})
    with daemon.client() as client:
        hook(client, bash("git status"))
    wait_until(lambda: len(log_file.read_bytes().splitlines()) == 3)
    assert json.loads(log_file.read_bytes().splitlines()[2])["command"] == "git status"


def test_doctor_names_a_state_directory_keycardd_refuses(tmp_path: Path) -> None:
    """A daemon started by a hook cannot tell anyone why it refused to start: doctor does."""
    state = Path(os.environ["XDG_STATE_HOME"]) / "keycard"
    state.mkdir(parents=True)
    state.chmod(0o775)
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "doctor"], capture_output=True, text=True, timeout=120
    )
    assert f"{state} is writable by others (mode 0775)" in result.stdout + result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o775


FLOOD_CLIENT = """
import resource, socket, struct, sys, time
from keycardd import protocol
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)  # not the server's
path, count = sys.argv[1], int(sys.argv[2])
held = []
while len(held) < count:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BlockingIOError:
        sock.close()
        time.sleep(0.001)
        continue
    held.append(sock)
for _ in range(50):  # a connection accepted under pressure may be closed as idle before its request is read
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(protocol.encode(protocol.StatusRequest()))
        header = sock.recv(4)
        if len(header) == 4:
            print(type(protocol.decode_reply(sock.recv(struct.unpack(">I", header)[0]))).__name__)
            break
    time.sleep(0.05)
"""


@pytest.mark.anyio
async def test_accept_out_of_descriptors_backs_off_instead_of_stopping(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's failure itself: accept() failing with EMFILE (anyio's BrokenResourceError) ended serve(). Here
    the cap is set far above the descriptors the process has, so only the back-off can save it."""

    async def handler(request: protocol.Request) -> protocol.Reply:
        return DocumentReply(body={"ok": True})

    server = SocketServer(handler, max_connections=100_000)
    listener = await SocketListener.from_socket(bind_socket(short_dir / "e.sock"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 24, hard))
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, listener)
            client = await anyio.run_process(
                [sys.executable, "-c", FLOOD_CLIENT, str(short_dir / "e.sock"), "200"], check=False
            )
            server.shutdown()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert client.stdout.decode().strip() == "DocumentReply", client.stderr.decode()[-2000:]
    assert "out of file descriptors" in caplog.text


def test_the_service_unit_sets_the_descriptor_limit_once() -> None:
    units = service.render_systemd("/opt/keycard/bin/keycardd")
    assert units["keycardd.service"].count("\nLimitNOFILE=65536\n") == 1


def test_a_change_made_just_after_start_is_picked_up(start_daemon: Callable[..., DaemonProcess]) -> None:
    """The socket is up before the watcher runs: a change in that window was missed until the next one."""
    for attempt in range(10):  # the window is milliseconds wide: several starts make missing it unlikely
        daemon = start_daemon(policy=PERMIT_ALL, socket_name=f"early{attempt}.sock")
        Path(daemon.env["KEYCARD_POLICY_FILE"]).write_text(PERMIT_ALL + FORBID_LS)  # at once, as a setup script would
        wait_until(lambda daemon=daemon: policy_count(daemon) == 2, timeout_s=10)
        daemon.stop()
