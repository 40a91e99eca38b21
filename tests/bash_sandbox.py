"""Run shell lines in real bash inside a throw-away sandbox and record every program bash actually executes.

Used by tests/test_shell_soundness.py to compare keycardd's shell analysis with the real thing. The lines are
hostile on purpose (`rm -rf ~`, `kill -9 -1`, fork bombs, `/dev/tcp/...`, redirects to absolute paths), so nothing
may reach the machine:

- Fresh user, mount, network, PID, IPC and UTS namespaces. The sandbox's root is its own uid: for a root caller a
  dedicated unused host uid (so RLIMIT_NPROC really limits it and no host file is writable), otherwise the caller.
- A new root file system (pivot_root, the old root detached): read-only tmpfs with read-only binds of /usr/lib*,
  /usr/share, /usr/libexec and /etc, a minimal /dev, its own /proc, and size-limited noexec tmpfs /home and /tmp that
  are emptied and re-populated before every line. No network but a loopback that is down.
- /usr/bin, /usr/sbin, /usr/local/bin (and /bin, /sbin through the usual symlinks) hold ONLY hard links to one stub
  (tests/data/soundness_stub.c) under every program name the lines could use: it logs its exec to the driver through
  an abstract Unix socket and exits 0. Wrappers and pure filters (`PASS_THROUGH`) log and then exec the real program
  from /.real, so `env`, `xargs`, `find`, `sh`... really run what they are given and it is logged in turn.
- Each line runs as `bash -c LINE` in its own PID namespace whose init (tests/data/soundness_init.c) waits for
  every process, so background jobs finish and what they run is seen; whatever outlives the wall-clock timeout is
  killed with the namespace. rlimits cap processes, memory, file size and open files. The driver is init of the
  sandbox's own PID namespace and dies with the test process (PR_SET_PDEATHSIG); the caller kills its process group.
- What a real wrapper starts on its own (tar -z's `sh -c gzip`, script's $SHELL) is told apart by the process tree
  (`IMPLICIT_CHILDREN`); everything else bash or a wrapper executed is the line's.

The same file is the driver: run as a script it reads a job file, enters the namespaces, builds the root and runs the
lines, printing one JSON result per line. It imports only the standard library, all of it before it drops access to
the caller's files.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUB_SOURCE = Path(__file__).resolve().parent / "data" / "soundness_stub.c"
INIT_SOURCE = Path(__file__).resolve().parent / "data" / "soundness_init.c"
LOG_NAME = b"\0keycardd-soundness-log"
HOME = "/home/u"
CWD = "/home/u/proj"
REAL = "/.real"

PASS_THROUGH = frozenset(
    {
        # wrappers: they run what they are given, which then resolves through the stubs
        "env", "xargs", "find", "nice", "timeout", "nohup", "stdbuf", "setsid", "sh", "bash", "dash", "rbash",
        "script", "flock", "taskset", "ionice", "chrt", "chroot", "unshare", "su", "runuser", "strace", "time",
        "git",  # its aliases, pager, ssh command, editor and transports run programs
        "tar", "sort", "zip", "ssh", "scp", "sftp", "nsenter", "split",  # options of theirs run programs
        "sg", "setpriv", "prlimit", "setarch", "linux64", "dbus-run-session", "ssh-agent", "start-stop-daemon", "cmake",
        # pure filters, so that `echo CMD | base64 -d | sh` really feeds sh (no option of theirs runs a program)
        "cat", "tac", "tee", "base64", "base32", "tr", "rev", "head", "tail", "cut", "printf", "echo", "true",
        "false", "yes", "seq", "basename", "dirname", "wc", "gzip", "xxd", "od",
        # interpreters whose inline code keycardd reads: what their code really runs is compared with the analysis
        "python3", "awk", "mawk", "gawk", "sed", "perl",
    }
)  # fmt: skip
"""Programs whose stub execs the real program after logging (when the host has it)."""

IMPLICIT_CHILDREN: dict[str, frozenset[str]] = {
    "xargs": frozenset({"echo"}),  # xargs without a command runs echo
    "script": frozenset({"sh", "bash"}),  # script -c CMD runs $SHELL -c CMD
    "su": frozenset({"sh", "bash"}),  # su -c CMD runs the user's login shell
    "runuser": frozenset({"sh", "bash"}),
    "flock": frozenset({"sh", "bash"}),  # flock -c CMD runs $SHELL -c CMD
    # git's own helpers: the shell it runs aliases/pagers/ssh commands through, its transports and default editor
    "git": frozenset({"sh", "git", "ssh", "less", "pager", "vi", "editor", "git-remote-http", "git-remote-https"}),
    "tar": frozenset({"sh", "gzip", "bzip2", "xz", "zstd", "lzma", "lzip", "lzop", "compress"}),  # tar -z runs gzip
    "zip": frozenset({"sh", "unzip"}),  # zip -T tests the archive with unzip
    "ssh": frozenset({"sh", "bash"}),  # ProxyCommand runs through $SHELL -c
    "scp": frozenset({"ssh", "cp"}),  # scp between two local paths runs cp
    "sftp": frozenset({"ssh"}),
    "strace": frozenset({"sh"}),  # strace -o '|CMD' pipes through sh -c
    "chroot": frozenset({"sh", "bash"}),  # chroot DIR without a command runs $SHELL -i
    "unshare": frozenset({"sh", "bash"}),  # so do unshare, nsenter, setarch and linux64 (what that shell then runs,
    "nsenter": frozenset({"sh", "bash"}),  # read from stdin, is the line's)
    "setarch": frozenset({"sh", "bash"}),
    "linux64": frozenset({"sh", "bash"}),
    "split": frozenset({"sh", "bash"}),  # split --filter=CMD runs $SHELL -c CMD
    "sg": frozenset({"sh", "bash"}),  # sg GROUP -c CMD runs sh -c CMD, sg GROUP a shell
    "dbus-run-session": frozenset({"dbus-daemon"}),
    "python3": frozenset({"uname", "lsb_release"}),  # `python3 -m venv` (pip's platform probes), not the line's code
}
"""Programs a real wrapper starts on its own (not named in the line): not part of the line's own programs."""

ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": HOME,
    "USER": "u",
    "LOGNAME": "u",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "PWD": CWD,
}
FIXTURE = {
    "proj/README.md": "# project\n",
    "proj/src/app.py": "print('hello')\n",
    "proj/.env": "TOKEN=not-a-secret\n",
    "proj/notes.txt": "rm\n",
    ".ssh/id_ed25519": "not a key\n",
    ".bashrc": "",
    "proj/.git/HEAD": "ref: refs/heads/main\n",  # an empty repository: git's pager, fsmonitor... run in one
    "proj/.git/objects/.keep": "",
    "proj/.git/refs/heads/.keep": "",
}
"""Files in HOME before each line, so that `find . -exec ...` and `xargs -a` have something to work on."""

