"""The guard: the agent keycardd checks must not be able to switch keycardd off.

keycardd and the agent run as the same user, so without this one `echo 'permit(...);' > policy.cedar`, a
`disableAllHooks` in `.claude/settings.local.json` or `cp /bin/true <the shim>` would end every later check. The
guard has two halves:

- `Guard.mark` (the locations are resolved once, at start; the only I/O on a request is a `realpath` for a write
  whose path misses lexically, to follow symbolic links) adds `context.guard` (what is protected) and
  `context.guard_access` (read, write, delete, exec or use) to every request whose `file_path` or `path` falls in,
  or is a parent of, a protected location, and `context.guard` to commands that can stop keycardd's process or
  service, or that run a script naming keycard's files;
- `Guard.review` evaluates the marked requests against the embedded policy `guard_policy.cedar` (`embedded:guard`)
  and keeps, per request, the stricter of that answer and the active policy's. The layer only ever adds asks and
  denies, so a user's deny-by-default policy stays deny, and its own `@approve` cannot outvote the guard.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import itertools
import math
import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from keycardd import paths
from keycardd.engine import CedarRequest, Engine, PolicySource, Verdict, tighten
from keycardd.managed import managed_policy_dir

GUARD_SOURCE = "embedded:guard"
_READ_TOOLS = frozenset({"read", "grep", "glob", "ls"})
_WRITE_TOOLS = frozenset({"write", "edit", "multiedit", "notebookedit", "strreplace", "tabwrite", "editnotebook"})
"""Claude Code's and Cursor's file-changing tools (Cursor's `StrReplace`, `TabWrite`, `EditNotebook` included)."""
_HARMLESS_ACCESS = frozenset({"read", "exec"})
_PARENT_ACCESS = frozenset({"write", "delete"})
"""Writing or deleting a parent (`rm -rf ~/.local/state`, `mv ~/.claude x`, `cp -r evil/.claude ~`) reaches inside."""
_CONTROL_PROGRAMS = frozenset(
    {"keycardctl", "systemctl", "launchctl", "kill", "pkill", "killall", "stop-process", "spps", "taskkill"}
    | {"pip", "pip3", "pipx", "uv", "brew", "apt", "apt-get", "dnf", "npm"}
)
_KILLERS = frozenset({"kill", "pkill", "killall", "stop-process", "spps", "taskkill"})
"""Programs that end processes (PowerShell's `Stop-Process` and its alias, Windows' `taskkill` included)."""
_SCRIPT_PROGRAMS = re.compile(
    r"(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|osascript|"
    r"pwsh|powershell|sh|bash|zsh|dash|ksh|mksh|fish|csh|tcsh|awk|gawk|mawk|nawk|tclsh|Rscript|julia)"
)
_SCRIPT_MARKERS = re.compile(r"keycard|\.claude|\.cursor|\.codex|\.gemini|managed-settings|hooks\.json", re.IGNORECASE)
"""Text that, inside an interpreter's code, names keycard's files or an agent's hook settings."""
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), what)
    for pattern, what in (
        (r"/\.claude/settings(\.local)?\.json$", "Claude Code hook settings"),
        (r"/\.cursor/hooks\.json$", "Cursor hooks"),
        (r"/\.codex/(hooks\.json|config\.toml)$", "Codex hooks and hook trust"),
        (r"/\.gemini/(settings\.json|trustedFolders\.json)$", "Gemini CLI hook settings and folder trust"),
        (r"/\.local/state/keycard(/|$)", "keycard state (policy, zone cache, decision log)"),
        (r"/\.config/keycard(/|$)", "keycard configuration"),
        (r"/\.local/share/keycard(/|$)", "keycard's installed hook shim"),
        (r"/systemd/user/([^/]*\.wants/)?keycardd[^/]*(/|$)", "keycardd service unit"),
        (
            r"/\.config/environment\.d(/|$)",
            "systemd's user environment (KEYCARD_* and OTEL_* reach keycardd's service)",
        ),
        (r"/LaunchAgents/ai\.keycard\.keycardd\.plist$", "keycardd LaunchAgent"),
        (r"^/etc/claude-code(/|$)", "Claude Code managed settings"),
        (r"^/Library/Application Support/ClaudeCode(/|$)", "Claude Code managed settings"),
        (r"^[A-Za-z]:/(Program Files|ProgramData)/ClaudeCode(/|$)", "Claude Code managed settings"),
        (r"^/etc/cursor/hooks\.json$", "Cursor enterprise hooks"),
        (r"^/Library/Application Support/Cursor/hooks\.json$", "Cursor enterprise hooks"),
        (r"^[A-Za-z]:/ProgramData/Cursor/hooks\.json$", "Cursor enterprise hooks"),
        (r"^/etc/keycard(/|$)", "keycard managed policy"),
        (r"^/usr/local/libexec/keycard(/|$)", "keycardd's managed hook shim"),
        (r"^/Library/Application Support/Keycard(/|$)", "keycardd's managed hook shim"),
    )
)
"""Where hook settings and keycard's files live for any user and any project, matched by the path's shape. An agent
keycardd learns to install into later adds its hook config here (and to `protected_locations`)."""
_SHAPE_PARENTS = re.compile(r"/\.(claude|cursor|codex|gemini)$")
_PROTECTED_NAMES = re.compile(
    r"(^|/)(settings(\.local)?\.json|hooks\.json|managed-settings\.json|[^/]*\.cedar|keycard\.toml|keycard[-_]hook[^/]*|"
    r"trustedFolders\.json|\.claude|\.cursor|\.codex|\.gemini)/?$"
)
"""Basenames of protected files, for paths whose directory is only known at run time (`cd $X && rm settings.json`)."""
_CANDIDATE_NAMES = (
    "settings.json",
    "settings.local.json",
    "hooks.json",
    "managed-settings.json",
    "policy.cedar",
    "policy.d",
    "keycard.toml",
    "keycard-hook",
    ".claude",
    ".cursor",
    ".codex",
    ".gemini",
    "config.toml",
    "trustedFolders.json",
    "keycard",
)
"""Names a wildcard in a directory is tried against (`rm ~/.claude/*` reaches `~/.claude/settings.json`)."""
_GLOB = re.compile(r"[*?\[]")
_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprintf", "-fls"})
_DEPENDENCIES = ("cedarpy", "msgspec", "anyio", "watchfiles")
"""keycardd's runtime libraries: a replaced cedarpy decides every later call."""


