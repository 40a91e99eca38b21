"""What a git invocation runs besides git: aliases, config keys that hold commands, and options that take one.

`git -c alias.x='!rm -rf ~' x`, `git -c core.sshCommand='sh -c ...' fetch`, `git rebase --exec CMD`,
`git config alias.p push && git p` (the alias is a git subcommand: `push`, which the default policy asks about).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from keycardd.shell._options import Grammar, parse_options
from keycardd.shell._words import Word

Kind = Literal["code", "argv", "git", "opaque"]
"""`code`: a shell line; `argv`: a program and its words; `git`: more git arguments; `opaque`: unseen code."""

_GLOBAL = Grammar("Cc", frozenset({"--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env",
                                   "--attr-source", "--list-cmds"}))  # fmt: skip
_COMMAND_KEYS = re.compile(
    r"^(core\.(sshcommand|pager|editor|askpass|fsmonitor|gitproxy)|sequence\.editor|diff\.external"
    r"|diff\..+\.(textconv|command)|merge\..+\.driver|(merge|diff)tool\..+\.cmd|filter\..+\.(clean|smudge|process)"
    r"|credential(\..+)?\.helper|gpg(\..+)?\.program|pager\..+|uploadpack\.packobjectshook"
    r"|remote\..+\.(uploadpack|receivepack|vcs)|sendemail\.(smtpserver|sendmailcmd)|browser\..+\.cmd|web\.browser"
    r"|instaweb\.httpd|receive\.procreceiverefs|ssh\.variant)$"
)
_FILE_KEYS = re.compile(r"^(core\.hookspath|include\.path|includeif\..+\.path|init\.templatedir)$")
_NOT_COMMANDS = frozenset({"", "true", "false", "yes", "no", "on", "off", "1", "0"})
_RUNS_OPTION = {
    "rebase": ("-x", "--exec"),
    "difftool": ("-x", "--extcmd"),
    "clone": ("-u", "--upload-pack"),
    "fetch": ("--upload-pack",),
    "pull": ("--upload-pack",),
    "ls-remote": ("--upload-pack",),
    "archive": ("--exec",),
    "push": ("--receive-pack", "--exec"),
    "send-pack": ("--receive-pack", "--exec"),
    "fetch-pack": ("--upload-pack", "--exec"),
    "filter-branch": ("--env-filter", "--tree-filter", "--index-filter", "--parent-filter", "--msg-filter",
                      "--commit-filter", "--tag-name-filter"),
}  # fmt: skip
_SUB_VALUE_OPTIONS = (
    "--exec --extcmd --upload-pack --receive-pack --env-filter --tree-filter --index-filter --parent-filter "
    "--msg-filter --commit-filter --tag-name-filter --onto --message --file --strategy --strategy-option --template "
    "--origin --branch --depth --reference --separate-git-dir --config --tool"
)
_SUB_GRAMMAR = Grammar("xuCmFOsSet", frozenset(_SUB_VALUE_OPTIONS.split()))


def git_runs(args: Sequence[Word]) -> list[tuple[Kind, str, Word]]:
    """Everything `git args...` would run other than git's own builtins."""
    found: list[tuple[Kind, str, Word]] = []
    aliases: dict[str, Word] = {}
    parsed = parse_options(args, _GLOBAL)
    for name, value in parsed.options:
        if name == "-c" and value is not None:
            key, _, setting = value.text.partition("=")
            _config(key, Word(setting, value.dynamic), found, aliases, label="git -c")
        elif name == "--config-env" and value is not None:
            key = value.text.partition("=")[0]
            if _COMMAND_KEYS.match(key.lower()) or key.lower().startswith("alias.") or _FILE_KEYS.match(key.lower()):
                found.append(("opaque", f"git --config-env {key}", value))
        elif name.startswith("--exec-path") and value is not None:
            found.append(("opaque", "git --exec-path", value))
    if parsed.dynamic or parsed.index >= len(args):
        return found
    sub, rest = args[parsed.index], args[parsed.index + 1 :]
    if sub.text in aliases:
        alias = aliases[sub.text]
        if not alias.text.startswith("!"):
            extra = " ".join(word.text for word in rest)
            found.append(("git", f"git alias {sub.text}", Word(f"{alias.text} {extra}".strip(), alias.dynamic)))
    for word in rest:
        if word.text.startswith("ext::"):
            found.append(("code", "git ext::", Word(word.text[5:].replace("% ", " "), word.dynamic)))
    if sub.text == "config":
        _config_command(rest, found, aliases)
    elif sub.text == "bisect" and rest and rest[0].text == "run" and len(rest) > 1:
        found.append(("argv", "git bisect run", Word(" ".join(w.text for w in rest[1:]), rest[1].dynamic)))
    elif sub.text == "submodule" and any(w.text == "foreach" for w in rest):
        tail = rest[[w.text for w in rest].index("foreach") + 1 :]
        tail = [w for w in tail if w.text not in ("--recursive", "-q", "--quiet")]
        if tail:
            found.append(("code", "git submodule foreach", Word(" ".join(w.text for w in tail), tail[0].dynamic)))
    elif sub.text in _RUNS_OPTION:
        _subcommand_options(sub.text, rest, found)
    return found


def _subcommand_options(sub: str, rest: Sequence[Word], found: list[tuple[Kind, str, Word]]) -> None:
    names = _RUNS_OPTION[sub]
    index = 0
    while index < len(rest):
        parsed = parse_options(rest, _SUB_GRAMMAR, index)
        for name, value in parsed.options:
            if name in names and value is not None:
                found.append(("code", f"git {sub} {name}", value))
        if parsed.dynamic:
            found.append(("opaque", f"git {sub}", rest[parsed.index]))
        index = parsed.index + 1


def _config_command(rest: Sequence[Word], found: list[tuple[Kind, str, Word]], aliases: dict[str, Word]) -> None:
    """`git config [--global] [set] KEY VALUE`: a command stored now runs later in the line (or later at all)."""
    operands = [word for word in rest if not word.text.startswith("-")]
    if operands and operands[0].text in ("set", "--add"):
        operands = operands[1:]
    if len(operands) >= 2:
        _config(operands[0].text, operands[1], found, aliases, label="git config")


def _config(key: str, value: Word, found: list[tuple[Kind, str, Word]], aliases: dict[str, Word], label: str) -> None:
    lowered = key.lower()
    if lowered.startswith("alias."):
        aliases[key[len("alias.") :]] = value
        if value.dynamic:
            found.append(("opaque", f"{label} {key}", value))
        elif value.text.startswith("!"):
            found.append(("code", f"{label} {key}", Word(value.text[1:])))
        elif value.text:  # any later `git <alias>` runs this: judged where it is defined
            found.append(("git", f"{label} {key}", value))
        return
    if _FILE_KEYS.match(lowered):
        found.append(("opaque", f"{label} {key}", value))
    elif _COMMAND_KEYS.match(lowered) and value.text.lower() not in _NOT_COMMANDS:
        if value.dynamic:
            found.append(("opaque", f"{label} {key}", value))
        elif lowered.endswith(".helper") and not value.text.startswith(("!", "/")):
            found.append(("argv", f"{label} {key}", Word(f"git-credential-{value.text}")))
        else:
            found.append(("code", f"{label} {key}", Word(value.text.removeprefix("!"))))