LINE_LIMITS = {
    resource.RLIMIT_NPROC: 64,
    resource.RLIMIT_AS: 1024 * 1024 * 1024,
    resource.RLIMIT_FSIZE: 16 * 1024 * 1024,
    resource.RLIMIT_NOFILE: 256,
    resource.RLIMIT_CORE: 0,
}
"""Set on the driver once its root is built, so every line inherits them (no per-line preexec: vfork is cheaper).
CPU time needs no limit: the wall-clock timeout kills a line, and the driver is init of the sandbox's PID namespace,
so if it dies every process inside dies with it."""


SHELLS = frozenset({"sh", "dash", "bash"})


@dataclass(frozen=True, slots=True)
class Exec:
    """One execve of a stub: the path executed, the real program of the parent process, PIDs, and argv."""

    path: str
    parent: str
    pid: int
    ppid: int
    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True, slots=True)
class LineRun:
    """What one line did in the sandbox: every stub exec in log order, bash's exit status, whether it timed out."""

    line: str
    execs: tuple[Exec, ...]
    status: int
    timed_out: bool
    seconds: float = 0.0

    @property
    def programs(self) -> frozenset[str]:
        """Every program the line itself executed (what wrappers start on their own account left out)."""
        return frozenset(e.program for i, e in enumerate(self.execs) if not self.implicit(i))

    def ancestors(self, index: int) -> list[str]:
        """The programs that started execs[index], nearest first: the program the same process ran before (a wrapper
        that exec'd it), else the parent process's; ending with the first process no stub logged."""
        chain: list[str] = []
        record = self.execs[index]
        while len(chain) < 64:
            earlier = range(index - 1, -1, -1)
            before = next((j for j in earlier if self.execs[j].pid == record.pid), None)
            if before is None:
                before = next((j for j in earlier if self.execs[j].pid == record.ppid), None)
            if before is None:
                chain.append(os.path.basename(record.parent))
                return chain
            index, record = before, self.execs[before]
            chain.append(record.program)
        return chain

    def implicit(self, index: int) -> bool:
        """Started by a real wrapper on its own account (`tar -z` runs sh -c gzip, `script -c` runs $SHELL), not
        named by the line: the nearest non-shell ancestor lists it, and so every shell in between."""
        shells: list[str] = []
        for name in self.ancestors(index):
            if name not in SHELLS:
                allowed = IMPLICIT_CHILDREN.get(name, frozenset())
                return self.execs[index].program in allowed and all(shell in allowed for shell in shells)
            shells.append(name)
        return False