@dataclass(frozen=True, slots=True)
class Location:
    """One protected file or directory: its absolute path (no trailing `/`) and what it is, for reasons."""

    path: str
    what: str


def guard_policy_source() -> PolicySource:
    text = resources.files("keycardd").joinpath("guard_policy.cedar").read_text(encoding="utf-8")
    return PolicySource(name=GUARD_SOURCE, text=text)


class Guard:
    """The protected locations, resolved once, and the compiled guard policy."""

    def __init__(
        self,
        locations: Iterable[Location],
        *,
        pids: Iterable[int] = (),
        processes: Iterable[str] = (),
        fold_case: bool = True,
    ) -> None:
        """`fold_case` compares paths case-insensitively (right on macOS and Windows, whose file systems ignore case;
        on others it only protects a few more spellings, which nothing legitimate needs to write). `processes` are
        the command lines and names of keycardd's processes, which `pkill -f` and `pgrep` patterns are tried on."""
        self._fold = fold_case
        unique: dict[str, Location] = {}
        for location in locations:
            path = location.path.rstrip("/") or "/"
            unique.setdefault(self._key(path), Location(path, location.what))
        self.locations = tuple(unique.values())
        self._keys = tuple((self._key(location.path), location.what) for location in self.locations)
        self._order = {key: (index, what) for index, (key, what) in enumerate(self._keys)}
        """Each location's place in `locations` (the first that holds a path names it) and what it is."""
        self._pids = frozenset(str(pid) for pid in pids)
        self._processes = tuple(process.casefold() for process in processes)
        home = re.escape(str(Path.home()).rstrip("/"))
        self._startup_files = re.compile(f"^{home}{_STARTUP_FILES}", re.IGNORECASE if fold_case else 0)
        self._shapes = (
            tuple((re.compile(pattern.pattern, re.IGNORECASE), what) for pattern, what in _SHAPES)
            if fold_case
            else _SHAPES
        )
        self.engine = Engine.compile([guard_policy_source()])

    @classmethod
    def from_environment(cls, *, config_file: Path | None = None, pids: Iterable[int] = ()) -> Guard:
        """keycardd's own files, wherever this environment puts them (the only I/O: `realpath` and two reads), and
        its processes: this one and `pids`."""
        return cls(protected_locations(config_file), pids=[os.getpid(), *pids], processes=_own_processes())

    def _key(self, path: str) -> str:
        return path.casefold() if self._fold else path

    def protects(self, path: str, access: str) -> str | None:
        """What `path` is, if it is protected (or, for a write or delete, a parent of something protected).

        A change (anything but read and exec) through a symbolic link is judged by where the link leads: `ln -s
        ~/.claude x` in one call, then a Write to `x/settings.json` in the next. That costs a `realpath` (a few
        `lstat`s) on such requests only, and only when the path as written is not protected already. A path with a
        NUL byte is judged as written and by what comes before the NUL, the file a C library would open.
        """
        found = self._protects(path, access)
        if "\0" in path:  # judged as written and as a C API would open it; os.path.realpath refuses a NUL
            return found or self._protects(path.split("\0", 1)[0], access)
        if found is None and access not in _HARMLESS_ACCESS and os.path.isabs(path):
            resolved = os.path.realpath(path)
            if resolved != path:
                found = self._protects(resolved, access)
        return found

    def _protects(self, path: str, access: str) -> str | None:
        key = self._key(path.rstrip("/") or "/")
        if _GLOB.search(key):
            return self._glob_protects(key, access)
        found = self._location_holding(key)
        if found is not None:
            return found
        for pattern, what in self._shapes:
            if pattern.search(key):
                return what
        if access in _PARENT_ACCESS:
            prefix = key if key.endswith("/") else key + "/"
            for location, what in self._keys:
                if location.startswith(prefix):
                    return what
            if _SHAPE_PARENTS.search(key):
                return "a directory holding an agent's hook settings"
        return None

    def _location_holding(self, key: str) -> str | None:
        """What the first location that is `key` or one of its parents is: a lookup per parent of the path (a
        handful) instead of a comparison per location (a few dozen)."""
        best = self._order.get(key)
        slash = key.find("/")
        while slash >= 0:
            parent = self._order.get(key[:slash])
            if parent is not None and (best is None or parent[0] < best[0]):
                best = parent
            slash = key.find("/", slash + 1)
        return best[1] if best is not None else None

    def _glob_protects(self, pattern: str, access: str) -> str | None:
        """What a wildcard path (`rm ~/.claude/*`, `settings.js*`, `ln -sf x ~/.local/share/k*/bin/keycardd`,
        `> /srv/*/.claude/settings.json`) could match: a protected location, a path inside one, or a path of a
        protected shape, with each wildcard component standing for the protected names it matches or any other."""
        components = pattern.split("/")
        for location, what in self._keys:
            if fnmatch.fnmatchcase(location, pattern) or _inside(components, location.split("/")):
                return what
        choices = [_stand_ins(component) if _GLOB.search(component) else (component,) for component in components]
        if math.prod(len(choice) for choice in choices) > _MAX_STAND_INS:
            too_many = "a wildcard path with too many wildcards to check against keycard's files"
            return too_many if access in _PARENT_ACCESS else None
        for candidate in itertools.product(*choices):
            found = self._protects("/".join(candidate), "write")
            if found is not None:
                return found
        return None

    def mark_all(self, requests: Sequence[CedarRequest]) -> list[CedarRequest]:
        """`mark` for a line's requests: a kill whose targets come from elsewhere (`pgrep keycardd | xargs kill`)
        counts as aimed at keycardd when the line names it."""
        line = next((str(r.context["line"]) for r in requests if "line" in r.context), "")
        named = "keycard" in line.lower() or any(self._finds_keycardd(request.context) for request in requests)
        marked = [self.mark(request, line_names_keycardd=named) for request in requests]
        steered = _steering_variables(requests)
        names_guard_files = bool(_SCRIPT_MARKERS.search(line))
        return [_mark_by_line(request, steered, names_guard_files) for request in marked]

    def mark(self, request: CedarRequest, *, line_names_keycardd: bool = False) -> CedarRequest:
        """The request with `guard` (and `guard_access`) facts if it touches the guard; unchanged otherwise."""
        context = request.context
        for key in ("file_path", "path"):
            value = context.get(key)
            if isinstance(value, str) and value:
                access = _access(request.resource.id, context)
                what = self.protects(value, access)
                if what is not None:
                    return replace(request, context={**context, "guard": what, "guard_access": access})
                if access not in _HARMLESS_ACCESS and self._startup_files.search(value):
                    return replace(request, context={**context, "guard": _STARTUP_GUARD})
        program = context.get("program")
        if not isinstance(program, str):
            return request
        unknowns = context.get("unknowns") or ()
        if ("cwd" in unknowns or "args" in unknowns) and self._names_a_protected_file(context):
            what = "a file named like keycard's or an agent's hook settings, in a directory known only at run time"
            return replace(request, context={**context, "guard": what, "guard_access": "use"})
        if program == "find" and self._acts_on_protected_names(context):
            what = "files find selects by names like keycard's or an agent's hook settings, and acts on"
            return replace(request, context={**context, "guard": what, "guard_access": "use"})
        if program in _CONTROL_PROGRAMS:
            args = context.get("args") or ()
            own = program == "kill" and any(str(arg).lstrip("-") in self._pids for arg in args)
            own = own or (line_names_keycardd and program in _KILLERS) or self._finds_keycardd(context)
            what = "keycardd's own process" if own else "keycardd's process and service"
            return replace(request, context={**context, "guard": what})
        command = context.get("command")
        if _SCRIPT_PROGRAMS.fullmatch(program) and isinstance(command, str) and _SCRIPT_MARKERS.search(command):
            return replace(request, context={**context, "guard": _SCRIPT_GUARD})
        return request

    def _finds_keycardd(self, context: Any) -> bool:
        """Whether a `pkill`/`pgrep`/`killall`/`pidof` pattern could select one of keycardd's processes (`pkill -STOP
        -f exporter` stops the export process; `kill $(pgrep -f exporter)` kills it). Judged without running the
        pattern, which could backtrack for ever: it can if it is all wildcards, or one of its literal runs is part
        of a process's command line or name."""
        if context.get("program") not in _PROCESS_FINDERS or not self._processes:
            return False
        patterns = [str(arg).casefold() for arg in context.get("args") or () if not str(arg).startswith("-")]
        for pattern in patterns:
            runs = [run for run in _REGEX_SYNTAX.split(pattern) if run]
            if not runs or any(run in process for run in runs for process in self._processes):
                return True
        return False

    @staticmethod
    def _acts_on_protected_names(context: Any) -> bool:
        """`find ~ -name settings.json -exec cp /dev/null {} ;`: what find's tests select is changed (-exec's
        program sees only `{}`), so names in its tests count as the files it acts on."""
        args = [str(arg) for arg in context.get("args") or ()]
        if not any(arg in _FIND_ACTIONS for arg in args):
            return False
        return any(_PROTECTED_NAMES.search(arg) or _SCRIPT_MARKERS.search(arg) for arg in args)

    @staticmethod
    def _names_a_protected_file(context: Any) -> bool:
        words = [*(context.get("args") or ()), *(context.get("writes") or ())]
        return any(_PROTECTED_NAMES.search(str(word)) for word in words)

    def review(self, verdicts: Sequence[Verdict]) -> list[Verdict]:
        """Each verdict, or the guard's answer for its request where that is stricter (only asks and denies)."""
        result = list(verdicts)
        marked = [index for index, verdict in enumerate(verdicts) if "guard" in verdict.request.context]
        if not marked:
            return result
        answers = self.engine.evaluate_many([verdicts[index].request for index in marked])
        explained = [Verdict(v.outcome, _deciding(v.policies), _reason(v), v.request) for v in answers]
        for index, verdict in zip(marked, tighten([verdicts[i] for i in marked], explained), strict=True):
            result[index] = verdict
        return result

    def status(self) -> dict[str, Any]:
        return {"source": GUARD_SOURCE, "protected": [location.path for location in self.locations]}


