"""Commands given to vim and less on their command line: `vim -c '!CMD'`, `vim +'w FILE'`, `less +'!CMD'`.

vim's ex commands (from `-c`, `--cmd`, `+CMD`, or stdin in `-e`/`-es` mode) are read one by one (`|` separates
them): `!CMD`, `r !CMD` and `w !CMD` run CMD through the shell (reported as that line); `w FILE`, `saveas FILE`,
`wq`, `x`, ... write FILE or the edited files; a short list of commands that run and write nothing (`set`, `q`,
`syntax`, a line number, `s/a/b/` without `\\=`) pass; every other command (`normal`, `call`, `source`, `py3`,
`lua`, `terminal`, `exe`, ...) is unseen code. less's initial commands (`+CMD`, `++CMD`) are its keystrokes:
`!CMD` and `|mCMD` run CMD, `s FILE` writes FILE, `v` starts the editor; a line number, `G`, `F` or a search passes.
"""

from __future__ import annotations

import re

from keycardd.shell._effects import Effect, Unseen, runs_line, writes
from keycardd.shell._words import Word

_RANGE = re.compile(r"(?:%|\d+|[.$]|'[a-z<>]|/(?:[^/\\]|\\.)*/|\?(?:[^?\\]|\\.)*\?|[+\-]\d*|[,;]|\s)*")
_NAME = re.compile(r"[A-Za-z]+|&&|[&~<>=]")
_SAFE = frozenset({"set", "se", "setlocal", "setl", "setglobal", "setg", "q", "qu", "qui", "quit", "qa", "qall",
                   "quita", "quitall", "cq", "cquit", "syntax", "sy", "syn", "filetype", "filet", "noh",
                   "nohlsearch", "e", "edit", "redraw", "redr", "d", "de", "del", "delete", "j", "join", "y",
                   "yank", "m", "move", "t", "co", "copy", "u", "undo", "red", "redo", "sort", "sor", "retab",
                   "ret", "le", "left", "ri", "right", "ce", "center", "&", "&&", "~",
                   "<", ">", "=", "p", "print", "nu", "number"})  # fmt: skip
_SUBSTITUTE = frozenset({"s", "su", "sub", "substitute", "sm", "smagic", "sno", "snomagic"})
_WRITE = frozenset({"w", "wr", "wri", "writ", "write", "wq", "x", "xi", "xit", "exi", "exit", "sav", "saveas", "up",
                    "upd", "upda", "updat", "update", "wa", "wall", "wqa", "wqall", "xa", "xall", "wn", "wnext",
                    "wN", "wNext", "wp", "wprevious", "sw", "swapname"})  # fmt: skip
_READ = frozenset({"r", "re", "rea", "read"})
_GLOBAL = frozenset({"g", "gl", "glo", "glob", "globa", "global", "v", "vg", "vglobal"})


def vim_effects(commands: list[str], files: list[str]) -> list[Effect]:
    """What vim's ex `commands` run or write; `files` are the files it edits (what a bare `:w` writes)."""
    found: list[Effect] = []
    for command in commands:
        found.extend(_ex_line(command, files, depth=0))
    return found


def _ex_line(line: str, files: list[str], *, depth: int) -> list[Effect]:
    found: list[Effect] = []
    rest = line
    while rest.strip():
        effects, rest = _ex(rest, files, depth)
        found.extend(effects)
    return found


def _ex(text: str, files: list[str], depth: int) -> tuple[list[Effect], str]:
    """One ex command of `text`: its effects, and the text after it (after a `|`; `!` commands take it all)."""
    text = text.lstrip(" \t:")
    address = _RANGE.match(text)
    text = text[address.end() :] if address else text
    if text.startswith("!"):  # `:{range}!cmd` filters those lines through cmd: it reads the file's text
        fed = address is not None and address[0].strip() != ""
        return _shell(text[1:], "vim's `:!`", fed=fed), ""
    match = _NAME.match(text)
    if match is None:
        return ([Unseen(f"keycardd cannot read the vim command `{text[:40]}`")] if text.strip() else []), ""
    name = match[0]
    after = text[match.end() :]
    if name in _READ and after.startswith("!"):  # `:r!cmd` reads the command's output, as `:r !cmd` does
        return _shell(after[1:], f"vim's `:{name}!`"), ""
    after = after[1:] if after.startswith("!") else after  # `:w!`, `:q!`
    argument, separator, remaining = after.partition("|")
    if name in _READ | _WRITE and after.lstrip().startswith("!"):  # `:w !cmd` pipes the file's text into cmd
        return _shell(after.lstrip()[1:], f"vim's `:{name} !`", fed=name in _WRITE), ""
    if name in _GLOBAL and depth < 4:
        pattern = re.match(r"\s*(\W)((?:\\.|(?!\1).)*)\1?", after)
        command = after[pattern.end() :] if pattern else after
        return _ex_line(command or "p", files, depth=depth + 1), ""
    if name in _WRITE:
        target = argument.strip()
        if any(mark in target for mark in "$`%#"):  # vim expands variables, backquotes and `%` in file names
            return [Unseen(f"vim's `:{name}` writes a file named at run time")], ""
        names = [Word(target)] if target else [Word(path) for path in files]  # vim expands `~`
        return [writes(path) for path in names], remaining if separator else ""
    if name in _SUBSTITUTE and "\\=" not in after:
        return [], ""  # the pattern and replacement may hold `|`: the rest of the line is the substitute's
    if name in _SAFE and "(" not in argument:
        return [], remaining if separator else ""
    return [Unseen(f"vim's `:{name}` is not a command keycardd reads (it may run code)")], ""


def _shell(command: str, what: str, *, fed: bool = False) -> list[Effect]:
    """A shell command vim or less runs: they replace `%` and `#` by file names and `!` by the previous command.
    `fed`: it reads the edited text (`:w !sh` runs the file as a script), only known at run time."""
    command = command.strip()
    if not command or any(mark in command for mark in "%#!"):
        return [Unseen(f"{what} runs a command with file names or an earlier command filled in at run time")]
    return [runs_line(command, stdin="the text the editor writes to it")] if fed else [runs_line(command)]


def vim_plus(argument: str) -> list[str]:
    """`+N`, `+/pattern` and `+` go to a line (nothing to check); any other `+CMD` is an ex command."""
    text = argument[1:]
    goes_to_line = not text or text.isdigit() or (text.startswith(("/", "?")) and "\n" not in text)
    return [] if goes_to_line else [text]


def less_effects(command: str) -> list[Effect]:
    """One initial command of less (`+CMD`; `++CMD` applies it to every file)."""
    text = command.lstrip("+")
    if "\n" in text or "\r" in text:
        return [Unseen("less's initial command holds a newline, which starts another command")]
    goes_to = text.startswith(("/", "?", "&")) or re.fullmatch(r"\d*[gGFpPdDuUjkeybf%]?", text) is not None
    if goes_to and "!" not in text:
        return []
    if "!" in text:
        return _shell(text.partition("!")[2], "less's `!`")
    if text.startswith("|") and len(text) > 2:
        return [runs_line(text[2:].strip(), stdin="the text less shows")]
    if text.startswith("s"):  # less expands `~` in the file name it saves to
        return [writes(Word(text[1:].strip()))] if text[1:].strip() else []
    return [Unseen(f"less's initial command `{text[:40]}` is not one keycardd reads")]
