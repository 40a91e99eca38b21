"""PowerShell lines (Claude Code's PowerShell tool) judged like bash lines: one Cedar request per command.

    >>> [c.program for c in analyze("rm -r -fo ~; iwr https://x -OutFile a.ps1").commands]
    ['remove-item', 'invoke-webrequest']

The reader (`_reader`; `_commands` says what each command does) follows aliases (`rm`, `del`, `gc`, `iex`,
...), abbreviated parameters (`-r` is `-Recurse`), quoting (typographic quotes too), `$HOME`,
`$env:USERPROFILE` and `~`, assignments earlier on the line, blocks, sub-expressions, `Invoke-Expression` of
literal strings, `powershell -Command`/`-EncodedCommand`, `cmd /c` and `Start-Process`. What it cannot see, it
says: a dynamic program, `iex` of a non-literal, code piped into a shell, an unknown .NET call (`hidden`), or
syntax outside its subset (`error`); both are denied by default. Documented limits: a script file's contents
(`./build.ps1`), modules, and .NET types compiled by `Add-Type` are not read; variables set in ways it does not
follow (`Set-Variable`, `-OutVariable`) become unknown, not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keycardd.canonical import canonical_path, glob_candidates, url_hosts
from keycardd.powershell._commands import Command
from keycardd.powershell._reader import HiddenCode, PowerShellError, PsCommand, Reader, State

__all__ = ["PowerShellAnalysis", "PsCommand", "analyze", "request_contexts"]

MAX_LINE = 64 * 1024


@dataclass(frozen=True, slots=True)
class PowerShellAnalysis:
    commands: tuple[PsCommand, ...]
    error: str | None = None
    """Why the line could not be read (outside the subset, or not PowerShell); None when it was."""
    hidden: str | None = None
    """What runs code that is not on the line; None when everything it runs is."""


def analyze(line: str) -> PowerShellAnalysis:
    """Every command `line` would run. Never raises."""
    if len(line) > MAX_LINE:
        return PowerShellAnalysis((), error=f"the command is longer than {MAX_LINE} characters")
    try:
        commands = Reader(line, state=State(build=Command)).run()
    except PowerShellError as exc:
        return PowerShellAnalysis((), error=str(exc))
    except HiddenCode as exc:
        return PowerShellAnalysis((), hidden=str(exc))
    except RecursionError:
        return PowerShellAnalysis((), error="the command nests too deeply")
    return PowerShellAnalysis(tuple(commands))


def request_contexts(
    analysis: PowerShellAnalysis, context: Mapping[str, Any], line: str, *, home: str, fold_case: bool
) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, context, the part a reason names) for each Cedar request of an analysed line.

    The facts are the bash analysis's (keycardd/schema.cedarschema): one request per command; one per (command,
    path) with `file_path`, `access` and `covers_home` (and the command's facts but not its word lists); one
    `Tool::"write"` per file written. The whole `line` is on the first request only, so the requests' size stays
    linear in the line.
    """
    cwd = str(context.get("cwd") or "")
    base = {key: value for key, value in context.items() if key != "command"}

    def canonical(path: str) -> str:
        return canonical_path(_provider_path(path, cwd), cwd=cwd, home=home, fold_case=fold_case)

    canonical_home = canonical_path(home, cwd="/", home=home, fold_case=fold_case)
    requests: list[tuple[str, dict[str, Any], str]] = []
    written: dict[str, None] = {}
    windows = cwd[1:3] in (":\\", ":/")
    for command in analysis.commands:
        # a wildcard path also stands for the key and credential files it could match (`gc ~/.ss?/id_rsa`)
        named = [
            *command.paths,
            *(c for p in command.paths for c in glob_candidates(_provider_path(p, cwd), dotfiles=windows)),
        ]
        paths = [canonical(path) for path in named]
        if command.access == "delete":  # deleting `~/*` empties `~`: judge it as deleting `~`
            paths += [canonical(path.rstrip("*").rstrip("\\/") or "/") for path in command.paths if _glob_last(path)]
        paths = list(dict.fromkeys(paths))
        flags, subcommand = _flags_and_subcommand(command)
        facts: dict[str, Any] = {
            "command": command.text,
            "program": command.program,
            "args": list(command.args),
            "flags": flags,
            "paths": paths,
            "home": canonical_home,
            "unknowns": list(command.unknowns),
            "via": list(command.via),
            "writes": list(dict.fromkeys(canonical(path) for path in command.writes)),
            "hosts": sorted({host for url in command.urls for host in url_hosts(url)}),
            "deletes_recursively": command.recursive,
        }
        if subcommand is not None:
            facts["subcommand"] = subcommand
        first = {**base, **facts, **({"line": line} if not requests else {})}
        requests.append(("powershell", first, command.text))
        # per-path requests carry the command's facts but not its word lists, so their size stays linear
        small = {key: value for key, value in facts.items() if key not in _WORD_LISTS}
        for path in paths:
            per_path = {**base, **small, "file_path": path, "access": command.access,
                        "covers_home": _covers_home(path, canonical_home)}  # fmt: skip
            requests.append(("powershell", per_path, command.text))
        written.update(dict.fromkeys(facts["writes"]))
    for path in written:
        requests.append(("write", {**base, "file_path": path}, f"write to {path}"))
    return requests