def _access(tool: str, context: Any) -> str:
    """How a request touches its path: the shell analysis says so; file tools by what they are; else `use`.

    Linking to a file (`ln`, `link`, `cp -l`, `cp -s`) counts as writing it: through a hard link the same file is
    changed under another name, where no path says it is protected.
    """
    access = context.get("access")
    if isinstance(access, str) and access:
        return "write" if access in ("read", "use") and _links(context) else access
    if tool in _READ_TOOLS:
        return "read"
    if tool in _WRITE_TOOLS or "content_size" in context:  # a tool that carries file content writes it
        return "write"
    if tool == "delete":
        return "delete"
    return "use"


def _inside(pattern: list[str], location: list[str]) -> bool:
    """Whether a wildcard path, compared component by component, names `location` or something inside it."""
    return len(pattern) >= len(location) and all(
        fnmatch.fnmatchcase(part, glob) for part, glob in zip(location, pattern, strict=False)
    )


def _stand_ins(glob: str) -> tuple[str, ...]:
    """What a wildcard component is tried as: each protected name it matches, and one ordinary name it matches
    (the wildcard with its wildcards filled in), for the shapes that only care about the components around it."""
    ordinary = _UNMATCHED.sub("", _BRACKET.sub(lambda match: match[1], glob).replace("?", "x")) or "x"
    names = [name for name in _CANDIDATE_NAMES if fnmatch.fnmatchcase(name, glob)]
    if not glob.startswith("."):  # a shell wildcard does not match a leading dot
        names = [name for name in names if not name.startswith(".")]
    return tuple(dict.fromkeys([*names, ordinary]))


