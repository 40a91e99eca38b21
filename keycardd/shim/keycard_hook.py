#!/usr/bin/env python3
"""keycard-hook, the stdlib-only Python fallback for machines without a C compiler.

    /abs/path/python3 -I -S /abs/path/keycard_hook.py claude|cursor|codex|gemini [--timeout-ms N] [--fail-open EV,...]
                                                                     [--no-autostart]
    /abs/path/python3 -I -S /abs/path/keycard_hook.py --help

Run it with `-I -S` by absolute interpreter path: isolated mode ignores the user's environment and site-packages,
which saves most of Python's start-up and keeps a broken virtualenv from turning into exit code 1 (which Claude
Code treats as "let it run"). It behaves exactly like the C shim (keycardd/shim/keycard-hook.c): the same frame, the
same fail-closed answers, the same usage errors (a deny for the agent, see `usage_exit_code`), the same conformance
tests. `keycardctl agent hook` runs `main()` from here too.

Installed hooks run it through `keycard-hook.py`, a four-line launcher that imports this file, so Python reuses its
cached bytecode instead of compiling 300 lines on every tool call (a script run as `__main__` is never cached).
"""

# Every import here is paid on every tool call, so the shim takes the C modules, not their wrappers: `_socket`, not
# `socket` (which imports enum, selectors and collections: about 11 ms of a 25 ms run), and `posix`, not `os`
# (whose import costs as much as the rest of the shim's work). `os` is imported only on the rare autostart path.
import _socket
import sys
import time
from posix import environ, getcwd, getuid

MAX_FRAME = 1 << 20
MAX_PAYLOAD = MAX_FRAME - 8192
FORWARDED_ENV = ("CLAUDE_PROJECT_DIR", "CURSOR_VERSION", "GEMINI_PROJECT_DIR", "KEYCARD_RUN", "KEYCARD_RUN_SESSION_ID",
                 "KEYCARD_CANARY")  # fmt: skip
AGENTS = ("claude", "cursor", "codex", "gemini")
CURSOR_GATES = ("preToolUse", "beforeShellExecution", "beforeMCPExecution", "beforeReadFile", "beforeTabFileRead",
                "subagentStart")  # fmt: skip


def getenv(name, default=""):
    """`os.environ.get` on `posix.environ` (bytes keys and values; `os.environ` writes through to it)."""
    value = environ.get(name.encode())
    return default if value is None else value.decode("utf-8", "surrogateescape")


def _uint(value, width):
    """`value` as a big-endian unsigned integer of `width` bytes (what `struct.pack(">I")` gives, without struct)."""
    return value.to_bytes(width, "big")


USAGE = (
    "usage: keycard-hook claude|cursor|codex|gemini [--timeout-ms N] [--fail-open EVENT[,EVENT...]] [--no-autostart]"
)


class Failure(Exception):
    """The daemon could not answer; the message is the reason the agent will see."""


class UsageError(Exception):
    """The hook command itself is wrong (an unknown option, a missing value); the message names what."""


class HelpRequested(Exception):
    """`--help` or `-h`: print the usage line, read nothing."""


# ---- MessagePack, just enough for one request and its reply ------------------------------------------------------


def _pack_str(value):
    data = value.encode("utf-8", "surrogateescape")
    n = len(data)
    if n < 32:
        return bytes([0xA0 | n]) + data
    if n < 256:
        return b"\xd9" + bytes([n]) + data
    if n < 65536:
        return b"\xda" + _uint(n, 2) + data
    return b"\xdb" + _uint(n, 4) + data


def _pack_bin(data):
    n = len(data)
    if n < 256:
        return b"\xc4" + bytes([n]) + data
    if n < 65536:
        return b"\xc5" + _uint(n, 2) + data
    return b"\xc6" + _uint(n, 4) + data


def encode_request(agent, payload, env):
    items = [b"\x84", _pack_str("type"), _pack_str("hook"), _pack_str("agent"), _pack_str(agent),
             _pack_str("payload"), _pack_bin(payload), _pack_str("env"), bytes([0x80 | len(env)])]  # fmt: skip
    for key, value in env.items():
        items += [_pack_str(key), _pack_str(value)]
    body = b"".join(items)
    return _uint(len(body), 4) + body