_GIT_VALUE_OPTIONS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"})
_SHORT_FLAG = re.compile(r"-[A-Za-z?]|/[A-Za-z?]")
_CLUSTER = re.compile(r"-[A-Za-z]{2,}")


def _flags_and_subcommand(command: PsCommand) -> tuple[list[str], str | None]:
    """The command's options as the bash facts give them, and its first operand.

    A native program's clusters are split (`git clean -fdx` has `-f`), `--opt=value` is `--opt`, and git's global
    options are skipped for the subcommand (`git -C repo push` is `push`). Cmdlet parameters stay whole.
    """
    flags: list[str] = []
    subcommand: str | None = None
    native = "-" not in command.program
    skip_value = False
    for arg in command.args:
        if skip_value:
            skip_value = False
            continue
        if arg.startswith("--") and len(arg) > 2:
            flags.append(arg.partition("=")[0])
            skip_value = command.program == "git" and arg in _GIT_VALUE_OPTIONS
        elif (arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit()) or _SHORT_FLAG.fullmatch(arg):
            flags.append(arg)
            if native and _CLUSTER.fullmatch(arg):
                flags += [f"-{letter}" for letter in arg[1:]]
            skip_value = command.program == "git" and arg in _GIT_VALUE_OPTIONS
        elif subcommand is None:
            subcommand = arg
    return list(dict.fromkeys(flags)), subcommand


_WORD_LISTS = frozenset({"command", "args", "paths", "writes", "hosts"})


def _covers_home(path: str, home: str) -> bool:
    """Whether deleting `path` deletes `/`, the home directory, a parent of it, or (Windows) a drive, the users'
    directory or a user's home (`c:/`, `c:/users`, `c:/users/<name>`), whatever home the daemon runs with."""
    if path in ("/", home) or home.startswith(path.rstrip("/") + "/"):
        return True
    drive, colon, rest = path.partition(":")
    if not colon or len(drive) != 1:
        return False
    parts = [part for part in rest.split("/") if part]
    return len(parts) <= 1 or (parts[0] == "users" and len(parts) == 2)


_FILESYSTEM_PROVIDER = re.compile(r"^(?:microsoft\.powershell\.core\\)?filesystem::", re.IGNORECASE)


def _provider_path(path: str, cwd: str) -> str:
    """A provider path as a file path: `FileSystem::C:\\x` is `C:\\x`, and PowerShell's providers take `\\` as a
    separator on every platform, so on a POSIX cwd it is read as `/`."""
    path = _FILESYSTEM_PROVIDER.sub("", path)
    return path if cwd[1:3] in (":\\", ":/") else path.replace("\\", "/")


def _glob_last(path: str) -> bool:
    last = path.replace("\\", "/").rstrip("/").rpartition("/")[2]
    return bool(last) and set(last) <= {"*", "."} and "*" in last