_BRACKET = re.compile(r"\[[!^]?(.)[^\]]*\]")
_UNMATCHED = re.compile(r"[*?\[\]]")
"""What is left of a wildcard once its classes are filled in: never a wildcard again."""
_MAX_STAND_INS = 512
"""Combinations tried per wildcard path (about 7 us each); beyond, a write or delete through the path is refused
(it may reach keycard's files) and any other access is not judged by the wildcard."""


_STARTUP_FILES = (
    r"/(\.bashrc|\.bash_profile|\.bash_login|\.profile|\.zshrc|\.zshenv|\.zprofile|\.zlogin|\.pam_environment|"
    r"\.config/fish/(config\.fish|conf\.d(/[^/]*)?))$"
)
"""The shells' startup files, in the home directory."""
_STARTUP_GUARD = "a shell startup file, whose exports reach the agents' hooks and the keycardd they start"
"""The next agent inherits what these export, and so do its hooks and the keycardd they start: KEYCARDD_SOCKET (the
hook asks another daemon), KEYCARDD_BIN (the hook starts another program), KEYCARD_POLICY_FILE. Not keycard's
files, so a change asks rather than being refused."""
_SCRIPT_GUARD = "keycard files named in a script"
_STDIN_NAMES = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
_CODE_OPTIONS = frozenset({"-c", "-e", "-E", "-m", "-p", "-r", "--eval", "--print", "--command"})
"""Options after which an interpreter's code is in its arguments (or a module), not on its standard input."""