def _read_value(data, pos):
    tag = data[pos]
    pos += 1
    if tag <= 0x7F:
        return tag, pos
    if tag >= 0xE0:
        return tag - 0x100, pos
    if 0xA0 <= tag <= 0xBF:
        n = tag & 0x1F
        return data[pos : pos + n].decode("utf-8", "replace"), pos + n
    sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
    if tag in sizes:
        n = sizes[tag]
        return int.from_bytes(data[pos : pos + n], "big", signed=tag >= 0xD0), pos + n
    lengths = {0xD9: (1, True), 0xDA: (2, True), 0xDB: (4, True), 0xC4: (1, False), 0xC5: (2, False), 0xC6: (4, False)}
    if tag in lengths:
        width, text = lengths[tag]
        n = int.from_bytes(data[pos : pos + width], "big")
        pos += width
        if pos + n > len(data):
            raise ValueError("truncated")
        value = data[pos : pos + n]
        return (value.decode("utf-8", "replace") if text else value), pos + n
    raise ValueError("unexpected type")


def decode_reply(data):
    """The (stdout bytes, exit code) of a `hook_result`; raises Failure for anything else."""
    try:
        if not data or data[0] & 0xF0 != 0x80:
            raise ValueError("not a map")
        fields, pos = {}, 1
        for _ in range(data[0] & 0x0F):
            key, pos = _read_value(data, pos)
            fields[key], pos = _read_value(data, pos)
    except (ValueError, IndexError):
        raise Failure("keycardd sent an unreadable answer: restart keycardd") from None
    if fields.get("type") == "error" and isinstance(fields.get("message"), str):
        raise Failure(f"keycardd refused the request: {fields['message'][:800]}")
    stdout, code = fields.get("stdout"), fields.get("exit_code")
    if fields.get("type") != "hook_result" or not isinstance(code, int) or not 0 <= code <= 255:
        raise Failure("keycardd sent an unreadable answer: restart keycardd")
    if isinstance(stdout, str):
        stdout = stdout.encode()
    if not isinstance(stdout, bytes):
        raise Failure("keycardd sent an unreadable answer: restart keycardd")
    return stdout, code


# ---- the socket --------------------------------------------------------------------------------------------------


def socket_path():
    """Must equal keycardd.paths.socket_path() (the conformance tests compare them)."""
    explicit = getenv("KEYCARDD_SOCKET")
    if explicit:
        return explicit
    runtime = getenv("XDG_RUNTIME_DIR")
    if runtime:
        path = runtime + "/keycard/keycardd.sock"
    else:
        state = getenv("XDG_STATE_HOME") or _home() + "/.local/state"
        path = state + "/keycard/keycardd.sock"
    if sys.platform == "darwin" and len(path.encode("utf-8", "surrogateescape")) > 100:
        path = f"/tmp/keycard-{getuid()}/keycardd.sock"  # noqa: S108 - as keycardd.paths (a 0700 dir)
    return path


def _home():
    """`~` as `os.path.expanduser` reads it: `$HOME`, else the password database."""
    home = getenv("HOME")
    if home:
        return home.rstrip("/")
    import pwd  # noqa: PLC0415 - only when HOME is unset

    return pwd.getpwuid(getuid()).pw_dir.rstrip("/")


def recorded_daemon():
    """Where `keycardctl install` records the keycardd that ran it (a link to it): <data dir>/keycard/bin/keycardd."""
    data = getenv("XDG_DATA_HOME") or _home() + "/.local/share"
    return data + "/keycard/bin/keycardd"


def _daemon_binary():
    """$KEYCARDD_BIN, else keycardd beside this shim or its interpreter, else the one install recorded, else on PATH.

    A checkout's keycardd is in its .venv/bin, on no PATH: the recorded link is how its hooks find it."""
    import os  # noqa: PLC0415 - only when the daemon must be started

    explicit = os.environ.get("KEYCARDD_BIN")
    if explicit:
        return explicit
    here = os.path.dirname(os.path.realpath(sys.argv[0] or __file__))
    if os.access(os.path.join(here, "keycardd"), os.X_OK):
        return os.path.join(here, "keycardd")
    if os.access(os.path.join(os.path.dirname(sys.executable), "keycardd"), os.X_OK):
        return os.path.join(os.path.dirname(sys.executable), "keycardd")
    if os.access(recorded_daemon(), os.X_OK):
        return recorded_daemon()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "keycardd")
        if directory and os.access(candidate, os.X_OK):
            return candidate
    return None


