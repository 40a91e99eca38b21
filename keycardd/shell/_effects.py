"""What inline code in another language does, as the shell commands that would do the same.

The Python, awk, sed, editor and pager readers (`_python_code`, `_awk_code`, `_sed_code`, `_editor_code`,
`_scripted_code`) report each thing the code does as one `Effect`: a program it runs (an argv, or a line for
`/bin/sh -c`, which is what `os.system`, awk's `system()` and sed's `e` really run), or something they cannot see.
A file it deletes, writes or reads is reported as the shell command with the same effect (`shutil.rmtree(p)` is
`rm -rf -- p`, `open(p, 'w')` is `tee -- p`), so every rule and the guard judge `shutil.rmtree('/')` exactly as
they judge `rm -rf /`: the same program, flags and per-path requests, with the interpreter in `via`.
"""

from __future__ import annotations

from dataclasses import dataclass

from keycardd.shell._words import Word

INHERIT = "inherit"
NO_STDIN = "none"


@dataclass(frozen=True, slots=True)
class RunsArgv:
    """The code runs this argv (program first)."""

    argv: tuple[Word, ...]
    stdin: str = INHERIT
    """What it reads: the interpreter's own stdin (`INHERIT`), nothing (`NO_STDIN`: file effects, where `tee -- p`
    stands for a write; code that was itself read from stdin), or else input only known at run time, described
    (`awk's print output` for `print ... | "sh"`)."""


@dataclass(frozen=True, slots=True)
class Unseen:
    """The code does something keycardd cannot see: a program or file only known at run time, `eval`, ..."""

    why: str


Effect = RunsArgv | Unseen


def literal_path(text: str) -> Word:
    """A file name as the program receives it: no shell ran on it, so a leading `~` is a file named `~`."""
    return Word(text, quoted_tilde=text.startswith("~"))


def runs(argv: list[str]) -> RunsArgv:
    return RunsArgv(tuple(Word(part) for part in argv))


def runs_line(text: str, stdin: str = INHERIT) -> RunsArgv:
    """`os.system(LINE)`, awk's `system(LINE)`, sed's `e LINE`: `/bin/sh -c LINE` runs, and the line with it."""
    return RunsArgv((Word("sh"), Word("-c"), Word(text)), stdin)


def _file(program: str, *flags_and_paths: Word | str) -> RunsArgv:
    words = [Word(part) if isinstance(part, str) else part for part in flags_and_paths]
    return RunsArgv((Word(program), *words), stdin=NO_STDIN)


def deletes(path: str, *, recursive: bool = False) -> RunsArgv:
    return _file("rm", "-rf" if recursive else "-f", "--", literal_path(path))


def removes_directory(path: str) -> RunsArgv:
    return _file("rmdir", "--", literal_path(path))


def writes(path: str | Word) -> RunsArgv:
    """A write to `path`: a file name as the program got it, or a `Word` as the shell or an editor spelt it (vim
    expands a leading `~` in `:w ~/x`, the shell in `less -o ~/x`)."""
    return _file("tee", "--", literal_path(path) if isinstance(path, str) else path)


def reads(path: str) -> RunsArgv:
    return _file("cat", "--", literal_path(path))


def makes_directory(path: str) -> RunsArgv:
    return _file("mkdir", "-p", "--", literal_path(path))


def changes_attributes(path: str) -> RunsArgv:
    """chmod, chown, utime: the file is changed in place (a write, as `chmod` and `touch` are)."""
    return _file("touch", "--", literal_path(path))


def copies(source: str, target: str) -> RunsArgv:
    return _file("cp", "-R", "--", literal_path(source), literal_path(target))


def moves(source: str, target: str) -> RunsArgv:
    return _file("mv", "--", literal_path(source), literal_path(target))


def links(target: str, name: str, *, symbolic: bool) -> RunsArgv:
    return _file("ln", *(["-s"] if symbolic else []), "--", literal_path(target), literal_path(name))


def connects(url: str) -> RunsArgv:
    """A connection to a URL (`http://h/x`) or an address (`tcp://h:80`): curl's facts give its hosts."""
    return RunsArgv((Word("curl"), Word("--"), Word(url)), stdin=NO_STDIN)