def _runs_code_from_stdin(context: Any) -> bool:
    """An interpreter that reads its program from standard input (`python3 <<'EOF'`, `echo ... | node`, `ruby -
    <<< ...`): the program is in the line's heredoc or pipe, which the request's own command does not show."""
    program, args = context.get("program"), context.get("args")
    if not isinstance(program, str) or not _SCRIPT_PROGRAMS.fullmatch(program) or args is None:
        return False  # `args` is None on the requests for the paths a command names
    args = [str(arg) for arg in args]
    if any(arg in _CODE_OPTIONS for arg in args):
        return False
    operands = [arg for arg in args if arg in _STDIN_NAMES or not arg.startswith("-")]
    return not operands or operands[0] in _STDIN_NAMES


_AGENT_WITHOUT_HOOKS = "an agent started with settings that may leave out keycard's hooks"
_SETTINGS_FLAGS = {
    "claude": re.compile(r"--settings?(-sources)?(=.*)?"),
    "codex": re.compile(r"-c|--config(=.*)?"),
    "gemini": None,
    "cursor-agent": None,
}
"""Each agent CLI's options that choose its settings: Claude Code's `--settings` (which may say `disableAllHooks`)
and `--setting-sources`, Codex's `-c`/`--config` overrides (its hooks are config and a feature flag)."""
_AGENT_PACKAGES = {"@anthropic-ai/claude-code": "claude", "@openai/codex": "codex", "@google/gemini-cli": "gemini"}
_PACKAGE_RUNNERS = frozenset({"npx", "bunx", "pnpx", "pnpm", "yarn", "npm"})
_STEERING_VARIABLES = frozenset({"HOME", "XDG_CONFIG_HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME"})
"""Where the agents read their settings, hooks included: a nested agent given another one runs without keycard's."""
_EXPORTERS = frozenset({"export", "env", "declare", "typeset", "readonly", "setenv", "set"})