def autostart_log():
    """Where an auto-started keycardd writes its own output (and failure): `<state dir>/log/autostart.log`."""
    state = getenv("XDG_STATE_HOME") or _home() + "/.local/state"
    return state + "/keycard/log/autostart.log"


class _Start:
    """How an autostart went: `state` is "no" (not tried), "none" (no keycardd found), "failed" (its log or lock
    cannot be opened), "busy" (another hook holds the lock) or "started"; `report` says how keycardd ended, if it
    ended before the shim's deadline."""

    def __init__(self, state, binary=None, report=None):
        self.state, self.binary, self.report = state, binary, report

    def ended(self):
        """How keycardd ended ("exited with status 1"), or "" while it runs (or nobody watches it)."""
        if self.report is None:
            return ""
        import os  # noqa: PLC0415

        try:
            return os.read(self.report, 64).decode("utf-8", "replace")
        except BlockingIOError:
            return ""


def _watch_daemon(pid, report, deadline):
    """In the first child: wait for keycardd until the shim's deadline, and if it ends first write how to `report`
    (only a parent can wait for a process). It holds nothing of the hook's (stdin, stdout, the lock)."""
    import os  # noqa: PLC0415 - only when the daemon must be started

    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.dup2(report, 3)
    os.closerange(4, os.sysconf("SC_OPEN_MAX"))
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exited with status {os.WEXITSTATUS(status)}")  # fmt: skip
            os.write(3, how.encode())
            break
        time.sleep(0.01)


def _start_daemon(log_path, deadline):
    """Start keycardd detached, unless another hook is already starting it (a lock, held until this shim exits).

    The daemon runs from `/` (never the agent's project, whose keycard.toml it must not read), with `--autostarted`,
    no inherited descriptors, and its stdout and stderr appended to `log_path`. Returns a `_Start`.
    """
    import fcntl  # noqa: PLC0415 - only when the daemon must be started
    import os  # noqa: PLC0415

    binary = _daemon_binary()
    if binary is None or not os.access(binary, os.X_OK):
        return _Start("none", binary)  # with a binary: $KEYCARDD_BIN's
    try:
        os.makedirs(os.path.dirname(log_path), mode=0o700, exist_ok=True)
        lock = os.open(log_path[: -len(".log")] + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return _Start("failed", binary)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        os.close(log)
        return _Start("busy", binary)
    report, report_end = os.pipe()
    if os.fork() == 0:  # detach twice: own session; the first child watches, then exits; no tie to the agent
        pid = 0
        try:
            os.setsid()
            pid = os.fork()
            if pid > 0:
                _watch_daemon(pid, report_end, deadline)
            else:
                os.chdir("/")
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.closerange(3, os.sysconf("SC_OPEN_MAX"))
                os.execv(binary, ["keycardd", "--autostarted"])  # noqa: S606 - the daemon binary, no shell
        finally:
            os._exit(0 if pid > 0 else 127)
    os.close(log)
    os.close(report_end)
    os.set_blocking(report, False)
    return _Start("started", binary, report)  # `lock` stays open (and held) until this shim exits


def connect(path, deadline, autostart, timeout_ms=2000):
    start = _Start("no")
    log_path = autostart_log()
    while True:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if autostart and start.state in ("no", "busy"):
                start = _start_daemon(log_path, deadline)
            ended = start.ended()
            if ended:  # once more: another keycardd may have started meanwhile
                last = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                if last.connect_ex(path) == 0:
                    return last
                last.close()
            if ended or start.state not in ("started", "busy") or time.monotonic() >= deadline:
                raise Failure(_not_running(path, start, ended, log_path, timeout_ms)) from None
            time.sleep(0.01)
        except OSError as exc:
            sock.close()
            raise Failure(
                f"keycardd's socket {path} cannot be used ({exc.strerror}): check it with `keycardctl doctor`"
            ) from None


def _not_running(path, start, ended, log_path, timeout_ms):
    """The deny's reason when nothing listens: whether the hook tried to start keycardd, and why that failed."""
    down = f"keycardd is not running (nothing listens on {path})"
    more = "set KEYCARDD_BIN to start another keycardd"
    if ended:
        return f"{down}: the hook started {start.binary} but it {ended} before answering; see {log_path} ({more})"
    if start.state == "started":
        return (f"{down}: the hook started {start.binary} but it did not answer within {timeout_ms} ms; "
                f"see {log_path} ({more}, or raise --timeout-ms)")  # fmt: skip
    if start.state == "busy":
        return (f"{down}: another hook call started {start.binary} but it did not answer within {timeout_ms} ms; "
                f"see {log_path} ({more})")  # fmt: skip
    if start.state == "failed":
        return (f"{down}: the hook could not start {start.binary}, as it cannot open {log_path} or its lock; "
                "start keycardd with `keycardctl service start` or `keycardd`")  # fmt: skip
    if start.state == "none" and start.binary:
        return (
            f"{down} and the hook could not start it: KEYCARDD_BIN names {start.binary}, which is not an executable "
            "file; set it to keycardd's path"
        )
    if start.state == "none":
        return (
            f"{down} and the hook found no keycardd to start (not beside it, at {recorded_daemon()} or on PATH): "
            "set KEYCARDD_BIN to keycardd's path, or run `keycardctl install` again from the keycardd you use"
        )
    return f"{down}: start it with `keycardctl service start` or `keycardd`"


def _recv_exactly(sock, size, deadline, timeout_ms):
    chunks, remaining = [], size
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(
                f"keycardd did not answer within {timeout_ms} ms: check `keycardctl status`, or raise --timeout-ms"
            )
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(remaining, 1 << 16))
        except TimeoutError:
            continue
        except OSError as exc:
            raise Failure(f"keycardd's socket failed ({exc.strerror}): restart keycardd") from None
        if not chunk:
            raise Failure("keycardd closed the connection without an answer: see `keycardctl status` and its log")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def ask_daemon(agent, payload, env, timeout_ms, autostart):
    deadline = time.monotonic() + timeout_ms / 1000
    sock = connect(socket_path(), deadline, autostart, timeout_ms)
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            sock.sendall(encode_request(agent, payload, env))
        except TimeoutError:
            raise Failure(f"keycardd did not answer within {timeout_ms} ms: check `keycardctl status`") from None
        except OSError as exc:
            raise Failure(f"keycardd closed the connection ({exc.strerror}): restart keycardd") from None
        length = int.from_bytes(_recv_exactly(sock, 4, deadline, timeout_ms), "big")
        if length > MAX_FRAME:
            raise Failure("keycardd sent an unreadable answer: restart keycardd")
        return decode_reply(_recv_exactly(sock, length, deadline, timeout_ms))
    finally:
        sock.close()