class SandboxError(RuntimeError):
    pass


# -------------------------------------------------------------------------------------------------- caller side


def unavailable_reason() -> str | None:
    """Why the sandbox cannot run here (one sentence), or None when it can."""
    if platform.system() != "Linux":
        return "the bash sandbox needs Linux namespaces"
    search = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin:/usr/bin:/bin"
    for tool in ("unshare", "pivot_root", "bash", "cc"):
        if shutil.which(tool, path=search) is None:
            return f"the bash sandbox needs `{tool}`, which is not installed"
    probe = subprocess.run(
        [
            shutil.which("unshare", path=search) or "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            "true",
        ],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:
        return f"user/mount/net/pid namespaces are not available here: {probe.stderr.decode(errors='replace')}"
    return None


_built: dict[str, Path] = {}


def build_stubs(directory: Path) -> dict[str, Path]:
    """Compile the logging stub, the log-then-exec stub and the per-line init into `directory` (once a process:
    later calls reuse the first build while it exists)."""
    if _built and all(path.exists() for path in _built.values()):
        return dict(_built)
    built = {}
    for name, source, flags in (
        ("stub-log", STUB_SOURCE, []),
        ("stub-exec", STUB_SOURCE, ["-DEXEC_REAL"]),
        ("init", INIT_SOURCE, []),
    ):
        out = directory / name
        command = ["cc", "-O2", "-Wall", "-std=c99", *flags, "-o", str(out), str(source)]
        static = subprocess.run([*command[:1], "-static", *command[1:]], capture_output=True)
        if static.returncode != 0:  # no static libc: a dynamic stub is slower to start, but as good
            subprocess.run(command, check=True, capture_output=True)
        built[name] = out
    _built.update(built)
    return built


def stub_names(lines: Sequence[str]) -> list[str]:
    """Every name a line could execute: the host's programs, and every word-like token of the lines."""
    names: set[str] = set()
    for directory in ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"):
        with contextlib.suppress(OSError):
            names.update(os.listdir(directory))
    token = []
    for line in lines:
        for char in [*line, " "]:
            if char.isascii() and (char.isalnum() or char in "_.+-:@%,="):
                token.append(char)
            elif token:
                word = "".join(token)
                names.add(word)
                names.update(part for part in word.split("=") if part)
                token.clear()
    return sorted(n for n in names if n not in (".", "..") and "/" not in n and len(n) < 200)


def _host_real(name: str) -> bool:
    return any(os.path.isfile(os.path.join(d, name)) for d in ("/usr/bin", "/usr/sbin"))


@dataclass
class Sandbox:
    """A driver process in its own namespaces, running one batch of lines."""

    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, job: Path, host_uid: int) -> Sandbox:
        process = subprocess.Popen(
            [sys.executable, "-I", __file__, str(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdin is not None and process.stdout is not None
        if process.stdout.readline() != b"unshared\n":
            process.kill()
            raise SandboxError("the sandbox driver could not enter its namespaces")
        _write_id_maps(process.pid, host_uid)
        process.stdin.write(b"go\n")
        process.stdin.close()
        return cls(process)

    def results(self) -> Iterator[dict[str, Any]]:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            yield json.loads(raw)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _write_id_maps(pid: int, host_uid: int) -> None:
    if os.geteuid() == 0:
        Path(f"/proc/{pid}/uid_map").write_text(f"0 {host_uid} 1\n")
        Path(f"/proc/{pid}/gid_map").write_text(f"0 {host_uid} 1\n")
    else:
        Path(f"/proc/{pid}/setgroups").write_text("deny")
        Path(f"/proc/{pid}/uid_map").write_text(f"0 {os.geteuid()} 1\n")
        Path(f"/proc/{pid}/gid_map").write_text(f"0 {os.getegid()} 1\n")


def _sandbox_uid(worker: int) -> int:
    """The host uid the sandbox's root maps to: for root, an unused uid of its own per worker (RLIMIT_NPROC does not
    apply to the host's root user, and an unmapped uid owns no host file); otherwise the caller itself."""
    if os.geteuid() != 0:
        return os.geteuid()
    return 3_000_000_000 + (os.getpid() % 100_000) * 16 + worker


def run_lines(lines: Sequence[str], workdir: Path, *, workers: int = 2, timeout: float = 3.0) -> list[LineRun]:
    """Run every line in real bash inside the sandbox; results in the lines' order."""
    workdir.mkdir(parents=True, exist_ok=True)
    programs = build_stubs(workdir)
    names = stub_names(lines)
    real = sorted(name for name in PASS_THROUGH if _host_real(name))
    chunks = [list(range(worker, len(lines), workers)) for worker in range(workers)]
    sandboxes = []
    try:
        for worker, indexes in enumerate(chunks):
            job = workdir / f"job-{worker}.json"
            job.write_text(
                json.dumps(
                    {
                        "programs": {name: str(path) for name, path in programs.items()},
                        "names": names,
                        "real": real,
                        "lines": [[i, lines[i]] for i in indexes],
                        "timeout": timeout,
                        "non_root_caller": os.geteuid() != 0,
                    }
                )
            )
            sandboxes.append(Sandbox.start(job, _sandbox_uid(worker)))
        runs: dict[int, LineRun] = {}
        with ThreadPoolExecutor(len(sandboxes)) as readers:  # read all at once: a full pipe would stall its driver
            outputs = list(readers.map(lambda sandbox: list(sandbox.results()), sandboxes))
        for output in outputs:
            for result in output:
                index = int(str(result["i"]))
                execs = tuple(Exec(e[0], e[1], int(e[2]), int(e[3]), tuple(e[4])) for e in result["execs"])
                runs[index] = LineRun(
                    lines[index],
                    execs,
                    int(str(result["status"])),
                    bool(result["timed_out"]),
                    float(str(result["seconds"])),
                )
    finally:
        for sandbox in sandboxes:
            sandbox.close()
    missing = [i for i in range(len(lines)) if i not in runs]
    if missing:
        raise SandboxError(f"the sandbox returned no result for {len(missing)} lines, e.g. {lines[missing[0]]!r}")
    return [runs[i] for i in range(len(lines))]


# -------------------------------------------------------------------------------------------------- driver side

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
_STATVFS_TO_MOUNT = {2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME}


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _encode(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)), f"mount {target}")


def _bind_read_only(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        Path(target).touch()
    _mount(source, target, None, MS_BIND | MS_REC)
    locked = os.statvfs(target).f_flag  # flags the caller's mount has are locked: keep them or remount fails
    keep = sum(flag for bit, flag in _STATVFS_TO_MOUNT.items() if locked & bit)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | keep)


def _build_root(root: str, job: dict[str, object], stubs: dict[str, bytes]) -> None:
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755")
    for directory in ("usr/bin", "proc", "dev", "home", "tmp", ".real", ".stub", "oldroot"):
        os.makedirs(f"{root}/{directory}", exist_ok=True)
    for name, data in stubs.items():
        Path(f"{root}/.stub/{name}").write_bytes(data)
        os.chmod(f"{root}/.stub/{name}", 0o755)
    real = set(job["real"])  # type: ignore[call-overload]
    for name in job["names"]:  # type: ignore[attr-defined]
        os.link(f"{root}/.stub/{'stub-exec' if name in real else 'stub-log'}", f"{root}/usr/bin/{name}")
    for alias in ("usr/sbin", "usr/local/bin", "usr/local/sbin"):
        os.makedirs(f"{root}/{alias}", exist_ok=True)
        _mount(f"{root}/usr/bin", f"{root}/{alias}", None, MS_BIND)
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{top}"
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{root}/{top}")
        elif os.path.isdir(host) and top.startswith("lib"):
            _bind_read_only(host, f"{root}/{top}")
        elif os.path.isdir(host):
            os.symlink(f"usr/{top}", f"{root}/{top}")
    for usr in ("lib", "lib32", "lib64", "libx32", "libexec", "share"):
        if os.path.isdir(f"/usr/{usr}"):
            _bind_read_only(f"/usr/{usr}", f"{root}/usr/{usr}")
    _bind_read_only("/etc", f"{root}/etc")
    _hide_startup_files(root)
    _bind_read_only("/usr/bin", f"{root}{REAL}/usr/bin")
    _bind_read_only("/usr/sbin", f"{root}{REAL}/usr/sbin")
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _build_dev(f"{root}/dev")
    for scratch in ("home", "tmp"):
        _mount("tmpfs", f"{root}/{scratch}", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,mode=1777")


STARTUP_FILES = ("profile", "bash.bashrc", "bash.bash_logout", "environment", "profile.d", "bash_completion.d")
"""The host's shell start-up files (what `bash -l` or `bash -i` runs on its own), emptied inside the sandbox: what
they run is the machine's business, not the line's."""


def _hide_startup_files(root: str) -> None:
    os.makedirs(f"{root}/.empty/dir")
    Path(f"{root}/.empty/file").touch()
    for name in STARTUP_FILES:
        target = f"{root}/etc/{name}"
        if os.path.isdir(target):
            _mount(f"{root}/.empty/dir", target, None, MS_BIND)
        elif os.path.exists(target):
            _mount(f"{root}/.empty/file", target, None, MS_BIND)


def _build_dev(dev: str) -> None:
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for node in ("null", "zero", "full", "random", "urandom"):
        Path(f"{dev}/{node}").touch()
        _mount(f"/dev/{node}", f"{dev}/{node}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):  # fmt: skip
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(f"{dev}/pts")
    with contextlib.suppress(OSError):  # only `script` needs a pty; without one it fails and runs nothing
        _mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    _mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def _pivot(root: str, pivot_root: str) -> None:
    os.chdir(root)
    subprocess.run([pivot_root, ".", "oldroot"], check=True)
    os.chdir("/")
    _check(_libc.umount2(b"/oldroot", MNT_DETACH), "umount oldroot")
    os.rmdir("/oldroot")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _process_count(uid: int) -> int:
    count = 0
    for pid in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == uid:
                count += 1
    return count


def _reset_scratch() -> None:
    for scratch in ("/home", "/tmp"):
        for entry in os.listdir(scratch):
            path = os.path.join(scratch, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    for relative, text in FIXTURE.items():
        fixture = Path(HOME, relative)
        fixture.parent.mkdir(parents=True, exist_ok=True)
        fixture.write_text(text)


def _limit_lines() -> None:
    for limit, value in LINE_LIMITS.items():
        resource.setrlimit(limit, (value, value))


def _parse_record(data: bytes) -> list[object]:
    fields = [field.decode("utf-8", "surrogateescape") for field in data.split(b"\0")]
    if fields and fields[-1] == "":
        fields.pop()
    while len(fields) < 4:
        fields.append("0")
    pid, ppid = (int(text) if text.isdigit() else 0 for text in fields[2:4])
    return [fields[0], fields[1], pid, ppid, fields[4:]]


def _drain(log: socket.socket, records: list[list[object]]) -> None:
    while True:
        try:
            records.append(_parse_record(log.recv(65536)))
        except BlockingIOError:
            return


def _reap_all(deadline: float) -> None:
    """Wait for every process of the finished line (orphans are reparented to the driver, the sandbox's init)."""
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.005)


def _run_line(line: str, log: socket.socket, timeout: float) -> dict[str, object]:
    started = time.monotonic()
    _reset_scratch()
    argv = ["/.stub/init",
            f"{REAL}/usr/bin/bash", "--norc", "--noprofile", "-O", "expand_aliases", "-c", line]  # fmt: skip
    process = subprocess.Popen(
        argv,
        cwd=CWD,
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    records: list[list[object]] = []
    pidfd = os.pidfd_open(process.pid)
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([log.fileno(), pidfd], [], [], remaining)
            if log.fileno() in ready:
                _drain(log, records)
            if pidfd in ready:
                break
    finally:
        os.close(pidfd)
    status = process.wait()
    _reap_all(time.monotonic() + 5)
    _drain(log, records)
    return {"execs": records, "status": status, "timed_out": timed_out, "seconds": time.monotonic() - started}


def _driver(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    pivot_root = shutil.which("pivot_root", path="/usr/sbin:/sbin:/usr/bin:/bin") or "pivot_root"
    if job["non_root_caller"]:  # RLIMIT_NPROC counts all the caller's processes: allow as many more as for root
        LINE_LIMITS[resource.RLIMIT_NPROC] += _process_count(os.getuid())
    stubs = {name: Path(path).read_bytes() for name, path in job["programs"].items()}
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(flags), "unshare")
    sys.stdout.buffer.write(b"unshared\n")
    sys.stdout.flush()
    if sys.stdin.readline() != "go\n":
        return 1
    # Credentials keep the caller's host uid until set again: become the mapped root (host uid of its own)
    if not job["non_root_caller"]:
        os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    child = os.fork()  # the first child is the new PID namespace's init: the sandbox itself
    if child:
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = "/tmp"  # a tmpfs mounted over /tmp in this mount namespace only
    _build_root(root, job, stubs)
    _pivot(root, pivot_root)
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind(LOG_NAME)
    log.setblocking(False)
    _limit_lines()
    out = sys.stdout
    for index, line in job["lines"]:
        result = _run_line(line, log, float(job["timeout"]))
        out.write(json.dumps({"i": index, **result}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_driver(sys.argv[1]))
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            print(f"bash sandbox driver: {exc}", file=sys.stderr)
        sys.exit(2)