def _mark_by_line(request: CedarRequest, steered: frozenset[str], names_guard_files: bool) -> CedarRequest:
    """The marks only the whole line shows: a nested agent whose settings another command of the line moved, and an
    interpreter whose program is the line's heredoc or pipe (`names_guard_files`: the line names keycard's files)."""
    context = request.context
    if "guard" in context:
        return request
    if _starts_an_agent_without_hooks(context, steered):
        return replace(request, context={**context, "guard": _AGENT_WITHOUT_HOOKS})
    if names_guard_files and _runs_code_from_stdin(context):
        return replace(request, context={**context, "guard": _SCRIPT_GUARD})
    return request


def _steering_variables(requests: Sequence[CedarRequest]) -> frozenset[str]:
    """The variables a line assigns or exports, of those that move an agent's settings (`export CODEX_HOME=/tmp/x;
    codex exec ...` sets it in another command than the agent's)."""
    names: set[str] = set()
    for request in requests:
        context = request.context
        words = [*(context.get("assignments") or ())]
        if context.get("program") in _EXPORTERS:
            words.extend(context.get("args") or ())
        names.update(str(word).partition("=")[0] for word in words if "=" in str(word))
    return frozenset(names & _STEERING_VARIABLES)


def _starts_an_agent_without_hooks(context: Any, steered: frozenset[str]) -> bool:
    """Whether this command starts a coding agent (`claude -p`, `npx @openai/codex exec`) whose settings, and so
    hooks, it chooses: an agent started with keycard's hooks is checked like this one, one started without is not."""
    program, given = context.get("program"), context.get("args")
    if given is None:  # the requests for the paths a command names
        return False
    args = [str(arg) for arg in given]
    if program in _PACKAGE_RUNNERS:
        program = next((agent for arg in args for package, agent in _AGENT_PACKAGES.items() if package in arg), None)
    if program not in _SETTINGS_FLAGS:
        return False
    flags = _SETTINGS_FLAGS[program]
    return bool(steered) or (flags is not None and any(flags.fullmatch(arg) for arg in args))


def _own_processes() -> list[str]:
    """The command lines of this daemon and of its export process, and the names `pkill` without `-f` matches."""
    executable = sys.executable
    daemon = " ".join(getattr(sys, "orig_argv", None) or [executable, *sys.argv])
    exporter = f"{executable} -m keycardd.telemetry.exporter"
    names = {os.path.basename(path)[:15] for path in (executable, os.path.realpath(executable))}  # comm, and exe's
    return [daemon, exporter, *sorted(names), "keycardd"]


_PROCESS_FINDERS = frozenset({"pkill", "pgrep", "killall", "pidof"})
_REGEX_SYNTAX = re.compile(r"[\\^$.|?*+()\[\]{}]")


def _deciding(policies: tuple[str, ...]) -> tuple[str, ...]:
    """The guard policies that decided, without the baseline permit every guard answer also matches."""
    return tuple(policy for policy in policies if policy != "guard-baseline")


def _links(context: Any) -> bool:
    program = context.get("program")
    if program in ("ln", "link"):
        return True
    options = [str(option) for option in (*(context.get("flags") or ()), *(context.get("args") or ()))]
    return program == "cp" and any(_CP_LINK.fullmatch(option) for option in options)


_CP_LINK = re.compile(r"--link|--symbolic-link|-[A-Za-z]*[ls][A-Za-z]*")


def _reason(verdict: Verdict) -> str:
    context = verdict.request.context
    target = context.get("file_path") or context.get("path")
    return f"{verdict.reason} ({context['guard']}: {target})" if target else verdict.reason


