"""Programs that run other programs: `sudo rm`, `bash -c '...'`, `xargs rm`, `find -exec rm {} ;`, ...

`unwrap` tells the analyser what a wrapper runs: another command (its argv), or a string the wrapper hands to a
shell (parsed again as a shell line). The option tables list the options that take a value, so `sudo -u bob rm`
runs `rm`, not `bob`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keycardd.shell._words import Word

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "busybox"})


@dataclass(frozen=True, slots=True)
class Inner:
    """The wrapper runs this argv (program first)."""

    label: str
    argv: tuple[Word, ...]
    assignments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Script:
    """The wrapper runs this text as a shell line; `dynamic` when the text is only known at run time."""

    label: str
    text: str
    dynamic: bool = False


Unwrapped = Inner | Script

# Options that take a value, per wrapper (short and long forms); every other dash-word is a flag.
_OPTIONS_WITH_VALUE: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "-R", "--user", "--group",
                       "--host", "--prompt", "--close-from", "--chdir", "--role", "--type", "--other-user",
                       "--command-timeout", "--chroot"}),
    "doas": frozenset({"-u", "-C"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "setsid": frozenset(),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}),
    "stdbuf": frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}),
    "chrt": frozenset(),
    "taskset": frozenset(),
    "unbuffer": frozenset(),
    "strace": frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X"}),
    "ltrace": frozenset({"-o", "-e", "-p", "-s", "-u", "-a", "-n", "-l", "-x"}),
    "caffeinate": frozenset({"-t", "-w"}),
    "runuser": frozenset({"-u", "-g", "-G", "--user", "--group"}),
    "xargs": frozenset({"-I", "-L", "-n", "-P", "-d", "-E", "-s", "-a", "--max-args", "--max-procs", "--delimiter",
                        "--eof", "--max-chars", "--arg-file", "--max-lines", "--replace"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "chroot": frozenset({"--userspec", "--groups"}),
    "watch": frozenset({"-n", "-d", "--interval", "--differences", "-q", "--equexit"}),
    "flock": frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}),
}  # fmt: skip
_POSITIONALS_BEFORE_COMMAND = {"timeout": 1, "chroot": 1, "flock": 1, "chrt": 1, "taskset": 1}
"""Wrappers with positional arguments before the command: `timeout 5 cmd`, `chroot /srv cmd`, `flock lockfile cmd`."""


def unwrap(program: str, args: Sequence[Word], stdin_script: str | None) -> list[Unwrapped]:
    """What `program args...` runs, if it is a wrapper; empty when it runs nothing we can see."""
    if program in SHELLS:
        return _shell(program, args, stdin_script)
    if program == "eval":
        dynamic = any(word.dynamic for word in args)
        return [Script("eval", " ".join(word.text for word in args), dynamic)] if args else []
    if program == "env":
        return _env(args)
    if program == "find":
        return _find(args)
    if program == "command":
        if any(word.text in ("-v", "-V") for word in args):
            return []  # `command -v x` only looks x up
        return _after_options("command", args, frozenset())
    if program in ("su", "runuser") and any(word.text in ("-c", "--command") for word in args):
        flag = next(index for index, word in enumerate(args) if word.text in ("-c", "--command"))
        return [Script(f"{program} -c", args[flag + 1].text)] if flag + 1 < len(args) else []
    if program == "flock" and any(word.text in ("-c", "--command") for word in args):
        flag = next(index for index, word in enumerate(args) if word.text in ("-c", "--command"))
        return [Script("flock -c", args[flag + 1].text)] if flag + 1 < len(args) else []
    if program == "watch":  # watch hands its arguments to `sh -c`
        rest = _after_options("watch", args, _OPTIONS_WITH_VALUE["watch"])
        return [
            Script("watch", " ".join(word.text for word in inner.argv)) for inner in rest if isinstance(inner, Inner)
        ]
    if program == "xargs":
        rest = _after_options("xargs", args, _OPTIONS_WITH_VALUE["xargs"])
        return rest or [Inner("xargs", (Word("echo"),))]
    if program in _OPTIONS_WITH_VALUE:
        return _after_options(program, args, _OPTIONS_WITH_VALUE[program])
    return []


def _after_options(label: str, args: Sequence[Word], with_value: frozenset[str]) -> list[Unwrapped]:
    """Skip the wrapper's own options (and its positionals), return the command that follows."""
    index = 0
    positionals = _POSITIONALS_BEFORE_COMMAND.get(label, 0)
    while index < len(args):
        text = args[index].text
        if text == "--":
            index += 1
            break
        if text.startswith("-") and len(text) > 1 and not args[index].dynamic:
            name = text.split("=", 1)[0]
            takes_value = name in with_value or (len(name) == 2 and name in with_value)
            if takes_value and "=" not in text:
                index += 2
            elif label == "nice" and text[1:].isdigit():  # nice -10 cmd
                index += 1
            else:
                index += 1
            continue
        break
    index += positionals
    rest = tuple(args[index:])
    return [Inner(label, rest)] if rest else []


def _shell(program: str, args: Sequence[Word], stdin_script: str | None) -> list[Unwrapped]:
    """`bash -c 'line'` runs the line; `bash` with no script reads stdin (a heredoc or herestring)."""
    index = 0
    command_flag = False
    while index < len(args):
        text = args[index].text
        if text == "--":
            index += 1
            break
        if text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 2
            continue
        if text.startswith(("-", "+")) and len(text) > 1 and not text.startswith("--"):
            command_flag = command_flag or "c" in text[1:]
            index += 1
            continue
        if text.startswith("--"):
            index += 1
            continue
        break
    if command_flag:
        return [Script(f"{program} -c", args[index].text, args[index].dynamic)] if index < len(args) else []
    if index >= len(args) and stdin_script is not None:
        return [Script(f"{program} <<", stdin_script)]
    if index < len(args) and args[index].text == "-s" and stdin_script is not None:
        return [Script(f"{program} -s", stdin_script)]
    return []


def _env(args: Sequence[Word]) -> list[Unwrapped]:
    """`env [-i] [-u NAME] [NAME=VALUE]... cmd`, and `env -S 'cmd args'` (split string)."""
    index = 0
    assignments: list[str] = []
    while index < len(args):
        text = args[index].text
        if text in ("-S", "--split-string") and index + 1 < len(args):
            return [Script("env -S", " ".join(word.text for word in args[index + 1 :]))]
        if text.startswith("--split-string="):
            return [Script("env -S", text.split("=", 1)[1])]
        if text in ("-u", "--unset", "-C", "--chdir"):
            index += 2
            continue
        if text.startswith("-") and text != "-":
            index += 1
            continue
        if "=" in text and not text.startswith("=") and not args[index].dynamic:
            assignments.append(text)
            index += 1
            continue
        break
    rest = tuple(args[index:])
    return [Inner("env", rest, tuple(assignments))] if rest else []


def _find(args: Sequence[Word]) -> list[Unwrapped]:
    """`find ... -exec cmd {} ;` (and -execdir, -ok, -okdir) runs `cmd` for each match."""
    found: list[Unwrapped] = []
    index = 0
    while index < len(args):
        if args[index].text in ("-exec", "-execdir", "-ok", "-okdir"):
            label = f"find {args[index].text}"
            end = index + 1
            while end < len(args) and args[end].text not in (";", "+"):
                end += 1
            if end > index + 1:
                found.append(Inner(label, tuple(args[index + 1 : end])))
            index = end
        index += 1
    return found