# ---- fail-closed answers -----------------------------------------------------------------------------------------


def event_name(payload):
    """A byte scan for the event name, as the C shim does: only needed when the daemon cannot answer."""
    key = b'"hook_event_name"'
    at = payload.find(key)
    if at < 0:
        return ""
    rest = payload[at + len(key) :].lstrip(b" \t\r\n:")
    if not rest.startswith(b'"'):
        return ""
    end = rest.find(b'"', 1)
    return rest[1:end].decode("utf-8", "replace")[:63] if end > 0 else ""


def _json_str(text):
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def usage_exit_code(agent, event, answer):
    """The exit code of a usage error, chosen so that it never weakens the deny in `answer` (keycard-hook.c's header
    says why): 2 (a block in all four agents) for a deny, 1 (a non-blocking hook error) when there was nothing to
    deny, and 0 for a Claude Code or Codex PermissionRequest, which ignores exit 2 and may then drop the JSON."""
    if agent not in ("cursor", "gemini") and event == "PermissionRequest":
        return 0
    return 2 if answer and answer != "{}" else 1


def fallback_answer(agent, event, reason, fail_open):
    """What the agent sees when keycardd cannot answer: a deny on gates, unless the event is listed fail-open."""
    message = _json_str(reason)
    if agent == "gemini":  # Gemini honours only {"decision":"deny"}: a Claude-shaped deny would let the call run
        event = event or "BeforeTool"
        if event not in ("BeforeTool", "BeforeAgent") or event in fail_open:
            return ""
        return f'{{"decision":"deny","reason":{message}}}'
    opened = (event or "PreToolUse") in fail_open
    if agent != "cursor":  # Claude Code and Codex (whose hooks take Claude's shapes)
        event = event or "PreToolUse"
        if opened:
            return ""
        if event == "PreToolUse":
            return ('{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny",'
                    f'"permissionDecisionReason":{message}}}}}')  # fmt: skip
        if event == "PermissionRequest":
            return ('{"hookSpecificOutput":{"hookEventName":"PermissionRequest","decision":'
                    f'{{"behavior":"deny","message":{message}}}}}}}')  # fmt: skip
        if event == "UserPromptSubmit":
            return f'{{"decision":"block","reason":{message}}}'
        return ""
    if event == "beforeSubmitPrompt":
        return '{"continue":true}' if opened else f'{{"continue":false,"user_message":{message}}}'
    unknown_gate = event not in CURSOR_GATES and event.startswith(("before", "pre"))  # a newer Cursor's gate
    if event in CURSOR_GATES or unknown_gate or not event:
        if opened:
            return '{"permission":"allow"}'
        extra = "" if event in CURSOR_GATES else '"continue":false,'
        return f'{{"permission":"deny",{extra}"user_message":{message},"agent_message":{message}}}'
    return "{}"