def protected_locations(config_file: Path | None = None) -> list[Location]:
    """Every place whose change would switch keycardd off or change what it decides, as this process sees them."""
    from keycardd.install import codex, gemini  # noqa: PLC0415 - install code is not needed on import

    home = Path.home()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    found = [
        Location(str(paths.state_dir()), "keycard state (policy, zone cache, decision log)"),
        Location(str(paths.policy_file()), "keycard policy"),
        Location(str(paths.decision_log_path()), "keycard decision log"),
        Location(str(paths.socket_path()), "keycardd's socket"),
        Location(str(config_home / "keycard"), "keycard configuration"),
        Location(str(home / ".claude" / "settings.json"), "Claude Code hook settings"),
        Location(str(home / ".claude" / "settings.local.json"), "Claude Code hook settings"),
        Location(str(home / ".cursor" / "hooks.json"), "Cursor hooks"),
        Location(str(codex.hooks_path("user", None)), "Codex hooks"),
        Location(str(codex.config_path()), "Codex hook trust"),
        Location(str(gemini.settings_path("user", None)), "Gemini CLI hook settings"),
        Location(str(home / ".gemini" / "trustedFolders.json"), "Gemini CLI folder trust"),
        Location(str(config_home / "systemd" / "user" / "keycardd.service"), "keycardd service unit"),
        Location(str(config_home / "systemd" / "user" / "keycardd.socket"), "keycardd service unit"),
        Location(str(config_home / "environment.d"), "systemd's user environment (reaches keycardd's service)"),
        Location(str(home / "Library" / "LaunchAgents" / "ai.keycard.keycardd.plist"), "keycardd LaunchAgent"),
    ]
    policy_dir = paths.policy_dir()
    if policy_dir is not None:
        found.append(Location(str(policy_dir), "keycard policy"))
    found.append(Location(str(managed_policy_dir()), "keycard managed policy"))
    for config in (config_file, os.environ.get("CLI_CONFIG")):
        if config:
            found.append(Location(os.path.abspath(config), "keycard configuration"))
    found.extend(_installation())
    found.extend(_installed_shims(home))
    resolved = [Location(os.path.realpath(location.path), location.what) for location in found]
    return [*found, *(location for location in resolved if location not in found)]


def _installation() -> list[Location]:
    """keycardd's package, its runtime libraries, its Python environment and its commands."""
    package = Path(__file__).resolve().parent
    found = [Location(str(package), "keycardd's package")]
    from keycardd.install.shim import data_dir, recorded_daemon_path  # noqa: PLC0415 - not needed on import

    found.append(Location(str(data_dir()), "keycard's installed hook shim"))
    found.extend(_autostarted_daemon(recorded_daemon_path()))
    for name in _DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            found.append(Location(str(Path(spec.origin).resolve().parent.parent), "keycardd's Python libraries"))
    if sys.prefix != sys.base_prefix:
        found.append(Location(sys.prefix, "keycardd's Python environment"))
    for command in ("keycardd", "keycardctl"):
        beside = Path(sys.executable).parent / command
        located = str(beside) if beside.exists() else shutil.which(command)
        if located:
            found.append(Location(located, "keycardd's command"))
    return found


def _autostarted_daemon(link: Path) -> list[Location]:
    """The keycardd that install recorded for the hooks' autostart, and its Python environment: the link itself is
    protected with keycard's data directory, but the program it leads to may be another installation than this
    daemon's (a checkout's `.venv`), whose change would run at the next autostart."""
    if not link.is_symlink():
        return []
    target = Path(os.path.realpath(link))
    found = [Location(str(target), "the keycardd the hooks start")]
    environment = target.parent.parent
    if (environment / "pyvenv.cfg").is_file():
        found.append(Location(str(environment), "the Python environment of the keycardd the hooks start"))
    return found


def _installed_shims(home: Path) -> list[Location]:
    """The executables the user's agent configs run as keycardd's hook (they may live outside keycard's dirs)."""
    from keycardd.install import claude, codex, cursor, gemini  # noqa: PLC0415
    from keycardd.install.config_file import ConfigFileError, read_json  # noqa: PLC0415

    words: list[str] = []
    try:
        for command, args in claude.installed_commands(read_json(home / ".claude" / "settings.json")):
            words.extend([command, *args])
        for argv in cursor.installed_commands(read_json(home / ".cursor" / "hooks.json")):
            words.extend(argv)
        for argv in codex.installed_commands(read_json(codex.hooks_path("user", None))):
            words.extend(argv)
        for argv in gemini.installed_commands(read_json(gemini.settings_path("user", None))):
            words.extend(argv)
    except (ConfigFileError, ValueError, TypeError, AttributeError):
        pass  # doctor reports an unreadable config; the shapes still protect the file itself
    return [
        Location(word, "keycardd's installed hook shim")
        for word in words
        if os.path.isabs(word) and any(name in word for name in ("keycard-hook", "keycard_hook"))
    ]