# ---- entry point -------------------------------------------------------------------------------------------------


def parse_args(argv):
    """(agent, timeout_ms, fail_open events, autostart); raises HelpRequested, or UsageError with the agent so far."""
    agent, timeout_ms, fail_open, autostart = "claude", 2000, "", True
    args = list(argv)
    if args and not args[0].startswith("-"):
        agent = args.pop(0)
    while args:
        arg = args.pop(0)
        if arg in ("--help", "-h"):
            raise HelpRequested
        if arg in ("--claude", "--cursor"):
            agent = arg[2:]
        elif arg in ("--timeout-ms", "--fail-open") and not args:
            raise UsageError(f"no value after `{arg}`", agent)
        elif arg == "--timeout-ms":
            value = args.pop(0)
            if not (value.isascii() and value.isdigit() and int(value) > 0):
                raise UsageError(f"`--timeout-ms {value}`, which is not a positive number of milliseconds", agent)
            timeout_ms = int(value)
        elif arg == "--fail-open":
            fail_open = args.pop(0)
        elif arg == "--no-autostart":
            autostart = False
        elif arg.startswith("-"):
            raise UsageError(f"the unknown option `{arg}`", agent)
        else:
            raise UsageError(f"the unexpected argument `{arg}`", agent)
    timeout_env = getenv("KEYCARD_HOOK_TIMEOUT_MS")
    if timeout_env.isdigit():
        timeout_ms = int(timeout_env)
    fail_open = fail_open or getenv("KEYCARD_HOOK_FAIL_OPEN")
    if getenv("KEYCARD_HOOK_NO_AUTOSTART", "0") not in ("", "0"):
        autostart = False
    return ("claude" if agent == "claude-code" else agent), (timeout_ms or 2000), fail_open.split(","), autostart


def _usage_error(problem, agent, stdin, stdout):
    """The hook command itself is wrong: say so on stderr, and deny the agent's call whatever --fail-open says."""
    reason = (
        f"keycard-hook was run with {problem}: fix the hook command (see `keycard-hook --help`) or run "
        f"`keycardctl install {agent}` again"
    )
    sys.stderr.write(f"{reason}\n{USAGE}\n")
    payload = b"" if stdin.isatty() else stdin.read(MAX_PAYLOAD + 1)  # a person at a terminal sends no payload
    event = event_name(payload)
    answer = fallback_answer(agent, event, reason, [])
    stdout.write(answer.encode())
    stdout.flush()
    return usage_exit_code(agent, event, answer)


def main(argv=None, stdin=None, stdout=None):
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    try:
        agent, timeout_ms, fail_open, autostart = parse_args(sys.argv[1:] if argv is None else argv)
    except HelpRequested:
        stdout.write(USAGE.encode() + b"\n")
        stdout.flush()
        return 0
    except UsageError as error:
        problem, agent = error.args
        return _usage_error(problem, agent, stdin, stdout)
    payload = stdin.read(MAX_PAYLOAD + 1)
    try:
        if len(payload) > MAX_PAYLOAD:
            raise Failure("the hook payload is larger than 1 MiB, so keycardd cannot check it")
        if agent not in AGENTS:
            raise Failure("keycard-hook was run for an unknown agent (use claude, cursor, codex or gemini)")
        env = {key: getenv(key) for key in FORWARDED_ENV if key.encode() in environ}
        try:
            env["cwd"] = getcwd()
        except OSError:
            pass
        output, code = ask_daemon(agent, payload, env, timeout_ms, autostart)
    except Failure as failure:
        sys.stderr.write(f"keycard-hook: {failure}\n")
        output, code = fallback_answer(agent, event_name(payload), str(failure), fail_open).encode(), 0
    stdout.write(output)
    stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
